// The outcome of checking a history (linearizability of registers, or the
// set workload): shared by the checkers, the runner (which prints it and
// sets the exit code) and the report (results.json, index.html).
//
// Plain data. A checker must never report kValid when its search was cut off
// by a budget: that is kUnknown.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "jepsen/history.h"

namespace raftkv::jepsen {

enum class Validity { kValid, kInvalid, kUnknown };

// "true", "false", "unknown": the spelling of results.json's "valid" field.
inline const char* ValidityName(Validity v) {
  switch (v) {
    case Validity::kValid:
      return "true";
    case Validity::kInvalid:
      return "false";
    case Validity::kUnknown:
      return "unknown";
  }
  return "unknown";
}

// One violation found by a checker.
struct Anomaly {
  // e.g. "nonlinearizable", "lost", "unexpected", "duplicated".
  std::string kind;
  std::string key;          // register key or set name
  std::string description;  // one readable paragraph
  History slice;            // a minimal slice of the history around it
  // A text rendering of the slice (a timeline per process), for the
  // terminal and the report.
  std::string rendering;
};

struct CheckResult {
  Validity validity = Validity::kValid;
  // Completed client ops by outcome (invokes = ops; an invocation that never
  // completed counts as info).
  uint64_t ops = 0, ok = 0, fail = 0, info = 0;
  std::vector<Anomaly> anomalies;
  // Workload figures beyond the operation counts, in the checker's order
  // (watch: "events", "watchers", ...; lease: "leases", "revokes", ...):
  // results.json's "figures" object and a table in index.html. Empty for
  // the register and set workloads.
  std::vector<std::pair<std::string, int64_t>> figures;
  // One line per property checked and what came of it, in order
  // (results.json's "checks", a list in index.html); may be empty.
  std::vector<std::string> checks;
  // One line, e.g. "linearizable: 57 keys, 12034 ops, checked in 0.8 s".
  std::string summary;
};

// The result for a history whose operations do not pair (PairOperations
// failed with `why`): unknown, with one "malformed-history" anomaly.
inline CheckResult MalformedHistory(const std::string& why) {
  CheckResult result;
  result.validity = Validity::kUnknown;
  result.anomalies.push_back({"malformed-history", "", why, {}, ""});
  result.summary = "unknown: malformed history: " + why;
  return result;
}

}  // namespace raftkv::jepsen
