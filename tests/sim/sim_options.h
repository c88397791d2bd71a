// SimOptions, SimStats and SimResult: the knobs of one simulated run and
// what it found. Plain values; they never hold the state of a run, and
// nothing here reads the environment, flags or the wall clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace raftkv::sim {

// A deliberately broken harness, to prove the checkers can fail.
enum class Mutant {
  kNone,
  // Persists term and commit but not the vote: after a crash a node may vote
  // twice in one term (violates Figure 2 "persistent state").
  kForgetVote,
  // A disk that lies about fsync: a crash loses the last few entries the
  // node had acknowledged.
  kLoseTail,
  // A node whose disk was lost restarts as if its storage were intact (an
  // empty log under a made-up term), so it votes at once instead of
  // rejoining (raft/rejoin.h): it can elect a leader that lacks a committed
  // entry.
  kWipedNodeVotes,
  // A follower answers some reads from its own applied state instead of
  // asking the leader for a read index: stale reads.
  kStaleRead,
  // Node 1's state machine now and then skips an entry's effect while
  // advancing its applied index: its state diverges.
  kSkipApply,
  // Every node runs with raft::Config::disable_conf_change_rule (several
  // membership changes in flight at once, and before the new leader
  // committed an entry of its term), and the simulator proposes changes
  // back to back: two configurations with disjoint majorities can be in
  // effect at once.
  kUnsafeConfChange,
};
const char* MutantName(Mutant mutant);
// "", "none", "forget_vote", "lose_tail", "wiped_node_votes", "stale_read",
// "skip_apply" or "unsafe_conf_change".
Status ParseMutant(const std::string& name, Mutant* mutant);

struct SimOptions {
  uint64_t seed = 1;
  // The founding voters are 1..nodes; ids nodes+1..nodes+spare_nodes are
  // spares that membership changes add (as learners, with blank storage
  // and raft::Config::join_existing_cluster). A removed node stops for good
  // and its id is never used again.
  int nodes = 3;
  int spare_nodes = 3;
  // Events (deliveries, ticks, faults, requests) in the fault phase.
  int steps = 3000;

  // Clock: each node ticks every tick_ms (with +-1 ms drift).
  int tick_ms = 10;
  int election_tick = 10;
  int heartbeat_tick = 1;
  // Draw the core's options per seed from the seed (pre-vote, check-quorum,
  // message size and in-flight limits, uncommitted quota) instead of using
  // the defaults of raft::Config.
  bool vary_config = true;

  // Network faults in the fault phase (the healed network is reliable).
  double drop_rate = 0.05;
  double duplicate_rate = 0.02;
  int min_latency_ms = 1;
  int max_latency_ms = 30;
  // A few messages are held up to long_delay_max_ms (stale when they land).
  double long_delay_rate = 0.01;
  int long_delay_max_ms = 500;

  // Mean simulated time between two fault actions (partition, heal, crash,
  // restart, leader transfer, campaign, lossy network, ...).
  int fault_interval_ms = 300;
  // Relative weight of "crash a node" among the fault actions (1 = as
  // likely as any other action).
  int crash_weight = 1;
  // Relative weight of "a node loses its disk" (it restarts blank and must
  // rejoin). Never more nodes at once than a majority can spare.
  int disk_loss_weight = 1;
  // Asynchronous disk (when the seed draws it, see vary_config): each write
  // completes 0..max_disk_latency_ms after it was queued, in order.
  int max_disk_latency_ms = 6;
  // Per handled Ready: chance of a crash after persisting it but before
  // sending its messages.
  double crash_before_send_rate = 0.0005;
  // Per handled Ready: chance that the node snapshots its state machine and
  // compacts its log.
  double snapshot_rate = 0.002;
  // Mean simulated time between two membership actions in the fault phase
  // (the leader adds a spare as a learner, promotes a learner or removes a
  // voter or learner, itself included); 0: none. At least
  // min_voters voters are kept, except now and then one fewer.
  int membership_interval_ms = 250;
  int min_voters = 3;
  // Mean simulated time between client proposals and between ReadIndex
  // requests.
  int propose_interval_ms = 10;
  int read_interval_ms = 30;

  // Liveness: after healing, a proposal must be applied by every node within
  // this much simulated time.
  int liveness_timeout_ms = 5000;

  Mutant mutant = Mutant::kNone;
};

// What a run exercised, for reports and for tests that the faults happen.
struct SimStats {
  uint64_t steps = 0;
  uint64_t sim_ms = 0;
  uint64_t terms_with_leader = 0;
  uint64_t committed = 0;  // highest index known committed
  uint64_t proposals = 0;  // accepted by a leader
  uint64_t messages = 0;
  uint64_t dropped = 0;
  uint64_t duplicated = 0;
  uint64_t partitions = 0;
  uint64_t crashes = 0;
  uint64_t crashes_before_send = 0;
  uint64_t restarts = 0;
  uint64_t disk_losses = 0;
  uint64_t rejoins = 0;  // wiped nodes seen taking part again
  uint64_t async_disk_runs = 0;
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_installed = 0;
  uint64_t transfers = 0;
  uint64_t campaigns = 0;
  uint64_t reads_checked = 0;
  // Membership changes accepted by a leader, and those it refused (one at
  // a time, a learner not caught up yet, ...), and removed nodes stopped.
  uint64_t learners_added = 0;
  uint64_t promotions = 0;
  uint64_t removals = 0;
  uint64_t leader_removals = 0;  // the leader proposed its own removal
  uint64_t conf_changes_refused = 0;
  uint64_t removed_stopped = 0;
  // Liveness phase: simulated ms from healing to a leader, and to a new
  // proposal applied everywhere.
  uint64_t heal_to_leader_ms = 0;
  uint64_t heal_to_applied_ms = 0;

  void Add(const SimStats& o);
  std::string ToString() const;
};

struct SimResult {
  Status status;  // the violated property, or OK
  SimStats stats;
  // A readable trace of the last events (only when tracing was on).
  std::vector<std::string> trace;
  bool ok() const { return status.ok(); }
};

}  // namespace raftkv::sim
