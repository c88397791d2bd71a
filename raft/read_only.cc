// Batching of ReadIndex requests into heartbeat rounds (dissertation §6.4).
// Pure bookkeeping: never sends anything itself.
#include "raft/read_only.h"

namespace raftkv::raft {

uint64_t ReadOnlyQueue::StartRound(uint64_t self) {
  Round round{next_round_++, std::move(unsent_), {self}};
  unsent_.clear();
  rounds_.push_back(std::move(round));
  return rounds_.back().number;
}

uint64_t ReadOnlyQueue::LastPendingRound() const {
  return rounds_.empty() ? 0 : rounds_.back().number;
}

std::vector<ReadRequest> ReadOnlyQueue::Ack(
    uint64_t round, uint64_t from,
    const std::function<bool(const std::set<uint64_t>&)>& has_quorum) {
  // An answer to round r also vouches for every earlier round.
  size_t confirmed = 0;
  for (size_t i = 0; i < rounds_.size() && rounds_[i].number <= round; ++i) {
    rounds_[i].acks.insert(from);
    if (has_quorum(rounds_[i].acks)) confirmed = i + 1;
  }
  std::vector<ReadRequest> ready;
  for (size_t i = 0; i < confirmed; ++i) {
    for (ReadRequest& r : rounds_.front().requests) {
      ready.push_back(std::move(r));
    }
    rounds_.pop_front();
  }
  return ready;
}

size_t ReadOnlyQueue::Reset() {
  size_t dropped = PendingCount();
  unsent_.clear();
  rounds_.clear();
  return dropped;
}

size_t ReadOnlyQueue::PendingCount() const {
  size_t n = unsent_.size();
  for (const Round& r : rounds_) n += r.requests.size();
  return n;
}

}  // namespace raftkv::raft
