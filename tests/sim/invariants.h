// SafetyChecker: the Raft safety properties, checked incrementally as the
// simulated nodes persist, apply and win elections. It keeps the global
// history of a run (leaders per term, every (index, term) ever persisted,
// the committed prefix, everything ever applied, pending reads) and returns
// a non-OK Status naming the property at the first violation:
//   election safety      at most one leader per term (Raft paper §5.2);
//   log matching         an (index, term) pair names one entry, with one
//                        predecessor term, so logs that share it agree up
//                        to it (§5.3); also checked pairwise on whole logs;
//   leader completeness  a new leader's log holds every committed entry
//                        (§5.4.1), i.e. committed entries are never lost;
//   committed prefix     an index committed anywhere never changes term;
//   state machine safety no two nodes apply different entries at one index
//                        (§5.4.3), and only committed entries are applied;
//   linearizable reads   a ReadIndex answer is committed and at least the
//                        commit index known anywhere when it was requested
//                        (dissertation §6.4);
//   membership           (dissertation §4.1-§4.2) a leader's log never
//                        holds two membership changes above the commit
//                        index; every leader is a voter of its own
//                        configuration and holds vote grants of that term
//                        from a majority of its voters (a learner's vote
//                        never counts); a node whose removal committed
//                        never leads again; a node's configuration in
//                        effect is the one its own log gives; a snapshot
//                        records the configuration committed at its index.
// Election safety is judged per term whatever the configurations.
// Pure bookkeeping: never touches a node, the network or the clock.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "raft/storage.h"
#include "tests/sim/sim_node.h"

namespace raftkv::sim {

class SafetyChecker {
 public:
  // Node ids are 1..nodes; the founding voters 1..founding_voters (0: all).
  explicit SafetyChecker(int nodes, int founding_voters = 0);

  // `node` became leader of `term`; `log` is what it has persisted and
  // `conf` the configuration in effect on it.
  Status OnBecomeLeader(uint64_t node, uint64_t term, const raft::Storage& log,
                        const raft::ConfState& conf);
  // `voter` granted `candidate` its vote in `term` (the response left it).
  void OnVoteGranted(uint64_t voter, uint64_t candidate, uint64_t term);
  // Leader `node` of `term` holds membership changes at `conf_indexes`
  // (ascending) in its log: at most one may be above the commit index.
  Status OnLeaderLog(uint64_t node, uint64_t term,
                     const std::vector<uint64_t>& conf_indexes) const;
  // `node` has `in_effect` in effect while its own log gives `from_log`.
  static Status OnConfInEffect(uint64_t node, const raft::ConfState& in_effect,
                               const raft::ConfState& from_log);
  // `node` took a snapshot (its own, or installed from a leader) at
  // `meta.index()` recording `meta.conf_state()`.
  Status OnSnapshotConf(uint64_t node,
                        const raft::SnapshotMetadata& meta) const;
  // The configuration committed as of `index`, if every membership change
  // up to it is known to be committed or not.
  bool CommittedConfAt(uint64_t index, raft::ConfState* conf) const;
  // Nodes whose removal is known to be committed.
  bool RemovalCommitted(uint64_t node) const {
    return removal_committed_.count(node) > 0;
  }
  // `node` persisted `entries`; `log` is its disk after the write.
  Status OnPersistEntries(uint64_t node,
                          const std::vector<raft::Entry>& entries,
                          const raft::Storage& log);
  // `node` installed a snapshot from its leader.
  Status OnPersistSnapshot(uint64_t node, const raft::Snapshot& snapshot);
  // `node` persisted `hard_state`; `log` is its disk after the write.
  Status OnPersistHardState(uint64_t node, const raft::HardState& hard_state,
                            const raft::Storage& log);
  // `node` restarted from a disk whose commit index is `commit`.
  void OnRestart(uint64_t node, uint64_t commit);
  // `node` knows (in memory, perhaps not yet durable) that everything up to
  // `commit` is committed.
  void OnCommitKnown(uint64_t node, uint64_t commit);
  // `node` applied `entry`, reaching `after`.
  Status OnApply(uint64_t node, const raft::Entry& entry,
                 const AppliedState& after);
  // `node`'s state machine was replaced by `state` (snapshot or restart).
  Status OnRestoreStateMachine(uint64_t node, const AppliedState& state);
  // A client asked for ReadIndex `read_id`; its answer arrived on `node`.
  void OnReadRequested(uint64_t read_id);
  Status OnReadState(uint64_t node, uint64_t read_id, uint64_t index);

  // Log matching over whole persisted logs, pairwise (slower).
  static Status CheckLogMatching(const std::vector<const raft::Storage*>& logs);

  // Highest index known committed by some node.
  uint64_t committed_index() const { return max_commit_; }
  uint64_t terms_with_leader() const { return leader_of_term_.size(); }
  uint64_t reads_checked() const { return reads_checked_; }

 private:
  // One entry ever persisted at some index.
  struct EntryId {
    uint64_t term = 0;
    uint64_t data_hash = 0;
    uint64_t prev_term = 0;
    bool prev_known = false;
  };
  // What was applied at an index: its term and the chain hash after it.
  struct AppliedId {
    uint64_t term = 0;  // 0: nothing applied there yet
    uint64_t hash = 0;
  };

  Status RecordCommitted(uint64_t node, uint64_t index, uint64_t term);
  // Notes a committed removal once both the entry and its commit are known.
  void NoteCommittedConfChange(uint64_t index, uint64_t term);
  Status RecordEntry(uint64_t node, const raft::Entry& entry,
                     uint64_t prev_term, bool prev_known);
  uint64_t CommittedTerm(uint64_t index) const {
    return index < committed_term_.size() ? committed_term_[index] : 0;
  }

  std::map<uint64_t, uint64_t> leader_of_term_;
  raft::ConfState founding_;
  // Every membership change ever persisted, by (index, term).
  std::map<std::pair<uint64_t, uint64_t>, raft::ConfChange> conf_entries_;
  // node -> index of its committed removal.
  std::map<uint64_t, uint64_t> removal_committed_;
  // (term, candidate) -> the nodes that granted it their vote.
  std::map<std::pair<uint64_t, uint64_t>, std::set<uint64_t>> grants_;
  // entries_[index]: the distinct (term, data, predecessor) seen there.
  std::vector<std::vector<EntryId>> entries_;
  // committed_term_[index]: term of the committed entry (0: not known yet).
  std::vector<uint64_t> committed_term_;
  uint64_t max_commit_ = 0;
  std::vector<AppliedId> applied_;
  // Per node (index node - 1): commit index up to which its log is checked.
  std::vector<uint64_t> checked_commit_;
  // read id -> commit index known anywhere when it was requested.
  std::map<uint64_t, uint64_t> pending_reads_;
  uint64_t reads_checked_ = 0;
};

}  // namespace raftkv::sim
