// SimNetwork: loss, latency, duplication and cut links of the simulated
// network. Every random draw goes through the run's SimRandom; never reads
// the clock except through the EventQueue.
#include "tests/sim/sim_network.h"

#include <memory>

namespace raftkv::sim {

SimNetwork::SimNetwork(int nodes, const NetworkOptions& options,
                       SimRandom* random, EventQueue* queue)
    : nodes_(nodes),
      options_(options),
      random_(random),
      queue_(queue),
      blocked_(static_cast<size_t>(nodes) * nodes, 0) {}

SimNetwork::SendOutcome SimNetwork::Send(const raft::Message& m,
                                         uint64_t sender_incarnation) {
  ++sent_;
  if (random_->Chance(options_.drop_rate)) {
    ++dropped_;
    // The sender of a snapshot learns of the failure when it would have
    // arrived (RawNode::ReportSnapshot); other losses go unnoticed.
    if (m.type() == raft::MSG_SNAP) {
      Schedule(m, sender_incarnation, /*lost=*/true, /*first_copy=*/true);
    }
    return SendOutcome::kLost;
  }
  Schedule(m, sender_incarnation, /*lost=*/false, /*first_copy=*/true);
  if (random_->Chance(options_.duplicate_rate)) {
    ++duplicated_;
    Schedule(m, sender_incarnation, /*lost=*/false, /*first_copy=*/false);
    return SendOutcome::kDuplicated;
  }
  return SendOutcome::kSent;
}

void SimNetwork::Schedule(const raft::Message& m, uint64_t incarnation,
                          bool lost, bool first_copy) {
  auto d = std::make_unique<Delivery>();
  d->message = m;
  d->sender_incarnation = incarnation;
  d->lost = lost;
  d->first_copy = first_copy;
  const uint64_t latency =
      random_->Chance(options_.long_delay_rate)
          ? random_->Between(options_.max_latency_ms,
                             options_.long_delay_max_ms)
          : random_->Between(options_.min_latency_ms, options_.max_latency_ms);
  queue_->Push(queue_->now_ms() + latency, EventType::kDeliver, m.to(),
               std::move(d));
}

void SimNetwork::SetLossRates(double drop_rate, double duplicate_rate,
                              double long_delay_rate) {
  options_.drop_rate = drop_rate;
  options_.duplicate_rate = duplicate_rate;
  options_.long_delay_rate = long_delay_rate;
}

void SimNetwork::Partition(const std::vector<int>& side_of) {
  for (int i = 0; i < nodes_; ++i) {
    for (int j = 0; j < nodes_; ++j) {
      blocked_[i * nodes_ + j] = side_of[i] != side_of[j] ? 1 : 0;
    }
  }
}

void SimNetwork::Isolate(uint64_t node) {
  for (int other = 1; other <= nodes_; ++other) {
    if (static_cast<uint64_t>(other) == node) continue;
    BlockOneWay(node, other);
    BlockOneWay(other, node);
  }
}

void SimNetwork::BlockOneWay(uint64_t from, uint64_t to) {
  if (from != to) blocked_[(from - 1) * nodes_ + (to - 1)] = 1;
}

void SimNetwork::Heal() { blocked_.assign(blocked_.size(), 0); }

std::string SimNetwork::DescribeBlocked() const {
  std::string out;
  for (int from = 1; from <= nodes_; ++from) {
    for (int to = 1; to <= nodes_; ++to) {
      if (from == to || !Blocked(from, to)) continue;
      if (!out.empty()) out += " ";
      out += std::to_string(from) + "->" + std::to_string(to);
    }
  }
  return out.empty() ? "none" : out;
}

}  // namespace raftkv::sim
