#include "tools/raftkvctl_wait.h"

#include <pthread.h>

#include <cerrno>
#include <ctime>

namespace raftkv::ctl {
namespace {

sigset_t original_mask;

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockStopSignals() {
  const sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, &original_mask);
}

int StopSignalWithin(std::chrono::milliseconds timeout) {
  const sigset_t set = StopSignals();
  timespec ts;
  ts.tv_sec = timeout.count() / 1000;
  ts.tv_nsec = (timeout.count() % 1000) * 1000000L;
  for (;;) {
    const int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) return sig;
    if (errno != EINTR) return 0;  // EAGAIN: none within the timeout
  }
}

const sigset_t& OriginalSignalMask() { return original_mask; }

}  // namespace raftkv::ctl
