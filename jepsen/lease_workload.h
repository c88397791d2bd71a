// The lease workload of raftkv-jepsen (issue 12). Two kinds of workers:
//
// Holders (concurrency - lockers of them). Each registration is a new
// process p with its own Client: grant a lease of lease_ttl_s, put
// "reg/<p>" (value: the lease id) with it, keep it alive with
// Client::KeepAlive (a LeaseKeeper) and, every 2 * holders / rate seconds,
// probe it (LeaseTimeToLive) and read the whole "reg/" prefix
// (linearizable), for a lifetime of 2 to 8 s; then either revoke the lease
// or abandon it (destroy the keeper: it expires by itself), half and half,
// and go on reading the prefix for a second before the next registration.
// A keeper that reports its lease lost ends the registration at once.
// Stop() abandons every registration still running.
//
// Lockers (`lockers` of them): a Session (client/concurrency.h) with a
// lease of lease_ttl_s, a Mutex on "lock/m": Lock (2 s timeout), then one
// to three increments of the counter "lock-counter" (a linearizable Get,
// then a Txn whose compare is the lock key's create revision = the fencing
// token, putting the value read plus one), Unlock; a new Session whenever
// the last one was lost or an operation on it failed.
//
// History records (jepsen/lease_checker.h reads them):
//   grant   invoke {f "grant", key "reg/<p>", value = TTL asked}; ok
//           {value = TTL granted, "lease" = its id}
//   put     invoke {f "put", key "reg/<p>", value = lease id, "lease"}; ok
//           {"revision"}; fail = certainly not applied (e.g. NotFound)
//   ttl     invoke {f "ttl", key "reg/<p>", "lease"}; ok {value = seconds
//           left, as the leader rounds them: up}; fail {value "not-found"
//           or null}
//   read    invoke {f "read", key "reg/"}; ok {value = "k@lease,k@lease"
//           (keys in order, each with the lease it is attached to),
//           "revision"}
//   revoke  invoke {f "revoke", key, "lease"}; ok {value "not-found" when
//           the lease was already gone}; info otherwise
//   abandon invoke and ok {f "abandon", key, "lease"}: no keep-alive is
//           sent for the lease after this
//   lost    observation {f "lost", key, "lease", value = why}: the keeper
//           said its lease was lost
//   session invoke {f "session", key "lock/m"}; ok {"lease"}
//   lock    invoke {f "lock", key "lock/m", "lease"}; ok {value = the lock
//           key, "revision" = the fencing token}; fail {value = why}
//   incr    invoke {f "incr", key "lock-counter", "revision" = token}; ok
//           {value = the value written, "revision" = the Txn's}; fail
//           {value "stale": the compare failed; or the read failed}
//   unlock  invoke and completion {f "unlock", key "lock/m", "lease"}
// Final reads (FinalRead, after the final heal): the whole key space,
// linearizable, {f "read", key "*", value = leased keys as above,
// "revision"}, repeated until no leased key is left (every lease is dead
// by then) or the timeout; then the counter {f "read", key
// "lock-counter"}; then on each node a serializable read of the whole key
// space {f "read", key "*", "node" = its address}, repeated until the node
// is at the linearizable read's revision or beyond.
//
// Must never: record an outcome more certain than the client's answer,
// block the client's I/O thread (on_lost only appends to the Recorder), or
// run unbounded. Thread-safety: Start/Stop/SetEndpoints/FinalRead from one
// thread.
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

class LeaseWorkload : public ClientWorkload {
 public:
  static constexpr const char* kPrefix = "reg/";
  static constexpr const char* kLockName = "lock/m";
  static constexpr const char* kCounter = "lock-counter";

  LeaseWorkload(WorkloadOptions options, Recorder* recorder);
  ~LeaseWorkload() override;  // Stop()
  LeaseWorkload(const LeaseWorkload&) = delete;
  LeaseWorkload& operator=(const LeaseWorkload&) = delete;

  Status Start() override;
  // Stops every worker; each abandons the lease it holds.
  void Stop() override;
  void SetEndpoints(std::vector<std::string> endpoints) override;
  // The final reads (see above). Unavailable if a read never succeeded,
  // FailedPrecondition if leased keys were still there at the timeout (the
  // checker says which).
  Status FinalRead(std::chrono::milliseconds timeout) override;

 private:
  void Holder(int index);
  // One registration as a new process; returns when it is over.
  void Register(std::mt19937_64& rng);
  void Locker(int index);
  // Records a read of the "reg/" prefix as `process`.
  void ReadPrefix(Client& client, int64_t process);
  StatusOr<std::unique_ptr<Client>> NewClient(
      std::vector<std::string> endpoints, uint64_t seed) const;
  std::vector<std::string> endpoints();
  bool stopping();
  bool SleepUntil(std::chrono::steady_clock::time_point until);
  bool SleepFor(std::chrono::steady_clock::duration d) {
    return SleepUntil(std::chrono::steady_clock::now() + d);
  }
  int64_t NewProcess() { return max_process_.fetch_add(1) + 1; }

  WorkloadOptions options_;
  Recorder* recorder_;
  std::atomic<int64_t> max_process_{-1};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::string> endpoints_;  // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace raftkv::jepsen
