// The report of one raftkv-jepsen run, written into its output directory:
//
//   OUT/results.json  the verdict, counts, faults and anomalies (machine use)
//   OUT/latency.svg   every completed operation: invocation time x latency
//   OUT/rate.svg      completions per second by outcome
//   OUT/index.html    a self-contained page with all of the above, linking
//                     history.jsonl, results.json and the node logs
//
// Fault intervals (shaded in both plots, listed in the page) come from the
// nemesis events of the history: each fault lasts from its start to the
// next "heal" (see jepsen/history.h).
//
// Must never write outside OUT, overwrite OUT/history.jsonl (the runner
// writes it) or load anything from the network: the page and the plots
// are plain files that open offline.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jepsen/check_result.h"
#include "jepsen/history.h"
#include "util/status.h"

namespace raftkv::jepsen {

struct ReportInput {
  std::string out_dir;            // OUT: an existing directory
  std::string workload, nemesis;  // e.g. "register", "partition,kill"
  uint64_t seed = 0;
  int nodes = 0;
  double time_limit_s = 0;
  double rate = 0;  // target operations per second, all clients together
  int concurrency = 0;
  History history;
  CheckResult result;
  std::vector<std::string> node_logs;  // file names relative to out_dir
  std::string notes;                   // e.g. "network namespace: yes"
};

// Writes OUT/results.json, OUT/latency.svg, OUT/rate.svg and
// OUT/index.html (replacing earlier ones). InvalidArgument if out_dir is
// not a directory; IOError if a file cannot be written.
Status WriteReport(const ReportInput& input);

// The contents of results.json (one JSON object, indented by two, and a
// newline):
//   {"valid": true|false|"unknown", "workload", "nemesis", "seed", "nodes",
//    "time_limit_s", "rate", "concurrency", "ops", "ok", "fail", "info",
//    "figures": {name: N} and "checks": [line] (only when the checker gave
//    any: watch and lease workloads), "faults": N, "fault_intervals": [{"f",
//    "description", "start_s", "end_s", "healed"}], "anomalies": [{"kind",
//    "key" (or "key_base64" when not UTF-8), "description", "rendering",
//    "slice": [event objects as in history.jsonl]}], "summary", "notes"}
std::string ResultsJson(const ReportInput& input);

}  // namespace raftkv::jepsen
