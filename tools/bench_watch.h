// BenchWatch: the watch workloads of raftkv-bench, as etcd's benchmark tool
// runs its `watch` (so that figures line up with etcd's):
//
// RunWatchBench: `streams` Clients (one connection to each member a stream
// uses) each create `watchers_per_stream` watches on one key; then a
// separate Client puts to that key `puts` times, at `put_rate` per second
// (an open loop: a put does not wait for the one before, up to 1,000 in
// flight; beyond that the puts fall behind the rate). Every put's
// value carries its sequence number in its first 8 bytes (big-endian), so
// each delivered event is timed back to the put that caused it: from the
// moment the put was sent (etcd's benchmark since 3.6 times it so) and from
// the moment its acknowledgement reached the writer (negative when the
// event came first).
//
// Watch creation is timed by a marker: every watch starts at the revision
// after a setup put, the Watch() calls are made, then the marker is put;
// a watch is created once it has delivered the marker (a watch created
// after the marker was applied gets it from the retained history). The
// creation rate is watchers / (the last marker delivered - the first
// Watch() call).
//
// RunWatchCapacity: watches on one member added in steps; after each step
// a marker put must reach every watch (old and new), then the member's RSS
// (/proc/<pid>/status VmRSS) is read: the most watches it holds with RSS
// growth under a limit.
//
// Must never: count an event twice or one that no put of this run caused,
// report a latency for an event it could not attribute, or leave a watch
// callback running after a Run function returns.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/status.h"

namespace raftkv::bench {

// CPU seconds of each node (empty: unknown, a cluster not started here).
using CpuSampler = std::function<std::vector<double>()>;
// Called about every 200 ms: a phase name, done so far, expected.
using WatchProgressFn =
    std::function<void(const char* phase, uint64_t done, uint64_t total)>;

struct WatchBenchOptions {
  std::vector<std::string> endpoints;  // the writer's (every member)
  // Each stream's Client's: with several, a new Client spreads its
  // watches over them in turn until it knows the leader.
  std::vector<std::string> watch_endpoints;
  uint32_t streams = 10;
  uint32_t watchers_per_stream = 100;
  uint64_t puts = 2000;
  double put_rate = 500;  // per second; 0: one put in flight at a time
  size_t key_size = 32;
  size_t val_size = 8;  // at least 8 (the sequence number)
  // Gives up when no event arrived for this long.
  std::chrono::milliseconds idle_timeout{30000};
  CpuSampler cpu_seconds;
  // Seconds each node's threads spent runnable but waiting for a CPU.
  CpuSampler cpu_wait_seconds;
};

struct WatchBenchResult {
  uint64_t watchers = 0;
  // Creation: per watch, its Watch() call to its marker delivered.
  std::vector<double> create_ms;
  double create_s = 0;
  // Events: per event delivered, from its put's send and its ack.
  uint64_t expected_events = 0;
  std::vector<double> from_send_ms;
  std::vector<double> from_ack_ms;  // only for puts acknowledged
  // The from-send latencies again, by tenth of the run (events of puts
  // 0..puts/10-1, ...): whether a backlog built up.
  std::vector<std::vector<double>> from_send_by_tenth_ms;
  uint64_t before_ack = 0;  // events delivered before their ack
  uint64_t unattributed = 0;
  uint64_t watch_errors = 0;
  uint64_t put_errors = 0;
  std::string first_error;
  std::vector<double> put_ms;  // each acknowledged put's latency
  double puts_s = 0;           // first put sent to the last one sent
  double events_s = 0;         // first put sent to the last event delivered
  // CPU seconds of each node over the events phase, and of this process;
  // and the seconds their threads waited for a CPU meanwhile (the
  // machine's share of the latency).
  std::vector<double> node_cpu_s;
  double bench_cpu_s = 0;
  std::vector<double> node_cpu_wait_s;
  double bench_cpu_wait_s = 0;
};

StatusOr<WatchBenchResult> RunWatchBench(const WatchBenchOptions& options,
                                         const WatchProgressFn& progress);

struct WatchCapacityOptions {
  std::vector<std::string> endpoints;  // the writer's
  std::string member;                  // the member holding every watch
  pid_t member_pid = 0;
  uint32_t streams = 10;  // Clients (connections) the watches share
  uint64_t step = 10000;
  uint64_t max_watchers = 500000;
  double rss_limit_mb = 100;
  size_t key_size = 32;
  // Before reading the RSS after a step.
  std::chrono::milliseconds settle{1000};
  std::chrono::milliseconds idle_timeout{60000};
};

struct WatchCapacityStep {
  uint64_t watchers = 0;  // in all, after this step
  double rss_mb = 0;
  double growth_mb = 0;  // over the RSS before the first watch
  double create_s = 0;   // the step's first Watch() to every marker in
  double fanout_ms = 0;  // the marker put sent to its last delivery
};

struct WatchCapacityResult {
  double base_rss_mb = 0;
  std::vector<WatchCapacityStep> steps;
  // The most watchers held with growth under the limit (0: not even one
  // step), and what made the run stop.
  uint64_t most_under_limit = 0;
  std::string stopped_by;
};

using CapacityProgressFn = std::function<void(const WatchCapacityStep&)>;

StatusOr<WatchCapacityResult> RunWatchCapacity(
    const WatchCapacityOptions& options, const CapacityProgressFn& on_step);

// etcd's layout: "Watch creation summary:", "Watch events received
// summary:" (timed from each put's send), then the figures etcd's tool
// does not print: latency from the put's acknowledgement, the puts, each
// node's CPU over the events phase. The JSON has the events summary's
// figures at the top level (requests_per_s: events delivered per second),
// the rest in "create", "from_ack" and "put".
std::string FormatWatchResult(const WatchBenchResult& result);
nlohmann::json WatchResultJson(const WatchBenchResult& result);

std::string FormatCapacityStep(const WatchCapacityStep& step);
nlohmann::json CapacityResultJson(const WatchCapacityResult& result);

// Seconds the threads of process `pid` have spent runnable but waiting
// for a CPU (the sum of /proc/<pid>/task/*/schedstat run_delay; threads
// that have ended are not counted). -1 if unknown.
double ProcCpuWaitSeconds(pid_t pid);

// The value of put `seq`: its number big-endian, padded to `size` bytes.
std::string SequencedValue(uint64_t seq, size_t size);
// The sequence number of a SequencedValue; false for anything else.
bool DecodeSequencedValue(const std::string& value, uint64_t* seq);

}  // namespace raftkv::bench
