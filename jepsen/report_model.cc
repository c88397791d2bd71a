// Extraction of completed operations and fault intervals from a history,
// for the report. Pure functions; must never do I/O.
#include "jepsen/report_model.h"

#include <algorithm>
#include <cmath>
#include <optional>

namespace raftkv::jepsen {
namespace {

constexpr double kNanosPerSecond = 1e9;

double Seconds(int64_t time_ns) { return time_ns / kNanosPerSecond; }

// The value at rank `q` (0..1) of sorted `values`, nearest-rank method.
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

}  // namespace

std::vector<CompletedOp> CompletedOps(const History& history) {
  std::vector<CompletedOp> ops;
  std::map<int64_t, size_t> pending;  // process -> index of its invocation
  std::vector<bool> completed;
  for (const Event& event : history) {
    if (event.is_nemesis() || event.is_observation()) continue;
    if (event.type == EventType::kInvoke) {
      CompletedOp op;
      op.process = event.process;
      op.f = event.f;
      op.invoke_s = Seconds(event.time_ns);
      pending[event.process] = ops.size();
      ops.push_back(op);
      completed.push_back(false);
      continue;
    }
    auto it = pending.find(event.process);
    if (it == pending.end()) continue;  // completion without invocation
    CompletedOp& op = ops[it->second];
    op.outcome = event.type;
    op.complete_s = std::max(op.invoke_s, Seconds(event.time_ns));
    completed[it->second] = true;
    pending.erase(it);
  }
  std::vector<CompletedOp> result;
  result.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    if (completed[i]) result.push_back(std::move(ops[i]));
  }
  return result;
}

std::vector<FaultInterval> FaultIntervals(const History& history) {
  std::vector<FaultInterval> faults;
  std::vector<size_t> active;           // indexes into `faults`
  std::optional<Event> pending_invoke;  // nemesis invoke awaiting info
  const double end_s = HistoryEndSeconds(history);
  for (const Event& event : history) {
    if (!event.is_nemesis()) continue;
    if (event.type == EventType::kInvoke) {
      pending_invoke = event;
      continue;
    }
    double start_s = Seconds(event.time_ns);
    if (pending_invoke && pending_invoke->f == event.f) {
      start_s = Seconds(pending_invoke->time_ns);
    }
    pending_invoke.reset();
    if (event.f == "heal") {
      for (size_t index : active) {
        faults[index].end_s = start_s;
        faults[index].healed = true;
        faults[index].heal = event.value.value_or("");
      }
      active.clear();
      continue;
    }
    FaultInterval fault;
    fault.f = event.f;
    fault.description = event.value.value_or("");
    fault.start_s = start_s;
    fault.end_s = end_s;  // until a heal says otherwise
    active.push_back(faults.size());
    faults.push_back(std::move(fault));
  }
  return faults;
}

double HistoryEndSeconds(const History& history) {
  int64_t end_ns = 0;
  for (const Event& event : history) end_ns = std::max(end_ns, event.time_ns);
  return Seconds(end_ns);
}

std::map<std::string, OpStats> StatsByFunction(
    const std::vector<CompletedOp>& ops) {
  std::map<std::string, OpStats> stats;
  std::map<std::string, std::vector<double>> ok_latencies;
  for (const CompletedOp& op : ops) {
    OpStats& s = stats[op.f];
    switch (op.outcome) {
      case EventType::kOk:
        ++s.ok;
        ok_latencies[op.f].push_back(op.latency_ms());
        break;
      case EventType::kFail:
        ++s.fail;
        break;
      default:
        ++s.info;
        break;
    }
  }
  for (auto& [f, latencies] : ok_latencies) {
    std::sort(latencies.begin(), latencies.end());
    OpStats& s = stats[f];
    s.p50_ms = Quantile(latencies, 0.5);
    s.p99_ms = Quantile(latencies, 0.99);
    s.max_ms = latencies.back();
  }
  return stats;
}

}  // namespace raftkv::jepsen
