// How raftkvctl's long-running commands (watch, lease keep-alive, elect,
// lock) wait: for SIGINT or SIGTERM, which end them cleanly (exit 0), and
// for what the client library's callbacks hand over from its I/O thread,
// which must not block on the terminal.
//
// The stop signals are blocked in every thread and taken synchronously:
// BlockStopSignals() must run before the Client starts its threads, which
// inherit the mask. Not for the short commands: those keep the default
// (Ctrl-C ends them at once).
#pragma once

#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

namespace raftkv::ctl {

void BlockStopSignals();
// Waits up to `timeout` (0: just looks) for SIGINT or SIGTERM; the signal
// taken, or 0 if none came.
int StopSignalWithin(std::chrono::milliseconds timeout);
// The mask the process started with (what a child process should get).
const sigset_t& OriginalSignalMask();

// Items handed from the client's I/O thread to the main thread.
// Thread-safe.
template <typename T>
class Inbox {
 public:
  void Push(T item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }
  // Whatever has arrived, waiting up to `timeout` for the first item.
  std::vector<T> Take(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return !items_.empty(); });
    std::vector<T> out;
    while (!items_.empty()) {
      out.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;
};

// How often a waiting command looks for a stop signal.
inline constexpr std::chrono::milliseconds kStopPollInterval{50};

}  // namespace raftkv::ctl
