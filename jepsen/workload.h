// Workload: the client side of a raftkv-jepsen run: the ClientWorkload
// interface the runner drives, and the register and set workloads (the
// watch and lease workloads are in watch_workload.h and lease_workload.h).
// A fixed pool of worker threads, each one logical process with its own
// raftkv::Clients, issues operations at rate/concurrency per second
// (random gaps of 0-2x the mean) and records every invocation and
// completion. A worker whose operation
// ended with an unknown outcome (info) continues as a new process, with a
// new Client, as in Jepsen: process p becomes the next unused id.
//
// As in Jepsen, each process is bound to a node, endpoints[p mod n]: its
// reads are sent there first, and follow the node's redirect to the leader
// (a linearizable read is answered by the leader, or by ReadIndex), so a
// node that answers reads by itself (--unsafe_serve_stale_reads) is seen
// answering them. Its writes use a second Client over every endpoint,
// which tracks the leader. When the membership changes, SetEndpoints()
// gives the workload the new members' endpoints: each process rebuilds its
// Clients over them (keeping its id) before its next operation, never
// during one.
//
//   register  read / write / cas (one third each) on "r<k>", each key an
//             independent register; at any time the keys of a window of
//             `active_keys` consecutive k are in use, and the window moves
//             on by one key every key_period_s. Written values are unique
//             (a run-wide counter); a cas expects the last value seen for
//             its key (a write instead when none was seen yet).
//   set       add of unique elements e, one key per element
//             ("s/<e mod 16, hex>/<e>" = "<e>"), recorded as f "add" on key
//             "set"; FinalRead() reads the whole set back (16 prefix reads)
//             and records it as one read of "set" whose value is the
//             comma-separated elements.
//
// Outcomes: ok when the call succeeded; fail only when the operation
// certainly had no effect (a read that failed, a cas whose comparison
// failed, a request refused as invalid or too large); info otherwise (an
// Unavailable write may still be applied later).
//
// Must never run unbounded: each worker stops at Stop() or after
// max_ops_per_worker operations, and each call has a deadline.
// Thread-safe: Start/Stop/FinalRead from one controlling thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "jepsen/recorder.h"
#include "util/status.h"

namespace raftkv::jepsen {

// A client of the cluster under test, as every workload makes them: calls
// end after `op_timeout`, one try on one node after `attempt_timeout`.
StatusOr<std::unique_ptr<Client>> NewWorkloadClient(
    std::vector<std::string> endpoints, std::chrono::milliseconds op_timeout,
    std::chrono::milliseconds attempt_timeout, uint64_t seed);

struct WorkloadOptions {
  // register | set (this file), watch (watch_workload.h), lease
  // (lease_workload.h).
  std::string name = "register";
  std::vector<std::string> endpoints;
  double rate = 100;  // operations per second, all workers together
  int concurrency = 5;
  uint64_t seed = 1;
  std::chrono::milliseconds op_timeout{2000};      // a call's deadline
  std::chrono::milliseconds attempt_timeout{500};  // one try on one node
  int active_keys = 5;
  double key_period_s = 1;
  int64_t max_ops_per_worker = 10'000'000;
  int watchers = 3;         // watch: watchers, each with its own Client
  int64_t lease_ttl_s = 3;  // lease: the TTL granted to holders and sessions
  int lockers = 3;          // lease: workers taking the lock (of concurrency)
};

Status ValidateWorkload(const WorkloadOptions& options);

// What the runner drives, whatever the workload: started once, told the
// members' endpoints after a membership change, stopped at the end of the
// main phase (no new operations), then asked for its final reads once the
// cluster is healed. Thread-safety: from one controlling thread.
class ClientWorkload {
 public:
  virtual ~ClientWorkload() = default;
  virtual Status Start() = 0;
  virtual void Stop() = 0;
  virtual void SetEndpoints(std::vector<std::string> endpoints) = 0;
  // The final reads the checker needs (recorded), within `timeout`.
  virtual Status FinalRead(std::chrono::milliseconds timeout) = 0;
};

// The workload named options.name (ValidateWorkload first).
std::unique_ptr<ClientWorkload> MakeWorkload(WorkloadOptions options,
                                             Recorder* recorder);

// The register and set workloads.
class Workload : public ClientWorkload {
 public:
  Workload(WorkloadOptions options, Recorder* recorder);
  ~Workload() override;  // Stop()
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  // Starts the workers.
  Status Start() override;
  // Asks the workers to stop after their current operation, and joins.
  void Stop() override;
  // The client endpoints from now on (not empty), for new Clients and for
  // every process before its next operation.
  void SetEndpoints(std::vector<std::string> endpoints) override;

  // Set workload: reads the whole set back, retrying until one complete
  // read succeeds or `timeout` passes, each attempt recorded. OK at once
  // for the register workload (nothing to do).
  Status FinalRead(std::chrono::milliseconds timeout) override;

 private:
  struct Op {
    std::string f, key;
    std::optional<std::string> value, value2;
  };
  void Worker(int index);
  Op NextOp(std::mt19937_64& rng);
  // Runs `op` as `process` and records it; false when the outcome is info.
  // The clients of one logical process: reads go first to the process's
  // home node (endpoints[process mod n]) and follow its redirect to the
  // leader from there; writes go to whichever node the client believes
  // leads.
  struct ProcessClients {
    std::unique_ptr<Client> reads, writes;
  };
  bool Execute(ProcessClients& clients, int64_t process, const Op& op);
  // Clients over the current endpoints; *version is set to their version.
  StatusOr<ProcessClients> NewProcess(int64_t process, uint64_t seed,
                                      uint64_t* version);
  std::vector<std::string> endpoints();
  StatusOr<std::unique_ptr<Client>> NewClient(
      std::vector<std::string> endpoints, uint64_t seed) const;
  void Observed(const std::string& key, const std::string& value);
  std::optional<std::string> LastSeen(const std::string& key);
  // Sleeps until `until` or Stop(); false if stopping.
  bool SleepUntil(std::chrono::steady_clock::time_point until);

  WorkloadOptions options_;
  Recorder* recorder_;
  std::atomic<int64_t> next_value_{1};
  std::atomic<int64_t> max_process_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::string> last_seen_;  // register: key -> value
  std::vector<std::string> endpoints_;            // guarded by mu_
  std::atomic<uint64_t> endpoints_version_{0};
  std::vector<std::thread> threads_;
};

}  // namespace raftkv::jepsen
