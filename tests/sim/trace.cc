// Trace: bounded ring buffer of event lines. Never grows past its bound.
#include "tests/sim/trace.h"

namespace raftkv::sim {

void Trace::Add(uint64_t now_ms, const std::string& line) {
  ++total_;
  std::string stamped = "t=" + std::to_string(now_ms) + " " + line;
  if (max_lines_ == 0 || ring_.size() < max_lines_) {
    ring_.push_back(std::move(stamped));
    return;
  }
  ring_[next_] = std::move(stamped);
  next_ = (next_ + 1) % max_lines_;
}

std::vector<std::string> Trace::Lines() const {
  std::vector<std::string> out;
  out.reserve(ring_.size());
  for (size_t i = 0; i < ring_.size(); ++i) {
    out.push_back(ring_[(next_ + i) % ring_.size()]);
  }
  return out;
}

}  // namespace raftkv::sim
