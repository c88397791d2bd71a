// Tests of util/current_thread.h's real-time request, as raftkvd's loop
// booster makes it: one thread raises another, and no thread the raised
// one starts inherits the class (a snapshot transfer the loop starts while
// raised must run as an ordinary, nicer thread). Needs the privilege to
// ask (root or CAP_SYS_NICE, as in CI); without it the test checks the
// refusal and says so.
#include "util/current_thread.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <cerrno>
#include <future>
#include <thread>

namespace raftkv {
namespace {

struct Scheduling {
  int policy = -1;  // without SCHED_RESET_ON_FORK
  int priority = -1;
  bool reset_on_fork = false;
};

Scheduling CurrentThreadScheduling() {
  Scheduling s;
  const int policy = ::sched_getscheduler(0);
  s.policy = policy & ~SCHED_RESET_ON_FORK;
  s.reset_on_fork = (policy & SCHED_RESET_ON_FORK) != 0;
  sched_param param{};
  ::sched_getparam(0, &param);
  s.priority = param.sched_priority;
  return s;
}

TEST(CurrentThreadTest, ARaisedThreadsChildrenStartAsOrdinaryThreads) {
  std::promise<pid_t> tid;
  std::promise<int> raised;
  Scheduling realtime, child;
  std::thread thread([&] {
    tid.set_value(CurrentThreadId());
    if (raised.get_future().get() != 0) return;
    realtime = CurrentThreadScheduling();
    std::thread([&] { child = CurrentThreadScheduling(); }).join();
  });
  // Raised by another thread, as the booster's watcher raises the loop.
  const int refused = RaiseThreadToRealtime(tid.get_future().get(), 10);
  raised.set_value(refused);
  thread.join();

  if (refused != 0) {
    EXPECT_EQ(refused, EPERM);
    GTEST_SKIP() << "real-time priority refused (EPERM): run as root or with "
                    "CAP_SYS_NICE to test it";
  }
  EXPECT_EQ(realtime.policy, SCHED_RR);
  EXPECT_EQ(realtime.priority, 10);
  EXPECT_TRUE(realtime.reset_on_fork);
  EXPECT_EQ(child.policy, SCHED_OTHER);
  EXPECT_EQ(child.priority, 0);
  EXPECT_FALSE(child.reset_on_fork);
}

TEST(CurrentThreadTest, AnInvalidRealtimePriorityIsRefused) {
  int refused = 0;
  std::thread([&] { refused = RaiseThreadToRealtime(0, 100); }).join();
  EXPECT_EQ(refused, EINVAL);
}

}  // namespace
}  // namespace raftkv
