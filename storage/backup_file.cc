// Backup files: a checked snapshot stream in one file (see backup_file.h).
#include "storage/backup_file.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
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

// A backup saved through etcd's API (etcdctl snapshot save) ends as etcd's
// snapshots do: zeros up to a multiple of 512 bytes, then the SHA-256 of
// everything before it. Anything else after the trailer is damage.
static Status CheckEtcdFraming(const std::string& path, std::FILE* file) {
  const Status damaged =
      Status::Corruption(path + ": bytes after the snapshot's trailer");
  const long end_of_backup = std::ftell(file) - 1;
  if (std::fseek(file, 0, SEEK_END) != 0) return damaged;
  const long size = std::ftell(file);
  if (size % 512 != SHA256_DIGEST_LENGTH) return damaged;
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> sha(EVP_MD_CTX_new(),
                                                         &EVP_MD_CTX_free);
  EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
  std::fseek(file, 0, SEEK_SET);
  std::string buffer(1 << 16, '\0');
  long left = size - SHA256_DIGEST_LENGTH;
  long at = 0;
  while (left > 0) {
    const size_t n =
        std::fread(buffer.data(), 1, std::min<long>(left, buffer.size()), file);
    if (n == 0) return damaged;
    for (size_t i = 0; i < n; ++i) {
      if (at + static_cast<long>(i) >= end_of_backup && buffer[i] != 0) {
        return damaged;  // the padding is zeros
      }
    }
    EVP_DigestUpdate(sha.get(), buffer.data(), n);
    left -= static_cast<long>(n);
    at += static_cast<long>(n);
  }
  unsigned char want[SHA256_DIGEST_LENGTH], have[SHA256_DIGEST_LENGTH];
  EVP_DigestFinal_ex(sha.get(), want, nullptr);
  if (std::fread(have, 1, sizeof(have), file) != sizeof(have) ||
      std::memcmp(want, have, sizeof(want)) != 0) {
    return Status::Corruption(path +
                              ": its SHA-256 (etcd's snapshot "
                              "framing) does not match its content");
  }
  return Status::OK();
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
    RAFTKV_RETURN_IF_ERROR(CheckEtcdFraming(path, file.get()));
  }
  if (header != nullptr) *header = *checker->header();
  return Status::OK();
}

}  // namespace raftkv::storage
