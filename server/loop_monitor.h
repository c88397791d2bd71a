// LoopMonitor: how long raftkvd's event loop was unable to run its timers.
// The loop's tick timer is due every tick; each time it fires, the delay
// past its due time is a stall of the loop (a handler that ran long, the
// thread blocked, or the thread runnable but waiting for a CPU that other
// threads or processes held). The monitor keeps the worst stall since
// start, the worst of the current and previous minute, and a count of
// stalls over the warning threshold, each of which is logged with how much
// of it the thread spent waiting for a CPU (Linux schedstat run_delay):
// that part is the machine's, the rest is the loop's own: running its
// handlers (schedstat's time on CPU) or blocked. To say which of its own
// work it was, the loop reports each pass (the handlers it ran after waking,
// then the Readys it processed), and a stall's log line names the longest
// pass since the previous timer and the CPU time of the pass under way (a
// due tick cuts into a pass, so the stall may lie in that one). Bookkeeping on
// the loop's thread only; never blocks (one read of a /proc file per tick,
// three clock reads a pass).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace raftkv::server {

class LoopMonitor {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LoopMonitor(std::chrono::milliseconds warn_after);
  ~LoopMonitor();
  LoopMonitor(const LoopMonitor&) = delete;
  LoopMonitor& operator=(const LoopMonitor&) = delete;

  // The tick timer due at `due` fired at `now`; returns how late, in
  // microseconds (0 if on time). Called on the loop thread.
  int64_t OnTimer(Clock::time_point due, Clock::time_point now);

  // One pass of the loop after it woke: `handlers` handlers ran, then
  // `readys` Readys carrying `entries` new entries and `messages` messages
  // were processed in `ready_us`.
  struct Pass {
    int64_t handlers_us = 0;  // on CPU (OnPass fills it in)
    int64_t ready_us = 0;
    size_t handlers = 0;
    size_t readys = 0;
    size_t entries = 0;
    size_t messages = 0;
    int64_t us() const { return handlers_us + ready_us; }
  };
  // Called on the loop thread at the end of each pass. The pass's CPU time
  // is the thread's since the previous pass ended (waiting for an event
  // costs none): one clock read a pass, a system call on some machines.
  // Its handlers had what the Readys' time leaves.
  void OnPass(Pass pass);

  // A stall, how much of it the loop thread was runnable but had no CPU,
  // and how long it ran since the previous timer (-1 if the kernel does not
  // say).
  struct Stall {
    int64_t late_us = 0;
    int64_t cpu_wait_us = -1;
    int64_t on_cpu_us = -1;
    int64_t ms() const { return late_us / 1000; }
    int64_t cpu_wait_ms() const {
      return cpu_wait_us < 0 ? -1 : cpu_wait_us / 1000;
    }
  };

  // The worst stall since start.
  const Stall& max_stall() const { return max_; }
  // The worst stall within roughly the last minute.
  const Stall& recent_stall() const;
  uint64_t stalls_over_warning() const { return stalls_; }

 private:
  // The calling thread's schedstat: nanoseconds on a CPU and runnable but
  // not running; false if unknown.
  struct SchedStat {
    int64_t on_cpu_ns = 0;
    int64_t run_delay_ns = 0;
  };
  bool ReadSchedStat(SchedStat* stat);

  const std::chrono::milliseconds warn_after_;
  Stall max_;
  Stall this_minute_;
  Stall last_minute_;
  Clock::time_point minute_start_;
  uint64_t stalls_ = 0;
  int schedstat_fd_ = -2;  // -2: not opened yet; -1: unavailable
  bool have_last_ = false;
  SchedStat last_;
  Pass longest_pass_;         // since the previous timer
  int64_t pass_cpu_us_ = -1;  // the thread's CPU time when the last pass ended
};

}  // namespace raftkv::server
