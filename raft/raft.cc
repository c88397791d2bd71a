// Raft core: construction, role transitions, the term rules shared by all
// roles, logical time, and the glue RawNode uses to build a Ready.
// No I/O, no clocks, no threads: see raft.h.
#include "raft/raft.h"

#include <glog/logging.h>

#include "raft/conf_change.h"
#include "raft/quorum.h"

namespace raftkv::raft {

const char* RejoinPhaseName(RejoinPhase phase) {
  switch (phase) {
    case RejoinPhase::kNone:
      return "";
    case RejoinPhase::kPolling:
      return "polling";
    case RejoinPhase::kRejoining:
      return "rejoining";
  }
  return "unknown";
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "unknown";
}

StatusOr<std::unique_ptr<Raft>> Raft::Create(const Config& config,
                                             const Storage* storage) {
  RAFTKV_RETURN_IF_ERROR(config.Validate());
  HardState hs;
  ConfState cs;
  RAFTKV_RETURN_IF_ERROR(storage->InitialState(&hs, &cs));
  const bool stored_conf = cs.voters_size() > 0 || cs.learners_size() > 0;
  if (!stored_conf && config.peers.empty() && !config.join_existing_cluster) {
    return Status::InvalidArgument("raft: no peers configured or stored");
  }
  // A commit index below the snapshot is fine (the snapshot holds only
  // committed entries and may be newer than a commit written without sync).
  if (hs.commit() > storage->LastIndex()) {
    return Status::Corruption(
        "raft: stored commit index " + std::to_string(hs.commit()) +
        " is beyond the stored log [" + std::to_string(storage->FirstIndex()) +
        ", " + std::to_string(storage->LastIndex()) + "]");
  }
  std::unique_ptr<Raft> raft(new Raft(config, storage));
  // The stored configuration wins over the flags: the membership may have
  // changed since the node was first started with them.
  ConfState base = cs;
  if (!stored_conf && !config.join_existing_cluster) {
    base = MakeConfState({config.peers.begin(), config.peers.end()});
  }
  const uint64_t conf_index = storage->ConfStateIndex();
  if (conf_index + 1 < storage->FirstIndex() ||
      conf_index > storage->LastIndex()) {
    return Status::Corruption("raft: stored membership is as of index " +
                              std::to_string(conf_index) +
                              ", outside the stored log");
  }
  RAFTKV_RETURN_IF_ERROR(raft->LoadConfHistory(std::move(base), conf_index));
  if (config.applied > storage->LastIndex()) {
    return Status::Corruption("raft: applied index " +
                              std::to_string(config.applied) +
                              " is beyond the last log index " +
                              std::to_string(storage->LastIndex()));
  }
  // Only committed entries are applied, so the applied index is committed
  // too, even when the commit index saved with the hard state (written
  // without sync) lags it.
  raft->log_.CommitTo(
      std::max({hs.commit(), config.applied, raft->log_.committed()}));
  raft->log_.AppliedTo(config.applied);
  raft->BecomeFollower(hs.term(), kNone);
  raft->vote_ = hs.vote();
  LOG(INFO) << "raft " << raft->id_ << " starts: term=" << raft->term_
            << " vote=" << raft->vote_ << " " << raft->log_.Describe();
  raft->incarnation_ = hs.incarnation();
  if (hs.rejoining()) {
    raft->rejoin_phase_ = RejoinPhase::kRejoining;
    LOG(WARNING) << "raft " << raft->id_
                 << " is still rejoining as incarnation " << hs.incarnation()
                 << ": it will not vote until it has caught up";
  } else if (IsBlank(hs, *storage) && config.join_existing_cluster) {
    // A new incarnation (rejoin.h), as after a lost disk: the id may have
    // been a voter's whose disk was lost, so it votes only once a leader
    // recorded that it caught up. For a new node that costs nothing.
    raft->rejoin_phase_ = RejoinPhase::kRejoining;
    raft->incarnation_ = raft->RandomNonZero();
    LOG(INFO) << "raft " << raft->id_
              << " joins a running cluster as incarnation "
              << raft->incarnation_ << ": it waits for the leader";
  } else if (IsBlank(hs, *storage) && !config.blank_storage_is_new_cluster) {
    raft->StartPoll();
  }
  return raft;
}

Raft::Raft(const Config& config, const Storage* storage)
    : id_(config.id),
      config_(config),
      // Mixing in the id keeps nodes given the same seed out of lockstep.
      rng_(config.seed ^ (config.id * 0x9E3779B97F4A7C15ULL)),
      log_(storage, config.max_committed_size_per_ready) {}

HardState Raft::hard_state() const {
  HardState hs;
  hs.set_term(term_);
  hs.set_vote(vote_);
  hs.set_commit(log_.committed());
  hs.set_incarnation(incarnation_);
  hs.set_rejoining(rejoin_phase_ == RejoinPhase::kRejoining);
  hs.set_initialized(rejoin_phase_ != RejoinPhase::kPolling);
  return hs;
}

// --- Roles ---------------------------------------------------------------

void Raft::Reset(uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  lead_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  votes_.clear();
  progress_.clear();
  uncommitted_size_ = 0;
  pending_broadcast_ = false;
  size_t dropped = read_only_.Reset() + reads_waiting_for_commit_.size();
  reads_waiting_for_commit_.clear();
  if (dropped > 0) {
    LOG(INFO) << "raft " << id_ << " drops " << dropped
              << " pending reads on term/role change";
  }
}

void Raft::ResetRandomizedElectionTimeout() {
  std::uniform_int_distribution<int> dist(config_.election_tick,
                                          2 * config_.election_tick - 1);
  randomized_election_timeout_ = dist(rng_);
}

void Raft::BecomeFollower(uint64_t term, uint64_t lead) {
  const Role old_role = role_;
  const uint64_t old_term = term_;
  Reset(term);
  lead_ = lead;
  role_ = Role::kFollower;
  if (old_role != Role::kFollower || old_term != term) {
    LOG(INFO) << "raft " << id_ << " became follower at term " << term_
              << " (was " << RoleName(old_role) << " at term " << old_term
              << "), leader " << lead_;
  }
}

void Raft::BecomePreCandidate() {
  CHECK(role_ != Role::kLeader) << "leader cannot become pre-candidate";
  // Term and vote are untouched: a pre-vote changes nothing durable.
  votes_.clear();
  lead_ = kNone;
  role_ = Role::kPreCandidate;
  LOG(INFO) << "raft " << id_ << " became pre-candidate at term " << term_;
}

void Raft::BecomeCandidate() {
  CHECK(role_ != Role::kLeader) << "leader cannot become candidate";
  Reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
  LOG(INFO) << "raft " << id_ << " became candidate at term " << term_;
}

void Raft::BecomeLeader() {
  CHECK(role_ != Role::kFollower) << "follower cannot become leader directly";
  Reset(term_);
  lead_ = id_;
  role_ = Role::kLeader;
  const uint64_t last = log_.LastIndex();
  std::set<uint64_t> members = voters_;
  members.insert(learners_.begin(), learners_.end());
  for (uint64_t peer : members) {
    Progress pr(last + 1, config_.max_inflight_msgs,
                config_.max_inflight_bytes);
    progress_.emplace(peer, pr);
  }
  // Only what is durable counts for the leader itself; entries still being
  // written are acknowledged when they are (Ready::messages_after_persist).
  Progress& self = progress_.at(id_);
  self.MaybeUpdate(log_.PersistedLastIndex());
  self.BecomeReplicate();
  self.set_recent_active(true);
  // A no-op entry of the new term lets earlier entries commit (§5.4.2) and
  // lets ReadIndex know the commit index is current (dissertation §6.4).
  CHECK(AppendEntries({Entry()})) << "no-op entry was refused";
  LOG(INFO) << "raft " << id_ << " became leader at term " << term_;
}

void Raft::ForgetLeader() {
  if (role_ != Role::kFollower || lead_ == kNone) return;
  LOG(INFO) << "raft " << id_ << " forgets leader " << lead_ << " at term "
            << term_;
  lead_ = kNone;
}

// --- Time ------------------------------------------------------------------

void Raft::Tick() {
  if (rejoin_phase_ == RejoinPhase::kPolling) {
    TickPoll();
    return;
  }
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    Message m;
    m.set_type(MSG_HUP);
    m.set_from(id_);
    Step(m);
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_tick) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      Message m;
      m.set_type(MSG_CHECK_QUORUM);
      m.set_from(id_);
      Step(m);
    }
    // A transfer that did not finish within an election timeout is dropped.
    if (role_ == Role::kLeader && lead_transferee_ != kNone) {
      LOG(INFO) << "raft " << id_ << " aborts transfer to " << lead_transferee_
                << ": timed out";
      AbortLeaderTransfer();
    }
  }
  if (role_ != Role::kLeader) return;
  if (heartbeat_elapsed_ >= config_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    Message m;
    m.set_type(MSG_BEAT);
    m.set_from(id_);
    Step(m);
  }
}

// --- Messages --------------------------------------------------------------

bool Raft::HasQuorum(const std::set<uint64_t>& ids) const {
  size_t n = 0;
  for (uint64_t id : ids) n += voters_.count(id);
  return n >= MajoritySize(voters_.size());
}

void Raft::Send(Message m) {
  m.set_from(id_);
  // Vote responses carry the term they answer (set by the caller); requests
  // for pre-votes carry the future term; polls are outside the term rules.
  // Everything else gets ours.
  const MessageType type = m.type();
  const bool keeps_term = type == MSG_VOTE || type == MSG_PRE_VOTE ||
                          type == MSG_VOTE_RESP || type == MSG_PRE_VOTE_RESP ||
                          type == MSG_POLL || type == MSG_POLL_RESP;
  if (!keeps_term) m.set_term(term_);
  if (type == MSG_APP_RESP || type == MSG_HEARTBEAT_RESP) {
    // Which life of this node speaks (raft/rejoin.h).
    m.set_incarnation(incarnation_);
    m.set_rejoining(rejoin_phase_ == RejoinPhase::kRejoining);
    m.set_applied(log_.applied());
  }
  // An append response acknowledges entries and a vote response a vote:
  // both only once what they vouch for is durable.
  if (type == MSG_APP_RESP || type == MSG_VOTE_RESP) {
    msgs_after_persist_.push_back(std::move(m));
  } else {
    msgs_.push_back(std::move(m));
  }
}

bool Raft::CheckTerm(const Message& m) {
  if (m.term() == 0) return true;  // local message
  if (m.term() > term_) {
    if (m.type() == MSG_VOTE || m.type() == MSG_PRE_VOTE) {
      // Leader stickiness (dissertation §4.2.3, §9.6): while we hear from
      // a leader, ignore pre-candidates, and with CheckQuorum candidates
      // too, unless the leader itself asked for it (transfer).
      const bool transfer = m.context() == "transfer";
      const bool in_lease =
          (config_.check_quorum || m.type() == MSG_PRE_VOTE) &&
          lead_ != kNone && election_elapsed_ < config_.election_tick;
      if (!transfer && in_lease) {
        VLOG(1) << "raft " << id_ << " ignores " << MessageType_Name(m.type())
                << " from " << m.from() << " at term " << m.term()
                << ": leader " << lead_ << " is alive";
        return false;
      }
    }
    if (m.type() == MSG_PRE_VOTE) {
      // Never change term because of a pre-vote request.
    } else if (m.type() == MSG_PRE_VOTE_RESP && !m.reject()) {
      // A granted pre-vote carries the future term; the term moves only
      // once a quorum grants it.
    } else if (m.type() == MSG_APP || m.type() == MSG_HEARTBEAT ||
               m.type() == MSG_SNAP) {
      BecomeFollower(m.term(), m.from());
    } else {
      BecomeFollower(m.term(), kNone);
    }
    return true;
  }
  if (m.term() < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type() == MSG_HEARTBEAT || m.type() == MSG_APP)) {
      // A stale leader (e.g. after a partition healed) would otherwise never
      // learn the new term, since our pre-votes never raise its term.
      Message resp;
      resp.set_to(m.from());
      resp.set_type(MSG_APP_RESP);
      Send(std::move(resp));
    } else if (m.type() == MSG_PRE_VOTE) {
      Message resp;
      resp.set_to(m.from());
      resp.set_type(MSG_PRE_VOTE_RESP);
      resp.set_term(term_);
      resp.set_reject(true);
      Send(std::move(resp));
    }
    return false;
  }
  return true;
}

Status Raft::Step(const Message& m) {
  if (m.type() == MSG_POLL) {
    HandlePoll(m);
    return Status::OK();
  }
  if (m.type() == MSG_POLL_RESP) {
    HandlePollResponse(m);
    return Status::OK();
  }
  // Until the poll decides, a blank node takes no part at all.
  if (rejoin_phase_ == RejoinPhase::kPolling) return Status::OK();
  if (!CheckTerm(m)) return Status::OK();
  switch (m.type()) {
    case MSG_HUP:
      Hup(/*transfer=*/false);
      return Status::OK();
    case MSG_VOTE:
    case MSG_PRE_VOTE:
      HandleVoteRequest(m);
      return Status::OK();
    default:
      break;
  }
  switch (role_) {
    case Role::kLeader:
      StepLeader(m);
      break;
    case Role::kCandidate:
    case Role::kPreCandidate:
      StepCandidate(m);
      break;
    case Role::kFollower:
      StepFollower(m);
      break;
  }
  if (rejoin_phase_ == RejoinPhase::kRejoining) MaybeFinishRejoin();
  MaybeStepDownAfterRemoval();
  return Status::OK();
}

void Raft::StepLeader(const Message& m) {
  switch (m.type()) {
    case MSG_BEAT:
      BroadcastHeartbeat();
      return;
    case MSG_CHECK_QUORUM: {
      // Contact is what counts here (is this leader cut off?), so a
      // rejoining node that answers counts too: it is neither a vote nor an
      // acknowledgement of anything durable.
      std::set<uint64_t> active;
      for (auto& [peer, pr] : progress_) {
        if (peer == id_ || pr.recent_active()) active.insert(peer);
        if (peer != id_) pr.set_recent_active(false);
      }
      if (!HasQuorum(active)) {
        LOG(WARNING) << "raft " << id_ << " steps down at term " << term_
                     << ": no active quorum (check quorum)";
        BecomeFollower(term_, kNone);
      }
      return;
    }
    case MSG_READ_INDEX:
      HandleReadIndexRequest(
          {log_.committed(),
           m.entries_size() > 0 ? m.entries(0).data() : std::string(),
           m.from()});
      return;
    default:
      break;
  }
  auto it = progress_.find(m.from());
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  switch (m.type()) {
    case MSG_APP_RESP:
      HandleAppendResponse(m, pr);
      break;
    case MSG_HEARTBEAT_RESP:
      HandleHeartbeatResponse(m, pr);
      break;
    case MSG_SNAP_STATUS:
      HandleSnapshotStatus(m, pr);
      break;
    case MSG_UNREACHABLE:
      // The message may be lost: stop the optimistic pipeline.
      if (pr.state() == ProgressState::kReplicate) pr.BecomeProbe();
      break;
    default:
      break;
  }
}

void Raft::StepCandidate(const Message& m) {
  switch (m.type()) {
    case MSG_APP:
      BecomeFollower(m.term(), m.from());
      HandleAppendEntries(m);
      break;
    case MSG_HEARTBEAT:
      BecomeFollower(m.term(), m.from());
      HandleHeartbeat(m);
      break;
    case MSG_SNAP:
      BecomeFollower(m.term(), m.from());
      HandleSnapshot(m);
      break;
    case MSG_VOTE_RESP:
    case MSG_PRE_VOTE_RESP:
      HandleVoteResponse(m);
      break;
    default:
      break;  // MSG_TIMEOUT_NOW etc. are ignored while campaigning
  }
}

void Raft::StepFollower(const Message& m) {
  switch (m.type()) {
    case MSG_APP:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleAppendEntries(m);
      break;
    case MSG_HEARTBEAT:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleHeartbeat(m);
      break;
    case MSG_SNAP:
      election_elapsed_ = 0;
      lead_ = m.from();
      HandleSnapshot(m);
      break;
    case MSG_TIMEOUT_NOW:
      LOG(INFO) << "raft " << id_ << " received timeout-now from " << m.from()
                << " at term " << term_ << ": campaigning for transfer";
      Hup(/*transfer=*/true);
      break;
    case MSG_READ_INDEX_RESP:
      if (m.entries_size() == 1) {
        read_states_.push_back({m.index(), m.entries(0).data()});
      }
      break;
    default:
      break;
  }
}

// --- Ready glue --------------------------------------------------------------

bool Raft::HasPendingFlush() const {
  return pending_broadcast_ || read_only_.HasUnsent();
}

void Raft::FlushPending() {
  if (role_ != Role::kLeader) {
    pending_broadcast_ = false;
    return;
  }
  if (pending_broadcast_) {
    pending_broadcast_ = false;
    BroadcastAppend();
  }
  if (read_only_.HasUnsent()) StartReadRound();
}

void Raft::TakeMessages(std::vector<Message>* now,
                        std::vector<Message>* after_persist) {
  now->swap(msgs_);
  msgs_.clear();
  after_persist->swap(msgs_after_persist_);
  msgs_after_persist_.clear();
}

Message Raft::SelfAppendAck(uint64_t index) const {
  Message m;
  m.set_type(MSG_APP_RESP);
  m.set_from(id_);
  m.set_to(id_);
  m.set_term(term_);
  m.set_index(index);
  return m;
}

std::vector<ReadState> Raft::TakeReadStates() {
  std::vector<ReadState> out;
  out.swap(read_states_);
  return out;
}

void Raft::Accept(const Ready& ready) {
  if (ready.snapshot) log_.AcceptSnapshot();
  if (!ready.entries.empty()) {
    log_.AcceptEntriesTo(ready.entries.back().index());
  }
  if (!ready.committed_entries.empty()) {
    log_.AcceptApplying(ready.committed_entries);
    if (role_ == Role::kLeader) {
      // Only entries of this term were counted by this leader; inherited
      // ones never took quota.
      uint64_t committed_bytes = 0;
      for (const Entry& e : ready.committed_entries) {
        if (e.term() == term_) committed_bytes += PayloadSize(e);
      }
      uncommitted_size_ -= std::min(uncommitted_size_, committed_bytes);
    }
  }
}

void Raft::OnPersisted(const PersistMark& mark) {
  if (mark.snapshot_index != 0) log_.StableSnapshotTo(mark.snapshot_index);
  if (mark.last_index != 0) log_.StableTo(mark.last_index, mark.last_term);
}

void Raft::OnApplied(uint64_t index) {
  log_.AppliedTo(index);
  PruneConfHistory();
}

}  // namespace raftkv::raft
