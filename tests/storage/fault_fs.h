// FaultFs: a RocksDB FileSystem wrapper for tests that makes every write to
// a file fail with "No space left on device" once armed, as a full disk
// does. Must never be used outside tests; it changes no file itself.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <memory>
#include <string>

namespace raftkv::storage::testing {

class FaultFs : public rocksdb::FileSystemWrapper {
 public:
  FaultFs()
      : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()),
        env_(rocksdb::NewCompositeEnv(
            std::shared_ptr<rocksdb::FileSystem>(this, [](auto*) {}))) {}

  const char* Name() const override { return "FaultFs"; }
  // The Env to put into EngineOptions::env; lives as long as this object.
  rocksdb::Env* env() const { return env_.get(); }
  void set_full(bool full) { full_.store(full); }

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    if (full_.load()) return Full(name);
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, &file, dbg);
    if (s.ok()) result->reset(new File(std::move(file), this, name));
    return s;
  }

 private:
  static rocksdb::IOStatus Full(const std::string& name) {
    return rocksdb::IOStatus::NoSpace(name, "No space left on device");
  }

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> file, FaultFs* fs,
         std::string name)
        : FSWritableFileOwnerWrapper(std::move(file)),
          fs_(fs),
          name_(std::move(name)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->full_.load()) return Full(name_);
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->full_.load()) return Full(name_);
      return target()->Append(data, options, info, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      if (fs_->full_.load()) return Full(name_);
      return target()->Sync(options, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* dbg) override {
      if (fs_->full_.load()) return Full(name_);
      return target()->Fsync(options, dbg);
    }

   private:
    FaultFs* fs_;
    std::string name_;
  };

  std::atomic<bool> full_{false};
  std::unique_ptr<rocksdb::Env> env_;
};

}  // namespace raftkv::storage::testing
