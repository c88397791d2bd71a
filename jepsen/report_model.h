// What the report draws, extracted from a History: completed client
// operations (invocation paired with its completion) and fault intervals
// (each fault's start up to the next heal). Pure functions of the history;
// must never do I/O or reorder events (the history is in real-time order).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "jepsen/history.h"

namespace raftkv::jepsen {

// One client operation that completed (ok, fail or info). Operations whose
// completion is missing from the history are not included.
struct CompletedOp {
  int64_t process = 0;
  std::string f;                       // read, write, cas, delete, add
  EventType outcome = EventType::kOk;  // kOk, kFail or kInfo
  double invoke_s = 0;                 // since the start of the test
  double complete_s = 0;               // >= invoke_s
  double latency_ms() const { return (complete_s - invoke_s) * 1e3; }
};

// A fault from its start to the heal that ended it. Faults overlap when the
// nemesis combines them (a partition, then a kill before the heal).
struct FaultInterval {
  std::string f;            // kill, pause, partition, clock, ...
  std::string description;  // the nemesis event's value
  std::string heal;         // the value of the heal that ended it
  double start_s = 0;
  double end_s = 0;     // the heal, or the end of the history
  bool healed = false;  // false: still active when the history ended
};

// Client operations in invocation order, each an invocation paired with the
// next completion of the same process (observations, history.h, are not
// operations and are skipped).
std::vector<CompletedOp> CompletedOps(const History& history);

// Faults in start order. A nemesis event whose f is not "heal" starts a
// fault; "heal" ends every active one. A nemesis invoke followed by its
// completion (same f) is one fault, starting at the invoke.
std::vector<FaultInterval> FaultIntervals(const History& history);

// Time of the last event, in seconds (0 for an empty history).
double HistoryEndSeconds(const History& history);

// Per-f summary of completed operations, for the report's table.
struct OpStats {
  uint64_t ok = 0, fail = 0, info = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;  // over ok operations
};
std::map<std::string, OpStats> StatsByFunction(
    const std::vector<CompletedOp>& ops);

}  // namespace raftkv::jepsen
