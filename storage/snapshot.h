// Snapshots of the key-value state machine: the image format carried in
// raft::Snapshot.data, and installing a snapshot on a node atomically.
//
// Image format (all integers little-endian):
//   bytes 0..7    magic "RKVIMG01"
//   bytes 8..11   CRC32C of the payload
//   bytes 12..    payload: a serialized storage.SnapshotImage (format
//                 version, applied index/term, revision, log time, then
//                 every record of the "kv" and "kv_sessions" column
//                 families in key order), read from one RocksDB snapshot,
//                 so it is exactly the state at its applied index.
// The image is deterministic: replicas at the same applied index produce
// the same bytes. It is held in memory whole (raft::Snapshot carries it).
//
// Must never: install an image whose checksum, format version or index
// does not match, or leave a node with its log and state machine from
// different snapshots.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "raft/raft.pb.h"
#include "util/status.h"

namespace raftkv::storage {

class KvStateMachine;
class RaftLog;

// Wraps a serialized SnapshotImage with the magic and checksum.
std::string SealSnapshotImage(std::string_view payload);
// Checks the magic and checksum of `data` and returns the payload in
// *payload (a view into `data`). Corruption naming `what` otherwise.
Status UnsealSnapshotImage(std::string_view data, const std::string& what,
                           std::string_view* payload);

// Installs a snapshot received from the leader: replaces the Raft log (as
// RaftLog::ApplySnapshot) and the state machine (as
// KvStateMachine::RestoreSnapshot) in ONE fsync'd WriteBatch. A snapshot
// not newer than the log's current one is ignored. Both objects must share
// one Engine.
Status InstallSnapshot(const raft::Snapshot& snapshot, RaftLog* log,
                       KvStateMachine* state_machine);

// At start-up, before creating the Raft node: brings the state machine and
// the log into agreement after a crash between two separate writes.
//   - The log's snapshot is newer than the applied index: the state machine
//     is restored from it.
//   - The applied index is beyond the log's stored commit index (the state
//     machine was restored, the log not yet): the state machine's own image
//     (committed data) becomes the log's snapshot.
Status Reconcile(RaftLog* log, KvStateMachine* state_machine);

}  // namespace raftkv::storage
