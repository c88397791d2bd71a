// raftkv-bench: measures a raftkv cluster.
//
//   --mode=write     puts from --clients clients, each with --inflight
//                    requests outstanding, for --duration_s; reports ops/s
//                    and latency percentiles (median over --runs runs) and
//                    how many leader changes happened under the load.
//   --mode=read      linearizable gets of --keys keys, same reporting.
//   --mode=writer    one client puts in a loop against --endpoints for
//                    --duration_s, appending "INVOKE_MS ACK_MS" (wall clock)
//                    of every acknowledged write to --ack_log, then checks
//                    that every
//                    acknowledged write is readable (used by scripts/demo).
//   --mode=failover  a writer puts in a loop while the leader is SIGKILLed
//                    --kills times; reports, per kill, the time from the
//                    kill to the first acknowledged write, then median and
//                    max, the errors the writer saw (expected: none) and
//                    whether every acknowledged write is readable.
//
// Without --endpoints it starts its own cluster of --nodes raftkvd
// processes on loopback (LocalCluster); failover mode always does.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "client/client.h"
#include "tools/local_cluster.h"
#include "util/flags_help.h"

DEFINE_string(mode, "write", "write | read | failover");
DEFINE_string(endpoints, "",
              "Client addresses of an existing cluster; empty: start one.");
DEFINE_uint32(nodes, 3, "Nodes of the cluster started by the benchmark.");
DEFINE_uint32(clients, 4, "Client objects (each with its own connections).");
DEFINE_uint32(inflight, 16, "Requests in flight per client.");
DEFINE_uint32(duration_s, 5, "Seconds per run (write/read).");
DEFINE_uint32(runs, 3, "Runs; the median run is reported.");
DEFINE_uint32(value_bytes, 100, "Value size.");
DEFINE_uint32(keys, 1000, "Distinct keys.");
DEFINE_uint32(kills, 20, "Leader kills (failover).");
DEFINE_uint32(kill_interval_ms, 1500,
              "Time between recoveries and the next kill (failover).");
DEFINE_string(ack_log, "", "writer: file for acknowledgement times (ms).");
DEFINE_string(server_flags, "",
              "Extra flags for the raftkvd processes it starts, "
              "space-separated.");

namespace raftkv {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

std::vector<std::string> SplitOn(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  return v[i];
}

struct RunResult {
  double ops_per_s = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  uint64_t errors = 0;
  uint64_t terms_advanced = 0;
};

uint64_t MaxTerm(Client& client) {
  uint64_t term = 0;
  for (const NodeInfo& n : client.ClusterStatus()) {
    if (n.error.ok()) term = std::max(term, n.term);
  }
  return term;
}

// Keeps `inflight` asynchronous operations going per client until `end`.
RunResult RunLoad(const std::vector<std::unique_ptr<Client>>& clients,
                  bool writes) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<double> latencies_ms;
  uint64_t errors = 0;
  int active = 0;
  const std::string value(FLAGS_value_bytes, 'v');
  const uint64_t term_before = MaxTerm(*clients[0]);
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(FLAGS_duration_s);
  std::atomic<uint64_t> next_key{0};

  std::function<void(Client*)> issue = [&](Client* client) {
    if (Clock::now() >= end) {
      std::lock_guard<std::mutex> lock(mu);
      if (--active == 0) cv.notify_all();
      return;
    }
    const std::string key = "bench/" + std::to_string(next_key++ % FLAGS_keys);
    const auto t0 = Clock::now();
    auto done = [&, client, t0](const Status& s) {
      const double ms =
          duration_cast<microseconds>(Clock::now() - t0).count() / 1000.0;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (s.ok() || s.IsNotFound()) {
          latencies_ms.push_back(ms);
        } else {
          ++errors;
        }
      }
      issue(client);
    };
    if (writes) {
      client->PutAsync(key, value,
                       [done](StatusOr<int64_t> r) { done(r.status()); });
    } else {
      client->GetAsync(key, ReadOptions{},
                       [done](StatusOr<KeyValue> r) { done(r.status()); });
    }
  };
  {
    std::lock_guard<std::mutex> lock(mu);
    active = static_cast<int>(clients.size() * FLAGS_inflight);
  }
  for (const auto& c : clients) {
    for (uint32_t i = 0; i < FLAGS_inflight; ++i) issue(c.get());
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return active == 0; });
  const double elapsed_s =
      duration_cast<microseconds>(Clock::now() - start).count() / 1e6;
  RunResult r;
  r.ops_per_s = latencies_ms.size() / elapsed_s;
  r.p50_ms = Percentile(latencies_ms, 0.50);
  r.p99_ms = Percentile(latencies_ms, 0.99);
  r.max_ms = Percentile(latencies_ms, 1.0);
  r.errors = errors;
  lock.unlock();
  r.terms_advanced = MaxTerm(*clients[0]) - term_before;
  return r;
}

int RunThroughput(bool writes) {
  std::unique_ptr<LocalCluster> cluster;
  std::vector<std::string> endpoints = SplitOn(FLAGS_endpoints, ',');
  if (endpoints.empty()) {
    cluster = std::make_unique<LocalCluster>(FLAGS_nodes,
                                             SplitOn(FLAGS_server_flags, ' '));
    if (cluster->WaitForLeader() == 0) {
      std::fprintf(stderr, "raftkv-bench: no leader elected\n");
      return 1;
    }
    endpoints = cluster->endpoints();
  }
  std::vector<std::unique_ptr<Client>> clients;
  for (uint32_t i = 0; i < FLAGS_clients; ++i) {
    ClientOptions options;
    options.endpoints = endpoints;
    auto c = Client::Create(options);
    if (!c.ok()) {
      std::fprintf(stderr, "raftkv-bench: %s\n", c.status().ToString().c_str());
      return 2;
    }
    clients.push_back(std::move(c).value());
  }
  if (!writes) {  // preload the keys that will be read
    const std::string value(FLAGS_value_bytes, 'v');
    for (uint32_t k = 0; k < FLAGS_keys; ++k) {
      auto r = clients[0]->Put("bench/" + std::to_string(k), value);
      if (!r.ok()) {
        std::fprintf(stderr, "raftkv-bench: preload: %s\n",
                     r.status().ToString().c_str());
        return 1;
      }
    }
  }
  std::vector<RunResult> runs;
  for (uint32_t i = 0; i < FLAGS_runs; ++i) {
    RunResult r = RunLoad(clients, writes);
    std::printf(
        "run %u: %.0f ops/s  p50 %.2f ms  p99 %.2f ms  max %.2f ms  "
        "errors %llu  leader changes %llu\n",
        i + 1, r.ops_per_s, r.p50_ms, r.p99_ms, r.max_ms,
        (unsigned long long)r.errors, (unsigned long long)r.terms_advanced);
    std::fflush(stdout);
    runs.push_back(r);
  }
  std::sort(runs.begin(), runs.end(),
            [](auto& a, auto& b) { return a.ops_per_s < b.ops_per_s; });
  const RunResult& m = runs[runs.size() / 2];
  std::printf(
      "raftkv-bench: mode=%s nodes=%u clients=%u inflight=%u value_bytes=%u "
      "median_ops_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%llu "
      "leader_changes=%llu\n",
      writes ? "write" : "read", FLAGS_nodes, FLAGS_clients, FLAGS_inflight,
      FLAGS_value_bytes, m.ops_per_s, m.p50_ms, m.p99_ms,
      (unsigned long long)m.errors, (unsigned long long)m.terms_advanced);
  return 0;
}

int RunWriter() {
  ClientOptions options;
  options.endpoints = SplitOn(FLAGS_endpoints, ',');
  options.deadline = std::chrono::seconds(10);
  auto client = Client::Create(options);
  if (!client.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n",
                 client.status().ToString().c_str());
    return 2;
  }
  FILE* log =
      FLAGS_ack_log.empty() ? nullptr : std::fopen(FLAGS_ack_log.c_str(), "w");
  std::map<std::string, std::string> acked;
  size_t errors = 0;
  const auto end = Clock::now() + std::chrono::seconds(FLAGS_duration_s);
  auto wall_ms = [] {
    return static_cast<long long>(
        duration_cast<milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
  };
  for (uint64_t i = 0; Clock::now() < end; ++i) {
    const std::string key = "demo/writer/" + std::to_string(i);
    const long long invoked_ms = wall_ms();
    auto r = (*client)->Put(key, std::to_string(i));
    if (!r.ok()) {
      ++errors;
      std::fprintf(stderr, "writer error: %s\n", r.status().ToString().c_str());
      continue;
    }
    acked[key] = std::to_string(i);
    if (log) {
      std::fprintf(log, "%lld %lld\n", invoked_ms, wall_ms());
      std::fflush(log);
    }
  }
  if (log) std::fclose(log);
  size_t lost = 0;
  for (const auto& [key, value] : acked) {
    auto r = (*client)->Get(key);
    if (!r.ok() || r->value != value) ++lost;
  }
  std::printf(
      "raftkv-bench: mode=writer acked_writes=%zu errors=%zu "
      "lost_writes=%zu\n",
      acked.size(), errors, lost);
  return errors == 0 && lost == 0 ? 0 : 1;
}

int RunFailover() {
  LocalCluster cluster(FLAGS_nodes, SplitOn(FLAGS_server_flags, ' '));
  if (cluster.WaitForLeader() == 0) {
    std::fprintf(stderr, "raftkv-bench: no leader elected\n");
    return 1;
  }
  ClientOptions options = cluster.client_options();
  options.deadline = std::chrono::seconds(30);
  auto client = Client::Create(options);
  CHECK(client.ok());
  auto observer = cluster.NewClient(milliseconds(2000));

  std::mutex mu;
  std::vector<Clock::time_point> acks;
  std::vector<Clock::time_point> invokes;  // of the write acked at acks[i]
  std::map<std::string, std::string> acked;
  std::vector<Status> errors;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t i = 0; !stop; ++i) {
      const std::string key = "failover/" + std::to_string(i);
      const auto invoked = Clock::now();
      auto r = (*client)->Put(key, std::to_string(i));
      std::lock_guard<std::mutex> lock(mu);
      if (r.ok()) {
        acks.push_back(Clock::now());
        invokes.push_back(invoked);
        acked[key] = std::to_string(i);
      } else {
        errors.push_back(r.status());
      }
    }
  });

  std::vector<double> failover_ms;
  std::vector<double> strict_ms;  // first ack of a write issued after kill
  for (uint32_t k = 0; k < FLAGS_kills; ++k) {
    std::this_thread::sleep_for(milliseconds(FLAGS_kill_interval_ms));
    auto leader = observer->Leader();
    if (!leader.ok()) {
      std::fprintf(stderr, "kill %u: no leader: %s\n", k + 1,
                   leader.status().ToString().c_str());
      continue;
    }
    const int victim = static_cast<int>(leader->first);
    const auto killed_at = Clock::now();
    cluster.Kill(victim);
    // Wait for the first write acknowledged after the kill.
    Clock::time_point first = Clock::time_point::max();
    Clock::time_point first_strict = Clock::time_point::max();
    while (Clock::now() - killed_at < std::chrono::seconds(30)) {
      {
        std::lock_guard<std::mutex> lock(mu);
        auto it = std::upper_bound(acks.begin(), acks.end(), killed_at);
        if (it != acks.end()) first = *it;
        auto inv = std::upper_bound(invokes.begin(), invokes.end(), killed_at);
        if (inv != invokes.end()) {
          first_strict = acks[inv - invokes.begin()];
          break;
        }
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
    const double ms =
        duration_cast<microseconds>(first - killed_at).count() / 1000.0;
    const double strict =
        duration_cast<microseconds>(first_strict - killed_at).count() / 1000.0;
    failover_ms.push_back(ms);
    strict_ms.push_back(strict);
    std::printf(
        "kill %2u: leader %d killed; first acknowledged write after %.1f ms "
        "(first write issued after the kill: %.1f ms)\n",
        k + 1, victim, ms, strict);
    std::fflush(stdout);
    cluster.Start(victim);
  }
  std::this_thread::sleep_for(milliseconds(500));
  stop = true;
  writer.join();

  size_t missing = 0;
  for (const auto& [key, value] : acked) {
    auto r = observer->Get(key);
    if (!r.ok() || r->value != value) ++missing;
  }
  std::printf(
      "raftkv-bench: mode=failover kills=%zu median_ms=%.1f max_ms=%.1f "
      "strict_median_ms=%.1f strict_max_ms=%.1f writer_errors=%zu "
      "acked_writes=%zu lost_writes=%zu\n",
      failover_ms.size(), Percentile(failover_ms, 0.5),
      Percentile(failover_ms, 1.0), Percentile(strict_ms, 0.5),
      Percentile(strict_ms, 1.0), errors.size(), acked.size(), missing);
  for (const Status& s : errors) {
    std::printf("  writer error: %s\n", s.ToString().c_str());
  }
  return errors.empty() && missing == 0 ? 0 : 1;
}

}  // namespace
}  // namespace raftkv

int main(int argc, char** argv) {
  gflags::SetUsageMessage("raftkv-bench --mode=write|read|failover [...]");
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;
  static char help_on[] = "--helpon=raftkv_bench";
  raftkv::RestrictHelpToOwnFlags(argc, argv, help_on);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (FLAGS_mode == "write") return raftkv::RunThroughput(true);
  if (FLAGS_mode == "read") return raftkv::RunThroughput(false);
  if (FLAGS_mode == "failover") return raftkv::RunFailover();
  if (FLAGS_mode == "writer") return raftkv::RunWriter();
  std::fprintf(stderr, "raftkv-bench: unknown --mode=%s\n", FLAGS_mode.c_str());
  return 2;
}
