// Runs the deterministic simulator over a fixed set of seeds (3 and 5
// nodes), checks that a seed replays exactly, and that the checker catches
// a deliberately broken node (a checker that cannot fail proves nothing).
// Longer runs: build/bin/raftkv-sim --seeds=2000.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>

#include "tests/sim/simulation.h"

namespace raftkv::sim {
namespace {

void RunSeeds(int nodes, uint64_t first, int count) {
  for (uint64_t seed = first; seed < first + count; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.nodes = nodes;
    SimResult r = RunSimulation(options);
    if (!r.ok) {
      options.trace = true;  // replay the seed with a trace
      SimResult traced = RunSimulation(options);
      std::string trace;
      for (const std::string& line : traced.trace) trace += line + "\n";
      FAIL() << "seed " << seed << " (" << nodes << " nodes): " << r.failure
             << "\nlast events:\n"
             << trace;
    }
    EXPECT_GT(r.elections, 0u) << "seed " << seed;
    EXPECT_GT(r.committed, 0u) << "seed " << seed;
  }
}

TEST(SimTest, ThreeNodes) { RunSeeds(3, 1, 150); }
TEST(SimTest, FiveNodes) { RunSeeds(5, 1001, 60); }

TEST(SimTest, SameSeedSameRun) {
  SimOptions options;
  options.seed = 42;
  SimResult a = RunSimulation(options);
  SimResult b = RunSimulation(options);
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.sim_ms, b.sim_ms);
  EXPECT_EQ(a.committed, b.committed);
  EXPECT_EQ(a.elections, b.elections);
  options.seed = 43;
  SimResult c = RunSimulation(options);
  EXPECT_TRUE(c.sim_ms != a.sim_ms || c.committed != a.committed);
}

// A deliberately broken node must be caught: a checker that cannot fail
// proves nothing. Runs seeds in a child process, which exits 1 when the
// checker reports a violation, dies if the corruption trips one of the
// core's invariant CHECKs first (also a detection), and exits 0 only if the
// broken node went unnoticed.
void RunMutantSeeds(const std::string& mutant) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.mutant = mutant;
    options.fault_interval_ms = 60;  // crash often
    options.steps = 6000;
    SimResult r = RunSimulation(options);
    if (!r.ok) {
      std::fprintf(stderr, "caught at seed %llu: %s\n",
                   static_cast<unsigned long long>(seed), r.failure.c_str());
      std::exit(1);
    }
  }
  std::exit(0);
}

bool NoticedTheMutant(int status) {
  return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(SimDeathTest, CatchesADiskThatLosesAcknowledgedEntries) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(RunMutantSeeds("lose_entries"), NoticedTheMutant, "");
}

TEST(SimTest, LeaderLossElectsANewLeader) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    LeaderLossResult r = RunLeaderLoss(seed, 3);
    ASSERT_NE(r.old_leader, 0u) << "seed " << seed;
    EXPECT_NE(r.new_leader, 0u) << "seed " << seed;
    EXPECT_NE(r.new_leader, r.old_leader) << "seed " << seed;
    EXPECT_GT(r.election_ms, 0) << "seed " << seed;
  }
}

}  // namespace
}  // namespace raftkv::sim
