// RunTest: one raftkv-jepsen test from start to verdict. Starts the
// cluster, runs the workload and the nemesis for time_limit_s, heals
// everything, waits for the cluster to recover, does the final reads,
// stops the cluster, and writes OUT/history.jsonl, the node logs and the
// report (results.json, latency.svg, rate.svg, index.html) after checking
// the history.
//
// Must never leave a raftkvd running or a fault in place when it returns,
// write outside out_dir and its own temporary directory, or run longer
// than time_limit_s plus bounded recovery, final-read and stop phases.
#pragma once

#include <csignal>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "fault/netns.h"
#include "util/status.h"

namespace raftkv::jepsen {

struct RunOptions {
  int nodes = 5;
  std::string workload = "register";
  std::string nemesis = "partition,kill,pause";  // as given, for the report
  std::set<std::string> nemesis_kinds;
  double time_limit_s = 60;
  double rate = 200;
  int concurrency = 10;
  uint64_t seed = 1;
  std::string out_dir;
  std::string raftkvd;  // absolute path
  std::vector<std::string> server_flags;
  std::string faketime_library;  // used only with the clock nemesis
  double quiet_s = 3, fault_s = 10, heal_s = 10;
  int64_t op_timeout_ms = 1000;
  int active_keys = 5;
  double key_period_s = 1;
  int watchers = 3;         // watch workload
  int64_t lease_ttl_s = 3;  // lease workload
  int lockers = 3;          // lease workload
  double recovery_timeout_s = 30;
  bool keep_data = false;
  std::string setup_notes;  // how the network was set up, fallbacks
};

// The process's exit code: 0 valid, 1 invalid, 2 unknown or error.
// `network` is null when running on the root loopback (no partitions).
// `interrupted` is polled; once non-zero the run ends early (and is
// reported as such).
int RunTest(const RunOptions& options, const fault::PrivateNetwork* network,
            const volatile std::sig_atomic_t* interrupted);

}  // namespace raftkv::jepsen
