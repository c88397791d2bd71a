// The lease workloads of raftkv-bench (see bench_lease.h).
#include "tools/bench_lease.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "tools/proc_stats.h"

namespace raftkv::bench {
namespace {

using Clock = std::chrono::steady_clock;

StatusOr<std::unique_ptr<Client>> NewClient(
    const std::vector<std::string>& endpoints) {
  ClientOptions options;
  options.endpoints = endpoints;
  options.deadline = std::chrono::seconds(30);
  return Client::Create(options);
}

std::vector<double> Minus(const std::vector<double>& after,
                          const std::vector<double>& before) {
  std::vector<double> out;
  for (size_t i = 0; i < after.size() && i < before.size(); ++i) {
    out.push_back(after[i] - before[i]);
  }
  return out;
}

// The first error of many threads, and how many.
struct Errors {
  void Add(const Status& s) {
    std::lock_guard<std::mutex> lock(mu);
    if (count++ == 0) first = s.ToString();
  }
  std::mutex mu;
  uint64_t count = 0;
  std::string first;
};

}  // namespace

StatusOr<KeepAliveLoopResult> RunKeepAliveLoop(
    const KeepAliveLoopOptions& o, const KeepAliveProgressFn& progress) {
  std::vector<std::unique_ptr<Client>> conns;
  for (uint32_t i = 0; i < std::max<uint32_t>(1, o.conns); ++i) {
    auto c = NewClient(o.endpoints);
    if (!c.ok()) return c.status();
    conns.push_back(std::move(c).value());
  }
  const uint32_t clients = std::max<uint32_t>(1, o.clients);
  std::vector<int64_t> leases;
  for (uint32_t c = 0; c < clients; ++c) {
    auto lease = conns[c % conns.size()]->LeaseGrant(o.ttl_s);
    if (!lease.ok()) return lease.status();
    leases.push_back(lease->id);
  }

  KeepAliveLoopResult result;
  std::vector<std::vector<double>> latencies(clients);
  Errors errors;
  std::atomic<uint64_t> next{0}, answered{0};
  const std::vector<double> cpu_before =
      o.cpu_seconds ? o.cpu_seconds() : std::vector<double>{};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (uint32_t c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      Client& conn = *conns[c % conns.size()];
      latencies[c].reserve(o.total / clients + 1);
      while (next++ < o.total) {
        const auto t0 = Clock::now();
        auto r = conn.LeaseKeepAliveOnce(leases[c]);
        const double ms =
            std::chrono::duration<double, std::milli>(Clock::now() - t0)
                .count();
        if (r.ok()) {
          latencies[c].push_back(ms);
        } else {
          errors.Add(r.status());
        }
        answered++;
      }
    });
  }
  while (answered.load() < o.total) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (progress) {
      progress(answered.load(),
               std::chrono::duration<double>(Clock::now() - start).count());
    }
  }
  for (std::thread& t : threads) t.join();
  result.elapsed_s =
      std::chrono::duration<double>(Clock::now() - start).count();
  if (o.cpu_seconds) result.node_cpu_s = Minus(o.cpu_seconds(), cpu_before);
  for (auto& l : latencies) {
    result.latencies_ms.insert(result.latencies_ms.end(), l.begin(), l.end());
  }
  result.errors = errors.count;
  result.first_error = errors.first;
  for (size_t c = 0; c < leases.size(); ++c) {
    (void)conns[c % conns.size()]->LeaseRevoke(leases[c]);
  }
  return result;
}

StatusOr<KeepersResult> RunKeepers(
    const KeepersOptions& o, const std::function<void(const char*)>& phase) {
  auto client = NewClient(o.endpoints);
  if (!client.ok()) return client.status();
  Client& c = **client;
  KeepersResult result;
  auto cpu = [&] {
    return o.cpu_seconds ? o.cpu_seconds() : std::vector<double>{};
  };

  // The idle baseline: the cluster with this client connected, no lease.
  if (!c.Leader().ok()) return Status::Unavailable("no leader");
  if (phase) phase("idle");
  auto t0 = Clock::now();
  std::vector<double> before = cpu();
  std::this_thread::sleep_for(o.idle);
  result.idle_cpu_s = Minus(cpu(), before);
  result.idle_s = std::chrono::duration<double>(Clock::now() - t0).count();

  if (phase) phase("grant");
  std::atomic<uint64_t> lost{0};
  std::vector<std::unique_ptr<LeaseKeeper>> keepers(o.leases);
  std::vector<int64_t> ids(o.leases, 0);
  Errors errors;
  std::atomic<uint64_t> next{0};
  const auto grant_start = Clock::now();
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < std::max<uint32_t>(1, o.grant_threads); ++t) {
    threads.emplace_back([&] {
      for (uint64_t i = next++; i < o.leases; i = next++) {
        auto lease = c.LeaseGrant(o.ttl_s);
        if (!lease.ok()) {
          errors.Add(lease.status());
          continue;
        }
        ids[i] = lease->id;
        keepers[i] = c.KeepAlive(lease->id, lease->ttl,
                                 [&lost](const Status&) { lost++; });
      }
    });
  }
  for (std::thread& t : threads) t.join();
  result.grant_s =
      std::chrono::duration<double>(Clock::now() - grant_start).count();
  result.grant_errors = errors.count;
  result.first_error = errors.first;
  result.granted = o.leases - errors.count;

  if (phase) phase("keep");
  t0 = Clock::now();
  before = cpu();
  const double bench_before = ProcCpuSeconds(::getpid());
  std::this_thread::sleep_for(o.duration);
  result.kept_cpu_s = Minus(cpu(), before);
  result.bench_cpu_s = ProcCpuSeconds(::getpid()) - bench_before;
  result.kept_s = std::chrono::duration<double>(Clock::now() - t0).count();
  result.lost = lost.load();

  // A sample of the leases must still have most of a TTL left.
  result.min_ttl_left_s = o.ttl_s;
  for (uint64_t i = 0; i < o.leases;
       i += std::max<uint64_t>(1, o.leases / 20)) {
    if (ids[i] == 0) continue;
    auto ttl = c.LeaseTimeToLive(ids[i]);
    if (!ttl.ok()) {
      result.min_ttl_left_s = 0;
    } else {
      result.min_ttl_left_s = std::min(result.min_ttl_left_s, ttl->ttl);
    }
    ++result.checked;
  }
  keepers.clear();
  return result;
}

namespace {

std::vector<double> PerMinute(const std::vector<double>& cpu_s, double s) {
  std::vector<double> out;
  for (double c : cpu_s) out.push_back(s > 0 ? c * 60 / s : 0);
  return out;
}

}  // namespace

std::string FormatKeepersResult(const KeepersOptions& o,
                                const KeepersResult& r) {
  std::string out;
  char line[300];
  std::snprintf(line, sizeof(line),
                "%llu of %llu leases of %lld s granted in %.2f s and kept "
                "alive by one client for %.1f s (about %.0f keep-alives/s); "
                "%llu lost; lowest TTL left of %llu checked: %lld s\n",
                static_cast<unsigned long long>(r.granted),
                static_cast<unsigned long long>(o.leases),
                static_cast<long long>(o.ttl_s), r.grant_s, r.kept_s,
                r.granted * 3.0 / std::max<int64_t>(1, o.ttl_s),
                static_cast<unsigned long long>(r.lost),
                static_cast<unsigned long long>(r.checked),
                static_cast<long long>(r.min_ttl_left_s));
  out += line;
  const std::vector<double> idle = PerMinute(r.idle_cpu_s, r.idle_s);
  const std::vector<double> kept = PerMinute(r.kept_cpu_s, r.kept_s);
  for (size_t i = 0; i < kept.size() && i < idle.size(); ++i) {
    std::snprintf(line, sizeof(line),
                  "Node %zu:\t%.2f CPU-s per minute with the leases, %.2f "
                  "idle (+%.2f)\n",
                  i + 1, kept[i], idle[i], kept[i] - idle[i]);
    out += line;
  }
  std::snprintf(line, sizeof(line), "Bench:\t%.2f CPU-s per minute\n",
                r.kept_s > 0 ? r.bench_cpu_s * 60 / r.kept_s : 0.0);
  out += line;
  if (!r.first_error.empty()) out += "First error:\t" + r.first_error + "\n";
  return out;
}

nlohmann::json KeepersResultJson(const KeepersOptions& o,
                                 const KeepersResult& r) {
  nlohmann::json j;
  j["leases"] = o.leases;
  j["ttl_s"] = o.ttl_s;
  j["granted"] = r.granted;
  j["grant_s"] = r.grant_s;
  j["errors"] = r.grant_errors;
  j["first_error"] = r.first_error;
  j["lost"] = r.lost;
  j["checked"] = r.checked;
  j["min_ttl_left_s"] = r.min_ttl_left_s;
  j["idle_s"] = r.idle_s;
  j["kept_s"] = r.kept_s;
  j["keepalives_per_s"] = r.granted * 3.0 / std::max<int64_t>(1, o.ttl_s);
  j["idle_cpu_s_per_min"] = PerMinute(r.idle_cpu_s, r.idle_s);
  j["cpu_s_per_min"] = PerMinute(r.kept_cpu_s, r.kept_s);
  j["bench_cpu_s_per_min"] = r.kept_s > 0 ? r.bench_cpu_s * 60 / r.kept_s : 0.0;
  return j;
}

}  // namespace raftkv::bench
