// SnapshotStager: the receiving side of a streamed snapshot (format in
// snapshot.h). Checks each chunk as it arrives (checksum, numbering, family
// and key order, the trailer's count and checksum) and writes the records
// into SST files in a staging directory, one file per column family, so the
// install (snapshot_install.h) can switch to them atomically. Memory stays
// at one chunk plus the SST writers' block buffers, whatever the data size.
//
// Staging directory: "sessions.sst" and "kv.sst" (absent when the family is
// empty), "meta.sst" (the "applied" record) and "STAGED" (the serialized
// SnapshotHeader, written last, once everything else is durable: its
// presence means the directory is complete).
//
// Must never: accept a chunk out of order, a damaged chunk, records out of
// key order, or a record the state machine could not load or read back
// (checked one record at a time, as in KvStateMachine: the header's
// "applied" record, session records, kv values), since the install
// (snapshot_install.h) clears the old state before it loads the new one;
// mark a directory complete before its files are fsynced.
// Thread-safety: one thread uses a stager. It touches only its directory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "util/status.h"

namespace raftkv::storage {

class SnapshotHeader;

class SnapshotStager {
 public:
  // Starts staging into `dir` (removed first if it exists), which is
  // created with its missing parents durably: an install's redo record
  // names it. `what` names the transfer in error messages.
  static StatusOr<std::unique_ptr<SnapshotStager>> Create(
      const std::string& dir, const std::string& what);
  // A stager that writes nothing: it checks a stream exactly as staging
  // would (a backup file, raftkvctl snapshot save), without Finish().
  static std::unique_ptr<SnapshotStager> CreateChecker(const std::string& what);
  // The stream's header, once chunk 0 arrived (null before).
  const SnapshotHeader* header() const { return header_.get(); }
  ~SnapshotStager();
  SnapshotStager(const SnapshotStager&) = delete;
  SnapshotStager& operator=(const SnapshotStager&) = delete;

  // Adds the next encoded chunk. Corruption if it is damaged or out of
  // order, InvalidArgument if the stream is not a snapshot this build reads.
  Status Add(std::string_view encoded_chunk);
  // The header has arrived: index and term are known.
  bool has_header() const;
  uint64_t index() const;
  uint64_t term() const;
  // The trailer arrived and matched.
  bool complete() const { return complete_; }
  // After the trailer: finishes and fsyncs the files and the directory,
  // then writes STAGED. The directory can then be installed.
  Status Finish();
  const std::string& dir() const { return dir_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t records() const { return records_; }

 private:
  struct Writers;
  SnapshotStager(std::string dir, std::string what);
  Status AddRecords(const class SnapshotChunk& chunk);
  Status CheckRecord(int family, const std::string& key,
                     const std::string& value);

  const std::string dir_;
  const std::string what_;
  std::unique_ptr<Writers> writers_;
  std::unique_ptr<SnapshotHeader> header_;
  uint64_t next_sequence_ = 0;
  int last_family_ = 0;
  std::string last_key_;
  // The client id of the last session header (kv_sessions), if any: a
  // remembered result must follow its own client's header.
  bool session_header_seen_ = false;
  uint64_t session_client_ = 0;
  uint64_t records_ = 0;
  uint32_t records_crc_ = 0;
  uint64_t bytes_ = 0;
  bool complete_ = false;
};

// Reads the STAGED file of a complete staging directory into *header.
// NotFound if the directory is not complete.
Status ReadStagedHeader(const std::string& dir, SnapshotHeader* header);

}  // namespace raftkv::storage
