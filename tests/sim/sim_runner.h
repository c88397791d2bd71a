// Entry points of the simulator, used by raftkv-sim and the tests: run one
// seed (fault phase, liveness phase, final checks), replay a failing seed
// with a trace, run the leader-loss scenario. Each run is independent and
// deterministic in its options; nothing here keeps state between runs or
// reads the wall clock.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tests/sim/sim_cluster.h"
#include "tests/sim/sim_options.h"
#include "tests/sim/trace.h"

namespace raftkv::sim {

// Default length of a failing seed's trace.
constexpr size_t kDefaultTraceLines = 100;

// Runs one seed. With a non-null `trace`, records its events there.
SimResult RunSeed(const SimOptions& options, Trace* trace);

// Runs one seed without a trace; if it fails, runs it again with a trace of
// the last `trace_lines` events (result.trace). The replay must fail the
// same way; if it does not, the status says so (a determinism bug).
SimResult RunSeedExplained(const SimOptions& options, size_t trace_lines);

// The leader-loss demo on `nodes` nodes with the core's default options.
LeaderLossResult RunLeaderLoss(uint64_t seed, int nodes, Trace* trace);

// The split-majority membership scenario (SimCluster::
// RunSplitMajorityScenario) on 4 nodes and a spare, with `mutant`
// (kNone or kUnsafeConfChange).
SimResult RunSplitMajority(uint64_t seed, Mutant mutant, Trace* trace);

}  // namespace raftkv::sim
