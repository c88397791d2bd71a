// The start-up poll of a node with blank storage, and rejoining after a
// lost disk, on both sides: the rejoining follower and the leader that
// catches it up (protocol and safety argument in rejoin.h). Never lets a
// polling or rejoining node vote, campaign or count in a quorum.
#include <glog/logging.h>

#include "raft/raft.h"

namespace raftkv::raft {

uint64_t Raft::RandomNonZero() {
  uint64_t v = 0;
  while (v == 0) v = rng_();
  return v;
}

// --- The poll ----------------------------------------------------------------

void Raft::StartPoll() {
  rejoin_phase_ = RejoinPhase::kPolling;
  poll_ = std::make_unique<StartupPoll>(voters_, id_,
                                        std::to_string(RandomNonZero()));
  if (poll_->outcome() == StartupPoll::Outcome::kNewCluster) {
    poll_.reset();  // a single-node cluster: nobody to ask
    rejoin_phase_ = RejoinPhase::kNone;
    return;
  }
  LOG(INFO) << "raft " << id_
            << " starts with blank storage: asking its peers whether the "
               "cluster already exists";
  SendPoll();
}

void Raft::SendPoll() {
  for (uint64_t peer : poll_->PeersToAsk()) {
    Message m;
    m.set_to(peer);
    m.set_type(MSG_POLL);
    m.set_context(poll_->nonce());
    Send(std::move(m));
  }
}

void Raft::TickPoll() {
  if (++poll_elapsed_ < config_.election_tick) return;
  poll_elapsed_ = 0;
  SendPoll();  // peers may have been down, or blank and since elected
}

void Raft::HandlePoll(const Message& m) {
  Message resp;
  resp.set_to(m.from());
  resp.set_type(MSG_POLL_RESP);
  resp.set_term(term_);
  resp.set_index(log_.LastIndex());
  // A polling node answers as the blank node it is; a rejoining one knows
  // nothing reliable about the terms of its lost incarnation.
  resp.set_reject(rejoin_phase_ == RejoinPhase::kRejoining);
  resp.set_context(m.context());
  Send(std::move(resp));
}

void Raft::HandlePollResponse(const Message& m) {
  if (rejoin_phase_ != RejoinPhase::kPolling || m.context() != poll_->nonce()) {
    return;  // an answer to an earlier life's poll
  }
  switch (poll_->Record(m.from(), m.term(), m.index(), m.reject())) {
    case StartupPoll::Outcome::kPending:
      return;
    case StartupPoll::Outcome::kNewCluster:
      LOG(INFO) << "raft " << id_ << ": no peer has any state ("
                << poll_->Describe() << "): this is a new cluster";
      rejoin_phase_ = RejoinPhase::kNone;
      election_elapsed_ = 0;
      break;
    case StartupPoll::Outcome::kRejoin:
      rejoin_phase_ = RejoinPhase::kRejoining;
      incarnation_ = RandomNonZero();
      if (poll_->max_term() > term_) {
        BecomeFollower(poll_->max_term(), kNone);
      }
      LOG(WARNING) << "raft " << id_
                   << ": the cluster exists but this node's storage is blank "
                      "(a lost or replaced disk?) ("
                   << poll_->Describe() << "); rejoining as incarnation "
                   << incarnation_ << " at term " << term_
                   << ": no votes until it has caught up";
      break;
  }
  poll_.reset();
}

// --- The rejoining follower --------------------------------------------------

void Raft::MaybeFinishRejoin() {
  const uint64_t committed = log_.committed();
  if (committed <= rejoin_scanned_) return;
  // Committed entries we hold that have not been searched yet (those under
  // a snapshot are gone; the leader sends a new record after a snapshot).
  const uint64_t from = std::max(rejoin_scanned_ + 1, log_.FirstIndex());
  rejoin_scanned_ = committed;
  if (from > committed) return;
  std::vector<Entry> entries;
  Status s = log_.Slice(from, committed + 1, UINT64_MAX, &entries);
  CHECK(s.ok()) << "committed entries unavailable: " << s.ToString();
  for (const Entry& e : entries) {
    if (!IsRejoinEntryFor(e, id_, incarnation_)) continue;
    LOG(WARNING) << "raft " << id_ << " rejoined at index " << e.index()
                 << " (term " << e.term() << "): incarnation " << incarnation_
                 << " votes again";
    rejoin_phase_ = RejoinPhase::kNone;
    return;
  }
}

// --- The leader --------------------------------------------------------------

bool Raft::TrackIncarnation(const Message& m, Progress& pr) {
  const uint64_t incarnation = m.incarnation();
  const bool first = !pr.heard();
  pr.set_heard();
  if (incarnation != pr.incarnation() && first && !m.rejoining() &&
      pr.incarnation() == 0) {
    // A node that rejoined under an earlier leader keeps its incarnation
    // and says it is no longer rejoining only once a record of it was
    // committed: it holds every committed entry, and its acknowledgements
    // are of its present disk. Tracked as if this leader had seen it
    // rejoin, without a new record or a round trip out of the quorum.
    pr.AdoptRejoinedIncarnation(incarnation);
    return true;
  }
  if (incarnation != pr.incarnation()) {
    // A response of a life we already saw replaced is stale; its acks
    // belong to a disk that is gone.
    if (pr.IsRetired(incarnation)) return false;
    if (incarnation != 0) {
      LOG(WARNING) << "raft " << id_ << ": node " << m.from()
                   << " speaks as incarnation " << incarnation
                   << (m.rejoining() ? " (rejoining after a lost disk)" : "")
                   << "; it is left out of every quorum until it "
                   << "acknowledges a rejoin record (it had match "
                   << pr.match() << ")";
    }
    // Everything known of the old life is forgotten. The record appended
    // now fences the new one: no message of an older life can acknowledge
    // an entry created after this point.
    pr.SwitchIncarnation(incarnation, log_.LastIndex() + 1);
    AppendRejoinRecord(m.from(), pr);
  } else if (pr.rejoining() && pr.rejoin_index() == 0 &&
             pr.state() != ProgressState::kSnapshot) {
    AppendRejoinRecord(m.from(), pr);  // the last one went into a snapshot
  }
  pr.set_reported_rejoined(!m.rejoining());
  return true;
}

void Raft::AppendRejoinRecord(uint64_t node, Progress& pr) {
  CHECK(AppendEntries({MakeRejoinEntry(node, pr.incarnation())}))
      << "a rejoin record carries no payload and is never refused";
  pr.set_rejoin_index(log_.LastIndex());
  VLOG(1) << "raft " << id_ << " appends the rejoin record of node " << node
          << " at index " << pr.rejoin_index();
}

bool Raft::AdmitRejoinedPeers() {
  bool admitted = false;
  for (auto& [peer, pr] : progress_) {
    if (!pr.rejoining() || pr.rejoin_index() == 0 ||
        pr.match() < pr.rejoin_index()) {
      continue;
    }
    // The node holds our record. Either the record committed (on a
    // majority without the node) or the node says it saw a record of its
    // own committed (an earlier leader's): it holds every committed entry.
    if (log_.committed() < pr.rejoin_index() && !pr.reported_rejoined()) {
      continue;
    }
    LOG(WARNING) << "raft " << id_ << ": node " << peer << " (incarnation "
                 << pr.incarnation()
                 << ") has caught up: it counts in quorums again";
    pr.FinishRejoin();
    admitted = true;
  }
  return admitted;
}

}  // namespace raftkv::raft
