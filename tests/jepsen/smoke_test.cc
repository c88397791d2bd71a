// Smoke tests of raftkv-jepsen against real raftkvd processes: short runs
// whose verdicts are known. A healthy cluster under faults must be judged
// valid, having answered enough operations of every kind (a floor per f,
// so a cluster that never answered cannot pass), while every fault kind
// the test's name promises actually happened (counted in the history). A
// server that answers reads from any node's local state
// (--unsafe_serve_stale_reads) must be caught: under a paused leader on the
// root loopback (no root needed, so the harness is proven able to fail on
// every machine) and, with root, under a leader partition. The watch and
// lease workloads must be judged valid under a kill and a pause. Tests that
// need partitions skip themselves without root, saying so. Each run is bounded
// (its own time limit plus the harness's bounded end phases; RunCommand
// kills it after 120 s).
//
// Must never write outside the build directory's jepsen-smoke/.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "fault/subprocess.h"
#include "jepsen/history.h"

namespace raftkv::jepsen {
namespace {

struct JepsenRun {
  int exit_code = -1;
  std::string output;
  std::string results;  // OUT/results.json
  History history;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs raftkv-jepsen with `args` into jepsen-smoke/<name>.
JepsenRun RunJepsen(const std::string& name, std::vector<std::string> args) {
  const std::string out = std::string(RAFTKV_JEPSEN_SMOKE_DIR) + "/" + name;
  std::error_code ec;
  std::filesystem::remove_all(out, ec);
  // A shell wrapper reports the exit code, which RunCommand folds into an
  // error status otherwise.
  std::string command = RAFTKV_JEPSEN_BINARY;
  for (const std::string& a : args) command += " '" + a + "'";
  command += " --out=" + out + " 2>&1; echo \"exit=$?\"";
  JepsenRun run;
  auto output = fault::RunCommand({"/bin/sh", "-c", command}, "",
                                  std::chrono::seconds(120));
  if (!output.ok()) {
    run.output = output.status().ToString();
    return run;
  }
  run.output = *output;
  const size_t at = run.output.rfind("exit=");
  if (at != std::string::npos) {
    run.exit_code = std::atoi(run.output.c_str() + at + 5);
  }
  run.results = ReadFile(out + "/results.json");
  std::ifstream history(out + "/history.jsonl");
  auto parsed = ReadHistory(history);
  if (parsed.ok()) run.history = *parsed;
  return run;
}

int CountNemesis(const History& history, const std::string& f) {
  int n = 0;
  for (const Event& e : history) n += e.is_nemesis() && e.f == f;
  return n;
}

// Nemesis events of kind `f` whose description contains `text`.
int CountNemesisWith(const History& history, const std::string& f,
                     const std::string& text) {
  int n = 0;
  for (const Event& e : history) {
    n += e.is_nemesis() && e.f == f &&
         e.value.value_or("").find(text) != std::string::npos;
  }
  return n;
}

// Ok completions of client operations, per f ("read", "write", ...).
std::map<std::string, int> OkCounts(const History& history) {
  std::map<std::string, int> counts;
  for (const Event& e : history) {
    if (!e.is_nemesis() && e.type == EventType::kOk) ++counts[e.f];
  }
  return counts;
}

// Whether the history has at least floors[f] ok operations of each f: a
// run in which the cluster answered (almost) nothing fails here, whatever
// the checker said.
::testing::AssertionResult MeetsFloors(
    const History& history, const std::map<std::string, int>& floors) {
  const std::map<std::string, int> ok = OkCounts(history);
  for (const auto& [f, floor] : floors) {
    auto it = ok.find(f);
    const int n = it == ok.end() ? 0 : it->second;
    if (n < floor) {
      return ::testing::AssertionFailure()
             << n << " ok " << f << " operations, fewer than the floor of "
             << floor << " (" << history.size() << " events)";
    }
  }
  return ::testing::AssertionSuccess();
}

// The register runs below do about 100 operations per second, a third of
// each kind (a cas needs a value seen before, else it is a write): about
// 370 ok of each in the 20 s run. Faults that stop all progress for 12 of
// the 20 s would still leave about 150; a cluster that answers nothing
// leaves 0.
const std::map<std::string, int> kRegisterFloors = {
    {"read", 100}, {"write", 100}, {"cas", 100}};

bool Root() { return ::geteuid() == 0; }

// The floors must fail for a cluster that never answered: every operation
// info (writes) or fail (reads), as the workload records them then.
TEST(JepsenSmokeTest, FloorsRejectARunWithNothingAcknowledged) {
  History dead;
  for (int i = 0; i < 3000; ++i) {
    const std::string f = i % 3 == 0 ? "read" : i % 3 == 1 ? "write" : "cas";
    Event e;
    e.process = i;
    e.f = f;
    e.key = "r" + std::to_string(i / 100);
    e.time_ns = int64_t{i} * 1'000'000;
    dead.push_back(e);
    e.type = f == "read" ? EventType::kFail : EventType::kInfo;
    e.time_ns += 500'000;
    dead.push_back(e);
  }
  EXPECT_FALSE(MeetsFloors(dead, kRegisterFloors));
  // One kind missing is enough to fail.
  dead.back().type = EventType::kOk;
  EXPECT_FALSE(MeetsFloors(dead, {{"cas", 1}, {"write", 1}}));
  EXPECT_TRUE(MeetsFloors(dead, {{"cas", 1}}));
}

TEST(JepsenSmokeTest, RegisterUnderKillAndPartitionIsValid) {
  if (!Root()) {
    GTEST_SKIP() << "needs root: partitions need a private network "
                    "namespace, without which raftkv-jepsen drops them";
  }
  const JepsenRun run =
      RunJepsen("register-kill-partition",
                {"--nodes=3", "--workload=register", "--nemesis=kill,partition",
                 "--time_limit=20", "--quiet_s=2", "--fault_s=4", "--heal_s=3",
                 "--rate=100", "--concurrency=5", "--seed=1"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.results.find("\"valid\": true"), std::string::npos)
      << run.results;
  EXPECT_TRUE(MeetsFloors(run.history, kRegisterFloors)) << run.output;
  // Three faults in 20 s (at 2, 9 and 16 s), each healed; a round of
  // faults has every kind given, so both kinds are among them.
  const int kills = CountNemesis(run.history, "kill");
  const int partitions = CountNemesis(run.history, "partition");
  EXPECT_GE(kills, 1) << run.output;
  EXPECT_GE(partitions, 1) << run.output;
  EXPECT_EQ(kills + partitions, 3) << run.output;
  EXPECT_EQ(CountNemesis(run.history, "heal"), 3);
  EXPECT_EQ(CountNemesisWith(run.history, "partition", "iptables DROP rules"),
            partitions);
  EXPECT_NE(run.results.find("private network namespace"), std::string::npos)
      << run.results;
}

TEST(JepsenSmokeTest, SetUnderKillPauseAndClockIsValid) {
  const JepsenRun run =
      RunJepsen("set-kill-pause-clock",
                {"--nodes=3", "--workload=set", "--nemesis=kill,pause,clock",
                 "--time_limit=12", "--quiet_s=1", "--fault_s=3", "--heal_s=1",
                 "--rate=100", "--concurrency=5", "--seed=2"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.results.find("\"valid\": true"), std::string::npos)
      << run.results;
  // Faults at 1, 5 and 9 s: one round, so one of each kind.
  EXPECT_EQ(CountNemesis(run.history, "kill"), 1) << run.output;
  EXPECT_EQ(CountNemesis(run.history, "pause"), 1) << run.output;
  EXPECT_EQ(CountNemesis(run.history, "clock"), 1) << run.output;
  EXPECT_EQ(CountNemesis(run.history, "heal"), 3);
  // About 1,000 adds; the final read of the set is the one read, and it
  // holds at least the acknowledged adds (the checker made sure of which).
  EXPECT_TRUE(MeetsFloors(run.history, {{"add", 300}, {"read", 1}}))
      << run.output;
  size_t final_read_size = 0;
  for (const Event& e : run.history) {
    if (e.f == "read" && e.type == EventType::kOk && e.value) {
      final_read_size = std::count(e.value->begin(), e.value->end(), ',') + 1;
    }
  }
  EXPECT_GE(final_read_size, 300u);
}

// Membership changes under load (the member nemesis): on 4 nodes, so that
// both of its modes are possible (a removal needs 4 voters, to keep 3).
// Faults at 2 and 9 s, heals at 6 and 13 s. Each member fault removes one
// member and adds one fresh node under a new id (in either order, across
// the fault and its heal), every removed node stops by itself with exit 0,
// and ids are never reused: the nodes added are n5 then n6.
TEST(JepsenSmokeTest, RegisterUnderMembershipChangesIsValid) {
  const JepsenRun run =
      RunJepsen("register-member",
                {"--nodes=4", "--workload=register", "--nemesis=member",
                 "--time_limit=16", "--quiet_s=2", "--fault_s=4", "--heal_s=3",
                 "--rate=100", "--concurrency=5", "--seed=1"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.results.find("\"valid\": true"), std::string::npos)
      << run.results;
  EXPECT_TRUE(MeetsFloors(run.history, kRegisterFloors)) << run.output;
  EXPECT_EQ(CountNemesis(run.history, "member"), 2) << run.output;
  EXPECT_EQ(CountNemesis(run.history, "heal"), 2) << run.output;
  auto both = [&](const std::string& text) {
    return CountNemesisWith(run.history, "member", text) +
           CountNemesisWith(run.history, "heal", text);
  };
  EXPECT_EQ(both("remove n"), 2) << run.output;
  EXPECT_EQ(both("exit 0 by itself"), 2) << run.output;
  EXPECT_EQ(both("add n"), 2) << run.output;
  EXPECT_EQ(both("add n5 (empty data dir, --join)"), 1) << run.output;
  EXPECT_EQ(both("add n6 (empty data dir, --join)"), 1) << run.output;
}

// The watch workload (issue 12) under one kill: writers and three
// watchers from revision 1; the final read, the fence and every watcher
// reaching it. No root needed (kill works on the root loopback). The fault
// at 2 s, its heal at 6 s.
TEST(JepsenSmokeTest, WatchUnderKillIsValid) {
  const JepsenRun run =
      RunJepsen("watch-kill",
                {"--nodes=3", "--workload=watch", "--nemesis=kill",
                 "--time_limit=10", "--quiet_s=2", "--fault_s=4", "--heal_s=5",
                 "--rate=100", "--concurrency=4", "--watchers=3", "--seed=3"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.results.find("\"valid\": true"), std::string::npos)
      << run.results;
  EXPECT_EQ(CountNemesis(run.history, "kill"), 1) << run.output;
  // About 1,000 writes, three quarters puts, each seen by three watchers;
  // the final read; three watches ended by the harness.
  EXPECT_TRUE(MeetsFloors(
      run.history, {{"put", 300}, {"event", 900}, {"read", 1}, {"watch", 3}}))
      << run.output;
  EXPECT_NE(run.results.find("\"watchers\": 3"), std::string::npos)
      << run.results;
}

// The lease workload under one pause: holders with leases of 2 s, probes
// and reads, revokes and abandons, three lockers and their counter; the
// final reads on every node. No root needed.
TEST(JepsenSmokeTest, LeaseUnderPauseIsValid) {
  const JepsenRun run = RunJepsen(
      "lease-pause",
      {"--nodes=3", "--workload=lease", "--nemesis=pause", "--time_limit=10",
       "--quiet_s=2", "--fault_s=4", "--heal_s=5", "--rate=100",
       "--concurrency=6", "--lockers=3", "--lease_ttl_s=2", "--seed=3"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.results.find("\"valid\": true"), std::string::npos)
      << run.results;
  EXPECT_EQ(CountNemesis(run.history, "pause"), 1) << run.output;
  EXPECT_TRUE(MeetsFloors(run.history, {{"grant", 3},
                                        {"put", 3},
                                        {"ttl", 50},
                                        {"read", 50},
                                        {"lock", 10},
                                        {"incr", 10},
                                        {"abandon", 3}}))
      << run.output;
  EXPECT_NE(run.results.find("\"nodes read at the end\": 3"), std::string::npos)
      << run.results;
}

// Catches --unsafe_serve_stale_reads without root: on the root loopback
// (--netns=false, as without root), SIGSTOP of the leader. Its home
// processes' reads wait in its sockets while the others elect a new leader
// and acknowledge newer writes; on SIGCONT it answers them from its old
// state.
TEST(JepsenSmokeTest, UnsafeStaleReadsAreCaughtUnderAPausedLeader) {
  const JepsenRun run =
      RunJepsen("unsafe-stale-reads-pause",
                {"--nodes=3", "--workload=register", "--nemesis=pause-leader",
                 "--netns=false", "--server_flags=--unsafe_serve_stale_reads",
                 "--time_limit=13", "--quiet_s=2", "--fault_s=4", "--heal_s=2",
                 "--rate=100", "--concurrency=5", "--seed=1"});
  ASSERT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.results.find("\"valid\": false"), std::string::npos)
      << run.results;
  EXPECT_NE(run.results.find("nonlinearizable"), std::string::npos);
  EXPECT_NE(run.results.find("NO private namespace"), std::string::npos)
      << run.results;
  // Faults at 2 and 8 s, each a pause of the leader for 4 s.
  EXPECT_EQ(CountNemesis(run.history, "pause"), 2) << run.output;
  EXPECT_GE(CountNemesisWith(run.history, "pause", "(leader)"), 1)
      << run.output;
  EXPECT_TRUE(MeetsFloors(run.history, {{"read", 100}, {"write", 100}}))
      << run.output;
}

TEST(JepsenSmokeTest, UnsafeStaleReadsAreCaughtUnderPartition) {
  if (!Root()) {
    GTEST_SKIP() << "needs root: partitions need a private network "
                    "namespace (UnsafeStaleReadsAreCaughtUnderAPausedLeader "
                    "proves the same without root)";
  }
  const JepsenRun run = RunJepsen(
      "unsafe-stale-reads",
      {"--nodes=3", "--workload=register", "--nemesis=partition-leader",
       "--server_flags=--unsafe_serve_stale_reads", "--time_limit=15",
       "--quiet_s=2", "--fault_s=5", "--heal_s=3", "--rate=100",
       "--concurrency=5", "--seed=1"});
  ASSERT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.results.find("\"valid\": false"), std::string::npos)
      << run.results;
  EXPECT_NE(run.results.find("nonlinearizable"), std::string::npos);
  EXPECT_EQ(CountNemesis(run.history, "partition"), 2) << run.output;
  EXPECT_GE(CountNemesisWith(run.history, "partition", "isolate leader"), 1)
      << run.output;
}

}  // namespace
}  // namespace raftkv::jepsen
