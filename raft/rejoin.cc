// The start-up poll's tally and the ENTRY_REJOIN record (see rejoin.h).
// Pure functions of their inputs.
#include "raft/rejoin.h"

#include <glog/logging.h>

#include <algorithm>
#include <sstream>

#include "raft/quorum.h"

namespace raftkv::raft {

size_t RejoinPollQuorum(size_t voters) {
  // Any majority holds MajoritySize(n) - 1 nodes other than this one among
  // the n - 1 others; this many of the others always meet them.
  return voters - MajoritySize(voters) + 1;
}

bool IsBlank(const HardState& hard_state, const Storage& storage) {
  return !hard_state.initialized() && hard_state.term() == 0 &&
         hard_state.vote() == 0 && hard_state.commit() == 0 &&
         hard_state.incarnation() == 0 && storage.FirstIndex() == 1 &&
         storage.LastIndex() == 0;
}

Entry MakeRejoinEntry(uint64_t node, uint64_t incarnation) {
  RejoinRecord record;
  record.set_node(node);
  record.set_incarnation(incarnation);
  Entry entry;
  entry.set_type(ENTRY_REJOIN);
  CHECK(record.SerializeToString(entry.mutable_data()));
  return entry;
}

bool IsRejoinEntryFor(const Entry& entry, uint64_t node, uint64_t incarnation) {
  if (entry.type() != ENTRY_REJOIN) return false;
  RejoinRecord record;
  return record.ParseFromString(entry.data()) && record.node() == node &&
         record.incarnation() == incarnation;
}

StartupPoll::StartupPoll(std::set<uint64_t> voters, uint64_t self,
                         std::string nonce)
    : voters_(std::move(voters)), self_(self), nonce_(std::move(nonce)) {
  outcome_ = Decide();
}

StartupPoll::Outcome StartupPoll::Record(uint64_t from, uint64_t term,
                                         uint64_t last_index, bool rejoining) {
  if (outcome_ != Outcome::kPending || from == self_ ||
      voters_.count(from) == 0) {
    return outcome_;
  }
  PeerState state = PeerState::kNormal;
  if (rejoining) {
    state = PeerState::kRejoining;
  } else if (term == 0 && last_index == 0) {
    state = PeerState::kBlank;
  }
  answers_[from] = state;
  max_term_ = std::max(max_term_, term);
  outcome_ = Decide();
  return outcome_;
}

StartupPoll::Outcome StartupPoll::Decide() const {
  size_t blank = 0, normal = 0, rejoining = 0;
  for (const auto& [peer, state] : answers_) {
    switch (state) {
      case PeerState::kBlank:
        ++blank;
        break;
      case PeerState::kNormal:
        ++normal;
        break;
      case PeerState::kRejoining:
        ++rejoining;
        break;
    }
  }
  if (normal == 0 && rejoining == 0 &&
      blank + 1 >= MajoritySize(voters_.size())) {
    return Outcome::kNewCluster;
  }
  if (normal >= RejoinPollQuorum(voters_.size())) return Outcome::kRejoin;
  return Outcome::kPending;
}

std::vector<uint64_t> StartupPoll::PeersToAsk() const {
  std::vector<uint64_t> out;
  for (uint64_t peer : voters_) {
    if (peer == self_) continue;
    auto it = answers_.find(peer);
    if (it == answers_.end() || it->second != PeerState::kNormal) {
      out.push_back(peer);
    }
  }
  return out;
}

std::string StartupPoll::Describe() const {
  std::ostringstream os;
  os << "answers:";
  for (const auto& [peer, state] : answers_) {
    os << " " << peer << "="
       << (state == PeerState::kBlank       ? "blank"
           : state == PeerState::kRejoining ? "rejoining"
                                            : "normal");
  }
  os << ", highest term " << max_term_;
  return os.str();
}

}  // namespace raftkv::raft
