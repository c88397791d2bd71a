// raft::Storage: the read side of a node's stable storage, as the core sees
// it. The application writes (appends entries, saves hard state, installs
// snapshots) through its concrete class when handling a Ready; the core only
// reads. Implementations: MemoryStorage (tests, simulation) and the RocksDB
// log in storage/.
//
// Log indexes are 1-based. The log holds entries (FirstIndex() - 1,
// LastIndex()]; the entry at FirstIndex() - 1 is covered by the latest
// snapshot (or is the zero "dummy" entry of an empty log), and its term is
// still available from Term().
#pragma once

#include <cstdint>
#include <vector>

#include "raft/raft.pb.h"
#include "util/status.h"

namespace raftkv::raft {

class Storage {
 public:
  virtual ~Storage() = default;

  // The persisted hard state and membership.
  virtual Status InitialState(HardState* hard_state,
                              ConfState* conf_state) const = 0;

  // The log index the membership InitialState() returns is as of (the
  // configuration after every change up to it; changes after it are read
  // from the log): the snapshot's index, unless the application keeps its
  // membership elsewhere (raftkvd: in the state machine, as of the applied
  // index). Between FirstIndex() - 1 and LastIndex().
  virtual uint64_t ConfStateIndex() const { return FirstIndex() - 1; }
  // Appends to *out the entries with indexes in [lo, hi), stopping once their
  // total ByteSizeLong() would exceed max_bytes (at least one entry is
  // returned when lo < hi). Compacted if lo < FirstIndex(); hi must be at
  // most LastIndex() + 1.
  virtual Status Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                         std::vector<Entry>* out) const = 0;

  // Term of the entry at `index`, for index in [FirstIndex() - 1,
  // LastIndex()]. Compacted below that range, Unavailable above it.
  virtual Status Term(uint64_t index, uint64_t* term) const = 0;

  virtual uint64_t FirstIndex() const = 0;
  virtual uint64_t LastIndex() const = 0;

  // The most recent snapshot. Unavailable if it is being produced; the core
  // retries later.
  virtual Status GetSnapshot(Snapshot* snapshot) const = 0;
};

}  // namespace raftkv::raft
