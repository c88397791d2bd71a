// raftkv-sim: runs the deterministic cluster simulator over many seeds.
//
//   raftkv-sim --seeds=N --first_seed=S --nodes=3|5 [--steps=K] [--verbose]
//   raftkv-sim --scenario=leader_loss --seeds=N
//
// Ends with "raftkv-sim: seeds=N failures=F steps=T elapsed_s=E"; exits 0
// only when no seed failed. A failing seed is replayed with tracing and
// printed with its last events; the same seed reproduces it exactly.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "tests/sim/simulation.h"
#include "util/flags_help.h"

DEFINE_uint64(seeds, 100, "Number of seeds to run.");
DEFINE_uint64(first_seed, 1, "First seed.");
DEFINE_int32(nodes, 3, "Cluster size (3 or 5).");
DEFINE_int32(steps, 10000, "Events per seed in the fault phase.");
DEFINE_bool(verbose, false, "Print a line per seed.");
DEFINE_string(scenario, "",
              "leader_loss: a leader crashes; print the simulated time until "
              "a new leader commits.");
DEFINE_string(mutant, "",
              "Deliberately broken node (forget_vote) to see the checker "
              "fail.");

namespace {

int RunLeaderLossScenario() {
  std::vector<int64_t> times;
  for (uint64_t seed = FLAGS_first_seed; seed < FLAGS_first_seed + FLAGS_seeds;
       ++seed) {
    raftkv::sim::LeaderLossResult r =
        raftkv::sim::RunLeaderLoss(seed, FLAGS_nodes);
    if (r.election_ms < 0 || !r.failure.empty()) {
      std::printf("seed %llu: no new leader committed (%s)\n",
                  (unsigned long long)seed, r.failure.c_str());
      return 1;
    }
    std::printf(
        "seed %llu: leader %llu crashed; node %llu elected and committing "
        "after %lld simulated ms\n",
        (unsigned long long)seed, (unsigned long long)r.old_leader,
        (unsigned long long)r.new_leader, (long long)r.election_ms);
    times.push_back(r.election_ms);
  }
  std::sort(times.begin(), times.end());
  std::printf(
      "raftkv-sim: scenario=leader_loss nodes=%d seeds=%zu "
      "election_ms_median=%lld election_ms_max=%lld\n",
      FLAGS_nodes, times.size(), (long long)times[times.size() / 2],
      (long long)times.back());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "raftkv-sim --seeds=N --first_seed=S --nodes=3|5 [--steps=K]");
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 2;  // the core's INFO/WARNING logs would drown the run
  static char help_on[] = "--helpon=raftkv_sim";
  raftkv::RestrictHelpToOwnFlags(argc, argv, help_on);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (FLAGS_nodes < 1 || FLAGS_nodes > 9) {
    std::fprintf(stderr, "raftkv-sim: --nodes must be in [1, 9]\n");
    return 2;
  }
  if (FLAGS_scenario == "leader_loss") return RunLeaderLossScenario();
  if (!FLAGS_scenario.empty()) {
    std::fprintf(stderr, "raftkv-sim: unknown --scenario\n");
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  uint64_t failures = 0, steps = 0;
  for (uint64_t seed = FLAGS_first_seed; seed < FLAGS_first_seed + FLAGS_seeds;
       ++seed) {
    raftkv::sim::SimOptions options;
    options.seed = seed;
    options.nodes = FLAGS_nodes;
    options.steps = FLAGS_steps;
    options.mutant = FLAGS_mutant;
    raftkv::sim::SimResult r = raftkv::sim::RunSimulation(options);
    steps += r.steps;
    if (FLAGS_verbose) {
      std::printf(
          "seed %llu: %s steps=%llu sim_ms=%llu terms=%llu committed=%llu "
          "crashes=%llu partitions=%llu snapshots_sent=%llu transfers=%llu "
          "reads_checked=%llu\n",
          (unsigned long long)seed, r.ok ? "ok" : "FAILED",
          (unsigned long long)r.steps, (unsigned long long)r.sim_ms,
          (unsigned long long)r.elections, (unsigned long long)r.committed,
          (unsigned long long)r.crashes, (unsigned long long)r.partitions,
          (unsigned long long)r.snapshots_sent, (unsigned long long)r.transfers,
          (unsigned long long)r.reads_checked);
      std::fflush(stdout);
    }
    if (!r.ok) {
      ++failures;
      options.trace = true;
      raftkv::sim::SimResult traced = raftkv::sim::RunSimulation(options);
      std::printf("seed %llu FAILED: %s\nlast events of seed %llu:\n",
                  (unsigned long long)seed, r.failure.c_str(),
                  (unsigned long long)seed);
      for (const std::string& line : traced.trace) {
        std::printf("  %s\n", line.c_str());
      }
      std::printf(
          "reproduce: raftkv-sim --seeds=1 --first_seed=%llu "
          "--nodes=%d --steps=%d\n",
          (unsigned long long)seed, FLAGS_nodes, FLAGS_steps);
    }
    if ((seed - FLAGS_first_seed + 1) % 500 == 0 && !FLAGS_verbose) {
      std::fprintf(stderr, "raftkv-sim: %llu/%llu seeds, %llu failures\n",
                   (unsigned long long)(seed - FLAGS_first_seed + 1),
                   (unsigned long long)FLAGS_seeds,
                   (unsigned long long)failures);
    }
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf(
      "raftkv-sim: seeds=%llu failures=%llu steps=%llu "
      "elapsed_s=%.1f\n",
      (unsigned long long)FLAGS_seeds, (unsigned long long)failures,
      (unsigned long long)steps, elapsed);
  return failures == 0 ? 0 : 1;
}
