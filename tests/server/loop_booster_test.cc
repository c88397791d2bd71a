// Tests of LoopBooster: a loop whose tick is overdue is raised to the
// real-time class and lowered once it ticks; a loop that ticks on time
// is never raised. A test thread plays the event loop. The margins are
// generous (a loop counts as overdue only a second past its tick), so a
// busy machine cannot raise the punctual loop. Needs the privilege to
// raise (root or CAP_SYS_NICE, as in CI); without it the test checks that
// the booster is refused and says so.
#include "server/loop_booster.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <cerrno>
#include <thread>

namespace raftkv::server {
namespace {

using Clock = LoopBooster::Clock;
using std::chrono::milliseconds;

int CurrentPolicy() { return ::sched_getscheduler(0) & ~SCHED_RESET_ON_FORK; }

LoopBooster::Options Options(Counter* raises) {
  LoopBooster::Options options;
  options.priority = 10;
  options.tick = milliseconds(100);
  options.overdue_after = milliseconds(1000);
  options.raises = raises;
  return options;
}

TEST(LoopBoosterTest, AnOverdueLoopIsRaisedUntilItTicks) {
  Counter raises;
  int refused = -1, policy_overdue = -1, policy_after_tick = -1;
  std::thread loop([&] {
    auto booster = LoopBooster::Start(Options(&raises), Clock::now(), &refused);
    if (booster == nullptr) return;
    // The tick was due now and never runs: within a second or so of
    // being overdue the loop is real-time.
    const auto give_up = Clock::now() + std::chrono::seconds(30);
    while (CurrentPolicy() != SCHED_RR && Clock::now() < give_up) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    policy_overdue = CurrentPolicy();
    // Lowered by a tick: the first, or the second if it ran between the
    // watcher's raise and its note of it.
    for (int i = 0; i < 2 && CurrentPolicy() != SCHED_OTHER; ++i) {
      booster->OnTick(Clock::now() + milliseconds(100));
      std::this_thread::sleep_for(milliseconds(10));
    }
    policy_after_tick = CurrentPolicy();
  });
  loop.join();
  if (refused != 0) {
    EXPECT_EQ(refused, EPERM);
    GTEST_SKIP() << "real-time priority refused: run as root or with "
                    "CAP_SYS_NICE to test the booster";
  }
  EXPECT_EQ(policy_overdue, SCHED_RR);
  EXPECT_EQ(policy_after_tick, SCHED_OTHER);
  EXPECT_EQ(raises.value(), 1u);
}

TEST(LoopBoosterTest, ALoopThatTicksOnTimeIsNeverRaised) {
  Counter raises;
  int refused = -1;
  bool ever_raised = false;
  std::thread loop([&] {
    auto booster = LoopBooster::Start(
        Options(&raises), Clock::now() + milliseconds(100), &refused);
    if (booster == nullptr) return;
    for (int i = 0; i < 30; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
      booster->OnTick(Clock::now() + milliseconds(100));
      ever_raised |= CurrentPolicy() != SCHED_OTHER;
    }
  });
  loop.join();
  if (refused != 0) GTEST_SKIP() << "real-time priority refused";
  EXPECT_FALSE(ever_raised);
  EXPECT_EQ(raises.value(), 0u);
}

}  // namespace
}  // namespace raftkv::server
