// Runs seeds through a SimCluster. Never shares anything between runs.
#include "tests/sim/sim_runner.h"

namespace raftkv::sim {

SimResult RunSeed(const SimOptions& options, Trace* trace) {
  SimResult result;
  SimCluster cluster(options, trace);
  result.status = cluster.RunFaultPhase();
  if (result.status.ok()) result.status = cluster.RunLivenessPhase();
  if (result.status.ok()) result.status = cluster.CheckFinalState();
  result.stats = cluster.stats();
  if (trace != nullptr) result.trace = trace->Lines();
  return result;
}

SimResult RunSeedExplained(const SimOptions& options, size_t trace_lines) {
  SimResult first = RunSeed(options, nullptr);
  if (first.ok()) return first;
  Trace trace(trace_lines);
  SimResult replay = RunSeed(options, &trace);
  if (replay.status.ToString() != first.status.ToString() ||
      replay.stats.steps != first.stats.steps) {
    replay.status = Status::Aborted(
        "the traced replay diverged (nondeterminism): first run: " +
        first.status.ToString() + "; replay: " + replay.status.ToString());
  }
  return replay;
}

LeaderLossResult RunLeaderLoss(uint64_t seed, int nodes, Trace* trace) {
  SimOptions options;
  options.seed = seed;
  options.nodes = nodes;
  options.vary_config = false;
  LeaderLossResult result;
  SimCluster cluster(options, trace);
  cluster.RunLeaderLoss(&result);
  return result;
}

SimResult RunSplitMajority(uint64_t seed, Mutant mutant, Trace* trace) {
  SimOptions options;
  options.seed = seed;
  options.nodes = 4;
  options.spare_nodes = 1;
  options.vary_config = false;
  options.membership_interval_ms = 0;
  options.mutant = mutant;
  SimResult result;
  SimCluster cluster(options, trace);
  result.status = cluster.RunSplitMajorityScenario();
  result.stats = cluster.stats();
  if (trace != nullptr) result.trace = trace->Lines();
  return result;
}

}  // namespace raftkv::sim
