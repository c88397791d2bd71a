// Deterministic simulation of a Raft cluster: N raft::RawNodes over
// MemoryStorage "disks", a simulated clock and a simulated network that
// drops, delays, reorders and duplicates messages, partitions nodes
// (symmetric and one-way), and crashes and restarts nodes (losing all that
// was not persisted). Everything comes from one seed: the same seed replays
// the same run exactly.
//
// After every event the Raft safety properties are checked: election safety,
// log matching, leader completeness, state machine safety (and so that a
// committed entry is never lost), and linearizability of ReadIndex results.
// After the fault phase the faults heal and liveness is required: a leader
// is elected and a new proposal is applied by every node within a bounded
// simulated time.
//
// Never reads the wall clock or any global state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace raftkv::sim {

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;
  // Events processed in the fault phase (messages, ticks, faults, ...).
  int steps = 3000;
  int tick_ms = 10;
  int election_tick = 10;
  int heartbeat_tick = 1;
  // Network: per-message drop and duplication probabilities, latency range.
  double drop_rate = 0.05;
  double duplicate_rate = 0.02;
  int min_latency_ms = 1;
  int max_latency_ms = 30;
  // Mean simulated time between two fault actions.
  int fault_interval_ms = 300;
  // Liveness: after healing, a proposal must be applied everywhere within
  // this much simulated time.
  int liveness_timeout_ms = 20000;
  // Record a readable trace of every event (for a failing seed's replay).
  bool trace = false;
  // Deliberately broken persistence, to prove the checker can fail:
  // "forget_vote" persists the term but not the vote; "lose_entries" loses
  // the last few persisted entries when the node crashes (a disk that lies
  // about fsync).
  std::string mutant;
};

struct SimResult {
  bool ok = true;
  std::string failure;             // which property broke, and how
  std::vector<std::string> trace;  // the last events (if options.trace)
  uint64_t steps = 0;              // events processed
  uint64_t sim_ms = 0;             // simulated time at the end
  uint64_t elections = 0;          // terms with a leader
  uint64_t committed = 0;          // highest index applied anywhere
  // What the run exercised.
  uint64_t crashes = 0;
  uint64_t partitions = 0;
  uint64_t snapshots_sent = 0;
  uint64_t transfers = 0;
  uint64_t reads_checked = 0;
};

SimResult RunSimulation(const SimOptions& options);

// The demo scenario: a cluster elects a leader and commits a few entries;
// the leader crashes; returns the simulated ms from the crash until a new
// leader has committed an entry of its own term (-1 if it never did).
struct LeaderLossResult {
  uint64_t old_leader = 0;
  uint64_t new_leader = 0;
  int64_t election_ms = -1;
  std::string failure;  // a safety violation, if one was seen
};
LeaderLossResult RunLeaderLoss(uint64_t seed, int nodes);

}  // namespace raftkv::sim
