// LoopMonitor: stall bookkeeping (see loop_monitor.h). Never blocks.
#include "server/loop_monitor.h"

#include <glog/logging.h>

#include <algorithm>

namespace raftkv::server {

LoopMonitor::LoopMonitor(std::chrono::milliseconds warn_after)
    : warn_after_(warn_after), minute_start_(Clock::now()) {}

void LoopMonitor::OnTimer(Clock::time_point due, Clock::time_point now) {
  if (now - minute_start_ >= std::chrono::minutes(1)) {
    last_minute_us_ = this_minute_us_;
    this_minute_us_ = 0;
    minute_start_ = now;
  }
  if (now <= due) return;
  const int64_t late_us =
      std::chrono::duration_cast<std::chrono::microseconds>(now - due).count();
  max_us_ = std::max(max_us_, late_us);
  this_minute_us_ = std::max(this_minute_us_, late_us);
  if (late_us >=
      std::chrono::duration_cast<std::chrono::microseconds>(warn_after_)
          .count()) {
    ++stalls_;
    LOG(WARNING) << "event loop stalled: timers ran " << late_us / 1000
                 << " ms late";
  }
}

int64_t LoopMonitor::recent_stall_ms() const {
  return std::max(this_minute_us_, last_minute_us_) / 1000;
}

}  // namespace raftkv::server
