// Backup files (raftkvctl snapshot save, raftkvd --restore_from): a
// consistent image of one member's state machine, as the snapshot stream
// of storage/snapshot.h: the line "RAFTKV-BACKUP 1\n", then each encoded
// chunk (CRC32C and payload) preceded by its length (8 bytes, big-endian).
// Every chunk is checked as it is written and as it is read (checksums,
// numbering, key order, the trailer's record count and checksum: the same
// checks as a follower staging a snapshot), so a damaged or truncated file
// is refused with the reason.
//
// A file is written under FILE.part and renamed into place only once the
// trailer checked out and the data is durable.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace raftkv::storage {

class SnapshotHeader;
class SnapshotStager;

class BackupWriter {
 public:
  static StatusOr<std::unique_ptr<BackupWriter>> Create(
      const std::string& path);
  ~BackupWriter();  // an unfinished file is removed
  BackupWriter(const BackupWriter&) = delete;
  BackupWriter& operator=(const BackupWriter&) = delete;

  // Checks and appends the next encoded chunk.
  Status Add(std::string_view encoded_chunk);
  // After the trailer: fsyncs and renames the file into place.
  Status Finish();

  const SnapshotHeader* header() const;
  uint64_t records() const;
  // The trailer arrived and checked out: Finish() may follow.
  bool complete() const;
  uint64_t bytes() const { return bytes_; }

 private:
  BackupWriter(std::string path, std::FILE* file);

  const std::string path_;
  std::FILE* file_;
  std::unique_ptr<SnapshotStager> checker_;
  uint64_t bytes_ = 0;
  bool finished_ = false;
};

// Reads the backup at `path`, calling `each` with every encoded chunk in
// order after checking it; Corruption (naming the file) if it is damaged or
// ends early. *header (if not null) receives the image's header.
Status ReadBackup(const std::string& path,
                  const std::function<Status(std::string_view)>& each,
                  SnapshotHeader* header = nullptr);

}  // namespace raftkv::storage
