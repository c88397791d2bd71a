// EventQueue: a binary min-heap of events on (time, insertion order).
// Never reorders events of equal time.
#include "tests/sim/event_queue.h"

#include <glog/logging.h>

#include <algorithm>

namespace raftkv::sim {
namespace {

// std::*_heap build a max-heap: "a < b" means a is popped after b.
bool Later(const Event& a, const Event& b) {
  return a.time_ms != b.time_ms ? a.time_ms > b.time_ms : a.seq > b.seq;
}

}  // namespace

void EventQueue::Push(uint64_t time_ms, EventType type, uint64_t node,
                      std::unique_ptr<Delivery> delivery) {
  Event e;
  e.time_ms = time_ms;
  e.type = type;
  e.node = node;
  e.delivery = std::move(delivery);
  PushEvent(std::move(e));
}

void EventQueue::PushDiskWrite(uint64_t time_ms, uint64_t node,
                               uint64_t incarnation) {
  Event e;
  e.time_ms = time_ms;
  e.type = EventType::kDiskWrite;
  e.node = node;
  e.incarnation = incarnation;
  PushEvent(std::move(e));
}

void EventQueue::PushEvent(Event e) {
  CHECK_GE(e.time_ms, now_ms_) << "an event cannot be scheduled in the past";
  e.seq = next_seq_++;
  heap_.push_back(std::move(e));
  std::push_heap(heap_.begin(), heap_.end(), Later);
}

Event EventQueue::Pop() {
  CHECK(!heap_.empty());
  std::pop_heap(heap_.begin(), heap_.end(), Later);
  Event e = std::move(heap_.back());
  heap_.pop_back();
  now_ms_ = e.time_ms;
  return e;
}

}  // namespace raftkv::sim
