// LogCache: the raft::Storage the core reads in raftkvd: the durable log
// mirrored in memory, so the raft loop never waits on the disk to send
// entries or hand out committed ones. It is filled from the RocksDB log at
// start-up and then updated by the loop, in Ready order, each time the log
// writer reports a write durable; compaction keeps it within a byte budget.
// It holds the very batches of entries the loop handed to the writer
// (shared, never copied), and gives back those a compaction no longer
// needs, so that the loop can have them freed on another thread: dropping
// tens of thousands of entries at once cost the loop 10-25 ms.
//
// Snapshots: the core asks GetSnapshot() when a follower needs one. The
// answer is the metadata of the latest snapshot point (a SnapshotSource the
// applier made: a consistent RocksDB view at an applied index) if it covers
// what the log no longer holds; otherwise the cache asks for a new point
// (the `want_snapshot` callback) and answers Unavailable, and the core asks
// again later. The image itself is streamed by the server
// (snapshot_transfer.h), never carried in the message.
//
// Must never: expose entries that are not durable, or block. Thread-safety:
// the loop's thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "raft/storage.h"
#include "server/handoff.h"

namespace raftkv::storage {
class RaftLog;
class SnapshotSource;
}  // namespace raftkv::storage

namespace raftkv::server {

class LogCache : public raft::Storage {
 public:
  // Copies the durable log of `log` (hard state, log start, entries).
  // `conf_state` is the membership as of log index `conf_index` (the state
  // machine's, as of its applied index), what the core starts from; the
  // snapshots record the membership of their own point.
  static StatusOr<std::unique_ptr<LogCache>> Load(
      const storage::RaftLog& log, raft::ConfState conf_state,
      uint64_t conf_index, std::function<void()> want_snapshot);

  // raft::Storage.
  Status InitialState(raft::HardState* hard_state,
                      raft::ConfState* conf_state) const override;
  uint64_t ConfStateIndex() const override;
  Status Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                 std::vector<raft::Entry>* out) const override;
  Status Term(uint64_t index, uint64_t* term) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  Status GetSnapshot(raft::Snapshot* snapshot) const override;

  // Mirrors of durable writes, in order. Entries at or below the start
  // are skipped; one that conflicts with a held entry replaces it and
  // everything after it.
  void Append(EntryBatch entries);
  void SetHardState(const raft::HardState& hard_state);
  // An installed snapshot replaces the whole log; returns the batches let
  // go.
  std::vector<EntryBatch> ResetToSnapshot(const raft::SnapshotMetadata& meta);
  // Drops entries up to and including `index` (no-op below the start) and
  // returns the batches no entry held refers to any more.
  std::vector<EntryBatch> Compact(uint64_t index);
  // Where to compact so that at most `keep_entries` entries and
  // `keep_bytes` bytes remain at or below `upto` (entries above it stay).
  uint64_t CompactionPoint(uint64_t upto, uint64_t keep_entries,
                           uint64_t keep_bytes) const;

  // The latest snapshot point (may be null).
  void set_snapshot_point(std::shared_ptr<const storage::SnapshotSource> p);
  const std::shared_ptr<const storage::SnapshotSource>& snapshot_point() const {
    return point_;
  }

  // Bytes of entries held (their serialized size).
  uint64_t bytes() const;
  // Bytes of the entries held above `index` (all of them below the start).
  uint64_t BytesAfter(uint64_t index) const;
  size_t size() const { return entries_.size(); }

 private:
  LogCache(raft::ConfState conf_state, std::function<void()> want_snapshot);
  void TruncateAfter(uint64_t index);
  const raft::Entry& At(uint64_t index) const {
    return *entries_[index - start_index_ - 1];
  }
  // The running byte offset where entry `index` ends (start_index_ <=
  // index <= LastIndex()); a range's size is a subtraction of two.
  uint64_t EndOf(uint64_t index) const {
    return index == start_index_ ? start_offset_
                                 : ends_[index - start_index_ - 1];
  }

  // A batch and the range of its entries the cache refers to.
  struct HeldBatch {
    EntryBatch batch;
    uint64_t first = 0;
    uint64_t last = 0;
  };

  raft::ConfState conf_state_;  // as of conf_index_ (start-up only)
  uint64_t conf_index_ = 0;
  std::function<void()> want_snapshot_;
  raft::HardState hard_state_;
  uint64_t start_index_ = 0;  // the entry before FirstIndex()
  uint64_t start_term_ = 0;
  std::deque<const raft::Entry*> entries_;  // start_index_ + 1, ...
  std::deque<HeldBatch> batches_;           // in index order
  // Running byte offsets: ends_[i] is where entries_[i] ends, counting from
  // an origin before the first entry ever held; start_offset_ is where
  // entries_[0] begins. Any range's size is a subtraction.
  std::deque<uint64_t> ends_;
  uint64_t start_offset_ = 0;
  std::shared_ptr<const storage::SnapshotSource> point_;
};

}  // namespace raftkv::server
