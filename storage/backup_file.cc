// Backup files: a checked snapshot stream in one file (see backup_file.h).
#include "storage/backup_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "storage/coding.h"
#include "storage/files.h"
#include "storage/snapshot_stager.h"
#include "storage/storage.pb.h"

namespace raftkv::storage {
namespace {

constexpr char kMagic[] = "RAFTKV-BACKUP 1\n";
constexpr size_t kMagicSize = sizeof(kMagic) - 1;
// A chunk is about 1 MB (one record over it at most: values are limited).
constexpr uint64_t kMaxChunkBytes = 256 << 20;

Status FileError(const std::string& path, const std::string& what) {
  return Status::IOError(path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

StatusOr<std::unique_ptr<BackupWriter>> BackupWriter::Create(
    const std::string& path) {
  if (::access(path.c_str(), F_OK) == 0) {
    return Status::InvalidArgument(path + " exists: not overwriting it");
  }
  std::FILE* file = std::fopen((path + ".part").c_str(), "wb");
  if (file == nullptr) return FileError(path + ".part", "create");
  std::unique_ptr<BackupWriter> writer(new BackupWriter(path, file));
  if (std::fwrite(kMagic, 1, kMagicSize, file) != kMagicSize) {
    return FileError(path + ".part", "write");
  }
  return writer;
}

BackupWriter::BackupWriter(std::string path, std::FILE* file)
    : path_(std::move(path)),
      file_(file),
      checker_(SnapshotStager::CreateChecker("backup " + path_)) {}

BackupWriter::~BackupWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!finished_) ::unlink((path_ + ".part").c_str());
}

const SnapshotHeader* BackupWriter::header() const {
  return checker_->header();
}

uint64_t BackupWriter::records() const { return checker_->records(); }

bool BackupWriter::complete() const { return checker_->complete(); }

Status BackupWriter::Add(std::string_view encoded_chunk) {
  RAFTKV_RETURN_IF_ERROR(checker_->Add(encoded_chunk));
  std::string length;
  PutBigEndian64(&length, encoded_chunk.size());
  if (std::fwrite(length.data(), 1, length.size(), file_) != length.size() ||
      std::fwrite(encoded_chunk.data(), 1, encoded_chunk.size(), file_) !=
          encoded_chunk.size()) {
    return FileError(path_ + ".part", "write");
  }
  bytes_ += length.size() + encoded_chunk.size();
  return Status::OK();
}

Status BackupWriter::Finish() {
  if (!checker_->complete()) {
    return Status::Corruption("backup " + path_ +
                              ": the stream ended before its trailer");
  }
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    return FileError(path_ + ".part", "sync");
  }
  std::fclose(file_);
  file_ = nullptr;
  if (std::rename((path_ + ".part").c_str(), path_.c_str()) != 0) {
    return FileError(path_, "rename");
  }
  finished_ = true;
  const size_t slash = path_.rfind('/');
  return SyncPath(slash == std::string::npos ? "." : path_.substr(0, slash));
}

Status ReadBackup(const std::string& path,
                  const std::function<Status(std::string_view)>& each,
                  SnapshotHeader* header) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(
      std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) return FileError(path, "open");
  char magic[kMagicSize];
  if (std::fread(magic, 1, kMagicSize, file.get()) != kMagicSize ||
      std::memcmp(magic, kMagic, kMagicSize) != 0) {
    return Status::Corruption(path + " is not a raftkv backup");
  }
  auto checker = SnapshotStager::CreateChecker("backup " + path);
  std::string chunk;
  while (!checker->complete()) {
    char length[8];
    if (std::fread(length, 1, sizeof(length), file.get()) != sizeof(length)) {
      return Status::Corruption(path + ": ends before the snapshot's trailer");
    }
    const uint64_t n = GetBigEndian64(length);
    if (n > kMaxChunkBytes) {
      return Status::Corruption(path + ": a chunk of " + std::to_string(n) +
                                " bytes (damaged length)");
    }
    chunk.resize(n);
    if (std::fread(chunk.data(), 1, n, file.get()) != n) {
      return Status::Corruption(path + ": ends inside a chunk");
    }
    RAFTKV_RETURN_IF_ERROR(checker->Add(chunk));
    RAFTKV_RETURN_IF_ERROR(each(chunk));
  }
  if (std::fgetc(file.get()) != EOF) {
    return Status::Corruption(path + ": bytes after the snapshot's trailer");
  }
  if (header != nullptr) *header = *checker->header();
  return Status::OK();
}

}  // namespace raftkv::storage
