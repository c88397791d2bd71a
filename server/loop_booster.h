// LoopBooster: raises raftkvd's event loop to the real-time class while
// its tick is overdue, and lowers it again as soon as the tick has run.
//
// Why (measured in docs/steadiness.md): on a busy small machine an
// ordinary thread that becomes runnable can wait tens of milliseconds for
// a core (other threads' slices end only at the 4 ms scheduler tick, a
// kernel without preemption finishes its system calls first, a kernel
// thread may hold a core for 30 ms), and the loop's heartbeats wait with
// it. Running the loop real-time all the time ends those waits but costs a
// quarter of the write throughput: it wakes for every message and so
// batches less (1.8x the passes, 1.5x the fsyncs). Raised only while
// overdue, it batches as before and is never more than about one tick late.
//
// A watcher thread, itself real-time, wakes every tick and compares
// the clock with the loop's next tick; once that is `overdue_after` past
// due it raises the loop's thread; the loop, when its tick runs, calls
// OnTick(), which lowers it back (one system call, only after a raise).
// The watcher never touches the loop's data: it reads one atomic and
// changes the loop thread's scheduling class, nothing else.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <thread>

#include "server/metrics.h"

namespace raftkv::server {

class LoopBooster {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    int priority = 0;  // SCHED_RR priority, 1-99
    Clock::duration tick{};
    Clock::duration overdue_after{};
    Counter* raises = nullptr;  // counts each raise, if set
  };

  // Called on the event loop's thread: that thread is the one raised.
  // Starts the watcher at `priority`; returns null and sets `*refused` to
  // the errno if the process may not run real-time threads (or the
  // priority is out of range).
  static std::unique_ptr<LoopBooster> Start(const Options& options,
                                            Clock::time_point first_tick,
                                            int* refused);
  // Stops and joins the watcher (within a tick); called on the loop's
  // thread, which it leaves an ordinary thread.
  ~LoopBooster();
  LoopBooster(const LoopBooster&) = delete;
  LoopBooster& operator=(const LoopBooster&) = delete;

  // Called on the loop's thread each time its tick ran; the next is due
  // at `next_tick`. Lowers the loop back to an ordinary thread (with its
  // scheduler slice) if it was raised.
  void OnTick(Clock::time_point next_tick);

 private:
  LoopBooster(const Options& options, pid_t loop_thread,
              Clock::time_point first_tick);
  void Watch();

  const Options options_;
  const pid_t loop_thread_;
  std::atomic<int64_t> next_tick_ns_;  // Clock's time since epoch
  std::atomic<bool> raised_{false};    // set by the watcher, cleared by OnTick
  std::atomic<bool> stop_{false};
  std::promise<int> started_;  // the watcher's own raise: 0 or the errno
  std::thread watcher_;
};

}  // namespace raftkv::server
