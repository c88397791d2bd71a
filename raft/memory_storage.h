// MemoryStorage: a raft::Storage held entirely in memory, for tests and the
// simulator. Not thread-safe. Nothing survives the object; the simulator
// models a crash by keeping the MemoryStorage (what was "persisted") and
// rebuilding the node from it.
#pragma once

#include <cstdint>
#include <vector>

#include "raft/storage.h"

namespace raftkv::raft {

class MemoryStorage : public Storage {
 public:
  MemoryStorage();

  Status InitialState(HardState* hard_state,
                      ConfState* conf_state) const override;
  // The snapshot's index: its configuration is as of there, also when the
  // log was compacted only up to an earlier index (Compact() keeps entries
  // below the snapshot), whose changes it already holds.
  uint64_t ConfStateIndex() const override {
    return snapshot_.metadata().index();
  }
  Status Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                 std::vector<Entry>* out) const override;
  Status Term(uint64_t index, uint64_t* term) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  Status GetSnapshot(Snapshot* snapshot) const override;

  // Write side, used by whoever handles a Ready.
  void SetHardState(const HardState& hard_state);
  void SetConfState(const ConfState& conf_state);
  // Appends entries, first truncating any conflicting suffix. Entries must
  // be contiguous, and the first must not be past LastIndex() + 1. Entries
  // at or below the snapshot index are ignored.
  void Append(const std::vector<Entry>& entries);
  // Replaces the whole log by the snapshot. Ignored (returns false) when the
  // snapshot is older than the current one.
  bool ApplySnapshot(const Snapshot& snapshot);
  // Records a snapshot of the state machine at `index` (<= LastIndex()).
  Status CreateSnapshot(uint64_t index, const ConfState& conf_state,
                        std::string data);
  // Discards entries up to and including `compact_index`
  // (< FirstIndex() is a no-op; must be <= LastIndex()).
  Status Compact(uint64_t compact_index);

  const HardState& hard_state() const { return hard_state_; }

 private:
  uint64_t OffsetIndex() const { return entries_.front().index(); }

  HardState hard_state_;
  Snapshot snapshot_;
  // entries_[0] is a dummy holding the index and term of the last compacted
  // (or snapshotted) entry; real entries follow.
  std::vector<Entry> entries_;
};

}  // namespace raftkv::raft
