// Raft: the consensus algorithm of one node as a deterministic state machine
// (Raft paper, Ongaro & Ousterhout 2014, and Ongaro's dissertation).
//
// It owns the in-memory log view, the role, term and vote, and the leader's
// per-follower progress. It never performs I/O: outgoing messages are queued
// in `msgs_`, persisting and applying are left to the application through
// RawNode's Ready. Randomness comes only from the seeded generator in
// Config. Not thread-safe.
//
// The implementation is split by concern:
//   raft.cc              construction, roles, term rules, ticks, Ready glue
//   raft_election.cc     pre-vote, vote, campaign (§5.2, dissertation §9.6)
//   raft_replication.cc  AppendEntries, heartbeats, commit, snapshots (§5.3)
//   raft_leader_ops.cc   ReadIndex (dissertation §6.4), leader transfer (§3.10)
//   raft_rejoin.cc       start-up poll and rejoining after a lost disk
//                        (rejoin.h)
//   raft_membership.cc   single-server membership changes (dissertation
//                        §4.1, §4.2; conf_change.h)
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "raft/config.h"
#include "raft/log.h"
#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/raft.pb.h"
#include "raft/read_only.h"
#include "raft/ready.h"
#include "raft/rejoin.h"
#include "raft/storage.h"

namespace raftkv::raft {

// Where a node stands with respect to losing its storage (rejoin.h).
enum class RejoinPhase {
  kNone,       // taking part normally
  kPolling,    // blank storage: asking the peers whether a cluster exists
  kRejoining,  // a new incarnation catching up; never votes
};
const char* RejoinPhaseName(RejoinPhase phase);  // "", "polling", "rejoining"

// Bytes of application payload an entry carries (what the uncommitted-size
// limit counts): the data of normal entries only.
inline uint64_t PayloadSize(const Entry& e) {
  return e.type() == ENTRY_NORMAL ? e.data().size() : 0;
}

class Raft {
 public:
  // Restores term, vote, commit and membership from `storage`.
  static StatusOr<std::unique_ptr<Raft>> Create(const Config& config,
                                                const Storage* storage);

  // One logical clock tick.
  void Tick();
  // Handles a message (peer or local). Returns InvalidArgument for messages
  // from unknown nodes on peer-only paths.
  Status Step(const Message& m);

  StatusOr<uint64_t> Propose(std::string data);
  // Leader: appends a membership change and returns its index. Refused
  // (ProposalDropped) while another change is uncommitted or before this
  // leader committed an entry of its term, and (InvalidArgument) when the
  // change makes no sense in the current configuration or would promote a
  // learner that has not caught up.
  StatusOr<uint64_t> ProposeConfChange(const ConfChange& change);
  void ForgetLeader();
  void set_appends_paused(bool paused) { appends_paused_ = paused; }
  Status ReadIndex(std::string request_ctx);
  Status TransferLeader(uint64_t transferee);

  // Ready support (see RawNode).
  void FlushPending();  // emits batched appends and read rounds
  bool HasPendingFlush() const;
  // Moves out the queued messages: those that may go now, and those that
  // must wait until the Ready being built is durable.
  void TakeMessages(std::vector<Message>* now,
                    std::vector<Message>* after_persist);
  // The leader's acknowledgement of its own entries up to `index`, handed
  // back to it once they are durable.
  Message SelfAppendAck(uint64_t index) const;
  std::vector<ReadState> TakeReadStates();
  bool HasMessagesOrReadStates() const {
    return !msgs_.empty() || !msgs_after_persist_.empty() ||
           !read_states_.empty();
  }
  void Accept(const Ready& ready);
  void OnPersisted(const PersistMark& mark);
  void OnApplied(uint64_t index);

  uint64_t id() const { return id_; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t lead() const { return lead_; }
  Role role() const { return role_; }
  uint64_t lead_transferee() const { return lead_transferee_; }
  HardState hard_state() const;
  SoftState soft_state() const { return {lead_, role_}; }
  const RaftLog& log() const { return log_; }
  const std::set<uint64_t>& voters() const { return voters_; }
  const std::set<uint64_t>& learners() const { return learners_; }
  // The configuration in effect: the latest one in the log.
  const ConfState& conf_state() const { return conf_history_.back().conf; }
  // The configuration in effect at log index `index`, for any index at or
  // above the applied one (NotFound below it).
  StatusOr<ConfState> ConfStateAt(uint64_t index) const;
  // Index of the latest membership change in the log (0: none since the
  // snapshot or start).
  uint64_t last_conf_index() const {
    return conf_history_.size() > 1 ? conf_history_.back().index : 0;
  }
  const std::map<uint64_t, Progress>& progress() const { return progress_; }
  RejoinPhase rejoin_phase() const { return rejoin_phase_; }
  int randomized_election_timeout() const {
    return randomized_election_timeout_;
  }

 private:
  Raft(const Config& config, const Storage* storage);

  // Roles (raft.cc).
  void BecomeFollower(uint64_t term, uint64_t lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void Reset(uint64_t term);
  void ResetRandomizedElectionTimeout();
  void TickElection();
  void TickHeartbeat();
  // A voter that is taking part (not polling or rejoining).
  bool Promotable() const {
    return voters_.count(id_) > 0 && rejoin_phase_ == RejoinPhase::kNone;
  }
  bool IsKnownPeer(uint64_t id) const { return voters_.count(id) > 0; }
  // Is this node the only voter (a quorum on its own)?
  bool SoleVoter() const { return voters_.size() == 1 && voters_.count(id_); }
  bool HasQuorum(const std::set<uint64_t>& ids) const;
  void Send(Message m);
  // Term rules common to all roles (Figure 2 "All Servers"); returns false
  // when the message must be dropped.
  bool CheckTerm(const Message& m);
  void StepLeader(const Message& m);
  void StepCandidate(const Message& m);
  void StepFollower(const Message& m);

  // Elections (raft_election.cc).
  void Hup(bool transfer);
  void Campaign(bool pre_vote, bool transfer);
  VoteResult Poll(uint64_t from, bool granted);
  void HandleVoteRequest(const Message& m);
  void HandleVoteResponse(const Message& m);

  // Replication (raft_replication.cc).
  // A leader not handing over: NotLeader naming the leader, or
  // ProposalDropped during a transfer.
  Status CheckCanPropose() const;
  bool AppendEntries(std::vector<Entry> entries);
  bool MaybeSendAppend(uint64_t to, bool send_if_empty);
  bool SendSnapshot(uint64_t to, Progress& pr);
  void BroadcastAppend();
  void SendHeartbeat(uint64_t to, const std::string& context);
  void BroadcastHeartbeat();
  bool MaybeCommit();
  void HandleAppendEntries(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  void HandleAppendResponse(const Message& m, Progress& pr);
  void HandleHeartbeatResponse(const Message& m, Progress& pr);
  void HandleSnapshotStatus(const Message& m, Progress& pr);
  bool Restore(const Snapshot& snapshot);
  bool CommittedEntryInCurrentTerm() const;

  // ReadIndex and leader transfer (raft_leader_ops.cc).
  void HandleReadIndexRequest(ReadRequest request);
  void ReleasePendingReadsAfterCommit();
  void StartReadRound();
  void AnswerRead(const ReadRequest& request);
  void HandleTransferLeader(uint64_t transferee);
  void SendTimeoutNow(uint64_t to);
  void AbortLeaderTransfer();

  // Start-up poll and rejoining (raft_rejoin.cc).
  void StartPoll();
  void SendPoll();
  void TickPoll();
  void HandlePoll(const Message& m);
  void HandlePollResponse(const Message& m);
  // Follower: has the commit index reached our RejoinRecord?
  void MaybeFinishRejoin();
  // Leader: checks the incarnation an append or heartbeat response carries
  // against the one tracked for its sender; false if the response comes
  // from an incarnation already superseded and must be ignored.
  bool TrackIncarnation(const Message& m, Progress& pr);
  void AppendRejoinRecord(uint64_t node, Progress& pr);
  // Leader: peers that acknowledged their RejoinRecord and either saw a
  // record of theirs committed or have this one committed count again.
  // Returns whether any did.
  bool AdmitRejoinedPeers();
  uint64_t RandomNonZero();

  // Membership (raft_membership.cc).
  // A configuration as of the log entry (index, term) that set it.
  struct ConfRecord {
    uint64_t index = 0;
    uint64_t term = 0;
    ConfState conf;
  };
  // Rebuilds the configuration history from the base configuration and the
  // membership changes in the log (start-up).
  Status LoadConfHistory(ConfState base, uint64_t base_index);
  // After entries were appended (leader or follower, possibly replacing a
  // suffix): drops records of entries no longer in the log, records the
  // changes among `appended`, and puts the result in effect.
  void ReconcileConf(const std::vector<Entry>& appended);
  // Puts `conf` in effect: voters, learners and, on a leader, progress.
  void UseConf(const ConfState& conf);
  // Forgets records older than the one in effect at the applied index.
  void PruneConfHistory();
  // Leader: once the change that removed this node is committed, hands
  // leadership to the most up-to-date voter and steps down (§4.2.2).
  void MaybeStepDownAfterRemoval();

  const uint64_t id_;
  const Config config_;
  std::mt19937_64 rng_;

  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  uint64_t lead_ = kNone;
  Role role_ = Role::kFollower;
  RaftLog log_;

  std::set<uint64_t> voters_;
  std::set<uint64_t> learners_;
  // The configurations of the log from the one in effect at the applied
  // index on, oldest first; back() is in effect. Never empty.
  std::deque<ConfRecord> conf_history_;
  std::map<uint64_t, Progress> progress_;  // leader only; includes self
  std::map<uint64_t, bool> votes_;         // candidate / pre-candidate

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;

  uint64_t lead_transferee_ = kNone;
  uint64_t uncommitted_size_ = 0;
  bool pending_broadcast_ = false;  // proposals batched until FlushPending

  ReadOnlyQueue read_only_;
  // ReadIndex requests received before this leader committed an entry of its
  // term; they join a round once it has (dissertation §6.4 step 1).
  std::vector<ReadRequest> reads_waiting_for_commit_;

  RejoinPhase rejoin_phase_ = RejoinPhase::kNone;
  bool appends_paused_ = false;  // RawNode::SetAppendsPaused
  uint64_t incarnation_ = 0;     // persisted in the hard state, with the phase
  std::unique_ptr<StartupPoll> poll_;  // while polling
  int poll_elapsed_ = 0;
  uint64_t rejoin_scanned_ = 0;  // committed entries searched for our record

  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  std::vector<ReadState> read_states_;
};

}  // namespace raftkv::raft
