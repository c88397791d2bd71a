// Runs the deterministic simulator over a fixed set of seeds (3 and 5
// nodes, with spares that membership changes add and remove), checks that a
// seed replays exactly, that the faults and membership changes really
// happen, that deliberately broken harnesses, a broken membership-change
// rule and a too-tight liveness bound are caught, and the leader-loss and
// split-majority scenarios. Never depends on the wall clock.
// Longer runs: build/bin/raftkv-sim --seeds=2000 --nodes=3|5.
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>

#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "tests/sim/sim_runner.h"

namespace raftkv::sim {
namespace {

// The core's INFO and WARNING lines about every election and rejoin would
// bury the output: only errors are logged.
class SimTest : public ::testing::Test {
 protected:
  void SetUp() override { FLAGS_minloglevel = google::GLOG_ERROR; }

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
    EXPECT_GT(s.disk_losses, 0u);
    EXPECT_GT(s.rejoins, 0u);
    EXPECT_GT(s.async_disk_runs, 0u);
    EXPECT_GT(s.snapshots_taken, 0u);
    EXPECT_GT(s.snapshots_sent, 0u);
    EXPECT_GT(s.snapshots_installed, 0u);
    EXPECT_GT(s.transfers, 0u);
    EXPECT_GT(s.campaigns, 0u);
    EXPECT_GT(s.reads_checked, 0u);
    // Membership changes, many times across the seeds.
    EXPECT_GE(s.learners_added, 50u);
    EXPECT_GE(s.promotions, 25u);
    EXPECT_GE(s.removals, 25u);
    EXPECT_GT(s.leader_removals, 0u);
    EXPECT_GT(s.removed_stopped, 0u);
    EXPECT_GT(s.conf_changes_refused, 0u);
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

// How one seed ended when run in a child process: a CHECK in the core
// aborts the child, so a mutant's run can be told apart from a checker's
// finding only from outside.
struct ChildOutcome {
  enum class Kind { kPassed, kViolation, kCheckFailure };
  Kind kind = Kind::kPassed;
  std::string message;  // the checker's Status for kViolation
};

ChildOutcome RunSeedInChild(const SimOptions& options) {
  int fds[2];
  if (pipe(fds) != 0) return {ChildOutcome::Kind::kCheckFailure, "pipe"};
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    FLAGS_minloglevel = google::GLOG_FATAL + 1;  // no FATAL text either
    SimResult r = RunSeed(options, nullptr);
    const std::string what = r.status.ToString();
    if (write(fds[1], what.data(), what.size()) < 0) _exit(3);
    _exit(r.ok() ? 0 : 1);
  }
  close(fds[1]);
  std::string message;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) {
    message.append(buf, n);
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
    return {ChildOutcome::Kind::kViolation, message};
  }
  return {ChildOutcome::Kind::kCheckFailure, ""};
}

// Runs `mutant` over seeds until `want` of them are caught by a checker
// property matching `properties`; fails if a seed is caught by any other
// property, or if too few are caught. Seeds that end in one of the core's
// own CHECKs count for neither (the mutant broke an invariant the core
// asserts itself, which proves nothing about the checkers).
void ExpectCaughtBy(SimOptions options, uint64_t max_seeds, int want,
                    const std::string& properties) {
  const std::regex expected(properties);
  int caught = 0, checks = 0;
  for (uint64_t seed = 1; seed <= max_seeds && caught < want; ++seed) {
    options.seed = seed;
    ChildOutcome out = RunSeedInChild(options);
    switch (out.kind) {
      case ChildOutcome::Kind::kPassed:
        break;
      case ChildOutcome::Kind::kCheckFailure:
        ++checks;
        break;
      case ChildOutcome::Kind::kViolation:
        EXPECT_TRUE(std::regex_search(out.message, expected))
            << "seed " << seed << ": " << out.message;
        ++caught;
        break;
    }
  }
  EXPECT_EQ(caught, want) << MutantName(options.mutant) << " caught by "
                          << properties << " in only " << caught << " of "
                          << max_seeds << " seeds (" << checks
                          << " ended in a CHECK of the core)";
}

// A disk that loses acknowledged entries on a crash must be caught by the
// property it breaks: a committed entry is lost.
TEST_F(SimTest, CatchesADiskThatLosesAcknowledgedEntries) {
  SimOptions options;
  options.mutant = Mutant::kLoseTail;
  options.fault_interval_ms = 60;
  ExpectCaughtBy(options, 150, 3, "leader completeness|committed prefix");
}

// A node whose disk was lost and that votes at once, instead of rejoining
// (raft/rejoin.h), can elect a leader lacking a committed entry.
TEST_F(SimTest, CatchesAWipedNodeThatVotesAtOnce) {
  SimOptions options;
  options.mutant = Mutant::kWipedNodeVotes;
  options.fault_interval_ms = 60;
  options.disk_loss_weight = 4;
  // Forgetting its vote it may also vote twice in a term.
  ExpectCaughtBy(options, 150, 3,
                 "leader completeness|committed prefix|election safety|log "
                 "matching");
}

// A follower serving reads from its own state is caught by the read check.
TEST_F(SimTest, CatchesStaleReads) {
  SimOptions options;
  options.mutant = Mutant::kStaleRead;
  ExpectCaughtBy(options, 50, 3, "linearizable reads");
}

// A state machine that skips an entry's effect diverges from the others.
TEST_F(SimTest, CatchesAStateMachineThatSkipsAnEntry) {
  SimOptions options;
  options.mutant = Mutant::kSkipApply;
  ExpectCaughtBy(options, 50, 3, "state machine safety");
}

// A harness that does not persist votes lets a restarted node vote twice in
// a term: two leaders of one term (or, when one of them crashed before its
// election was seen, two different entries at one (index, term)).
TEST_F(SimTest, CatchesAHarnessThatForgetsVotes) {
  SimOptions options;
  options.mutant = Mutant::kForgetVote;
  options.fault_interval_ms = 20;
  options.crash_weight = 4;
  // Crashes right after a vote went out are what make a node vote twice.
  options.crash_before_send_rate = 0.02;
  ExpectCaughtBy(options, 1000, 3, "election safety|log matching");
}

// Without the mutants the same option sets run clean: the findings above
// come from the mutants.
TEST_F(SimTest, MutantOptionSetsRunCleanWithoutTheMutant) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    for (int fault_interval_ms : {20, 60}) {
      SimOptions options;
      options.seed = seed;
      options.fault_interval_ms = fault_interval_ms;
      options.crash_weight = 4;
      options.disk_loss_weight = 4;
      SimResult r = RunSeed(options, nullptr);
      EXPECT_TRUE(r.ok()) << "seed " << seed << ": " << r.status.ToString();
    }
  }
}

// Membership changes without the change rule (several in flight, and
// before a new leader committed an entry of its term), proposed back to
// back under the usual faults: caught at once, mostly by the one-at-a-time
// property.
TEST_F(SimTest, CatchesAnUnsafeMembershipChangeRule) {
  SimOptions options;
  options.mutant = Mutant::kUnsafeConfChange;
  ExpectCaughtBy(options, 20, 5,
                 "membership|election safety|leader completeness|committed "
                 "prefix|state machine safety|log matching");
}

// The scripted scenario of the 2015 raft-dev post: without the rule, two
// disjoint majorities ({X, Z} of the configuration without Y, {S1, S5, Y}
// of the one with S5) each commit, and a committed entry is lost. Every
// seed is caught by a safety property (not by the rule's own check, which
// this schedule never trips: no leader holds two changes at once).
TEST_F(SimTest, UnsafeMembershipChangesLetTwoMajoritiesCommit) {
  const std::regex lost(
      "leader completeness|committed prefix|state machine "
      "safety|election safety");
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SimResult r = RunSplitMajority(seed, Mutant::kUnsafeConfChange, nullptr);
    EXPECT_TRUE(r.status.IsCorruption() &&
                std::regex_search(r.status.message(), lost))
        << "seed " << seed << ": " << r.status.ToString();
  }
}

// The same schedule with the rule: X cannot remove Y before committing an
// entry of its term, which needs Y or S1; the cluster stays safe and live.
TEST_F(SimTest, SplitMajorityScenarioIsSafeWithTheChangeRule) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SimResult r = RunSplitMajority(seed, Mutant::kNone, nullptr);
    ASSERT_TRUE(r.ok()) << "seed " << seed << ": " << r.status.ToString();
    EXPECT_EQ(r.stats.learners_added, 1u) << "seed " << seed;
    EXPECT_EQ(r.stats.promotions, 1u) << "seed " << seed;
    EXPECT_EQ(r.stats.removals, 0u) << "seed " << seed;
    EXPECT_GT(r.stats.conf_changes_refused, 0u) << "seed " << seed;
  }
}

// Regression (found by seed 24 of ThreeNodes): a voter whose log is behind
// on the configuration must answer a candidate it does not know yet (a
// promoted learner), or a cluster whose other voters cannot vote elects no
// one (dissertation §4.1).
TEST_F(SimTest, AVoterBehindOnTheConfigurationAnswersAnUnknownCandidate) {
  raft::MemoryStorage storage;
  raft::Config config;
  config.id = 1;
  config.peers = {1, 2, 3};
  config.blank_storage_is_new_cluster = true;
  auto node = raft::RawNode::Create(config, &storage);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  for (raft::MessageType type : {raft::MSG_PRE_VOTE, raft::MSG_VOTE}) {
    raft::Message m;
    m.set_type(type);
    m.set_from(4);
    m.set_to(1);
    m.set_term(2);
    EXPECT_TRUE((*node)->Step(m).ok()) << raft::MessageType_Name(type);
  }
  raft::Ready rd = (*node)->GetReady();
  int granted = 0;
  for (const auto* msgs : {&rd.messages, &rd.messages_after_persist}) {
    for (const raft::Message& m : *msgs) {
      if (m.to() == 4 && !m.reject()) ++granted;
    }
  }
  EXPECT_EQ(granted, 2);
}

// Regression: a node joining before its leader ever took a snapshot asks
// for one (wants_snapshot); the leader used to CHECK-fail on the empty
// snapshot. Now it holds back until it has one.
TEST_F(SimTest, JoiningBeforeTheLeaderHasASnapshotDoesNotCrashIt) {
  SimOptions options;
  options.snapshot_rate = 0;  // only the forced snapshots of the faults
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    options.seed = seed;
    ChildOutcome out = RunSeedInChild(options);
    EXPECT_NE(out.kind, ChildOutcome::Kind::kCheckFailure) << "seed " << seed;
    if (out.kind == ChildOutcome::Kind::kViolation) {
      // A learner that never got a snapshot cannot catch up.
      EXPECT_NE(out.message.find("liveness"), std::string::npos)
          << "seed " << seed << ": " << out.message;
    }
  }
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
