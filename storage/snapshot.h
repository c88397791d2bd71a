// Streamed snapshots of the key-value state machine, leader side: a
// consistent view of the state machine at one applied index, read chunk by
// chunk, and the chunk format shared with the receiving side
// (snapshot_stager.h) and the installer (snapshot_install.h).
//
// Chunk format: a chunk is CRC32C(payload) as 4 bytes little-endian followed
// by the payload, a serialized storage.SnapshotChunk (storage.proto): chunk 0
// carries the header (format version, index, term, the "applied", "auth" and
// "membership" records),
// then come the records (every "kv_sessions", "kv", "kv_history" and
// "kv_leases" record, family by family, each in key order), and the last chunk
// carries the trailer (record count and a CRC32C over all records). Chunks are
// numbered 0, 1, 2, ...
//
// A SnapshotSource holds a RocksDB snapshot, so the image is exactly the
// state at its index however long the transfer takes and whatever the
// applier writes meanwhile; it never copies the data set into memory (one
// chunk at a time). Thread-safety: Create() must run where the state machine
// is not being written (the applier's thread, between batches); afterwards
// a source is immutable and may be streamed from any thread, several times.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "raft/raft.pb.h"
#include "util/status.h"

namespace raftkv::storage {

class KvStateMachine;
class SnapshotChunk;

// Target size of one chunk's records (a record larger than this travels
// alone in its chunk).
inline constexpr size_t kSnapshotChunkBytes = 1 << 20;

// Wraps a chunk: CRC32C then the serialized payload.
std::string EncodeSnapshotChunk(const SnapshotChunk& chunk);
// Checks the checksum and parses `data` into *chunk. Corruption naming
// `what` if the bytes are damaged.
Status DecodeSnapshotChunk(std::string_view data, const std::string& what,
                           SnapshotChunk* chunk);

class SnapshotSource {
 public:
  // A view of `state_machine` at its applied index. `state_machine` (and its
  // Engine) must outlive the source.
  static StatusOr<std::shared_ptr<const SnapshotSource>> Create(
      const KvStateMachine& state_machine);
  ~SnapshotSource();
  SnapshotSource(const SnapshotSource&) = delete;
  SnapshotSource& operator=(const SnapshotSource&) = delete;

  uint64_t index() const { return index_; }
  uint64_t term() const { return term_; }
  // The membership as of index() (empty if the state machine records none).
  const raft::ConfState& conf_state() const { return conf_state_; }

  // Streams the image: calls `emit` with each encoded chunk in order, at
  // most about `chunk_bytes` of records each. Stops at the first error
  // (from reading, or returned by `emit`).
  Status Stream(size_t chunk_bytes,
                const std::function<Status(std::string_view)>& emit) const;

 private:
  struct Rep;
  SnapshotSource(std::unique_ptr<Rep> rep, uint64_t index, uint64_t term);

  std::unique_ptr<Rep> rep_;
  uint64_t index_;
  uint64_t term_;
  raft::ConfState conf_state_;
};

}  // namespace raftkv::storage
