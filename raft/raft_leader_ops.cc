// Leader-side services beyond replication: linearizable reads through
// ReadIndex (dissertation §6.4), batched into heartbeat rounds, and
// leadership transfer with TimeoutNow (dissertation §3.10).
#include <glog/logging.h>

#include "raft/raft.h"

namespace raftkv::raft {

Status Raft::ReadIndex(std::string request_ctx) {
  if (role_ == Role::kLeader) {
    HandleReadIndexRequest({log_.committed(), std::move(request_ctx), id_});
    return Status::OK();
  }
  if (lead_ == kNone) return Status::NotLeader("leader unknown");
  // Forward to the leader, which answers with MSG_READ_INDEX_RESP.
  Message m;
  m.set_to(lead_);
  m.set_type(MSG_READ_INDEX);
  m.add_entries()->set_data(std::move(request_ctx));
  Send(std::move(m));
  return Status::OK();
}

void Raft::HandleReadIndexRequest(ReadRequest request) {
  if (SoleVoter()) {
    AnswerRead(request);  // the only voter is trivially the leader
    return;
  }
  if (!CommittedEntryInCurrentTerm()) {
    // Our commit index may lag the previous leader's until our no-op
    // commits (§6.4 step 1).
    reads_waiting_for_commit_.push_back(std::move(request));
    return;
  }
  read_only_.Add(std::move(request));  // joins the next round (FlushPending)
}

void Raft::ReleasePendingReadsAfterCommit() {
  if (role_ != Role::kLeader || reads_waiting_for_commit_.empty() ||
      !CommittedEntryInCurrentTerm()) {
    return;
  }
  for (ReadRequest& r : reads_waiting_for_commit_) {
    r.index = log_.committed();
    HandleReadIndexRequest(std::move(r));
  }
  reads_waiting_for_commit_.clear();
}

void Raft::StartReadRound() {
  const uint64_t round = read_only_.StartRound(id_);
  VLOG(1) << "raft " << id_ << " starts read round " << round;
  BroadcastHeartbeat();  // carries the newest round number
}

void Raft::AnswerRead(const ReadRequest& request) {
  if (request.from == id_) {
    read_states_.push_back({request.index, request.request_ctx});
    return;
  }
  Message m;
  m.set_to(request.from);
  m.set_type(MSG_READ_INDEX_RESP);
  m.set_index(request.index);
  m.add_entries()->set_data(request.request_ctx);
  Send(std::move(m));
}

Status Raft::TransferLeader(uint64_t transferee) {
  if (role_ != Role::kLeader) {
    return Status::NotLeader(lead_ == kNone
                                 ? "leader unknown"
                                 : "leader is " + std::to_string(lead_));
  }
  if (!IsKnownPeer(transferee)) {
    return Status::InvalidArgument("unknown transferee " +
                                   std::to_string(transferee));
  }
  if (progress_.at(transferee).rejoining()) {
    return Status::FailedPrecondition(
        "node " + std::to_string(transferee) +
        " is rejoining after a lost disk and cannot lead yet");
  }
  HandleTransferLeader(transferee);
  return Status::OK();
}

void Raft::HandleTransferLeader(uint64_t transferee) {
  if (lead_transferee_ != kNone) {
    if (lead_transferee_ == transferee) return;  // already under way
    AbortLeaderTransfer();
  }
  if (transferee == id_) return;
  LOG(INFO) << "raft " << id_ << " starts leadership transfer to " << transferee
            << " at term " << term_;
  // The transfer must finish within an election timeout (see TickHeartbeat).
  election_elapsed_ = 0;
  lead_transferee_ = transferee;
  if (progress_.at(transferee).match() == log_.LastIndex()) {
    SendTimeoutNow(transferee);
  } else {
    MaybeSendAppend(transferee, /*send_if_empty=*/true);
  }
}

void Raft::SendTimeoutNow(uint64_t to) {
  Message m;
  m.set_to(to);
  m.set_type(MSG_TIMEOUT_NOW);
  Send(std::move(m));
}

void Raft::AbortLeaderTransfer() { lead_transferee_ = kNone; }

}  // namespace raftkv::raft
