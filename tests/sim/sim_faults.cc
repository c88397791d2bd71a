// SimCluster: the fault actions (partitions, crashes, lost disks, restarts,
// leader transfers, campaigns, lossy links, forced snapshots), membership
// changes and the client load (proposals, ReadIndex requests). Every choice
// comes from the run's SimRandom; never acts on anything outside the
// simulated cluster.
#include <algorithm>

#include "raft/conf_change.h"
#include "raft/quorum.h"
#include "tests/sim/sim_cluster.h"

namespace raftkv::sim {
namespace {

std::string N(uint64_t v) { return std::to_string(v); }

enum class Action {
  kPartition,
  kIsolate,
  kCutOneWay,
  kHeal,
  kCrash,
  kLoseDisk,
  kRestart,
  kTransfer,
  kCampaign,
  kForgetLeader,
  kLossRates,
  kSnapshot,
};

}  // namespace

Status SimCluster::RandomFault() {
  StopRemovedNodes();
  const int crash = options_.crash_weight;
  // (action, weight): crashes and restarts are as frequent as each other.
  const std::pair<Action, int> actions[] = {
      {Action::kPartition, 1},
      {Action::kIsolate, 1},
      {Action::kCutOneWay, 1},
      {Action::kHeal, 2},
      {Action::kCrash, crash},
      {Action::kRestart, crash},
      {Action::kLoseDisk, options_.disk_loss_weight},
      {Action::kTransfer, 1},
      {Action::kCampaign, 1},
      {Action::kForgetLeader, 1},
      {Action::kLossRates, 1},
      {Action::kSnapshot, 1},
  };
  int total = 0;
  for (const auto& a : actions) total += a.second;
  int pick = static_cast<int>(random_.Below(total));
  Action action = Action::kHeal;
  for (const auto& a : actions) {
    if (pick < a.second) {
      action = a.first;
      break;
    }
    pick -= a.second;
  }
  switch (action) {
    case Action::kPartition:
      PartitionRandomly();
      return Status::OK();
    case Action::kIsolate:
      IsolateOne();
      return Status::OK();
    case Action::kCutOneWay:
      CutOneWay();
      return Status::OK();
    case Action::kHeal:
      Heal();
      return Status::OK();
    case Action::kCrash:
      return CrashOne();
    case Action::kLoseDisk:
      return LoseDisk();
    case Action::kRestart:
      return RestartOne();
    case Action::kTransfer:
      return TransferLeadership();
    case Action::kCampaign:
      return CampaignOne();
    case Action::kForgetLeader:
      return ForgetLeaderOne();
    case Action::kLossRates:
      ChangeLossRates();
      return Status::OK();
    case Action::kSnapshot:
      return SnapshotOne();
  }
  return Status::OK();
}

void SimCluster::PartitionRandomly() {
  std::vector<int> side_of(nodes_.size());
  for (int& side : side_of) side = static_cast<int>(random_.Below(2));
  network_.Partition(side_of);
  ++stats_.partitions;
  Note([&] { return "partition: cut " + network_.DescribeBlocked(); });
}

void SimCluster::IsolateOne() {
  const uint64_t leader = Leader();
  const uint64_t victim =
      leader != 0 && random_.Chance(0.5) ? leader : PickNode();
  network_.Isolate(victim);
  ++stats_.partitions;
  Note([&] {
    return "isolate node " + N(victim) + ": cut " + network_.DescribeBlocked();
  });
}

void SimCluster::CutOneWay() {
  const uint64_t from = PickNode();
  const uint64_t to = PickNode();
  if (from == to) return;  // a self-link cannot be cut
  network_.BlockOneWay(from, to);
  ++stats_.partitions;
  Note([&] {
    return "one-way cut " + N(from) + "->" + N(to) + ": cut " +
           network_.DescribeBlocked();
  });
}

void SimCluster::Heal() {
  network_.Heal();
  Note([] { return std::string("heal the network"); });
}

Status SimCluster::CrashOne() {
  const uint64_t leader = Leader();
  const uint64_t victim =
      leader != 0 && random_.Chance(0.5) ? leader : PickNode();
  CrashNode(node(victim), leader == victim ? "kill the leader" : "kill");
  return Status::OK();
}

Status SimCluster::LoseDisk() {
  // A node counts as lost until it takes part again, and so does one that
  // holds nothing (a crash at boot: term 0 and no entries, as a poll sees
  // it) or is rejoining for that reason: to the protocol they are all nodes
  // without state. Never lose more than a majority can spare
  // (raft/rejoin.h).
  // Only founding nodes lose disks, and only while all of them may still be
  // members: a node with a blank disk polls the founding voters
  // (Config::peers) before it rejoins, which a removed one never answers.
  if (founding_removal_proposed_) return Status::OK();
  size_t lost = 0;
  for (SimNode& n : nodes_) {
    if (!n.founding()) continue;
    if (n.lost() && n.up() && n.raft().GetStatus().rejoin.empty()) {
      n.set_lost(false);
      ++stats_.rejoins;
      Note([&] { return "node " + N(n.id()) + " takes part again"; });
    }
    const raft::MemoryStorage& disk = n.disk();
    const bool holds_nothing = disk.hard_state().term() == 0 &&
                               disk.FirstIndex() == 1 && disk.LastIndex() == 0;
    if (n.lost() || holds_nothing || disk.hard_state().rejoining()) ++lost;
  }
  // A majority of every configuration in effect must keep its disk: with
  // joined voters the founding nodes are fewer than the voters, so count
  // against the smallest voter set in sight (the leader's and the
  // committed one).
  size_t voters = options_.nodes;
  const uint64_t leader = Leader();
  if (leader != 0) {
    voters = std::min<size_t>(voters,
                              node(leader).raft().conf_state().voters_size());
  }
  raft::ConfState committed;
  if (checker_.CommittedConfAt(checker_.committed_index(), &committed)) {
    voters = std::min<size_t>(voters, committed.voters_size());
  }
  if (lost + 1 > voters - raft::MajoritySize(voters)) return Status::OK();
  uint64_t victim = leader != 0 &&
                            leader <= static_cast<uint64_t>(options_.nodes) &&
                            random_.Chance(0.5)
                        ? leader
                        : 1 + random_.Below(options_.nodes);
  for (int i = 0; i < options_.nodes && node(victim).lost(); ++i) {
    victim = 1 + victim % options_.nodes;
  }
  SimNode& n = node(victim);
  Note([&] {
    return "node " + N(victim) + (victim == leader ? " (the leader)" : "") +
           " LOSES ITS DISK";
  });
  if (n.up()) ++stats_.crashes;
  n.WipeDisk();
  ++stats_.disk_losses;
  if (options_.mutant == Mutant::kWipedNodeVotes) {
    // The mutant: pretend the blank disk held a term, so the node believes
    // its storage intact and votes at once.
    raft::HardState made_up;
    made_up.set_term(1);
    n.disk().SetHardState(made_up);
  }
  // Replaced at once half the time; otherwise a later restart brings it.
  if (random_.Chance(0.5)) {
    ++stats_.restarts;
    return StartNode(n, "restart on a blank disk");
  }
  return Status::OK();
}

Status SimCluster::RestartOne() {
  const uint64_t start = PickNode();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    SimNode& n = node(1 + (start - 1 + i) % nodes_.size());
    if (!n.up() && !n.spare() && !n.removed()) {
      ++stats_.restarts;
      return StartNode(n, "restart");
    }
  }
  return Status::OK();
}

Status SimCluster::TransferLeadership() {
  const uint64_t leader = Leader();
  if (leader == 0) return Status::OK();
  const uint64_t to = PickNode();
  Status s = node(leader).raft().TransferLeader(to);
  ++stats_.transfers;
  Note([&] {
    return "leader " + N(leader) + " transfers leadership to " + N(to) + ": " +
           s.ToString();
  });
  cause_ = "transfer";
  return HandleReady(node(leader));
}

Status SimCluster::CampaignOne() {
  SimNode& n = node(PickNode());
  if (!n.up()) return Status::OK();
  Note([&] { return "node " + N(n.id()) + " is told to campaign"; });
  ++stats_.campaigns;
  n.raft().Campaign();
  cause_ = "campaign";
  return HandleReady(n);
}

Status SimCluster::ForgetLeaderOne() {
  SimNode& n = node(PickNode());
  if (!n.up()) return Status::OK();
  Note([&] { return "node " + N(n.id()) + " forgets its leader"; });
  n.raft().ForgetLeader();
  cause_ = "forget-leader";
  return HandleReady(n);
}

Status SimCluster::SnapshotOne() {
  SimNode& n = node(PickNode());
  return n.up() ? MaybeSnapshot(n, /*force=*/true) : Status::OK();
}

void SimCluster::ChangeLossRates() {
  const double drops[] = {0.0, options_.drop_rate, 0.25};
  const double duplicates[] = {0.0, options_.duplicate_rate, 0.1};
  const double long_delays[] = {0.0, options_.long_delay_rate, 0.05};
  const double drop = drops[random_.Below(3)];
  const double duplicate = duplicates[random_.Below(3)];
  const double long_delay = long_delays[random_.Below(3)];
  network_.SetLossRates(drop, duplicate, long_delay);
  Note([&] {
    return "network: drop " + std::to_string(drop) + ", duplicate " +
           std::to_string(duplicate) + ", long delays " +
           std::to_string(long_delay);
  });
}

// --- Membership changes ----------------------------------------------------

Status SimCluster::ChangeMembership() {
  StopRemovedNodes();
  const uint64_t leader = Leader();
  if (leader == 0) return Status::OK();
  SimNode& l = node(leader);
  // The broken-rule mutant proposes a second change at once, before the
  // first committed.
  const int changes = options_.mutant == Mutant::kUnsafeConfChange ? 2 : 1;
  for (int i = 0;
       i < changes && l.up() && l.raft().role() == raft::Role::kLeader; ++i) {
    raft::ConfChange change;
    if (!PlanConfChange(l.raft().conf_state(), &change)) break;
    bool accepted = false;
    RAFTKV_RETURN_IF_ERROR(ProposeConfChange(l, change, &accepted));
    if (!accepted) break;
  }
  return Status::OK();
}

bool SimCluster::PlanConfChange(const raft::ConfState& conf,
                                raft::ConfChange* change) {
  const std::vector<uint64_t> voters(conf.voters().begin(),
                                     conf.voters().end());
  const std::vector<uint64_t> learners(conf.learners().begin(),
                                       conf.learners().end());
  uint64_t spare = 0;
  for (const SimNode& n : nodes_) {
    if (n.spare()) {
      spare = n.id();
      break;
    }
  }
  // A learner is promoted as soon as it may be (the leader refuses until it
  // caught up; the next membership action tries again).
  if (!learners.empty() && random_.Chance(0.6)) {
    change->set_type(raft::CONF_PROMOTE_LEARNER);
    change->set_node(learners[random_.Below(learners.size())]);
    return true;
  }
  if (spare != 0 && random_.Chance(0.5)) {
    change->set_type(raft::CONF_ADD_LEARNER);
    change->set_node(spare);
    return true;
  }
  // Remove a voter or a learner, the leader included, keeping min_voters
  // voters (now and then one fewer).
  std::vector<uint64_t> members = voters;
  members.insert(members.end(), learners.begin(), learners.end());
  if (members.empty()) return false;
  const uint64_t victim = members[random_.Below(members.size())];
  const size_t floor =
      std::max(1, options_.min_voters - (random_.Chance(0.1) ? 1 : 0));
  const bool voter = raft::IsVoter(conf, victim);
  if (voter && voters.size() <= floor) return false;
  if (victim <= static_cast<uint64_t>(options_.nodes)) {
    // A founding node that lost its disk polls the founding voters
    // (Config::peers) until enough of them answer: none of them leaves
    // before it rejoined.
    for (const SimNode& n : nodes_) {
      if (n.founding() && n.lost()) return false;
    }
  }
  if (voter) {
    // The voters left must still be able to elect a leader that catches up
    // those that lost their disk (raft/rejoin.h): no more of them without
    // state than a majority can spare.
    size_t stateless = 0;
    for (uint64_t id : voters) {
      const SimNode& n = node(id);
      const raft::MemoryStorage& disk = n.disk();
      const bool holds_nothing = disk.hard_state().term() == 0 &&
                                 disk.FirstIndex() == 1 &&
                                 disk.LastIndex() == 0;
      if (id != victim &&
          (n.lost() || holds_nothing || disk.hard_state().rejoining())) {
        ++stateless;
      }
    }
    const size_t left = voters.size() - 1;
    if (stateless > left - raft::MajoritySize(left)) return false;
  }
  change->set_type(raft::CONF_REMOVE_NODE);
  change->set_node(victim);
  return true;
}

Status SimCluster::ProposeConfChange(SimNode& leader,
                                     const raft::ConfChange& change,
                                     bool* accepted) {
  cause_ = "membership";
  StatusOr<uint64_t> index = leader.raft().ProposeConfChange(change);
  Note([&] {
    return "leader " + N(leader.id()) + " proposes " +
           raft::DescribeConfChange(change) + ": " +
           (index.ok() ? "index " + N(index.value())
                       : index.status().ToString());
  });
  *accepted = index.ok();
  if (!index.ok()) {
    ++stats_.conf_changes_refused;
    return HandleReady(leader);
  }
  switch (change.type()) {
    case raft::CONF_ADD_LEARNER: {
      ++stats_.learners_added;
      // The new node starts blank and waits for the leader.
      SimNode& joiner = node(change.node());
      joiner.set_joined();
      RAFTKV_RETURN_IF_ERROR(StartNode(joiner, "joins as a learner"));
      queue_.Push(now() + 1 + random_.Below(options_.tick_ms), EventType::kTick,
                  joiner.id());
      break;
    }
    case raft::CONF_PROMOTE_LEARNER:
      ++stats_.promotions;
      break;
    case raft::CONF_REMOVE_NODE:
      ++stats_.removals;
      if (change.node() == leader.id()) ++stats_.leader_removals;
      if (change.node() <= static_cast<uint64_t>(options_.nodes)) {
        founding_removal_proposed_ = true;
      }
      break;
    default:
      break;
  }
  return HandleReady(leader);
}

void SimCluster::StopRemovedNodes() {
  for (SimNode& n : nodes_) {
    if (n.removed() || n.spare() || !checker_.RemovalCommitted(n.id())) {
      continue;
    }
    Note([&] {
      return "node " + N(n.id()) + " STOPS for good: its removal committed";
    });
    n.Crash();
    n.set_removed();
    ++stats_.removed_stopped;
  }
}

std::vector<uint64_t> SimCluster::Members() const {
  std::vector<uint64_t> out;
  const uint64_t leader = Leader();
  if (leader != 0) {
    const raft::ConfState& conf = nodes_[leader - 1].raft().conf_state();
    out.assign(conf.voters().begin(), conf.voters().end());
    out.insert(out.end(), conf.learners().begin(), conf.learners().end());
    std::sort(out.begin(), out.end());
    return out;
  }
  for (const SimNode& n : nodes_) {
    if (!n.spare() && !n.removed()) out.push_back(n.id());
  }
  return out;
}

// --- Client load
// ---------------------------------------------------------------

Status SimCluster::Propose() {
  uint64_t target = Leader();
  // Now and then a client asks a follower (NotLeader) or a stale leader.
  if (target == 0 || random_.Chance(0.1)) target = PickNode();
  SimNode& n = node(target);
  if (!n.up()) return Status::OK();
  std::string data = "p" + N(next_proposal_++) + "-";
  // Mostly small payloads; some large enough to reach the size limits.
  const uint64_t pad =
      random_.Chance(0.05) ? random_.Between(500, 2000) : random_.Below(40);
  data.append(pad, '.');
  return ProposeOn(n, data);
}

Status SimCluster::ProposeOn(SimNode& n, const std::string& data) {
  const bool leader = n.raft().role() == raft::Role::kLeader;
  StatusOr<uint64_t> index = n.raft().Propose(data);
  // Followers refusing proposals (NotLeader) would crowd the trace.
  if (index.ok() || leader) {
    Note([&] {
      return "propose '" + data.substr(0, 16) + "' (" + N(data.size()) +
             "B) on node " + N(n.id()) + ": " +
             (index.ok() ? "index " + N(index.value())
                         : index.status().ToString());
    });
  }
  if (index.ok() && !leader) {
    return Status::Corruption("node " + N(n.id()) +
                              " accepted a proposal while not leader");
  }
  if (index.ok()) ++stats_.proposals;
  return HandleReady(n);
}

Status SimCluster::RequestRead() {
  SimNode& n = node(PickNode());
  if (!n.up()) return Status::OK();
  const uint64_t id = next_read_++;
  checker_.OnReadRequested(id);
  if (options_.mutant == Mutant::kStaleRead &&
      n.raft().role() == raft::Role::kFollower && random_.Chance(0.5)) {
    Note([&] {
      return "read " + N(id) + " answered by follower " + N(n.id()) +
             " from its applied index " + N(n.applied().index) + " (mutant)";
    });
    return checker_.OnReadState(n.id(), id, n.applied().index);
  }
  Status s = n.raft().ReadIndex("r" + N(id));
  Note([&] {
    return "read " + N(id) + " requested on node " + N(n.id()) + ": " +
           s.ToString();
  });
  return HandleReady(n);
}

}  // namespace raftkv::sim
