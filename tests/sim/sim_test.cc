// Runs the deterministic simulator over a fixed set of seeds (3 and 5
// nodes), checks that a seed replays exactly, that the faults really happen,
// that deliberately broken harnesses and a too-tight liveness bound are
// caught, and the leader-loss scenario. Never depends on the wall clock.
// Longer runs: build/bin/raftkv-sim --seeds=2000 --nodes=3|5.
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/sim/sim_runner.h"

namespace raftkv::sim {
namespace {

// (tests/test_main.cc logs WARNING and up to stderr: the core's INFO lines
// about every election would bury the output.)
class SimTest : public ::testing::Test {
 protected:
  // Runs seeds [first, first + count); fails with the trace of the first
  // failing seed. Returns the summed statistics.
  static SimStats RunSeeds(int nodes, uint64_t first, uint64_t count) {
    SimStats totals;
    for (uint64_t seed = first; seed < first + count; ++seed) {
      SimOptions options;
      options.seed = seed;
      options.nodes = nodes;
      options.steps = 4000;
      SimResult r = RunSeedExplained(options, kDefaultTraceLines);
      totals.Add(r.stats);
      if (!r.ok()) {
        std::string trace;
        for (const std::string& line : r.trace) trace += "  " + line + "\n";
        ADD_FAILURE() << "seed " << seed << " (" << nodes
                      << " nodes): " << r.status.ToString()
                      << "\nlast events:\n"
                      << trace << "reproduce: raftkv-sim --seeds=1 "
                      << "--first_seed=" << seed << " --nodes=" << nodes
                      << " --steps=" << options.steps << " --verbose";
        return totals;
      }
      EXPECT_GT(r.stats.terms_with_leader, 0u) << "seed " << seed;
      EXPECT_GT(r.stats.committed, 0u) << "seed " << seed;
    }
    return totals;
  }

  // Every kind of fault and request must have happened across the seeds.
  static void ExpectFaultsExercised(const SimStats& s) {
    EXPECT_GT(s.dropped, 0u);
    EXPECT_GT(s.duplicated, 0u);
    EXPECT_GT(s.partitions, 0u);
    EXPECT_GT(s.crashes, 0u);
    EXPECT_GT(s.crashes_before_send, 0u);
    EXPECT_GT(s.restarts, 0u);
    EXPECT_GT(s.snapshots_taken, 0u);
    EXPECT_GT(s.snapshots_sent, 0u);
    EXPECT_GT(s.snapshots_installed, 0u);
    EXPECT_GT(s.transfers, 0u);
    EXPECT_GT(s.campaigns, 0u);
    EXPECT_GT(s.reads_checked, 0u);
  }
};

TEST_F(SimTest, ThreeNodes) { ExpectFaultsExercised(RunSeeds(3, 1, 250)); }

TEST_F(SimTest, FiveNodes) { ExpectFaultsExercised(RunSeeds(5, 1001, 120)); }

TEST_F(SimTest, SameSeedSameRun) {
  SimOptions options;
  options.seed = 42;
  Trace a(0), b(0), c(0);
  SimResult ra = RunSeed(options, &a);
  SimResult rb = RunSeed(options, &b);
  ASSERT_TRUE(ra.ok()) << ra.status.ToString();
  EXPECT_GT(a.total(), 100u);
  EXPECT_EQ(a.Lines(), b.Lines());
  EXPECT_EQ(ra.stats.ToString(), rb.stats.ToString());
  // Tracing does not change the run.
  EXPECT_EQ(RunSeed(options, nullptr).stats.ToString(), ra.stats.ToString());
  options.seed = 43;
  RunSeed(options, &c);
  EXPECT_NE(a.Lines(), c.Lines());
}

TEST_F(SimTest, TraceKeepsTheLastLines) {
  Trace trace(3);
  for (int i = 1; i <= 5; ++i) trace.Add(i, "event " + std::to_string(i));
  EXPECT_EQ(trace.Lines(), (std::vector<std::string>{
                               "t=3 event 3", "t=4 event 4", "t=5 event 5"}));
  EXPECT_EQ(trace.total(), 5u);
}

// A harness that does not persist votes lets a restarted node vote twice in
// a term: the checkers must notice two leaders of one term (or, when one of
// them crashed before its election was seen, two different entries at one
// (index, term)).
TEST_F(SimTest, CatchesAHarnessThatForgetsVotes) {
  int caught = 0;
  for (uint64_t seed = 1; seed <= 150 && caught < 3; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.mutant = Mutant::kForgetVote;
    options.fault_interval_ms = 20;
    options.crash_weight = 4;
    SimResult r = RunSeed(options, nullptr);
    if (r.ok()) continue;
    ++caught;
    const std::string what = r.status.ToString();
    EXPECT_TRUE(what.find("election safety") != std::string::npos ||
                what.find("log matching") != std::string::npos)
        << "seed " << seed << ": " << what;
  }
  EXPECT_EQ(caught, 3) << "forgotten votes went unnoticed";
}

// A disk that loses acknowledged entries on a crash must be caught: by the
// checkers, or by one of the core's own invariant CHECKs (which aborts, so
// this runs in a child process). The child exits 0 only if nothing noticed.
void RunLyingDiskSeeds() {
  FLAGS_minloglevel = google::GLOG_FATAL;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    SimOptions options;
    options.seed = seed;
    options.mutant = Mutant::kLoseTail;
    options.fault_interval_ms = 60;
    SimResult r = RunSeed(options, nullptr);
    if (!r.ok()) {
      std::fprintf(stderr, "caught at seed %llu: %s\n",
                   static_cast<unsigned long long>(seed),
                   r.status.ToString().c_str());
      std::exit(1);
    }
  }
  std::exit(0);
}

bool NoticedTheLyingDisk(int status) {
  return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST_F(SimTest, CatchesADiskThatLosesAcknowledgedEntries) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(RunLyingDiskSeeds(), NoticedTheLyingDisk, "");
}

// The liveness check can fail: no cluster applies a proposal everywhere
// within 1 simulated ms of healing.
TEST_F(SimTest, LivenessBoundIsEnforced) {
  SimOptions options;
  options.seed = 7;
  options.liveness_timeout_ms = 1;
  SimResult r = RunSeed(options, nullptr);
  EXPECT_TRUE(r.status.IsTimeout()) << r.status.ToString();
  EXPECT_NE(r.status.message().find("liveness"), std::string::npos);
}

TEST_F(SimTest, LeaderLossElectsANewLeader) {
  for (int nodes : {3, 5}) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      LeaderLossResult r = RunLeaderLoss(seed, nodes, nullptr);
      ASSERT_TRUE(r.status.ok())
          << "seed " << seed << ": " << r.status.ToString();
      EXPECT_NE(r.old_leader, 0u) << "seed " << seed;
      EXPECT_NE(r.new_leader, r.old_leader) << "seed " << seed;
      EXPECT_GT(r.new_term, r.old_term) << "seed " << seed;
      // At least one election timeout (election_tick ticks of 10 ms) passes
      // before anyone campaigns; a few timeouts bound it.
      EXPECT_GE(r.elected_ms, 100) << "seed " << seed;
      EXPECT_GE(r.committed_ms, r.elected_ms) << "seed " << seed;
      EXPECT_LE(r.committed_ms, 2000) << "seed " << seed;
    }
  }
}

}  // namespace
}  // namespace raftkv::sim
