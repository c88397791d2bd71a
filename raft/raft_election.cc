// Leader election: pre-vote (dissertation §9.6), vote requests and
// responses, and the up-to-date check (Raft paper §5.2, §5.4.1).
// A vote is recorded in the hard state, which the application persists
// before sending the response (RawNode contract), so it is never granted
// twice in one term across a crash.
#include <glog/logging.h>

#include "raft/quorum.h"
#include "raft/raft.h"

namespace raftkv::raft {

void Raft::Hup(bool transfer) {
  if (role_ == Role::kLeader) return;
  if (!Promotable()) {
    LOG(WARNING) << "raft " << id_ << " cannot campaign: "
                 << (rejoin_phase_ != RejoinPhase::kNone
                         ? "it is rejoining after a lost disk"
                         : "it is not a voter");
    return;
  }
  // Membership changes take effect when appended, not when applied
  // (raft_membership.cc), so unapplied entries never hold back a campaign.
  Campaign(config_.pre_vote && !transfer, transfer);
}

void Raft::Campaign(bool pre_vote, bool transfer) {
  uint64_t term;
  MessageType type;
  if (pre_vote) {
    BecomePreCandidate();
    type = MSG_PRE_VOTE;
    term = term_ + 1;  // the term we would campaign in
  } else {
    BecomeCandidate();
    type = MSG_VOTE;
    term = term_;
  }
  if (pre_vote) {
    // A pre-vote changes nothing durable: count our own at once.
    if (Poll(id_, true) == VoteResult::kWon) {
      Campaign(false, transfer);  // single-node cluster
      return;
    }
  } else {
    // Our vote for ourselves counts once it is durable: it comes back to us
    // after the Ready that persists it (Ready::messages_after_persist).
    Message self;
    self.set_to(id_);
    self.set_type(MSG_VOTE_RESP);
    self.set_term(term_);
    Send(std::move(self));
  }
  for (uint64_t peer : voters_) {
    if (peer == id_) continue;
    Message m;
    m.set_to(peer);
    m.set_type(type);
    m.set_term(term);
    m.set_index(log_.LastIndex());
    m.set_log_term(log_.LastTerm());
    if (transfer) m.set_context("transfer");
    Send(std::move(m));
  }
  LOG(INFO) << "raft " << id_ << " sent " << (pre_vote ? "pre-vote" : "vote")
            << " requests for term " << term << " (last index "
            << log_.LastIndex() << ", last term " << log_.LastTerm() << ")";
}

VoteResult Raft::Poll(uint64_t from, bool granted) {
  votes_.emplace(from, granted);  // the first answer from a node counts
  return TallyVotes(voters_, votes_);
}

void Raft::HandleVoteRequest(const Message& m) {
  const bool pre_vote = m.type() == MSG_PRE_VOTE;
  // We can vote for m.from() if we already did in this term, if we have not
  // voted and know no leader, or (pre-vote only) for a future term.
  // A node that lost its disk does not vote until it rejoined (rejoin.h).
  const bool can_vote =
      rejoin_phase_ == RejoinPhase::kNone &&
      (vote_ == m.from() || (vote_ == kNone && lead_ == kNone) ||
       (pre_vote && m.term() > term_));
  Message resp;
  resp.set_to(m.from());
  resp.set_type(pre_vote ? MSG_PRE_VOTE_RESP : MSG_VOTE_RESP);
  if (can_vote && log_.IsUpToDate(m.index(), m.log_term())) {
    // Answer with the term of the request: a pre-candidate must not ignore
    // our grant, and a candidate is already at that term.
    resp.set_term(m.term());
    if (!pre_vote) {
      election_elapsed_ = 0;
      vote_ = m.from();
    }
    VLOG(1) << "raft " << id_ << " grants " << (pre_vote ? "pre-vote" : "vote")
            << " to " << m.from() << " for term " << m.term();
  } else {
    resp.set_term(term_);
    resp.set_reject(true);
    VLOG(1) << "raft " << id_ << " rejects " << (pre_vote ? "pre-vote" : "vote")
            << " from " << m.from() << " for term " << m.term();
  }
  Send(std::move(resp));
}

void Raft::HandleVoteResponse(const Message& m) {
  const bool pre = role_ == Role::kPreCandidate;
  if ((m.type() == MSG_PRE_VOTE_RESP) != pre) return;  // stale answer
  switch (Poll(m.from(), !m.reject())) {
    case VoteResult::kWon:
      if (pre) {
        Campaign(/*pre_vote=*/false, /*transfer=*/false);
      } else {
        BecomeLeader();
        BroadcastAppend();
      }
      break;
    case VoteResult::kLost:
      LOG(INFO) << "raft " << id_ << " lost the "
                << (pre ? "pre-vote" : "election") << " at term " << term_;
      BecomeFollower(term_, kNone);
      break;
    case VoteResult::kPending:
      break;
  }
}

}  // namespace raftkv::raft
