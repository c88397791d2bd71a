// SimNetwork: the simulated network between the nodes of one run. A sent
// message is lost (drop rate), or scheduled for delivery after a random
// latency (so messages reorder), sometimes twice (duplication). Links can be
// cut both ways (partitions) or one way; a cut link drops what arrives while
// it is cut. Never sends anything anywhere: it only schedules events.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "raft/raft.pb.h"
#include "tests/sim/event_queue.h"
#include "tests/sim/sim_random.h"

namespace raftkv::sim {

struct NetworkOptions {
  double drop_rate = 0.05;
  double duplicate_rate = 0.02;
  int min_latency_ms = 1;
  int max_latency_ms = 30;
  // Some messages (and duplicates) are held up far longer, up to
  // long_delay_max_ms, and arrive long after newer ones (stale messages).
  double long_delay_rate = 0.01;
  int long_delay_max_ms = 500;
};

class SimNetwork {
 public:
  // Nodes are 1..nodes. `random` and `queue` must outlive the network.
  SimNetwork(int nodes, const NetworkOptions& options, SimRandom* random,
             EventQueue* queue);

  enum class SendOutcome { kLost, kSent, kDuplicated };
  // Puts `m` on the wire now.
  SendOutcome Send(const raft::Message& m, uint64_t sender_incarnation);
  // True when messages from `from` to `to` are being dropped.
  bool Blocked(uint64_t from, uint64_t to) const {
    return blocked_[(from - 1) * nodes_ + (to - 1)] != 0;
  }

  // Loss, duplication and long-delay rates from now on.
  void SetLossRates(double drop_rate, double duplicate_rate,
                    double long_delay_rate);
  // Nodes whose sides differ cannot talk (side_of[i] is node i+1's side).
  void Partition(const std::vector<int>& side_of);
  // Cuts every link to and from `node`.
  void Isolate(uint64_t node);
  void BlockOneWay(uint64_t from, uint64_t to);
  // Restores every link.
  void Heal();
  // The cut links, e.g. "1->2 2->1 3->1", or "none".
  std::string DescribeBlocked() const;

  uint64_t sent() const { return sent_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t duplicated() const { return duplicated_; }

 private:
  void Schedule(const raft::Message& m, uint64_t incarnation, bool lost,
                bool first_copy);

  const int nodes_;
  NetworkOptions options_;
  SimRandom* random_;
  EventQueue* queue_;
  std::vector<char> blocked_;  // [from - 1][to - 1], row-major
  uint64_t sent_ = 0;
  uint64_t dropped_ = 0;
  uint64_t duplicated_ = 0;
};

}  // namespace raftkv::sim
