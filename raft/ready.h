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

struct Ready {
  // Set when leader or role changed since the last Ready.
  std::optional<SoftState> soft_state;
  // Set when term, vote or commit changed: persist before sending messages.
  std::optional<HardState> hard_state;
  // Reads whose index is now known (linearizable once applied >= index).
  std::vector<ReadState> read_states;
  // Entries to append to stable storage before sending messages.
  std::vector<Entry> entries;
  // A snapshot from the leader to install before appending entries.
  std::optional<Snapshot> snapshot;
  // Committed entries to apply to the state machine, in order. They have
  // been persisted earlier or are among `entries` above.
  std::vector<Entry> committed_entries;
  // Messages to send once `entries`, `hard_state` and `snapshot` are
  // durable. Exception (dissertation §10.2.1): a leader may send its
  // MSG_APP and MSG_HEARTBEAT messages before its own write completes.
  std::vector<Message> messages;
  // True when entries or a term/vote change must be fsynced (a commit-only
  // change may be written without sync).
  bool must_sync = false;
};

}  // namespace raftkv::raft
