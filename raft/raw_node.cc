// RawNode: builds Ready batches from the Raft state machine and checks the
// application's side of the contract. No I/O.
#include "raft/raw_node.h"

#include <glog/logging.h>

#include "raft/conf_change.h"
#include "raft/raft.h"

namespace raftkv::raft {
namespace {

bool SameHardState(const HardState& a, const HardState& b) {
  return a.term() == b.term() && a.vote() == b.vote() &&
         a.commit() == b.commit() && a.incarnation() == b.incarnation() &&
         a.rejoining() == b.rejoining() && a.initialized() == b.initialized();
}

bool IsLocalMessage(MessageType type) {
  switch (type) {
    case MSG_UNKNOWN:
    case MSG_HUP:
    case MSG_BEAT:
    case MSG_PROP:
    case MSG_CHECK_QUORUM:
    case MSG_UNREACHABLE:
    case MSG_SNAP_STATUS:
    case MSG_TRANSFER_LEADER:
      return true;
    default:
      return false;
  }
}

}  // namespace

StatusOr<std::unique_ptr<RawNode>> RawNode::Create(const Config& config,
                                                   const Storage* storage) {
  auto raft = Raft::Create(config, storage);
  if (!raft.ok()) return raft.status();
  // What storage holds: anything the core changed at start (the commit
  // index raised to the applied one, the initialized mark) is saved with
  // the first Ready.
  HardState stored;
  ConfState conf_state;
  RAFTKV_RETURN_IF_ERROR(storage->InitialState(&stored, &conf_state));
  return std::unique_ptr<RawNode>(new RawNode(std::move(raft).value(), stored));
}

RawNode::RawNode(std::unique_ptr<Raft> raft, const HardState& stored)
    : raft_(std::move(raft)), prev_hard_state_(stored) {
  prev_soft_state_ = raft_->soft_state();
  prev_conf_state_ = raft_->conf_state();
}

RawNode::~RawNode() = default;

void RawNode::Tick() { raft_->Tick(); }

void RawNode::Campaign() {
  Message m;
  m.set_type(MSG_HUP);
  m.set_from(raft_->id());
  raft_->Step(m);
}

void RawNode::ForgetLeader() { raft_->ForgetLeader(); }
void RawNode::SetAppendsPaused(bool paused) {
  raft_->set_appends_paused(paused);
}

StatusOr<uint64_t> RawNode::Propose(std::string data) {
  return raft_->Propose(std::move(data));
}

StatusOr<uint64_t> RawNode::ProposeConfChange(const ConfChange& change) {
  return raft_->ProposeConfChange(change);
}

Status RawNode::Step(const Message& message) {
  if (IsLocalMessage(message.type())) {
    return Status::InvalidArgument("local message type " +
                                   MessageType_Name(message.type()) +
                                   " cannot be stepped from a peer");
  }
  if (message.to() != raft_->id()) {
    return Status::InvalidArgument("message addressed to " +
                                   std::to_string(message.to()));
  }
  // Members are heard, and so is a leader outside our configuration: the
  // leader of the cluster a new node joins knows it before it knows
  // anything (dissertation §4.1).
  const uint64_t from = message.from();
  const MessageType type = message.type();
  // So is a MSG_TIMEOUT_NOW of our term: a leader whose removal committed
  // hands over to a voter in whose configuration it is no longer
  // (dissertation §4.2.2). It cannot raise our term.
  const bool from_a_leader =
      type == MSG_APP || type == MSG_HEARTBEAT || type == MSG_SNAP ||
      (type == MSG_TIMEOUT_NOW && message.term() == raft_->term());
  // And so is a candidate: a node whose log is behind on the configuration
  // must still vote for a voter it does not know of yet, or a cluster whose
  // other voters lost their vote (down, rejoining) elects no one
  // (dissertation §4.1). Granting is safe: a candidate whose removal
  // committed lacks that entry, so a voter that holds it refuses (§5.4.1),
  // and leader stickiness (§4.2.3) keeps such a candidate from disrupting.
  const bool from_a_candidate = type == MSG_VOTE || type == MSG_PRE_VOTE;
  if (from == kNone ||
      (raft_->voters().count(from) == 0 && raft_->learners().count(from) == 0 &&
       from != raft_->id() && !from_a_leader && !from_a_candidate)) {
    return Status::InvalidArgument("message from unknown node " +
                                   std::to_string(from));
  }
  return raft_->Step(message);
}

Status RawNode::ReadIndex(std::string request_ctx) {
  return raft_->ReadIndex(std::move(request_ctx));
}

Status RawNode::TransferLeader(uint64_t transferee) {
  return raft_->TransferLeader(transferee);
}

void RawNode::ReportUnreachable(uint64_t id) {
  Message m;
  m.set_type(MSG_UNREACHABLE);
  m.set_from(id);
  raft_->Step(m);
}

void RawNode::ReportSnapshot(uint64_t id, bool failed) {
  Message m;
  m.set_type(MSG_SNAP_STATUS);
  m.set_from(id);
  m.set_reject(failed);
  raft_->Step(m);
}

bool RawNode::HasReady() const {
  if (!(raft_->soft_state() == prev_soft_state_)) return true;
  if (!SameConfState(raft_->conf_state(), prev_conf_state_)) return true;
  if (!SameHardState(raft_->hard_state(), prev_hard_state_)) return true;
  const RaftLog& log = raft_->log();
  return log.HasSnapshotToPersist() || log.HasEntriesToPersist() ||
         raft_->HasMessagesOrReadStates() || log.HasNextCommittedEntries() ||
         raft_->HasPendingFlush();
}

Ready RawNode::GetReady() {
  raft_->FlushPending();
  Ready rd;
  const SoftState soft = raft_->soft_state();
  if (!(soft == prev_soft_state_)) rd.soft_state = soft;
  if (!SameConfState(raft_->conf_state(), prev_conf_state_)) {
    rd.conf_state = raft_->conf_state();
  }
  const HardState hard = raft_->hard_state();
  if (!SameHardState(hard, prev_hard_state_)) rd.hard_state = hard;
  const RaftLog& log = raft_->log();
  rd.entries = log.EntriesToPersist();
  if (log.HasSnapshotToPersist()) rd.snapshot = *log.UnstableSnapshot();
  rd.committed_entries = log.NextCommittedEntries();
  raft_->TakeMessages(&rd.messages, &rd.messages_after_persist);
  if (raft_->role() == Role::kLeader && !rd.entries.empty()) {
    // The leader counts its own entries only once they are durable.
    rd.messages_after_persist.push_back(
        raft_->SelfAppendAck(rd.entries.back().index()));
  }
  rd.read_states = raft_->TakeReadStates();
  rd.must_sync = !rd.entries.empty() || rd.snapshot.has_value() ||
                 hard.term() != prev_hard_state_.term() ||
                 hard.vote() != prev_hard_state_.vote() ||
                 hard.incarnation() != prev_hard_state_.incarnation() ||
                 hard.rejoining() != prev_hard_state_.rejoining() ||
                 hard.initialized() != prev_hard_state_.initialized();
  return rd;
}

void RawNode::Advance(const Ready& ready) {
  Accept(ready);
  OnPersisted(ready.persist_mark());
  if (!ready.committed_entries.empty()) {
    OnApplied(ready.committed_entries.back().index());
  }
}

void RawNode::Accept(const Ready& ready) {
  if (ready.soft_state) prev_soft_state_ = *ready.soft_state;
  if (ready.conf_state) prev_conf_state_ = *ready.conf_state;
  if (ready.hard_state) prev_hard_state_ = *ready.hard_state;
  raft_->Accept(ready);
}

void RawNode::OnPersisted(const PersistMark& mark) { raft_->OnPersisted(mark); }

void RawNode::OnApplied(uint64_t index) { raft_->OnApplied(index); }

NodeStatus RawNode::GetStatus() const {
  NodeStatus st;
  st.id = raft_->id();
  st.term = raft_->term();
  st.vote = raft_->vote();
  st.commit = raft_->log().committed();
  st.applied = raft_->log().applied();
  st.last_index = raft_->log().LastIndex();
  st.lead = raft_->lead();
  st.role = raft_->role();
  st.lead_transferee = raft_->lead_transferee();
  st.rejoin = RejoinPhaseName(raft_->rejoin_phase());
  st.voters = raft_->voters();
  st.learners = raft_->learners();
  st.last_conf_index = raft_->last_conf_index();
  if (st.role == Role::kLeader) {
    for (const auto& [peer, pr] : raft_->progress()) {
      st.progress[peer] = {
          pr.match(),         pr.next(),      ProgressStateName(pr.state()),
          pr.recent_active(), pr.rejoining(), pr.pending_snapshot()};
    }
  }
  return st;
}

const ConfState& RawNode::conf_state() const { return raft_->conf_state(); }
StatusOr<ConfState> RawNode::ConfStateAt(uint64_t index) const {
  return raft_->ConfStateAt(index);
}
uint64_t RawNode::id() const { return raft_->id(); }
uint64_t RawNode::lead() const { return raft_->lead(); }
uint64_t RawNode::term() const { return raft_->term(); }
uint64_t RawNode::commit() const { return raft_->log().committed(); }
bool RawNode::taking_part() const {
  return raft_->rejoin_phase() == RejoinPhase::kNone;
}
Role RawNode::role() const { return raft_->role(); }

PersistMark Ready::persist_mark() const {
  PersistMark mark;
  if (!entries.empty()) {
    mark.last_index = entries.back().index();
    mark.last_term = entries.back().term();
  }
  if (snapshot) mark.snapshot_index = snapshot->metadata().index();
  return mark;
}

}  // namespace raftkv::raft
