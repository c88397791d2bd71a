// Prometheus text exposition of raftkvd's metrics (see metrics.h).
#include "server/metrics.h"

#include <glog/logging.h>

#include <cmath>
#include <cstdio>

namespace raftkv::server {
namespace {

// A sample value as Prometheus writes it (Go's strconv 'g' style).
std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"}, with `extra` (e.g. le) last; "" without labels.
std::string LabelText(const MetricLabels& labels,
                      const std::string& extra_name = "",
                      const std::string& extra_value = "") {
  std::string out;
  for (const auto& [k, v] : labels) {
    out += out.empty() ? "{" : ",";
    out += k + "=\"" + EscapeLabelValue(v) + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra_name + "=\"" + extra_value + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + v, std::memory_order_relaxed)) {
  }
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

MetricsRegistry::Family& MetricsRegistry::FamilyOf(const std::string& name,
                                                   Type type,
                                                   const std::string& help) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.type = type;
    it->second.help = help;
  }
  CHECK(it->second.type == type) << name << " registered with two types";
  return it->second;
}

Counter* MetricsRegistry::AddCounter(const std::string& name,
                                     const std::string& help,
                                     const MetricLabels& labels) {
  Family& f = FamilyOf(name, Type::kCounter, help);
  f.counters.emplace_back(labels, std::make_unique<Counter>());
  return f.counters.back().second.get();
}

Gauge* MetricsRegistry::AddGauge(const std::string& name,
                                 const std::string& help,
                                 const MetricLabels& labels) {
  Family& f = FamilyOf(name, Type::kGauge, help);
  f.gauges.emplace_back(labels, std::make_unique<Gauge>());
  return f.gauges.back().second.get();
}

Histogram* MetricsRegistry::AddHistogram(const std::string& name,
                                         const std::string& help,
                                         std::vector<double> upper_bounds,
                                         const MetricLabels& labels) {
  Family& f = FamilyOf(name, Type::kHistogram, help);
  f.histograms.emplace_back(
      labels, std::make_unique<Histogram>(std::move(upper_bounds)));
  return f.histograms.back().second.get();
}

std::string MetricsRegistry::Render() const {
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + EscapeHelp(f.help) + "\n";
    switch (f.type) {
      case Type::kCounter:
        out += "# TYPE " + name + " counter\n";
        for (const auto& [labels, c] : f.counters) {
          out += name + LabelText(labels) + " " +
                 FormatValue(static_cast<double>(c->value())) + "\n";
        }
        break;
      case Type::kGauge:
        out += "# TYPE " + name + " gauge\n";
        for (const auto& [labels, g] : f.gauges) {
          out +=
              name + LabelText(labels) + " " + FormatValue(g->value()) + "\n";
        }
        break;
      case Type::kHistogram:
        out += "# TYPE " + name + " histogram\n";
        for (const auto& [labels, h] : f.histograms) {
          // Read the buckets first: count and sum then cover at least
          // what the buckets say (a scrape races with observations).
          uint64_t cumulative = 0;
          for (size_t i = 0; i < h->upper_bounds().size(); ++i) {
            cumulative += h->bucket(i);
            out += name + "_bucket" +
                   LabelText(labels, "le", FormatValue(h->upper_bounds()[i])) +
                   " " + FormatValue(static_cast<double>(cumulative)) + "\n";
          }
          cumulative += h->bucket(h->upper_bounds().size());
          const uint64_t count = std::max(cumulative, h->count());
          out += name + "_bucket" + LabelText(labels, "le", "+Inf") + " " +
                 FormatValue(static_cast<double>(count)) + "\n";
          out += name + "_sum" + LabelText(labels) + " " +
                 FormatValue(h->sum()) + "\n";
          out += name + "_count" + LabelText(labels) + " " +
                 FormatValue(static_cast<double>(count)) + "\n";
        }
        break;
    }
  }
  return out;
}

}  // namespace raftkv::server
