// Metrics: raftkvd's counters, gauges and histograms, rendered in
// Prometheus' text exposition format (version 0.0.4) for GET /metrics.
// Each value is an atomic, written by the stage that owns it and read by
// the HTTP endpoint's thread: recording never locks, allocates or blocks.
//
// Everything is registered at start-up, before the endpoint serves; the
// registry's structure never changes afterwards. Must never: be written
// from two stages for the same value (each value has one owner), or be
// read for decisions (it is for people and dashboards).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace raftkv::server {

// Label name -> value, e.g. {{"op", "put"}, {"outcome", "ok"}}.
using MetricLabels = std::map<std::string, std::string>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Cumulative buckets with the given upper bounds (+Inf is implied).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void Observe(double v);
  const std::vector<double>& upper_bounds() const { return bounds_; }
  // Observations at or below bounds_[i] alone (not cumulative); the last
  // element counts those above every bound.
  uint64_t bucket(size_t i) const {
    return buckets_[i].load(std::memory_order_relaxed);
  }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Latency buckets in seconds, 0.1 ms to 10 s.
std::vector<double> LatencyBuckets();

class MetricsRegistry {
 public:
  Counter* AddCounter(const std::string& name, const std::string& help,
                      const MetricLabels& labels = {});
  Gauge* AddGauge(const std::string& name, const std::string& help,
                  const MetricLabels& labels = {});
  Histogram* AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> upper_bounds,
                          const MetricLabels& labels = {});
  // The text exposition format, families in name order.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::vector<std::pair<MetricLabels, std::unique_ptr<Counter>>> counters;
    std::vector<std::pair<MetricLabels, std::unique_ptr<Gauge>>> gauges;
    std::vector<std::pair<MetricLabels, std::unique_ptr<Histogram>>> histograms;
  };
  Family& FamilyOf(const std::string& name, Type type, const std::string& help);

  std::map<std::string, Family> families_;
};

}  // namespace raftkv::server
