// SyncTrackingFs: a RocksDB FileSystem wrapper for the crash test's child
// that appends "<file name> <bytes>" to a side log each time a written
// file has been synced, so the parent can later cut every WAL and MANIFEST
// back to what was really on stable storage (a simulated power loss).
// Must never change what RocksDB writes; it only observes.
#pragma once

#include <fcntl.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>

namespace raftkv::storage::crash {

class SyncTrackingFs : public rocksdb::FileSystemWrapper {
 public:
  explicit SyncTrackingFs(const std::string& sync_log_path)
      : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()),
        fd_(::open(sync_log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644)),
        env_(rocksdb::NewCompositeEnv(
            std::shared_ptr<rocksdb::FileSystem>(this, [](auto*) {}))) {}
  ~SyncTrackingFs() override {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  rocksdb::Env* env() const { return env_.get(); }
  const char* Name() const override { return "SyncTrackingFs"; }

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, &file, dbg);
    if (s.ok()) result->reset(new File(std::move(file), this, name));
    return s;
  }

 private:
  void Synced(const std::string& name, uint64_t size) {
    const size_t slash = name.rfind('/');
    const std::string base =
        slash == std::string::npos ? name : name.substr(slash + 1);
    char line[512];
    const int n = std::snprintf(line, sizeof(line), "%s %llu\n", base.c_str(),
                                static_cast<unsigned long long>(size));
    if (n > 0 && ::write(fd_, line, static_cast<size_t>(n)) != n) {
      std::perror("sync log");
    }
  }

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> file, SyncTrackingFs* fs,
         std::string name)
        : FSWritableFileOwnerWrapper(std::move(file)),
          fs_(fs),
          name_(std::move(name)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = target()->Append(data, options, dbg);
      if (s.ok()) size_ += data.size();
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      rocksdb::IOStatus s = target()->Append(data, options, info, dbg);
      if (s.ok()) size_ += data.size();
      return s;
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      const uint64_t size = size_.load();
      rocksdb::IOStatus s = target()->Sync(options, dbg);
      if (s.ok()) fs_->Synced(name_, size);
      return s;
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      const uint64_t size = size_.load();
      rocksdb::IOStatus s = target()->Fsync(options, dbg);
      if (s.ok()) fs_->Synced(name_, size);
      return s;
    }

   private:
    SyncTrackingFs* fs_;
    std::string name_;
    std::atomic<uint64_t> size_{0};
  };

  int fd_;
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace raftkv::storage::crash
