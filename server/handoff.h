// The hand-offs between raftkvd's stages (docs/server.md). Each stage owns
// its thread and its data; these plain values are all that crosses between
// them:
//
//   raft loop --PersistTask--> log writer --Persisted--> raft loop
//   raft loop --entries, ReadBatch--> applier --Applied, ReadsServed,
//                                    SnapshotPoint, LeasesListed--> raft loop
//   applier --published changes--> watch hub --WatchFrames--> raft loop
//
//   snapshot transfers --SnapshotSent, SnapshotStaged--> raft loop
//
// The log writer completes PersistTasks in the order they were submitted;
// the applier handles its work in order too. Every hand-off goes through a
// Mailbox (mailbox.h), never a lock the other side holds; results come back
// to the loop as ToLoop values in its own mailbox, so the loop's data is
// only ever touched by the loop's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "client/kv.pb.h"
#include "raft/raft.pb.h"
#include "storage/kv_state_machine.h"
#include "util/status.h"

namespace raftkv::storage {
class SnapshotSource;
}  // namespace raftkv::storage

namespace raftkv::server {

// The entries of one raft::Ready, never copied once made: the writer
// persists them, the loop's LogCache holds them once durable, and the
// writer frees them when the log is compacted past them.
using EntryBatch = std::shared_ptr<const std::vector<raft::Entry>>;

// Loop -> log writer: what one accepted raft::Ready asks to persist.
struct PersistTask {
  uint64_t seq = 0;  // 1, 2, 3, ... in submission order
  EntryBatch entries;
  std::optional<raft::HardState> hard_state;
  // A snapshot from the leader, staged in `staging_dir`, to install first.
  std::optional<raft::SnapshotMetadata> snapshot;
  std::string staging_dir;
  bool sync = false;
};

// Log writer -> loop: every task up to `through_seq` is durable, or the
// write failed (`status`) and nothing from `failed_seq` on ever will be.
struct Persisted {
  uint64_t through_seq = 0;
  Status status;
  size_t tasks = 0;      // tasks in this group commit
  bool wrote = false;    // false: the tasks only ordered messages
                         // (nothing to write, no fsync)
  int64_t write_us = 0;  // the write and fsync
  // After a snapshot install: the membership the snapshot brought.
  std::optional<kv::Membership> membership;
  // After a snapshot install: the auth state the snapshot brought, as of
  // log index `auth_index`.
  std::shared_ptr<const kv::AuthState> auth;
  uint64_t auth_index = 0;
};

// A linearizable or serializable read the applier serves once it has
// applied `read_index` (0: at once).
struct ReadRequest {
  uint64_t id = 0;  // the loop's handle for the client's request
  kv::RangeRequest request;
  // Not 0: instead of the range, the keys attached to this lease.
  int64_t lease_keys = 0;
  // Set by the loop when it has given up on the read (timed out): the
  // read pool skips it, or drops its result.
  std::shared_ptr<std::atomic<bool>> abandoned;
};

// Applier -> loop: committed entries applied, with the results of commands.
struct Applied {
  struct Result {
    uint64_t index = 0;
    uint64_t term = 0;
    kv::CommandResult result;
  };
  uint64_t index = 0;  // applied through
  int64_t revision = 0;
  std::vector<Result> results;  // for entries that carried a command
  // (index, term) of the membership changes applied, and the membership
  // after them (storage/membership.h); empty / unset when none.
  std::vector<std::pair<uint64_t, uint64_t>> conf_changes;
  std::optional<kv::Membership> membership;
  std::vector<storage::LeaseInfo> leases_granted;
  std::vector<int64_t> leases_revoked;
  int64_t compacted_revision = 0;
  // The auth state after the batch, when an auth command changed it.
  std::shared_ptr<const kv::AuthState> auth;
  int64_t apply_us = 0;  // the batch's write to the state machine
  Status status;         // a storage failure stops the applier
};

// Applier -> loop: answers to reads (ClientResponse without the header's
// member id and term, which the loop fills in).
struct ReadsServed {
  std::vector<std::pair<uint64_t, kv::ClientResponse>> responses;
};

// Applier -> loop: every lease, as of everything applied before the
// request (a new leader's Lessor, asked in `term`).
struct LeasesListed {
  uint64_t term = 0;
  std::vector<storage::LeaseInfo> leases;
  Status status;
};

// One frame of one watch, for the loop to send.
struct WatchFrame {
  uint64_t connection = 0;
  uint64_t watch_id = 0;
  // The first revision the frame carries events of (0: none); a watch
  // cancelled before this frame is sent resumes there.
  int64_t first_revision = 0;
  // Every event of the watch up to this revision is sent with this frame.
  int64_t through_revision = 0;
  bool canceled = false;  // the watch's last frame
  // The last frame of a history read: the hub reads on for this watch once
  // the loop acknowledges it (sent, and the connection drained).
  bool ack_requested = false;
  std::string bytes;  // a serialized kv::ClientResponse
};

// WatchHub -> loop: frames to send (watch_hub.h).
struct WatchFrames {
  std::vector<WatchFrame> frames;
};

// Applier -> loop: a consistent view of the state machine at its applied
// index, from which snapshots are streamed to followers.
struct SnapshotPoint {
  std::shared_ptr<const storage::SnapshotSource> source;
};

// Snapshot transfers -> loop: a snapshot sent to `peer` (or not).
struct SnapshotSent {
  uint64_t peer = 0;
  bool ok = false;
};

// Snapshot transfers -> loop: a snapshot received from the leader and staged
// in `dir`; `message` is the leader's MSG_SNAP, to be stepped.
struct SnapshotStaged {
  raft::Message message;
  std::string dir;
};

// Everything that comes back to the loop.
using ToLoop =
    std::variant<Persisted, Applied, ReadsServed, SnapshotPoint, SnapshotSent,
                 SnapshotStaged, LeasesListed, WatchFrames>;

}  // namespace raftkv::server
