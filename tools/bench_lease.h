// BenchLease: the lease workloads of raftkv-bench.
//
// RunKeepAliveLoop, as etcd's `benchmark lease-keepalive` runs it:
// `clients` logical clients share `conns` connections (Client objects);
// each grants a lease of `ttl_s` (etcd's tool: 100 s), then calls
// LeaseKeepAliveOnce on it in a loop, one call in flight, until `total`
// keep-alives were answered in all. Latency per keep-alive.
//
// RunKeepers: one Client keeps `leases` leases alive with LeaseKeepers
// (Client::KeepAlive: a keep-alive every third of the TTL) for a while;
// each node's CPU-seconds over that time, next to the same nodes' CPU over
// an idle stretch of the same cluster before the leases were granted.
//
// Must never: count a failed keep-alive as answered, or leave a keeper or a
// thread running after a Run function returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tools/bench_watch.h"
#include "util/status.h"

namespace raftkv::bench {

struct KeepAliveLoopOptions {
  std::vector<std::string> endpoints;
  uint32_t conns = 1;
  uint32_t clients = 16;
  uint64_t total = 10000;
  int64_t ttl_s = 100;
  CpuSampler cpu_seconds;
};

struct KeepAliveLoopResult {
  std::vector<double> latencies_ms;  // of the keep-alives answered
  uint64_t errors = 0;
  std::string first_error;
  double elapsed_s = 0;
  std::vector<double> node_cpu_s;  // over the loop, per node
};

// Called about every 200 ms with the keep-alives answered so far.
using KeepAliveProgressFn =
    std::function<void(uint64_t answered, double elapsed_s)>;

StatusOr<KeepAliveLoopResult> RunKeepAliveLoop(
    const KeepAliveLoopOptions& options, const KeepAliveProgressFn& progress);

struct KeepersOptions {
  std::vector<std::string> endpoints;
  uint64_t leases = 10000;
  int64_t ttl_s = 30;
  uint32_t grant_threads = 16;        // granting in parallel, on the one Client
  std::chrono::seconds idle{20};      // the baseline, before any lease
  std::chrono::seconds duration{60};  // the leases kept alive
  CpuSampler cpu_seconds;
};

struct KeepersResult {
  uint64_t granted = 0;
  double grant_s = 0;
  uint64_t grant_errors = 0;
  std::string first_error;
  double idle_s = 0, kept_s = 0;               // the two windows measured
  std::vector<double> idle_cpu_s, kept_cpu_s;  // per node, in each window
  double bench_cpu_s = 0;                      // this process, kept window
  uint64_t lost = 0;  // keepers that reported their lease lost
  // Leases whose TTL left was checked at the end, and of them the lowest.
  uint64_t checked = 0;
  int64_t min_ttl_left_s = 0;
};

// `phase` is told "idle", "grant", "keep" as each begins.
StatusOr<KeepersResult> RunKeepers(
    const KeepersOptions& options,
    const std::function<void(const char*)>& phase);

// The keepers' figures per node: CPU-seconds per minute idle and with the
// leases kept alive.
std::string FormatKeepersResult(const KeepersOptions& options,
                                const KeepersResult& result);
nlohmann::json KeepersResultJson(const KeepersOptions& options,
                                 const KeepersResult& result);

}  // namespace raftkv::bench
