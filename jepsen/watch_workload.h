// The watch workload of raftkv-jepsen (issue 12): `concurrency` writers put
// and delete single keys "w/0" .. "w/9" (puts three times in four, values
// unique over the run) at `rate` writes per second, recording every
// acknowledged write's revision; `watchers` watchers, each with its own
// Client whose first endpoint is a different node where there are enough
// (watcher i starts on node i mod n), watch the prefix "w/" from revision 1
// and record every event they are given, while the client library resumes
// them across kills, partitions, pauses and membership changes. History
// records as jepsen/watch_checker.h describes them.
//
// End (FinalRead, after the final heal): one linearizable read of the
// prefix, recorded with its revision R; then one more put (key "w/fence",
// recorded like every put) whose revision F > R tells each watcher's
// progress: every watcher is waited for until it has delivered through F
// (within the timeout), then cancelled, and its end recorded with the
// revision it delivered through. A watch that ends by itself (compacted,
// refused) is recorded as info with the reason, at once.
//
// Processes: watchers are 0 .. watchers-1 for the whole run; writers start
// at `watchers` and, as in the other workloads, continue as a new process
// (with a new Client) after an unknown outcome. After a membership change
// writers rebuild their Client over the new members; watchers keep theirs
// (their resume across nodes is part of what is tested).
//
// Must never: record an event the callback was not given, block the
// client's I/O thread (the callbacks only append to the Recorder), or run
// unbounded (writers stop at Stop(), the final phase within its timeout).
// Thread-safety: Start/Stop/SetEndpoints/FinalRead from one thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "jepsen/recorder.h"
#include "jepsen/workload.h"

namespace raftkv::jepsen {

class WatchWorkload : public ClientWorkload {
 public:
  static constexpr const char* kPrefix = "w/";
  static constexpr int kKeys = 10;

  WatchWorkload(WorkloadOptions options, Recorder* recorder);
  ~WatchWorkload() override;  // stops the writers, cancels the watchers
  WatchWorkload(const WatchWorkload&) = delete;
  WatchWorkload& operator=(const WatchWorkload&) = delete;

  // Starts the watchers, then the writers.
  Status Start() override;
  // Stops the writers (each finishes its operation); watchers go on.
  void Stop() override;
  void SetEndpoints(std::vector<std::string> endpoints) override;
  // The final read, the fence write, the wait for the watchers and their
  // ends (see above). Unavailable if the read or the fence never succeeded
  // (the watchers are cancelled and recorded anyway); DeadlineExceeded-like
  // Timeout if some watcher did not reach the fence in time.
  Status FinalRead(std::chrono::milliseconds timeout) override;

 private:
  struct WatcherState {
    int64_t process = 0;
    std::unique_ptr<Client> client;
    std::unique_ptr<Watcher> watcher;
    std::atomic<bool> ended{false};  // its end is recorded
    int64_t delivered = 0;           // through this revision (I/O thread only)
  };

  void Writer(int index);
  // One put or delete as `process`; false when its outcome is unknown.
  bool WriteOnce(Client& client, int64_t process, std::mt19937_64& rng);
  void OnUpdate(WatcherState* state, StatusOr<WatchUpdate> update);
  StatusOr<std::unique_ptr<Client>> NewClient(
      std::vector<std::string> endpoints, uint64_t seed) const;
  std::vector<std::string> endpoints();
  bool SleepUntil(std::chrono::steady_clock::time_point until);
  // Cancels every watcher still running and records its end.
  void EndWatchers();

  WorkloadOptions options_;
  Recorder* recorder_;
  std::atomic<int64_t> next_value_{1};
  std::atomic<int64_t> max_process_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::string> endpoints_;  // guarded by mu_
  std::atomic<uint64_t> endpoints_version_{0};
  std::vector<std::unique_ptr<WatcherState>> watchers_;
  std::vector<std::thread> threads_;
};

}  // namespace raftkv::jepsen
