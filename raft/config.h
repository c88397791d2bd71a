// raft::Config: everything that parameterises one Raft node. Built by the
// server from its flags (or by tests and the simulator); the core never reads
// flags, clocks or the environment itself.
#pragma once

#include <cstdint>
#include <vector>

#include "util/status.h"

namespace raftkv::raft {

// Sentinel for "no node" (no vote, no known leader).
constexpr uint64_t kNone = 0;

struct Config {
  // This node's id; non-zero and a member of `peers`.
  uint64_t id = kNone;
  // Initial voters, used only when storage holds no membership yet (a new
  // cluster). Once storage holds a configuration (a snapshot's, or
  // membership changes in the log), that wins.
  std::vector<uint64_t> peers;
  // This node was added to a running cluster (as a learner): it starts with
  // no configuration of its own (`peers` is ignored), never polls or
  // campaigns on its own account, and waits for the leader to send it the
  // log. Ignored once storage holds state.
  bool join_existing_cluster = false;

  // A follower that hears nothing from a leader for a random number of ticks
  // in [election_tick, 2 * election_tick) starts an election.
  int election_tick = 10;
  // A leader sends heartbeats every heartbeat_tick ticks.
  int heartbeat_tick = 1;

  // Seed of the node's random source (election timeouts). Runs with the same
  // seed and inputs produce the same outputs.
  uint64_t seed = 1;

  // Last applied index when restarting; committed entries up to it are not
  // handed out again.
  uint64_t applied = 0;

  // A node whose storage is blank normally polls its peers before taking
  // part, since blank storage may be a lost disk (raft/rejoin.h). Set this
  // only when the caller knows that every node of the cluster starts blank
  // together and none ever held state (unit tests); raftkvd never does.
  bool blank_storage_is_new_cluster = false;

  // Limits on replication (each has a test that reaches it):
  // bytes of entries in one MSG_APP (at least one entry is always sent);
  uint64_t max_size_per_msg = 1 << 20;
  // MSG_APPs in flight to one follower in the pipelined (replicate) state;
  uint64_t max_inflight_msgs = 256;
  // bytes of entries in flight to one follower (0 = no limit);
  uint64_t max_inflight_bytes = 0;
  // bytes of uncommitted entry payload a leader accepts before it drops new
  // proposals (0 = no limit);
  uint64_t max_uncommitted_entries_size = 0;
  // bytes of committed entries handed out in one Ready (at least one entry).
  uint64_t max_committed_size_per_ready = 1 << 22;
  // A learner is promoted only while streaming the log (not probing or
  // waiting for a snapshot) with both its log and its applied index within
  // this many entries of the commit index, so that a new voter never stalls
  // the quorum while it catches up.
  uint64_t max_learner_lag = 1000;
  // Turns off the leader's membership-change rule (one change at a time,
  // only after an entry of its term committed) and the catch-up check on
  // promotion. Only for tests that show what the rule protects (the
  // simulator's broken-change-rule mutant); raftkvd never sets it.
  bool disable_conf_change_rule = false;

  // Raft dissertation §9.6: a would-be candidate first asks whether it could
  // win, so a partitioned node rejoining does not disrupt a healthy leader.
  bool pre_vote = true;
  // Dissertation §6.2: a leader that has not heard from a quorum within an
  // election timeout steps down; followers in contact with a leader ignore
  // vote requests (leader stickiness).
  bool check_quorum = true;

  Status Validate() const;
};

}  // namespace raftkv::raft
