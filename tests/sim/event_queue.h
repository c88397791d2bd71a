// EventQueue: the simulated clock. Events are ordered by (time in ms,
// insertion order), so equal times never depend on anything but the order
// in which the deterministic harness scheduled them. Never reads the wall
// clock; time only moves when an event is popped.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "raft/raft.pb.h"

namespace raftkv::sim {

// A message on the wire.
struct Delivery {
  raft::Message message;
  // The sender's incarnation when it sent (a restarted sender does not get
  // reports about its previous life's snapshots).
  uint64_t sender_incarnation = 0;
  // Dropped by the network. Only MSG_SNAP is scheduled when lost, so that
  // its sender learns at "delivery" time that it failed.
  bool lost = false;
  // The original, not the network's duplicate.
  bool first_copy = true;
};

// kDiskWrite: node's oldest pending write completes (if the node is still
// in the incarnation that queued it: `delivery` is unused, `incarnation`
// says which).
enum class EventType {
  kTick,
  kDeliver,
  kFault,
  kPropose,
  kRead,
  kDiskWrite,
  kMembership,
};

struct Event {
  uint64_t time_ms = 0;
  uint64_t seq = 0;
  EventType type = EventType::kTick;
  uint64_t node = 0;                   // kTick, kDiskWrite: the node
  uint64_t incarnation = 0;            // kDiskWrite
  std::unique_ptr<Delivery> delivery;  // kDeliver only
};

class EventQueue {
 public:
  void Push(uint64_t time_ms, EventType type, uint64_t node,
            std::unique_ptr<Delivery> delivery = nullptr);
  void PushDiskWrite(uint64_t time_ms, uint64_t node, uint64_t incarnation);
  bool empty() const { return heap_.empty(); }
  // Removes the earliest event and advances now_ms() to its time.
  Event Pop();
  uint64_t now_ms() const { return now_ms_; }

 private:
  void PushEvent(Event e);

  std::vector<Event> heap_;  // a min-heap on (time_ms, seq)
  uint64_t now_ms_ = 0;
  uint64_t next_seq_ = 0;
};

}  // namespace raftkv::sim
