// Installing a snapshot received from the leader, and finishing an install
// that a crash interrupted. The new state comes from a complete staging
// directory (snapshot_stager.h); the switch is made crash-safe with a redo
// record:
//   1. one fsync'd WriteBatch resets the Raft log to the snapshot (entries
//      deleted, log start and snapshot metadata set, commit raised), clears
//      the state machine's column families and records "install_pending"
//      (storage.PendingInstall: the staging directory, index and term);
//   2. the staged SST files are ingested into their column families in one
//      atomic RocksDB ingestion (hard links; RocksDB removes the staged names
//      once it is durable);
//   3. the record is deleted and the state machine reloads its state.
// A crash after 1 leaves the record: RecoverSnapshotState() redoes 2 from
// the staging directory, unless the state machine's "applied" record
// (deleted by 1, brought back only by 2, at the snapshot's index and term)
// shows it happened, then 3.
//
// Must never: leave a node whose log and state machine come from different
// snapshots, or remove a staging directory an install still needs.
// Thread-safety: the caller must own both the RaftLog and the state machine
// while these run (the server pauses its applier).
#pragma once

#include <string>

#include "raft/raft.pb.h"
#include "util/status.h"

namespace raftkv::storage {

class KvStateMachine;
class RaftLog;

// Where a data dir's staging directories live, and the one for a snapshot;
// `transfer` tells apart transfers of the same snapshot that overlap.
std::string StagingRoot(const std::string& data_dir);
std::string StagingDir(const std::string& data_dir, uint64_t term,
                       uint64_t index, uint64_t transfer = 0);

// Installs the complete staging directory `staging_dir`, which must hold the
// image at meta.index()/meta.term(). A snapshot not newer than the log's is
// ignored (OK). Removes the staging directory when done.
Status InstallStagedSnapshot(const std::string& staging_dir,
                             const raft::SnapshotMetadata& meta, RaftLog* log,
                             KvStateMachine* state_machine);

// At start-up, before the node runs: finishes an interrupted install,
// removes abandoned staging directories, and checks that the log and the
// state machine fit together (Corruption if entries between them are gone).
Status RecoverSnapshotState(const std::string& data_dir, RaftLog* log,
                            KvStateMachine* state_machine);

}  // namespace raftkv::storage
