// SimCluster: one deterministic simulated run. N SimNodes, a SimNetwork and
// an EventQueue, driven by one SimRandom seeded from SimOptions::seed:
//   - every node ticks every tick_ms (+-1 ms drift);
//   - each node's Ready is handled as raw_node.h prescribes, per seed either
//     synchronously (persist snapshot, entries and hard state to its
//     MemoryStorage, send, apply and serve reads, Advance; in some seeds the
//     messages that need no disk go out before the write) or asynchronously
//     (Accept, send what needs no disk, apply; the writes complete in order
//     after a random latency, then OnPersisted and the acknowledgements);
//   - faults: loss, duplication, reordering, long delays, symmetric and
//     one-way partitions, crashes (also between persisting and sending, or
//     with writes in flight; a crash may lose a commit index written without
//     sync) and restarts, lost disks (a node restarts blank and must rejoin,
//     raft/rejoin.h), snapshots with compaction, leader transfers,
//     campaigns;
//   - membership changes: the leader adds a spare node as a learner (it
//     starts blank and joins), promotes a caught-up learner, or removes a
//     voter or learner (itself included); a node whose removal committed
//     stops for good;
//   - load: proposals and ReadIndex requests;
//   - after every event the SafetyChecker has seen every write, apply and
//     election, and the first violation ends the run.
// Phases: RunFaultPhase(), then RunLivenessPhase() (heal, require
// progress), then CheckFinalState(); or RunLeaderLoss() for the demo.
// Never reads the wall clock or global state; not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "raft/config.h"
#include "tests/sim/event_queue.h"
#include "tests/sim/invariants.h"
#include "tests/sim/sim_network.h"
#include "tests/sim/sim_node.h"
#include "tests/sim/sim_options.h"
#include "tests/sim/sim_random.h"
#include "tests/sim/trace.h"

namespace raftkv::sim {

// The demo scenario's outcome: a leader crashes; how long until a new one?
struct LeaderLossResult {
  Status status;  // a safety violation, or Timeout when nothing happened
  uint64_t old_leader = 0;
  uint64_t old_term = 0;
  uint64_t new_leader = 0;
  uint64_t new_term = 0;
  // Simulated ms from the crash until a new leader was elected, and until
  // it committed its first entry (-1: never).
  int64_t elected_ms = -1;
  int64_t committed_ms = -1;
};

class SimCluster {
 public:
  // `trace` may be null (no trace); it must outlive the cluster.
  SimCluster(const SimOptions& options, Trace* trace);

  // Boots the nodes and runs options.steps events with faults and load.
  Status RunFaultPhase();
  // Heals the network, restarts crashed nodes, stops faults and client
  // load; then a leader must be elected and a new proposal applied by every
  // node within options.liveness_timeout_ms.
  Status RunLivenessPhase();
  // Whole-log checks once the run is over.
  Status CheckFinalState();
  // Demo: boots, commits a few proposals, crashes the leader, and measures
  // the time to a new leader and its first commit (no other faults).
  void RunLeaderLoss(LeaderLossResult* result);
  // The membership-change scenario of the raft-dev post "bug in
  // single-server membership changes" (Ongaro, 2015), on 4 founding nodes
  // and a spare, with a scripted partition schedule and no other faults:
  // leader S1 adds the spare S5 as a learner, then, cut off with it,
  // promotes it; the other side elects X with the vote of Y, X is cut off
  // from Y and at once proposes removing Y; S1 then campaigns with S5 and
  // Y. With the change rule X cannot propose before committing an entry of
  // its term (which needs Y or S1), so this ends well; without it
  // (Mutant::kUnsafeConfChange) X commits with {X, Z} and S1 with
  // {S1, S5, Y}: two disjoint majorities. Then healing and liveness.
  Status RunSplitMajorityScenario();

  SimStats stats() const;
  const raft::Config& base_config() const { return base_config_; }

 private:
  // Setup and the event loop (sim_cluster.cc).
  raft::Config MakeBaseConfig();
  Status Boot();
  Status StartNode(SimNode& n, const char* why);
  void CrashNode(SimNode& n, const char* why);
  Status Step();
  Status OnTick(uint64_t id);
  Status Deliver(const Delivery& d);
  Status OnDiskWrite(uint64_t id, uint64_t incarnation);
  Status ReportSnapshot(const raft::Message& m, uint64_t incarnation,
                        bool delivered);
  Status ReportUnreachable(const raft::Message& m, uint64_t incarnation);

  // One Ready at a time (sim_cluster.cc).
  Status HandleReady(SimNode& n);
  // The membership properties of `n` after its Readys were handled.
  Status CheckMembership(SimNode& n);
  Status HandleReadySync(SimNode& n, const raft::Ready& rd);
  Status HandleReadyAsync(SimNode& n, raft::Ready rd);
  Status Persist(SimNode& n, const raft::Ready& rd);
  Status NoteStateChanges(SimNode& n, const raft::Ready& rd);
  void Send(SimNode& n, const std::vector<raft::Message>& messages);
  // Sends the acknowledgements of a persisted Ready; those for the node
  // itself are stepped back into it.
  Status SendAfterPersist(SimNode& n, const raft::Ready& rd);
  Status ApplyCommitted(SimNode& n, const raft::Ready& rd);
  Status ServeReads(SimNode& n, const raft::Ready& rd);
  Status MaybeSnapshot(SimNode& n, bool force);

  // Faults and load (sim_faults.cc).
  Status RandomFault();
  void PartitionRandomly();
  void IsolateOne();
  void CutOneWay();
  void Heal();
  Status CrashOne();
  Status LoseDisk();
  Status RestartOne();
  Status TransferLeadership();
  Status CampaignOne();
  Status ForgetLeaderOne();
  void ChangeLossRates();
  Status SnapshotOne();
  Status Propose();
  Status ProposeOn(SimNode& n, const std::string& data);
  Status RequestRead();

  // Membership changes (sim_faults.cc).
  Status ChangeMembership();
  // A change that makes sense in `conf` (false: none).
  bool PlanConfChange(const raft::ConfState& conf, raft::ConfChange* change);
  Status ProposeConfChange(SimNode& leader, const raft::ConfChange& change,
                           bool* accepted);
  // Stops for good the nodes whose removal is known to be committed.
  void StopRemovedNodes();
  // The nodes that must take part: the leader's configuration, or every
  // node started and not removed while there is no leader.
  std::vector<uint64_t> Members() const;

  // Phases (sim_phases.cc).
  struct MarkerProposal {
    uint64_t leader = 0;  // who accepted the marker, in which term
    uint64_t term = 0;
    uint64_t next_try_ms = 0;
  };
  Status HealEverything();
  Status MaybeProposeMarker(uint64_t leader, MarkerProposal* proposal);
  Status LivenessFailure(bool leader_seen) const;
  // Runs events until `done()` holds; Timeout naming `what` if it does not
  // within `within_ms` simulated ms.
  Status RunUntil(const std::function<bool()>& done, uint64_t within_ms,
                  const std::string& what);
  // Proposes `change` on `leader` every kRetryProposalMs until accepted or
  // `within_ms` passed; *index is its index.
  Status ProposeUntilAccepted(uint64_t leader, const raft::ConfChange& change,
                              uint64_t within_ms, uint64_t* index);
  bool AllApplied(uint64_t index) const;
  // Every node is up and none is polling or rejoining (raft/rejoin.h).
  bool AllTakingPart();
  Status CheckLogMatchingNow() const;

  SimNode& node(uint64_t id) { return nodes_[id - 1]; }
  uint64_t Leader() const;
  // A node that has been started and not removed.
  uint64_t PickNode();
  uint64_t now() const { return queue_.now_ms(); }
  // Adds a trace line built by `line()` only when tracing.
  template <typename F>
  void Note(F&& line) {
    if (trace_ != nullptr) trace_->Add(queue_.now_ms(), line());
  }

  const SimOptions options_;
  Trace* const trace_;
  SimRandom random_;
  EventQueue queue_;
  SimNetwork network_;
  SafetyChecker checker_;
  raft::Config base_config_;
  // Per seed: Readys are persisted asynchronously; in synchronous seeds,
  // Ready::messages go out before the write.
  bool async_disk_ = false;
  bool sends_early_ = false;
  std::vector<SimNode> nodes_;
  // A founding node's removal was proposed: its peers list (the founding
  // voters) no longer tells a node that lost its disk whom to poll, so no
  // more disks are lost in this run.
  bool founding_removal_proposed_ = false;

  bool faults_on_ = true;
  bool load_on_ = true;
  const char* cause_ = "boot";  // what the current event is, for the trace
  uint64_t next_proposal_ = 1;
  uint64_t next_read_ = 1;
  // Liveness marker: the proposal that must reach every node.
  std::string marker_;
  uint64_t marker_index_ = 0;
  // Leader-loss scenario: the crashed leader's term, and the moment a newer
  // leader committed an entry of its own term.
  uint64_t watch_term_ = 0;
  uint64_t watch_leader_ = 0;
  uint64_t watch_commit_ms_ = 0;
  SimStats stats_;
};

}  // namespace raftkv::sim
