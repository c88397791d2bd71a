// Names and CPU priorities of raftkvd's stage threads. On a small machine
// every thread competes for the same few cores; the event loop (timers,
// heartbeats, socket reads) must win that competition, so the heavy stages
// run at a lower CPU priority (a higher nice value) than the loop. The
// event loop is the main thread and keeps the process name, raftkvd; it
// asks for short scheduler slices, so that it runs soon after it wakes, and
// where the process may (CAP_SYS_NICE or root) a LoopBooster raises it to
// the real-time class whenever its tick is overdue. Nothing here waits or
// fails the node: a priority not granted is logged and the node runs
// without it.
#pragma once

#include <chrono>

#include "util/current_thread.h"

namespace raftkv::server {

// How much nicer than the event loop each stage runs. The log writer sits
// on the commit path (an append is acknowledged once it is durable) so it
// stays close to the loop; the applier and snapshot transfers are
// throughput work that may wait a few milliseconds for a core. RocksDB's
// compactions run at kCompactionNice (storage::EngineOptions).
inline constexpr int kLogWriterNice = 2;
inline constexpr int kApplierNice = 5;
inline constexpr int kWatchNice = 5;
inline constexpr int kCompactionNice = 5;
inline constexpr int kSnapshotTransferNice = 10;

// The event loop's scheduler slice (EEVDF): the kernel's shortest, so a
// timer or a socket that wakes the loop preempts the heavy stages at once
// instead of after their slice (1.4 ms by default on 2 cores, and a few of
// them in a row when several stages are runnable).
inline constexpr std::chrono::microseconds kEventLoopSlice{100};

// The real-time priority the event loop is raised to while its tick is
// overdue (--event_loop_rt_priority; server/loop_booster.h): above every
// ordinary thread, below the kernel's interrupt threads (50).
inline constexpr int kEventLoopRealtimePriority = 10;

// Called first by the event loop's thread.
inline void SetUpEventLoopThread() {
  SetCurrentThreadSchedulerSlice(kEventLoopSlice);
}

// Called first on each stage thread.
inline void SetUpStageThread(const char* name, int nice_increment) {
  NameCurrentThread(name);
  SetCurrentThreadSchedulerSlice(std::chrono::microseconds(0));  // default
  LowerCurrentThreadPriority(nice_increment);
}

}  // namespace raftkv::server
