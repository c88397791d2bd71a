// Summaries of raftkv-bench runs (see bench_report.h).
#include "tools/bench_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace raftkv::bench {

double LatencySummary::Percentile(double percent) const {
  for (const auto& [p, ms] : percentiles) {
    if (p == percent) return ms;
  }
  return 0;
}

double NearestRank(const std::vector<double>& sorted, double percent) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(percent / 100 * sorted.size());
  const size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(sorted.size() - 1, i)];
}

LatencySummary Summarize(std::vector<double> latencies_ms, uint64_t errors,
                         double elapsed_s) {
  LatencySummary s;
  s.count = latencies_ms.size();
  s.errors = errors;
  s.total_s = elapsed_s;
  if (latencies_ms.empty()) return s;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  s.fastest_ms = latencies_ms.front();
  s.slowest_ms = latencies_ms.back();
  const double sum =
      std::accumulate(latencies_ms.begin(), latencies_ms.end(), 0.0);
  s.average_ms = sum / s.count;
  double squares = 0;
  for (double ms : latencies_ms) {
    squares += (ms - s.average_ms) * (ms - s.average_ms);
  }
  s.stddev_ms = std::sqrt(squares / s.count);
  s.requests_per_s = elapsed_s > 0 ? s.count / elapsed_s : 0;
  for (double p : {10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9}) {
    s.percentiles.emplace_back(p, NearestRank(latencies_ms, p));
  }
  constexpr int kBuckets = 10;
  const double width = (s.slowest_ms - s.fastest_ms) / kBuckets;
  size_t j = 0;
  for (int b = 1; b <= kBuckets; ++b) {
    const double bound =
        b == kBuckets ? s.slowest_ms : s.fastest_ms + width * b;
    uint64_t n = 0;
    while (j < latencies_ms.size() && latencies_ms[j] <= bound) ++j, ++n;
    s.histogram.emplace_back(bound, n);
  }
  return s;
}

std::string FormatSummary(const LatencySummary& s) {
  std::string out;
  char line[160];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof(line), fmt, args...);
    out += line;
  };
  out += "\nSummary:\n";
  add("  Total:\t%.4f secs.\n", s.total_s);
  add("  Slowest:\t%.4f secs.\n", s.slowest_ms / 1000);
  add("  Fastest:\t%.4f secs.\n", s.fastest_ms / 1000);
  add("  Average:\t%.4f secs.\n", s.average_ms / 1000);
  add("  Stddev:\t%.4f secs.\n", s.stddev_ms / 1000);
  add("  Requests/sec:\t%.4f\n", s.requests_per_s);
  if (s.errors > 0) {
    add("  Errors:\t%llu\n", static_cast<unsigned long long>(s.errors));
  }
  if (s.count == 0) return out;
  out += "\nResponse time histogram:\n";
  add("  %.4f [%d]\t|\n", s.fastest_ms / 1000, 0);
  uint64_t most = 1;
  for (const auto& [bound, n] : s.histogram) most = std::max(most, n);
  for (const auto& [bound, n] : s.histogram) {
    const std::string bar(static_cast<size_t>(40.0 * n / most), '*');
    add("  %.4f [%llu]\t|%s\n", bound / 1000,
        static_cast<unsigned long long>(n), bar.c_str());
  }
  out += "\nLatency distribution:\n";
  for (const auto& [p, ms] : s.percentiles) {
    add("  %g%% in %.4f secs.\n", p, ms / 1000);
  }
  return out;
}

nlohmann::json SummaryJson(const LatencySummary& s) {
  nlohmann::json j;
  j["total"] = s.count + s.errors;
  j["succeeded"] = s.count;
  j["errors"] = s.errors;
  j["total_s"] = s.total_s;
  j["requests_per_s"] = s.requests_per_s;
  j["slowest_ms"] = s.slowest_ms;
  j["fastest_ms"] = s.fastest_ms;
  j["avg_ms"] = s.average_ms;
  j["stddev_ms"] = s.stddev_ms;
  j["p10_ms"] = s.Percentile(10);
  j["p25_ms"] = s.Percentile(25);
  j["p50_ms"] = s.Percentile(50);
  j["p75_ms"] = s.Percentile(75);
  j["p90_ms"] = s.Percentile(90);
  j["p95_ms"] = s.Percentile(95);
  j["p99_ms"] = s.Percentile(99);
  j["p999_ms"] = s.Percentile(99.9);
  return j;
}

}  // namespace raftkv::bench
