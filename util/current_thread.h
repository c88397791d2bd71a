// The calling thread's name and CPU priority (Linux: each thread has its own
// nice value, addressed by its thread id). Used to name a module's threads
// for `top -H`, perf and gdb, and to run heavy background work below the
// threads that must answer quickly. Only ever lowers a priority, which
// needs no privilege; never raises one. Failures are ignored: a name and a
// priority are hints, not contracts.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace raftkv {

// Names the calling thread (Linux keeps at most 15 characters).
inline void NameCurrentThread(const std::string& name) {
  ::pthread_setname_np(::pthread_self(), name.substr(0, 15).c_str());
}

// Adds `increment` (> 0) to the calling thread's nice value.
inline void LowerCurrentThreadPriority(int increment) {
  if (increment <= 0) return;
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return;
  ::setpriority(PRIO_PROCESS, tid, current + increment);
}

}  // namespace raftkv
