// BenchReport: what raftkv-bench prints about a run: a summary laid out as
// etcd's benchmark tool lays it out (so figures line up with the
// references people know), and the same figures as JSON.
//
// Must never: report a percentile or rate computed over failed requests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace raftkv::bench {

struct LatencySummary {
  uint64_t count = 0;  // successful requests
  uint64_t errors = 0;
  double total_s = 0;
  double slowest_ms = 0, fastest_ms = 0, average_ms = 0, stddev_ms = 0;
  double requests_per_s = 0;
  // (percent, ms) for 10, 25, 50, 75, 90, 95, 99, 99.9.
  std::vector<std::pair<double, double>> percentiles;
  // (upper bound ms, count): ten buckets between fastest and slowest.
  std::vector<std::pair<double, uint64_t>> histogram;

  double Percentile(double percent) const;
};

LatencySummary Summarize(std::vector<double> latencies_ms, uint64_t errors,
                         double elapsed_s);

// The nearest-rank percentile (0 < percent <= 100) of `sorted` (ascending):
// the smallest value with at least percent% of them at or below it; 0 if
// none. The one rule for every figure raftkv-bench prints.
double NearestRank(const std::vector<double>& sorted, double percent);

// etcd's layout: "Summary:", "Response time histogram:", "Latency
// distribution:" (seconds, as etcd prints them).
std::string FormatSummary(const LatencySummary& summary);

// The summary's figures for --json (milliseconds).
nlohmann::json SummaryJson(const LatencySummary& summary);

}  // namespace raftkv::bench
