// LoopMonitor: stall bookkeeping (see loop_monitor.h). Never blocks.
#include "server/loop_monitor.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace raftkv::server {
namespace {

std::string Describe(const LoopMonitor::Pass& p) {
  return std::to_string(p.us() / 1000) + " ms (" + std::to_string(p.handlers) +
         " handlers on CPU for " + std::to_string(p.handlers_us / 1000) +
         " ms, then " + std::to_string(p.readys) + " Readys with " +
         std::to_string(p.entries) + " entries and " +
         std::to_string(p.messages) + " messages in " +
         std::to_string(p.ready_us / 1000) + " ms)";
}

// The calling thread's CPU time so far, in microseconds.
int64_t ThreadCpuMicros() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace

LoopMonitor::LoopMonitor(std::chrono::milliseconds warn_after)
    : warn_after_(warn_after), minute_start_(Clock::now()) {}

LoopMonitor::~LoopMonitor() {
  if (schedstat_fd_ >= 0) ::close(schedstat_fd_);
}

void LoopMonitor::OnPass(Pass pass) {
  const int64_t cpu_us = ThreadCpuMicros();
  if (pass_cpu_us_ >= 0) {
    pass.handlers_us =
        std::max<int64_t>(0, cpu_us - pass_cpu_us_ - pass.ready_us);
  }
  pass_cpu_us_ = cpu_us;
  if (pass.us() > longest_pass_.us()) longest_pass_ = pass;
}

bool LoopMonitor::ReadSchedStat(SchedStat* stat) {
  // Opened on the first call, from the loop thread: /proc/thread-self is
  // the thread that opens it. Fields: time on CPU, time waiting on a run
  // queue, time slices (Documentation/scheduler/sched-stats.rst).
  if (schedstat_fd_ == -2) {
    schedstat_fd_ = ::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  }
  if (schedstat_fd_ < 0) return false;
  char buf[128];
  const ssize_t n = ::pread(schedstat_fd_, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return false;
  buf[n] = '\0';
  char* end = nullptr;
  const unsigned long long on_cpu = std::strtoull(buf, &end, 10);
  if (end == buf) return false;
  const char* field = end;
  const unsigned long long delay = std::strtoull(field, &end, 10);
  if (end == field) return false;
  stat->on_cpu_ns = static_cast<int64_t>(on_cpu);
  stat->run_delay_ns = static_cast<int64_t>(delay);
  return true;
}

int64_t LoopMonitor::OnTimer(Clock::time_point due, Clock::time_point now) {
  SchedStat stat;
  const bool have_stat = ReadSchedStat(&stat);
  // Time spent waiting for a CPU and running since the previous timer; the
  // stall lies within that interval.
  Stall stall;
  stall.late_us =
      std::chrono::duration_cast<std::chrono::microseconds>(now - due).count();
  if (have_stat && have_last_) {
    stall.cpu_wait_us = std::min(
        stall.late_us, (stat.run_delay_ns - last_.run_delay_ns) / 1000);
    stall.on_cpu_us = (stat.on_cpu_ns - last_.on_cpu_ns) / 1000;
  }
  have_last_ = have_stat;
  last_ = stat;
  if (now - minute_start_ >= std::chrono::minutes(1)) {
    last_minute_ = this_minute_;
    this_minute_ = Stall();
    minute_start_ = now;
  }
  const Pass longest = longest_pass_;
  longest_pass_ = Pass();
  if (stall.late_us <= 0) return 0;
  if (stall.late_us > max_.late_us) max_ = stall;
  if (stall.late_us > this_minute_.late_us) this_minute_ = stall;
  if (stall.late_us >=
      std::chrono::duration_cast<std::chrono::microseconds>(warn_after_)
          .count()) {
    ++stalls_;
    LOG(WARNING) << "event loop stalled: timers ran " << stall.ms()
                 << " ms late"
                 << (stall.cpu_wait_us >= 0
                         ? " (" + std::to_string(stall.cpu_wait_ms()) +
                               " ms of it waiting for a CPU; the loop ran " +
                               std::to_string(stall.on_cpu_us / 1000) +
                               " ms since the previous timer)"
                         : std::string())
                 << "; its longest pass: " << Describe(longest)
                 << "; the pass under way had run "
                 << (pass_cpu_us_ >= 0
                         ? (ThreadCpuMicros() - pass_cpu_us_) / 1000
                         : 0)
                 << " ms on CPU";
  }
  return stall.late_us;
}

const LoopMonitor::Stall& LoopMonitor::recent_stall() const {
  return this_minute_.late_us >= last_minute_.late_us ? this_minute_
                                                      : last_minute_;
}

}  // namespace raftkv::server
