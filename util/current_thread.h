// The calling thread's name and CPU priority (Linux: each thread has its own
// nice value, addressed by its thread id). Used to name a module's threads
// for `top -H`, perf and gdb, to run heavy background work below the
// threads that must answer quickly, and to move the one thread that must
// answer first (raftkvd's event loop) into the real-time class while it is
// overdue, where the process is permitted to. Failures of a name, a nice
// value or a slice are ignored (hints, not contracts); the real-time
// request reports its errno.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>

namespace raftkv {

// The calling thread's id (what `top -H` and /proc/PID/task show).
inline pid_t CurrentThreadId() {
  return static_cast<pid_t>(::syscall(SYS_gettid));
}

// Names the calling thread (Linux keeps at most 15 characters).
inline void NameCurrentThread(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

// Adds `increment` (> 0) to the calling thread's nice value.
inline void LowerCurrentThreadPriority(int increment) {
  if (increment <= 0) return;
  const auto tid = static_cast<id_t>(CurrentThreadId());
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return;
  ::setpriority(PRIO_PROCESS, tid, current + increment);
}

// Asks the scheduler for time slices of `slice` on the calling thread
// (Linux 6.12+, EEVDF: sched_attr.sched_runtime of a SCHED_OTHER thread; the
// kernel clamps it to 0.1-100 ms). A thread with a shorter slice gets an
// earlier deadline when it wakes, so it runs sooner after a timer or a
// socket wakes it, without receiving more CPU time overall; its nice value
// is kept. A zero slice restores the kernel's default. Threads inherit the
// slice of the thread that created them. Older kernels ignore the request.
inline void SetCurrentThreadSchedulerSlice(std::chrono::microseconds slice) {
  // The kernel's struct sched_attr, first version (SCHED_ATTR_SIZE_VER0);
  // <linux/sched/types.h> cannot be included next to glibc's <sched.h>.
  struct {
    uint32_t size;
    uint32_t sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime;
    uint64_t sched_deadline;
    uint64_t sched_period;
  } attr{};
  static_assert(sizeof(attr) == 48);
  const pid_t tid = CurrentThreadId();
  errno = 0;
  const int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
  if (nice == -1 && errno != 0) return;
  attr.size = sizeof(attr);
  attr.sched_policy = SCHED_OTHER;
  attr.sched_nice = nice;
  attr.sched_runtime =
      static_cast<uint64_t>(std::chrono::nanoseconds(slice).count());
  ::syscall(SYS_sched_setattr, tid, &attr, 0u);
}

// Moves thread `tid` (0: the calling thread) to the real-time round-robin
// class (SCHED_RR) at `priority` (1-99): from then on it runs as soon as it
// is runnable, ahead of every ordinary thread, on whichever core runs the
// least important work. Threads it creates afterwards start as ordinary
// threads at nice 0 (SCHED_RESET_ON_FORK), never inheriting the class.
// Needs CAP_SYS_NICE, root or an RLIMIT_RTPRIO of at least `priority`;
// returns 0 or the errno (EPERM without the privilege, EINVAL for a
// priority out of range). The kernel still caps all real-time threads
// together at 95% of each core (sched_rt_runtime_us).
inline int RaiseThreadToRealtime(pid_t tid, int priority) {
  sched_param param{};
  param.sched_priority = priority;
  if (::sched_setscheduler(tid, SCHED_RR | SCHED_RESET_ON_FORK, &param) != 0) {
    return errno;
  }
  return 0;
}

}  // namespace raftkv
