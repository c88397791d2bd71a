// SimCluster: the phases of a run (faults, then liveness after healing,
// then final checks) and the leader-loss demo scenario. Never waits on
// anything but simulated time.
#include "tests/sim/sim_cluster.h"

namespace raftkv::sim {
namespace {

std::string N(uint64_t v) { return std::to_string(v); }

// Full pairwise log matching every this many events (the incremental check
// runs on every write).
constexpr uint64_t kFullCheckEvery = 1024;
// Time to wait before proposing the marker again after a refusal.
constexpr uint64_t kRetryProposalMs = 200;
// The leader-loss scenario gives up after this much simulated time.
constexpr uint64_t kScenarioTimeoutMs = 10000;

}  // namespace

Status SimCluster::RunFaultPhase() {
  RAFTKV_RETURN_IF_ERROR(Boot());
  queue_.Push(options_.fault_interval_ms, EventType::kFault, 0);
  queue_.Push(50, EventType::kPropose, 0);
  queue_.Push(80, EventType::kRead, 0);
  while (stats_.steps < static_cast<uint64_t>(options_.steps)) {
    RAFTKV_RETURN_IF_ERROR(Step());
    if (stats_.steps % kFullCheckEvery == 0) {
      RAFTKV_RETURN_IF_ERROR(CheckLogMatchingNow());
    }
  }
  return CheckLogMatchingNow();
}

Status SimCluster::RunLivenessPhase() {
  RAFTKV_RETURN_IF_ERROR(HealEverything());
  const uint64_t healed_at = now();
  const uint64_t deadline = healed_at + options_.liveness_timeout_ms;
  marker_ = "liveness-" + N(options_.seed);
  MarkerProposal proposal;
  bool leader_seen = false;
  while (marker_index_ == 0 || !AllApplied(marker_index_) || !AllTakingPart()) {
    const uint64_t leader = Leader();
    if (leader != 0 && !leader_seen) {
      leader_seen = true;
      stats_.heal_to_leader_ms = now() - healed_at;
    }
    if (now() > deadline) return LivenessFailure(leader_seen);
    if (leader != 0 && marker_index_ == 0) {
      RAFTKV_RETURN_IF_ERROR(MaybeProposeMarker(leader, &proposal));
    }
    RAFTKV_RETURN_IF_ERROR(Step());
  }
  stats_.heal_to_applied_ms = now() - healed_at;
  Note([&] {
    return "liveness: marker applied everywhere at index " + N(marker_index_) +
           " after " + N(stats_.heal_to_applied_ms) + " ms";
  });
  return Status::OK();
}

Status SimCluster::HealEverything() {
  // Faults and the random client load stop (a backlog growing faster than
  // a slow network drains it would hide the marker forever); the backlog
  // already accepted must still be replicated before the marker commits.
  faults_on_ = false;
  load_on_ = false;
  network_.Heal();
  network_.SetLossRates(0, 0, 0);
  Note([] {
    return std::string("faults end: heal the network, restart every node");
  });
  for (SimNode& n : nodes_) {
    if (!n.up()) RAFTKV_RETURN_IF_ERROR(StartNode(n, "faults end"));
  }
  return Status::OK();
}

Status SimCluster::MaybeProposeMarker(uint64_t leader,
                                      MarkerProposal* proposal) {
  // Proposes the marker to each new leader (a deposed leader's copy may be
  // lost), and again a while after a refusal.
  SimNode& n = node(leader);
  if (now() < proposal->next_try_ms ||
      (leader == proposal->leader && n.raft().term() == proposal->term)) {
    return Status::OK();
  }
  cause_ = "liveness proposal";
  StatusOr<uint64_t> index = n.raft().Propose(marker_);
  Note([&] {
    return "propose the liveness marker on node " + N(leader) + ": " +
           (index.ok() ? "index " + N(index.value())
                       : index.status().ToString());
  });
  if (index.ok()) {
    proposal->leader = leader;
    proposal->term = n.raft().term();
  }
  proposal->next_try_ms = now() + kRetryProposalMs;
  return HandleReady(n);
}

Status SimCluster::LivenessFailure(bool leader_seen) const {
  std::string state;
  for (const SimNode& n : nodes_) {
    std::string up = "down";
    if (n.up()) {
      const raft::NodeStatus st = n.raft().GetStatus();
      up = std::string(raft::RoleName(st.role)) + "/term " + N(st.term) +
           "/commit " + N(st.commit) + "/last " + N(st.last_index) +
           (st.rejoin.empty() ? "" : "/" + st.rejoin);
      for (const auto& [peer, pr] : st.progress) {
        up += " [" + N(peer) + ": match " + N(pr.match) + " " + pr.state +
              (pr.rejoining ? " rejoining" : "") + "]";
      }
    }
    state += " " + N(n.id()) + ":" + up + "/applied " + N(n.applied().index);
  }
  return Status::Timeout(
      "liveness: " + N(options_.liveness_timeout_ms) +
      " simulated ms after healing, " +
      (leader_seen ? "a leader was elected but the marker proposal was not "
                     "applied everywhere or a node has not rejoined"
                   : "no leader was elected") +
      " (marker index " + N(marker_index_) + ";" + state + ")");
}

Status SimCluster::CheckFinalState() { return CheckLogMatchingNow(); }

bool SimCluster::AllTakingPart() {
  bool all = true;
  for (SimNode& n : nodes_) {
    if (!n.up() || !n.raft().GetStatus().rejoin.empty()) {
      all = false;
    } else if (n.lost()) {
      n.set_lost(false);
      ++stats_.rejoins;
      Note([&] { return "node " + N(n.id()) + " takes part again"; });
    }
  }
  return all;
}

bool SimCluster::AllApplied(uint64_t index) const {
  for (const SimNode& n : nodes_) {
    if (!n.up() || n.applied().index < index) return false;
  }
  return true;
}

Status SimCluster::CheckLogMatchingNow() const {
  std::vector<const raft::Storage*> logs;
  for (const SimNode& n : nodes_) logs.push_back(&n.disk());
  return SafetyChecker::CheckLogMatching(logs);
}

void SimCluster::RunLeaderLoss(LeaderLossResult* result) {
  faults_on_ = false;
  load_on_ = false;
  network_.SetLossRates(0, 0, 0);
  result->status = Boot();
  // Warm-up: a leader commits its no-op and three proposals.
  uint64_t next_try = 0;
  int proposed = 0;
  while (result->status.ok() &&
         (Leader() == 0 || checker_.committed_index() < 4)) {
    if (now() > kScenarioTimeoutMs) {
      result->status = Status::Timeout("warm-up: nothing committed");
      return;
    }
    const uint64_t leader = Leader();
    if (leader != 0 && now() >= next_try) {
      result->status = ProposeOn(node(leader), "warm-up-" + N(proposed++));
      next_try = now() + 20;
    }
    if (result->status.ok()) result->status = Step();
  }
  if (!result->status.ok()) return;
  result->old_leader = Leader();
  result->old_term = node(result->old_leader).raft().term();
  watch_term_ = result->old_term;
  CrashNode(node(result->old_leader), "scenario: the leader crashes");
  const uint64_t crashed_at = now();
  while (result->status.ok() && watch_commit_ms_ == 0) {
    if (now() > crashed_at + kScenarioTimeoutMs) {
      result->status = Status::Timeout("no new leader committed an entry");
      return;
    }
    result->status = Step();
    const uint64_t leader = Leader();
    if (result->elected_ms < 0 && leader != 0 &&
        node(leader).raft().term() > result->old_term) {
      result->elected_ms = static_cast<int64_t>(now() - crashed_at);
    }
  }
  if (!result->status.ok()) return;
  result->new_leader = watch_leader_;
  result->new_term = node(watch_leader_).raft().term();
  result->committed_ms = static_cast<int64_t>(watch_commit_ms_ - crashed_at);
}

}  // namespace raftkv::sim
