// RaftLog: a node's log as the core sees it: the stable part in Storage plus
// the unstable tail (entries and possibly a snapshot) not yet persisted,
// together with the commit and applied indexes.
//
// Invariants: applied <= committed <= LastIndex(); the unstable entries, if
// any, start right after the last stable (or snapshot) index they replace.
// Not thread-safe; owned by Raft. Never writes to Storage.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "raft/raft.pb.h"
#include "raft/storage.h"

namespace raftkv::raft {

class RaftLog {
 public:
  RaftLog(const Storage* storage, uint64_t max_committed_size_per_ready);

  uint64_t FirstIndex() const;
  uint64_t LastIndex() const;
  uint64_t LastTerm() const;
  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }

  // Term of entry `index`; 0 when the index is outside the log (compacted or
  // beyond the last entry). Use only where 0 is a safe "no match".
  uint64_t TermOrZero(uint64_t index) const;
  Status Term(uint64_t index, uint64_t* term) const;
  bool MatchTerm(uint64_t index, uint64_t term) const;
  // Raft paper §5.4.1: is a log ending at (last_index, last_term) at least
  // as up-to-date as ours?
  bool IsUpToDate(uint64_t last_index, uint64_t last_term) const;

  // Follower side of AppendEntries: if our entry at `index` has `log_term`,
  // appends `entries` (truncating any conflicting suffix), advances commit
  // to min(committed, last new index) and returns the last new index.
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term,
                                      uint64_t committed,
                                      const std::vector<Entry>& entries);
  // Appends entries after truncating at entries[0].index(); returns the new
  // last index. Never truncates committed entries (CHECK).
  uint64_t Append(const std::vector<Entry>& entries);
  // The first index among `entries` whose term differs from ours (or that
  // is new), or 0 if all are already present.
  uint64_t FindConflict(const std::vector<Entry>& entries) const;
  // The largest index <= `index` whose term is <= `term`, with its term
  // (fast log back-off, dissertation §5.3 optimization).
  std::pair<uint64_t, uint64_t> FindConflictByTerm(uint64_t index,
                                                   uint64_t term) const;

  // Leader: commits `index` if it is newer and from `term` (Figure 8).
  bool MaybeCommit(uint64_t index, uint64_t term);
  void CommitTo(uint64_t index);
  void AppliedTo(uint64_t index);

  // Entries in [lo, hi) limited to max_bytes (at least one).
  Status Slice(uint64_t lo, uint64_t hi, uint64_t max_bytes,
               std::vector<Entry>* out) const;
  Status EntriesFrom(uint64_t lo, uint64_t max_bytes,
                     std::vector<Entry>* out) const;

  // Ready support.
  const std::vector<Entry>& UnstableEntries() const { return unstable_; }
  const std::optional<Snapshot>& UnstableSnapshot() const {
    return unstable_snapshot_;
  }
  bool HasNextCommittedEntries() const;
  std::vector<Entry> NextCommittedEntries() const;
  // Entries up to (index, term) are now persisted.
  void StableTo(uint64_t index, uint64_t term);
  void StableSnapshotTo(uint64_t index);

  // Replaces the log by a snapshot received from the leader.
  void Restore(const Snapshot& snapshot);
  Status GetSnapshot(Snapshot* snapshot) const;

  std::string Describe() const;

 private:
  // Index of the first unstable entry (valid even when none are stored).
  uint64_t UnstableOffset() const { return unstable_offset_; }
  void TruncateAndAppendUnstable(const std::vector<Entry>& entries);

  const Storage* storage_;
  uint64_t max_committed_size_per_ready_;
  std::vector<Entry> unstable_;  // indexes unstable_offset_, +1, ...
  uint64_t unstable_offset_ = 0;
  std::optional<Snapshot> unstable_snapshot_;
  uint64_t committed_ = 0;
  uint64_t applied_ = 0;
};

}  // namespace raftkv::raft
