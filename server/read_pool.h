// ReadPool: the threads that serve reads at a ReadSnapshot the applier took
// once their read index was applied, so that a long read (a range over a
// million keys) holds up neither applying nor the other reads. Results go
// back through `served`, which must only post to the loop. A read the loop
// has given up on (its `abandoned` flag set: it timed out) is skipped, or
// its result dropped here, where freeing a large one costs the loop nothing.
//
// Must never: read the state machine but through the snapshot it is given,
// or call `served` after Stop() returns.
// Thread-safety: Serve() and Stop() may be called from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "server/handoff.h"

namespace raftkv::storage {
class ReadSnapshot;
}  // namespace raftkv::storage

namespace raftkv::server {

class ReadPool {
 public:
  ReadPool(int threads, std::function<void(ReadsServed)> served);
  ~ReadPool();  // Stop()
  ReadPool(const ReadPool&) = delete;
  ReadPool& operator=(const ReadPool&) = delete;

  // Serves `reads` at `at`.
  void Serve(std::shared_ptr<const storage::ReadSnapshot> at,
             std::vector<ReadRequest> reads);
  // Serves what is queued, then joins the threads; later reads are dropped.
  void Stop();

 private:
  struct Item {
    std::shared_ptr<const storage::ReadSnapshot> at;
    ReadRequest read;
  };
  void Run();
  static kv::ClientResponse Execute(const storage::ReadSnapshot& at,
                                    const ReadRequest& read);

  const std::function<void(ReadsServed)> served_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace raftkv::server
