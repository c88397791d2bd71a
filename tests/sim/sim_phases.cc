// SimCluster: the phases of a run (faults, then liveness after healing,
// then final checks) and the leader-loss demo scenario. Never waits on
// anything but simulated time.
#include "raft/conf_change.h"
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
// The split-majority scenario: time for each scripted step, and how long
// the two sides run apart once the second leader was cut off.
constexpr uint64_t kScenarioStepMs = 5000;
constexpr uint64_t kSplitMs = 3000;

raft::ConfChange Change(raft::ConfChangeType type, uint64_t node) {
  raft::ConfChange change;
  change.set_type(type);
  change.set_node(node);
  return change;
}

}  // namespace

Status SimCluster::RunFaultPhase() {
  RAFTKV_RETURN_IF_ERROR(Boot());
  queue_.Push(options_.fault_interval_ms, EventType::kFault, 0);
  queue_.Push(50, EventType::kPropose, 0);
  queue_.Push(80, EventType::kRead, 0);
  if (options_.membership_interval_ms > 0) {
    queue_.Push(options_.membership_interval_ms, EventType::kMembership, 0);
  }
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
  StopRemovedNodes();
  for (SimNode& n : nodes_) {
    if (!n.up() && !n.spare() && !n.removed()) {
      RAFTKV_RETURN_IF_ERROR(StartNode(n, "faults end"));
    }
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
  for (uint64_t id : Members()) {
    SimNode& n = node(id);
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
  for (uint64_t id : Members()) {
    const SimNode& n = nodes_[id - 1];
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

Status SimCluster::RunUntil(const std::function<bool()>& done,
                            uint64_t within_ms, const std::string& what) {
  const uint64_t deadline = now() + within_ms;
  while (!done()) {
    if (now() > deadline) {
      return Status::Timeout("scenario: " + what + " did not happen within " +
                             N(within_ms) + " simulated ms");
    }
    RAFTKV_RETURN_IF_ERROR(Step());
  }
  return Status::OK();
}

Status SimCluster::ProposeUntilAccepted(uint64_t leader,
                                        const raft::ConfChange& change,
                                        uint64_t within_ms, uint64_t* index) {
  uint64_t next_try = 0;
  bool accepted = false;
  Status failure;
  RAFTKV_RETURN_IF_ERROR(RunUntil(
      [&] {
        if (accepted || now() < next_try) return accepted;
        SimNode& l = node(leader);
        if (!l.up() || l.raft().role() != raft::Role::kLeader) return false;
        next_try = now() + kRetryProposalMs / 10;
        failure = ProposeConfChange(l, change, &accepted);
        if (accepted) *index = l.raft().GetStatus().last_conf_index;
        return accepted || !failure.ok();
      },
      within_ms, raft::DescribeConfChange(change) + " on node " + N(leader)));
  return failure;
}

Status SimCluster::RunSplitMajorityScenario() {
  faults_on_ = false;
  load_on_ = false;
  network_.SetLossRates(0, 0, 0);
  RAFTKV_RETURN_IF_ERROR(Boot());
  if (options_.nodes != 4 || options_.spare_nodes < 1) {
    return Status::InvalidArgument("scenario: needs 4 nodes and a spare");
  }
  // 1. A leader S1 commits a few entries and snapshots (a joining node
  // starts from a snapshot).
  uint64_t next_try = 0;
  int proposed = 0;
  Status failure;
  RAFTKV_RETURN_IF_ERROR(RunUntil(
      [&] {
        const uint64_t leader = Leader();
        if (leader == 0 || now() < next_try) return false;
        SimNode& l = node(leader);
        if (checker_.committed_index() >= 12 && l.disk().FirstIndex() > 1) {
          return true;
        }
        next_try = now() + 20;
        failure = ProposeOn(l, "warm-up-" + N(proposed++));
        if (failure.ok()) failure = MaybeSnapshot(l, /*force=*/true);
        return !failure.ok();
      },
      kScenarioStepMs, "a leader committing entries"));
  RAFTKV_RETURN_IF_ERROR(failure);
  const uint64_t s1 = Leader();
  const uint64_t s5 = options_.nodes + 1;
  std::vector<uint64_t> others;
  for (uint64_t id = 1; id <= static_cast<uint64_t>(options_.nodes); ++id) {
    if (id != s1) others.push_back(id);
  }
  Note([&] { return "scenario: S1 is node " + N(s1) + ", S5 node " + N(s5); });
  // 2. S5 joins as a learner and catches up.
  uint64_t add_index = 0;
  RAFTKV_RETURN_IF_ERROR(ProposeUntilAccepted(
      s1, Change(raft::CONF_ADD_LEARNER, s5), kScenarioStepMs, &add_index));
  RAFTKV_RETURN_IF_ERROR(RunUntil(
      [&] {
        return checker_.committed_index() >= add_index &&
               node(s5).applied().index >= add_index;
      },
      kScenarioStepMs, "learner " + N(s5) + " catching up"));
  // 3. S1 and S5 are cut off from the others; S1 promotes S5, whose log
  // alone holds it with S1's: {S1..S5} is in effect on them, uncommitted.
  std::vector<int> side_of(nodes_.size(), 0);
  side_of[s1 - 1] = side_of[s5 - 1] = 1;
  network_.Partition(side_of);
  Note([&] { return "scenario: cut " + network_.DescribeBlocked(); });
  uint64_t promote_index = 0;
  RAFTKV_RETURN_IF_ERROR(
      ProposeUntilAccepted(s1, Change(raft::CONF_PROMOTE_LEARNER, s5),
                           kScenarioStepMs, &promote_index));
  RAFTKV_RETURN_IF_ERROR(
      RunUntil([&] { return raft::IsVoter(node(s5).ConfFromLog(), s5); },
               kScenarioStepMs, "the promotion reaching " + N(s5)));
  const uint64_t old_term = node(s1).raft().term();
  // 4. The others elect X (with the votes of Y and Z).
  uint64_t x = 0;
  RAFTKV_RETURN_IF_ERROR(RunUntil(
      [&] {
        for (uint64_t id : others) {
          if (node(id).raft().role() == raft::Role::kLeader &&
              node(id).raft().term() > old_term) {
            x = id;
          }
        }
        return x != 0;
      },
      kScenarioStepMs, "a leader among the others"));
  // 5. At once, before its first append lands: X is cut off from Y, which
  // joins S1 and S5. X proposes removing Y (the rule makes it wait for an
  // entry of its term to commit, which needs Y or S1 now).
  const uint64_t y = others[0] == x ? others[1] : others[0];
  const uint64_t x_term = node(x).raft().term();
  side_of[y - 1] = 1;
  network_.Partition(side_of);
  Note([&] {
    return "scenario: X is node " + N(x) + " (term " + N(x_term) +
           "), Y node " + N(y) + "; cut " + network_.DescribeBlocked();
  });
  uint64_t remove_index = 0;
  Status removal = ProposeUntilAccepted(x, Change(raft::CONF_REMOVE_NODE, y),
                                        kSplitMs, &remove_index);
  if (!removal.ok() && !removal.IsTimeout()) return removal;
  // 6. S1's side elects a leader: {S1, S5, Y} is a majority of {S1..S5}.
  RAFTKV_RETURN_IF_ERROR(RunUntil(
      [&] {
        for (uint64_t id : {s1, s5, y}) {
          const SimNode& n = node(id);
          if (n.up() && n.raft().role() == raft::Role::kLeader &&
              n.raft().term() > x_term && n.raft().commit() > promote_index) {
            return true;
          }
        }
        return false;
      },
      kSplitMs, "a leader of {S1, S5, Y} committing"));
  // 7. Heal; the cluster must still make progress.
  Note([] { return std::string("scenario: heal"); });
  RAFTKV_RETURN_IF_ERROR(RunLivenessPhase());
  return CheckFinalState();
}

}  // namespace raftkv::sim
