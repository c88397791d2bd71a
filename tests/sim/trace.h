// Trace: the readable record of a run's last events (message deliveries,
// role and term changes, crashes, partitions, proposals, reads), kept in a
// bounded ring buffer. The simulator builds a line only when a Trace is
// attached, so untraced runs pay nothing; a failing seed is replayed with
// one. Never influences the run it records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace raftkv::sim {

class Trace {
 public:
  // Keeps the last `max_lines` lines (0: keeps every line).
  explicit Trace(size_t max_lines) : max_lines_(max_lines) {}

  void Add(uint64_t now_ms, const std::string& line);
  // The kept lines, oldest first, each prefixed with "t=<ms> ".
  std::vector<std::string> Lines() const;
  // Lines added so far, including those no longer kept.
  uint64_t total() const { return total_; }

 private:
  size_t max_lines_;
  std::vector<std::string> ring_;
  size_t next_ = 0;  // where the next line goes once the ring is full
  uint64_t total_ = 0;
};

}  // namespace raftkv::sim
