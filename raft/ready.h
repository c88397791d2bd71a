// Ready: one batch of work the core hands to the application, and the small
// value types that travel with it. See RawNode for the handling contract.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "raft/raft.pb.h"

namespace raftkv::raft {

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role role);

// Volatile state worth reporting (logs, status); never persisted.
struct SoftState {
  uint64_t lead = 0;
  Role role = Role::kFollower;
  bool operator==(const SoftState& o) const {
    return lead == o.lead && role == o.role;
  }
};

// A ReadIndex request (identified by its request_ctx) is safe to serve once
// the state machine has applied `index`.
struct ReadState {
  uint64_t index = 0;
  std::string request_ctx;
};

// What one Ready asks to be made durable, for the acknowledgement an
// application that persists asynchronously gives (RawNode::OnPersisted).
struct PersistMark {
  uint64_t last_index = 0;  // last entry of the Ready (0: no entries)
  uint64_t last_term = 0;
  uint64_t snapshot_index = 0;  // the Ready's snapshot (0: none)
};

struct Ready {
  // Set when leader or role changed since the last Ready.
  std::optional<SoftState> soft_state;
  // Set when the configuration in effect (the latest in the log, committed
  // or not) changed since the last Ready: who the peers are.
  std::optional<ConfState> conf_state;
  // Set when term, vote, commit or rejoin incarnation changed.
  std::optional<HardState> hard_state;
  // Reads whose index is now known (linearizable once applied >= index).
  std::vector<ReadState> read_states;
  // Entries to append to stable storage (after `snapshot`, if any).
  std::vector<Entry> entries;
  // A snapshot from the leader to install before appending entries.
  std::optional<Snapshot> snapshot;
  // Committed entries to apply to the state machine, in order. Every one of
  // them is already durable in this node's log (acknowledged persisted).
  std::vector<Entry> committed_entries;
  // Messages to send now: they depend on nothing this Ready persists (a
  // leader's MSG_APP and heartbeats go out while its own write is in
  // progress, dissertation §10.2.1).
  std::vector<Message> messages;
  // Messages to send only once `entries`, `hard_state` and `snapshot` of
  // this Ready (and of every earlier one) are durable: append and vote
  // responses. Those addressed to this node itself (a leader acknowledging
  // its own entries, a candidate its own vote) are handed back to it with
  // RawNode::Step instead of being sent.
  std::vector<Message> messages_after_persist;
  // True when entries, a snapshot or a term/vote/incarnation change must be
  // fsynced (a commit-only change may be written without sync).
  bool must_sync = false;

  PersistMark persist_mark() const;
};

}  // namespace raftkv::raft
