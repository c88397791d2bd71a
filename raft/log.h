// RaftLog: a node's log as the core sees it: the stable part in Storage plus
// the unstable tail (entries and possibly a snapshot) not yet persisted,
// together with the commit, applying and applied indexes.
//
// Hand-off tracking, for applications that persist and apply on other
// threads (etcd's log_unstable.go "offsetInProgress"): unstable entries up to
// in_progress() and the unstable snapshot once accepted have been handed out
// for writing and are not handed out again; committed entries up to
// applying() have been handed out for applying. Committed entries are handed
// out only once they are stable (durable locally), so a state machine never
// gets ahead of its own log, and only while fewer than
// max_committed_size_per_ready bytes of them are being applied (etcd's
// maxApplyingEntsSize): a slow state machine holds back the hand-off, so the
// entries waiting for it stay in the log instead of piling up in memory.
//
// Invariants: applied <= applying <= committed <= LastIndex(); the unstable
// entries, if any, start right after the last stable (or snapshot) index
// they replace; in_progress() >= unstable offset - 1.
// Not thread-safe; owned by Raft. Never writes to Storage.
#pragma once

#include <cstdint>
#include <deque>
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
  uint64_t applying() const { return applying_; }
  uint64_t in_progress() const { return in_progress_; }
  // The last index durable in Storage that still belongs to this log.
  uint64_t PersistedLastIndex() const;

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
  // The state machine applied up to `index` (ignored if not newer).
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
  // Unstable entries not yet handed out for writing.
  bool HasEntriesToPersist() const;
  std::vector<Entry> EntriesToPersist() const;
  // The unstable snapshot, if not yet handed out.
  bool HasSnapshotToPersist() const;
  // Stable committed entries not yet handed out for applying, if the bytes
  // being applied leave room for them.
  bool HasNextCommittedEntries() const;
  std::vector<Entry> NextCommittedEntries() const;
  // Hand-offs: entries up to `index`, the snapshot, committed entries up to
  // `index` are now the application's.
  void AcceptEntriesTo(uint64_t index);
  void AcceptSnapshot();
  void AcceptApplying(const std::vector<Entry>& entries);
  // Entries up to (index, term) are now persisted.
  void StableTo(uint64_t index, uint64_t term);
  // The snapshot at `index` is persisted and installed in the state machine.
  void StableSnapshotTo(uint64_t index);

  // Replaces the log by a snapshot received from the leader.
  void Restore(const Snapshot& snapshot);
  Status GetSnapshot(Snapshot* snapshot) const;

  std::string Describe() const;

 private:
  // Index of the first unstable entry (valid even when none are stored).
  uint64_t UnstableOffset() const { return unstable_offset_; }
  void TruncateAndAppendUnstable(const std::vector<Entry>& entries);

  // Highest committed index that may be handed out for applying.
  uint64_t MaxAppliableIndex() const;
  // Forgets the batches handed out for applying up to `index`.
  void ReleaseApplyingTo(uint64_t index);

  const Storage* storage_;
  uint64_t max_committed_size_per_ready_;
  std::vector<Entry> unstable_;  // indexes unstable_offset_, +1, ...
  uint64_t unstable_offset_ = 0;
  uint64_t in_progress_ = 0;  // unstable entries handed out up to here
  std::optional<Snapshot> unstable_snapshot_;
  bool snapshot_in_progress_ = false;
  uint64_t committed_ = 0;
  uint64_t applying_ = 0;
  uint64_t applied_ = 0;
  // Batches handed out for applying and not yet applied: (last index,
  // bytes), oldest first, and their total.
  std::deque<std::pair<uint64_t, uint64_t>> applying_batches_;
  uint64_t applying_bytes_ = 0;
};

}  // namespace raftkv::raft
