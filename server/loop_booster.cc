#include "server/loop_booster.h"

#include <algorithm>

#include "server/stage_thread.h"
#include "util/current_thread.h"

namespace raftkv::server {
namespace {

int64_t Nanos(LoopBooster::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             t.time_since_epoch())
      .count();
}

}  // namespace

std::unique_ptr<LoopBooster> LoopBooster::Start(const Options& options,
                                                Clock::time_point first_tick,
                                                int* refused) {
  std::unique_ptr<LoopBooster> booster(
      new LoopBooster(options, CurrentThreadId(), first_tick));
  *refused = booster->started_.get_future().get();
  if (*refused != 0) return nullptr;  // the watcher has ended; joined here
  return booster;
}

LoopBooster::LoopBooster(const Options& options, pid_t loop_thread,
                         Clock::time_point first_tick)
    : options_(options),
      loop_thread_(loop_thread),
      next_tick_ns_(Nanos(first_tick)) {
  watcher_ = std::thread([this] {
    NameCurrentThread("rkv-loopwatch");
    // Real-time itself, or it would be as late as the loop.
    const int refused = RaiseThreadToRealtime(0, options_.priority);
    started_.set_value(refused);
    if (refused == 0) Watch();
  });
}

LoopBooster::~LoopBooster() {
  stop_.store(true);
  watcher_.join();
  if (raised_.load()) SetUpEventLoopThread();
}

void LoopBooster::Watch() {
  const Clock::duration period = options_.tick;
  Clock::time_point wake = Clock::now() + period;
  while (!stop_.load(std::memory_order_relaxed)) {
    std::this_thread::sleep_until(wake);
    const Clock::time_point now = Clock::now();
    wake = std::max(wake + period, now + period / 2);
    if (raised_.load(std::memory_order_acquire)) continue;
    const int64_t overdue_at =
        next_tick_ns_.load(std::memory_order_relaxed) +
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            options_.overdue_after)
            .count();
    if (Nanos(now) < overdue_at) continue;
    if (RaiseThreadToRealtime(loop_thread_, options_.priority) == 0) {
      if (options_.raises != nullptr) options_.raises->Inc();
      // After the raise: a tick that runs in between lowers nothing, and
      // the next one lowers the loop.
      raised_.store(true, std::memory_order_release);
    }
  }
}

void LoopBooster::OnTick(Clock::time_point next_tick) {
  next_tick_ns_.store(Nanos(next_tick), std::memory_order_relaxed);
  if (raised_.load(std::memory_order_acquire)) {
    SetUpEventLoopThread();  // an ordinary thread again, short slices
    raised_.store(false, std::memory_order_release);
  }
}

}  // namespace raftkv::server
