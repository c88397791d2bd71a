// RaftLog: the Raft log, hard state and latest snapshot of one node, kept
// in the Engine's RocksDB ("raft_log" and "raft_meta" column families). It
// is the raft::Storage the core reads, and the write side the node uses
// when handling a Ready. Its semantics are those of raft::MemoryStorage
// (raft/memory_storage.h), method for method, except that every write is a
// single atomic RocksDB WriteBatch and returns a Status.
//
// On-disk layout:
//   raft_log   key = index (8 bytes big-endian) -> raft::Entry
//   raft_meta  "hard_state"    -> raft::HardState
//              "log_start"     -> raft::Entry with only index and term: the
//                                 entry just before FirstIndex() (compacted
//                                 or covered by the snapshot)
//              "snapshot_meta" -> raft::SnapshotMetadata (incl. ConfState)
//              "snapshot_data" -> the snapshot's opaque data (empty for the
//                                 server's snapshots: the image is streamed
//                                 from the state machine, storage/snapshot.h)
//              "install_pending" -> see storage/snapshot_install.h
//
// Durability: a write with sync=true is on stable storage when it returns
// (one fsync covers the whole batch: every entry of a Ready, whatever the
// number of proposals it gathered, plus the hard state). The node must not
// acknowledge entries or send a vote before Save() has returned OK.
//
// Must never: expose entries it has not written, lose an entry it returned
// OK for (up to a later truncation or compaction), or continue after a
// failed write (the Engine refuses every later write). First and last index
// are cached in memory, so FirstIndex()/LastIndex() never touch the disk.
// A record that fails to parse gives Corruption naming the path and index.
//
// Thread-safety: not thread-safe (one thread, like the Engine).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "raft/ready.h"
#include "raft/storage.h"
#include "storage/engine.h"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace raftkv::storage {

class KvStateMachine;

class RaftLog : public raft::Storage {
 public:
  // Loads the cached state and checks that the stored log is contiguous and
  // covers the committed index (Corruption otherwise). `engine` must
  // outlive the RaftLog.
  static StatusOr<std::unique_ptr<RaftLog>> Open(Engine* engine);
  ~RaftLog() override;

  // raft::Storage.
  Status InitialState(raft::HardState* hard_state,
                      raft::ConfState* conf_state) const override;
  Status Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                 std::vector<raft::Entry>* out) const override;
  Status Term(uint64_t index, uint64_t* term) const override;
  uint64_t FirstIndex() const override;
  uint64_t LastIndex() const override;
  Status GetSnapshot(raft::Snapshot* snapshot) const override;

  // Handling a Ready: installs `snapshot` (if newer than the current one),
  // appends `entries` (truncating a conflicting suffix) and saves
  // `hard_state`, in ONE WriteBatch, fsync'd when `sync`. Null pointers and
  // an empty vector mean "nothing of that kind"; nothing at all is a no-op.
  // A snapshot install here replaces only the log: the server installs the
  // state machine with it through storage/snapshot_install.h.
  Status Save(const raft::HardState* hard_state, const raft::Snapshot* snapshot,
              const std::vector<raft::Entry>& entries, bool sync);
  Status Save(const raft::HardState* hard_state,
              const std::vector<raft::Entry>& entries, bool sync) {
    return Save(hard_state, nullptr, entries, sync);
  }
  // Save() of a Ready's hard state, snapshot and entries; fsync'd when
  // ready.must_sync or a snapshot is installed.
  Status Save(const raft::Ready& ready);
  // Several Readys' writes (no snapshots) in ONE WriteBatch, in order, each
  // as Save() would do it: the server's group commit.
  struct Write {
    const raft::HardState* hard_state = nullptr;
    const std::vector<raft::Entry>* entries = nullptr;
  };
  Status SaveAll(const std::vector<Write>& writes, bool sync);

  // MemoryStorage's write side; each call is one fsync'd WriteBatch.
  Status SetHardState(const raft::HardState& hard_state);
  Status SetConfState(const raft::ConfState& conf_state);
  // Entries must be contiguous, the first not past LastIndex() + 1; those
  // at or below FirstIndex() - 1 are ignored (a gap is a CHECK failure).
  Status Append(const std::vector<raft::Entry>& entries);
  // Replaces the whole log by the snapshot. A snapshot not newer than the
  // current one is ignored (*applied = false, OK).
  Status ApplySnapshot(const raft::Snapshot& snapshot, bool* applied = nullptr);
  // Records a snapshot of the state machine at `index` (<= LastIndex()).
  // FailedPrecondition if not newer than the current snapshot.
  Status CreateSnapshot(uint64_t index, const raft::ConfState& conf_state,
                        std::string data);
  // Discards entries up to and including `compact_index` (no-op below
  // FirstIndex(); InvalidArgument above LastIndex()), with a range delete.
  Status Compact(uint64_t compact_index);

  // The id of the cluster this data belongs to (server/cluster_identity.h),
  // recorded once when the node first starts on this data dir; 0 until
  // then. Kept through snapshot installs and compactions.
  uint64_t cluster_id() const;
  // Records it (synced). FailedPrecondition if another is recorded.
  Status SetClusterId(uint64_t cluster_id);

  const raft::HardState& hard_state() const;
  // Index and term of the latest snapshot (0 if none).
  uint64_t snapshot_index() const;
  uint64_t snapshot_term() const;
  const std::string& dir() const;

  const Engine* engine() const { return engine_; }

 private:
  friend Status InstallStagedSnapshot(const std::string& staging_dir,
                                      const raft::SnapshotMetadata& meta,
                                      RaftLog* log,
                                      KvStateMachine* state_machine);
  struct State;  // the cached metadata (raft_log.cc)

  RaftLog(Engine* engine, std::unique_ptr<State> state);

  // Each Stage*() adds its records to `batch` and its effect to `next`.
  bool StageSnapshot(const raft::Snapshot& snapshot, rocksdb::WriteBatch* batch,
                     State* next) const;
  void StageEntries(const std::vector<raft::Entry>& entries,
                    rocksdb::WriteBatch* batch, State* next) const;
  // Writes `batch`; adopts `next` only if the write succeeded.
  Status Commit(rocksdb::WriteBatch* batch, const State& next, bool sync,
                const char* what);
  // For InstallStagedSnapshot(): stage a snapshot install into a batch
  // shared with the state machine (false: not newer than the current
  // snapshot), then AdoptStaged() once that batch is written.
  bool StageSnapshotInstall(const raft::Snapshot& snapshot,
                            rocksdb::WriteBatch* batch);
  void AdoptStaged();
  void DiscardStaged();
  Status ReadEntry(uint64_t index, raft::Entry* entry) const;

  Engine* engine_;
  std::unique_ptr<State> state_;
  std::unique_ptr<State> staged_;
};

}  // namespace raftkv::storage
