// raftkv-bench failover, run as a user runs it (the binary, --json), each
// against the 3-node cluster it starts itself. With --fault=partition the
// leader is cut off from its peers and from the clients by iptables rules
// in the bench's own network namespace: every partition must elect another
// leader, which the old one follows after healing, while the client that
// writes all along sees no error and loses nothing. The bench refuses what
// it cannot do (an external cluster; no root) with a clear message and
// exit code 2, before starting anything. kill and pause are run briefly
// too, as the same code measures them.
//
// The partition test needs root (a network namespace and iptables): CI
// runs as root, and without it the test fails, saying why, rather than
// skipping, since a skipped test proves nothing. About 20 s in all; no
// timing is asserted (docs/performance.md has the figures).
//
// Must never touch the machine's own firewall: rules exist only inside
// raftkv-bench's namespace, which vanishes with it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "fault/subprocess.h"
#include "tests/integration/log_text.h"

namespace raftkv {
namespace {

using nlohmann::json;
using ::raftkv::integration::ReadFile;

struct BenchRun {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  json result;      // the --json line, if any
};

std::string BenchPath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / "raftkv-bench").string();
}

// Runs `prefix raftkv-bench args` through /bin/sh (bounded: killed after
// 90 s).
BenchRun Bench(const std::string& args, const std::string& prefix = "") {
  char err_path[] = "/tmp/raftkv-bench-test-XXXXXX";
  const int fd = ::mkstemp(err_path);
  if (fd >= 0) ::close(fd);
  const std::string command = prefix + BenchPath() + " " + args + " 2>" +
                              err_path + "; echo \"exit=$?\"";
  BenchRun run;
  auto output = fault::RunCommand({"/bin/sh", "-c", command}, "",
                                  std::chrono::seconds(90));
  run.err = ReadFile(err_path);
  ::unlink(err_path);
  if (!output.ok()) {
    run.err += output.status().ToString();
    return run;
  }
  const size_t at = output->rfind("exit=");
  if (at == std::string::npos) return run;
  run.exit_code = std::atoi(output->c_str() + at + 5);
  run.out = output->substr(0, at);
  if (run.out.rfind('{', 0) == 0) {
    run.result = json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  }
  return run;
}

// What every failover run must show: the faults done, no client error,
// nothing lost, every fault recovered from, and a client that did write.
void ExpectCleanRun(const BenchRun& run, const std::string& fault, int faults) {
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_TRUE(run.result.is_object()) << run.out << run.err;
  const json& j = run.result;
  EXPECT_EQ(j.value("fault", ""), fault);
  EXPECT_EQ(j.value("faults", -1), faults);
  EXPECT_EQ(j.value("errors", -1), 0) << run.out;
  EXPECT_EQ(j.value("lost_writes", -1), 0) << run.out;
  EXPECT_EQ(j.value("unrecovered", -1), 0) << run.out;
  // A few hundred writes per second over several seconds; a client that
  // never got an answer fails here.
  EXPECT_GE(j.value("acked_writes", 0), 100) << run.out;
  ASSERT_EQ(j["victims"].size(), static_cast<size_t>(faults)) << run.out;
}

TEST(BenchFailoverTest, AnIsolatedLeaderIsReplacedAndRejoins) {
  ASSERT_EQ(::geteuid(), 0u)
      << "this test needs root: raftkv-bench --fault=partition runs its "
         "cluster in a private network namespace with iptables rules (CI "
         "runs as root)";
  const BenchRun run = Bench("--json failover --fault=partition --faults=3");
  ExpectCleanRun(run, "partition", 3);
  const json& j = run.result;
  EXPECT_EQ(j.value("leader_changes", -1), 3) << run.out;
  ASSERT_EQ(j["new_leaders"].size(), 3u) << run.out;
  for (size_t i = 0; i < 3; ++i) {
    const int victim = j["victims"][i].get<int>();
    const int leader = j["new_leaders"][i].get<int>();
    EXPECT_GE(victim, 1) << run.out;
    // 0 would mean the nodes, the old leader among them, did not agree
    // on a leader after healing.
    EXPECT_NE(leader, 0) << "partition " << i + 1 << ": " << run.out;
    EXPECT_NE(leader, victim) << "partition " << i + 1 << ": " << run.out;
  }
}

TEST(BenchFailoverTest, KillAndPauseStillRecover) {
  for (const std::string fault : {"kill", "pause"}) {
    SCOPED_TRACE(fault);
    ExpectCleanRun(Bench("--json failover --fault=" + fault +
                         " --faults=2 --fault-interval-ms=1000"),
                   fault, 2);
  }
}

// Every fault needs the leader's process or address: a cluster given by
// --endpoints is refused before anything runs, not silently replaced by
// one the benchmark starts.
TEST(BenchFailoverTest, EveryFaultRefusesAClusterItDidNotStart) {
  for (const char* fault : {"kill", "pause", "partition"}) {
    const BenchRun run = Bench(std::string("failover --fault=") + fault +
                               " --endpoints=127.0.0.1:1,127.0.0.1:2");
    EXPECT_EQ(run.exit_code, 2) << fault << ": " << run.out << run.err;
    EXPECT_NE(run.err.find("--endpoints"), std::string::npos) << run.err;
    EXPECT_EQ(run.out, "") << fault << ": nothing may have run";
  }
}

TEST(BenchFailoverTest, PartitionWithoutRootFailsBeforeStartingAnything) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root to drop to nobody (CI runs as "
                                "root)";
  const BenchRun run = Bench("failover --fault=partition --faults=1",
                             "setpriv --reuid=65534 --regid=65534 "
                             "--clear-groups ");
  EXPECT_EQ(run.exit_code, 2) << run.out << run.err;
  EXPECT_NE(run.err.find("needs root"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, "") << "nothing may have run";
}

}  // namespace
}  // namespace raftkv
