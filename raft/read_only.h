// ReadOnlyQueue: the leader's pending ReadIndex requests (dissertation §6.4).
//
// A request records the commit index when it arrived. Requests that arrive
// between two Readys are batched into one "round": the leader broadcasts
// one heartbeat carrying the round number, and once a majority has answered
// a heartbeat of that round or a later one, leadership was confirmed after
// every request of the round arrived, so all of them (and all earlier
// rounds) can be served at their recorded index.
// Not thread-safe; owned by Raft.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace raftkv::raft {

struct ReadRequest {
  uint64_t index = 0;       // commit index when the request arrived
  std::string request_ctx;  // the application's id for the request
  uint64_t from = 0;        // requesting node (the leader itself or a follower)
};

class ReadOnlyQueue {
 public:
  void Add(ReadRequest request) { unsent_.push_back(std::move(request)); }
  bool HasUnsent() const { return !unsent_.empty(); }
  // Moves the unsent requests into a new round and returns its number.
  uint64_t StartRound(uint64_t self);
  // The newest round still waiting for a quorum, or 0 if none.
  uint64_t LastPendingRound() const;
  // Records that `from` answered a heartbeat of round `round`. Returns the
  // requests that are now confirmed, in arrival order. `has_quorum` tells
  // whether a set of acknowledging nodes forms a majority.
  std::vector<ReadRequest> Ack(
      uint64_t round, uint64_t from,
      const std::function<bool(const std::set<uint64_t>&)>& has_quorum);
  // Drops everything (leadership changed). Returns the dropped count.
  size_t Reset();
  size_t PendingCount() const;

 private:
  struct Round {
    uint64_t number;
    std::vector<ReadRequest> requests;
    std::set<uint64_t> acks;
  };
  std::vector<ReadRequest> unsent_;
  std::deque<Round> rounds_;
  uint64_t next_round_ = 1;
};

}  // namespace raftkv::raft
