// raftkv-sim: runs the deterministic cluster simulator (tests/sim) over
// many seeds, or the leader-loss demo scenario.
//
//   raftkv-sim --seeds=N --first_seed=S --nodes=3|5 [--steps=K] [--verbose]
//   raftkv-sim --scenario=leader_loss --seeds=N [--nodes=3]
//   raftkv-sim --scenario=split_majority --seeds=N
//   [--mutant=unsafe_conf_change]
//
// Ends with "raftkv-sim: seeds=N failures=F steps=T elapsed_s=E" and exits 0
// only when no seed failed. A failing seed prints the seed, the violated
// property and the last events; the same seed reproduces it exactly. The
// wall clock is read only to report elapsed_s; never writes files.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/sim/sim_runner.h"
#include "util/flags_help.h"

DEFINE_uint64(seeds, 100, "Number of seeds to run.");
DEFINE_uint64(first_seed, 1, "First seed.");
DEFINE_int32(nodes, 3, "Cluster size (3 or 5; 1 to 9 allowed).");
DEFINE_int32(steps, 5000,
             "Events per seed in the fault phase (deliveries, ticks, faults, "
             "requests).");
DEFINE_bool(verbose, false,
            "Print every seed's statistics and the trace of its last "
            "--trace_lines events.");
DEFINE_uint64(trace_lines, raftkv::sim::kDefaultTraceLines,
              "Events kept in a trace (0: all of them).");
DEFINE_string(scenario, "",
              "leader_loss: a leader commits a few entries and crashes; "
              "print the simulated time until a new leader is elected and "
              "commits. split_majority: the scripted membership-change "
              "scenario (4 nodes and a spare) in which a broken change rule "
              "(--mutant=unsafe_conf_change) lets two disjoint majorities "
              "commit.");
DEFINE_int32(spare_nodes, raftkv::sim::SimOptions().spare_nodes,
             "Spare node ids beyond --nodes that membership changes add.");
DEFINE_int32(membership_interval_ms,
             raftkv::sim::SimOptions().membership_interval_ms,
             "Mean simulated ms between two membership changes (0: none).");
DEFINE_int32(fault_interval_ms, raftkv::sim::SimOptions().fault_interval_ms,
             "Mean simulated ms between two fault actions.");
DEFINE_int32(crash_weight, raftkv::sim::SimOptions().crash_weight,
             "Weight of crashes (and of restarts) among the fault actions.");
DEFINE_int32(disk_loss_weight, raftkv::sim::SimOptions().disk_loss_weight,
             "Relative weight of losing a node's disk among fault actions.");
DEFINE_int32(max_latency_ms, raftkv::sim::SimOptions().max_latency_ms,
             "Message latency is uniform in [1, max_latency_ms] simulated ms.");
DEFINE_double(drop_rate, raftkv::sim::SimOptions().drop_rate,
              "Chance that the network loses a message (fault phase).");
DEFINE_int32(liveness_timeout_ms, raftkv::sim::SimOptions().liveness_timeout_ms,
             "After healing, a proposal must be applied everywhere within "
             "this many simulated ms.");
DEFINE_string(mutant, "",
              "Deliberately broken harness, to see the checkers fail: "
              "forget_vote, lose_tail, wiped_node_votes, stale_read, "
              "skip_apply or unsafe_conf_change.");

namespace {

using raftkv::sim::SimOptions;
using raftkv::sim::SimResult;
using raftkv::sim::Trace;

// A CHECK failure inside the core aborts the process before the seed's
// result is printed: this sink names the seed (and dumps the trace, if one
// is being recorded) as the FATAL message goes out.
class FatalReporter : public google::LogSink {
 public:
  void Watch(const SimOptions* options, const Trace* trace) {
    options_ = options;
    trace_ = trace;
  }
  void send(google::LogSeverity severity, const char*, const char*, int,
            const google::LogMessageTime&, const char*, size_t) override {
    if (severity != google::GLOG_FATAL || options_ == nullptr) return;
    std::fprintf(stdout, "seed %" PRIu64 " FAILED: a CHECK in the core\n",
                 options_->seed);
    if (trace_ != nullptr) {
      std::fprintf(stdout, "last events of seed %" PRIu64 ":\n",
                   options_->seed);
      for (const std::string& line : trace_->Lines()) {
        std::fprintf(stdout, "  %s\n", line.c_str());
      }
    }
    std::fprintf(
        stdout,
        "reproduce: raftkv-sim --seeds=1 --first_seed=%" PRIu64
        " --nodes=%d --steps=%d%s%s --verbose\n",
        options_->seed, options_->nodes, options_->steps,
        FLAGS_mutant.empty() ? "" : " --mutant=", FLAGS_mutant.c_str());
    std::fflush(stdout);
  }

 private:
  const SimOptions* options_ = nullptr;
  const Trace* trace_ = nullptr;
};

void PrintTrace(uint64_t seed, const std::vector<std::string>& lines) {
  std::printf("last %zu events of seed %" PRIu64 ":\n", lines.size(), seed);
  for (const std::string& line : lines) std::printf("  %s\n", line.c_str());
}

void PrintFailure(const SimOptions& options, const SimResult& r) {
  std::printf("seed %" PRIu64 " FAILED (%d nodes): %s\n", options.seed,
              options.nodes, r.status.ToString().c_str());
  PrintTrace(options.seed, r.trace);
  std::printf("reproduce: raftkv-sim --seeds=1 --first_seed=%" PRIu64
              " --nodes=%d --steps=%d%s%s --verbose\n",
              options.seed, options.nodes, options.steps,
              FLAGS_mutant.empty() ? "" : " --mutant=", FLAGS_mutant.c_str());
}

SimResult RunOne(const SimOptions& options, FatalReporter* fatal) {
  SimResult r;
  // One seed or --verbose: trace from the start, so that even a CHECK
  // failure in the core shows the events leading to it.
  if (FLAGS_verbose || FLAGS_seeds == 1) {
    Trace trace(FLAGS_trace_lines);
    fatal->Watch(&options, &trace);
    r = raftkv::sim::RunSeed(options, &trace);
  } else {
    fatal->Watch(&options, nullptr);
    r = raftkv::sim::RunSeedExplained(options, FLAGS_trace_lines);
  }
  fatal->Watch(nullptr, nullptr);
  return r;
}

int RunSeeds(raftkv::sim::Mutant mutant, FatalReporter* fatal) {
  const auto start = std::chrono::steady_clock::now();
  uint64_t failures = 0;
  raftkv::sim::SimStats totals;
  for (uint64_t i = 0; i < FLAGS_seeds; ++i) {
    SimOptions options;
    options.seed = FLAGS_first_seed + i;
    options.nodes = FLAGS_nodes;
    options.steps = FLAGS_steps;
    options.mutant = mutant;
    options.fault_interval_ms = FLAGS_fault_interval_ms;
    options.crash_weight = FLAGS_crash_weight;
    options.disk_loss_weight = FLAGS_disk_loss_weight;
    options.liveness_timeout_ms = FLAGS_liveness_timeout_ms;
    options.max_latency_ms = FLAGS_max_latency_ms;
    options.drop_rate = FLAGS_drop_rate;
    options.spare_nodes = FLAGS_spare_nodes;
    options.membership_interval_ms = FLAGS_membership_interval_ms;
    const SimResult r = RunOne(options, fatal);
    totals.Add(r.stats);
    if (FLAGS_verbose) {
      std::printf("seed %" PRIu64 ": %s %s\n", options.seed,
                  r.ok() ? "ok" : "FAILED", r.stats.ToString().c_str());
      if (r.ok()) PrintTrace(options.seed, r.trace);
    }
    if (!r.ok()) {
      ++failures;
      PrintFailure(options, r);
    }
    std::fflush(stdout);
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf("raftkv-sim: totals %s\n", totals.ToString().c_str());
  std::printf("raftkv-sim: seeds=%" PRIu64 " failures=%" PRIu64
              " steps=%" PRIu64 " elapsed_s=%.2f\n",
              FLAGS_seeds, failures, totals.steps, elapsed);
  return failures == 0 ? 0 : 1;
}

int64_t Median(std::vector<int64_t> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int64_t Max(const std::vector<int64_t>& v) {
  return v.empty() ? -1 : *std::max_element(v.begin(), v.end());
}

int RunLeaderLossScenario() {
  std::vector<int64_t> elected, committed;
  uint64_t failures = 0;
  for (uint64_t i = 0; i < FLAGS_seeds; ++i) {
    const uint64_t seed = FLAGS_first_seed + i;
    Trace trace(FLAGS_trace_lines);
    raftkv::sim::LeaderLossResult r = raftkv::sim::RunLeaderLoss(
        seed, FLAGS_nodes, FLAGS_verbose ? &trace : nullptr);
    if (!r.status.ok()) {
      ++failures;
      std::printf("seed %" PRIu64 " FAILED: %s\n", seed,
                  r.status.ToString().c_str());
      continue;
    }
    std::printf("seed %" PRIu64 ": leader %" PRIu64 " (term %" PRIu64
                ") crashed; node %" PRIu64 " leads term %" PRIu64
                ", elected after %" PRId64 " ms, first commit after %" PRId64
                " ms (simulated)\n",
                seed, r.old_leader, r.old_term, r.new_leader, r.new_term,
                r.elected_ms, r.committed_ms);
    if (FLAGS_verbose) PrintTrace(seed, trace.Lines());
    elected.push_back(r.elected_ms);
    committed.push_back(r.committed_ms);
  }
  std::printf("raftkv-sim: scenario=leader_loss nodes=%d seeds=%" PRIu64
              " failures=%" PRIu64 " elected_ms_median=%" PRId64
              " elected_ms_max=%" PRId64 " committed_ms_median=%" PRId64
              " committed_ms_max=%" PRId64 "\n",
              FLAGS_nodes, FLAGS_seeds, failures, Median(elected), Max(elected),
              Median(committed), Max(committed));
  return failures == 0 ? 0 : 1;
}

int RunSplitMajorityScenario(raftkv::sim::Mutant mutant) {
  uint64_t failures = 0;
  for (uint64_t i = 0; i < FLAGS_seeds; ++i) {
    const uint64_t seed = FLAGS_first_seed + i;
    Trace trace(FLAGS_trace_lines);
    const SimResult r = raftkv::sim::RunSplitMajority(
        seed, mutant, FLAGS_verbose ? &trace : nullptr);
    std::printf("seed %" PRIu64 ": %s\n", seed,
                r.ok() ? "ok" : r.status.ToString().c_str());
    if (!r.ok()) ++failures;
    if (FLAGS_verbose) PrintTrace(seed, r.trace);
  }
  std::printf("raftkv-sim: scenario=split_majority mutant=%s seeds=%" PRIu64
              " failures=%" PRIu64 "\n",
              raftkv::sim::MutantName(mutant), FLAGS_seeds, failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "raftkv-sim --seeds=N --first_seed=S --nodes=3|5 [--steps=K] "
      "[--verbose] | --scenario=leader_loss");
  // Logs to stderr, never files. The core logs every election at INFO,
  // which would drown (and slow) a run of thousands of seeds: WARNING and
  // up only, unless --minloglevel says otherwise.
  FLAGS_logtostderr = true;
  FLAGS_minloglevel =
      google::GLOG_ERROR;  // elections and rejoins are routine here
  static char help_on[] = "--helpon=raftkv_sim";
  raftkv::RestrictHelpToOwnFlags(argc, argv, help_on);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (FLAGS_nodes < 1 || FLAGS_nodes > 9 || FLAGS_steps < 0) {
    std::fprintf(stderr, "raftkv-sim: --nodes must be in [1, 9]\n");
    return 2;
  }
  raftkv::sim::Mutant mutant;
  raftkv::Status s = raftkv::sim::ParseMutant(FLAGS_mutant, &mutant);
  if (!s.ok()) {
    std::fprintf(stderr, "raftkv-sim: %s\n", s.ToString().c_str());
    return 2;
  }
  if (FLAGS_scenario == "leader_loss") return RunLeaderLossScenario();
  if (FLAGS_scenario == "split_majority") {
    return RunSplitMajorityScenario(mutant);
  }
  if (!FLAGS_scenario.empty()) {
    std::fprintf(stderr,
                 "raftkv-sim: unknown --scenario (leader_loss, "
                 "split_majority)\n");
    return 2;
  }
  FatalReporter fatal;
  google::AddLogSink(&fatal);
  const int rc = RunSeeds(mutant, &fatal);
  google::RemoveLogSink(&fatal);
  return rc;
}
