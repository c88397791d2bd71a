// LoopMonitor: how long raftkvd's event loop was unable to run its timers.
// The loop's tick timer is due every tick; each time it fires, the delay
// past its due time is a stall of the loop (a handler that ran long, the
// process descheduled, or the whole machine paused). The monitor keeps the
// worst stall since start, the worst of the current and previous minute,
// and a count of stalls over the warning threshold, each of which is
// logged. Pure bookkeeping on the loop's thread; never blocks.
#pragma once

#include <chrono>
#include <cstdint>

namespace raftkv::server {

class LoopMonitor {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LoopMonitor(std::chrono::milliseconds warn_after);

  // The tick timer due at `due` fired at `now`.
  void OnTimer(Clock::time_point due, Clock::time_point now);

  int64_t max_stall_ms() const { return max_us_ / 1000; }
  // The worst stall within roughly the last minute.
  int64_t recent_stall_ms() const;
  uint64_t stalls_over_warning() const { return stalls_; }

 private:
  const std::chrono::milliseconds warn_after_;
  int64_t max_us_ = 0;
  int64_t this_minute_us_ = 0;
  int64_t last_minute_us_ = 0;
  Clock::time_point minute_start_;
  uint64_t stalls_ = 0;
};

}  // namespace raftkv::server
