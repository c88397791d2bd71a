// raftkv-bench watch, watch-capacity, lease-keepalive and lease-keepers,
// run as a user runs them (the binary, --json), each against the 3-node
// cluster it starts itself, small: every event of every put must reach
// every watch, on the leader and on a follower, every keep-alive must be
// answered and no kept lease lost. About 15 s in all; no timing is
// asserted (docs/api.md, "Measured" has the figures).
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

// Runs `raftkv-bench args` through /bin/sh (killed after 90 s).
BenchRun Bench(const std::string& args) {
  char err_path[] = "/tmp/raftkv-bench-test-XXXXXX";
  const int fd = ::mkstemp(err_path);
  if (fd >= 0) ::close(fd);
  const std::string command =
      BenchPath() + " " + args + " 2>" + err_path + "; echo \"exit=$?\"";
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

TEST(BenchWatchTest, EveryPutReachesEveryWatchOnLeaderAndFollower) {
  for (const std::string on : {"leader", "follower"}) {
    SCOPED_TRACE(on);
    // etcd's flag names, as its benchmark tool spells them.
    const BenchRun run = Bench(
        "--json watch --streams=3 --watch-per-stream=4 --put-total=50 "
        "--put-rate=200 --val-size=16 --watch-on=" +
        on);
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
    ASSERT_TRUE(run.result.is_object()) << run.out << run.err;
    const json& j = run.result;
    EXPECT_EQ(j.value("watchers", 0), 12);
    EXPECT_EQ(j.value("expected_events", 0), 600);
    EXPECT_EQ(j.value("succeeded", 0), 600) << run.out;
    EXPECT_EQ(j.value("errors", -1), 0) << run.out;
    EXPECT_EQ(j.value("unattributed", -1), 0) << run.out;
    EXPECT_EQ(j["create"].value("succeeded", 0), 12) << run.out;
    EXPECT_EQ(j["put"].value("succeeded", 0), 50) << run.out;
    EXPECT_EQ(j["from_ack"].value("succeeded", 0), 600) << run.out;
    EXPECT_NE(j.value("watch_member", ""), "") << run.out;
    EXPECT_EQ(j["node_cpu_s"].size(), 3u) << run.out;
  }
}

TEST(BenchWatchTest, CapacityStepsUntilTheLimit) {
  const BenchRun run = Bench(
      "--json watch-capacity --watch-on=follower --streams=2 --step=500 "
      "--max-watchers=1000 --rss-limit-mb=1000");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const json& j = run.result;
  ASSERT_EQ(j["steps"].size(), 2u) << run.out;
  EXPECT_EQ(j["steps"][1].value("watchers", 0), 1000);
  EXPECT_EQ(j.value("most_under_limit", 0), 1000) << run.out;
  EXPECT_GT(j.value("base_rss_mb", 0.0), 0.0);
  // Only for a cluster it started: it reads the member's /proc.
  const BenchRun refused =
      Bench("watch-capacity --endpoints=127.0.0.1:1,127.0.0.1:2");
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("--endpoints"), std::string::npos);
}

TEST(BenchWatchTest, LeaseKeepAlivesAreAnsweredAndKeepersLoseNothing) {
  const BenchRun loop =
      Bench("--json --conns=2 --clients=4 lease-keepalive --total=400");
  ASSERT_EQ(loop.exit_code, 0) << loop.out << loop.err;
  EXPECT_EQ(loop.result.value("succeeded", 0), 400) << loop.out;
  EXPECT_EQ(loop.result.value("errors", -1), 0) << loop.out;

  const BenchRun keepers = Bench(
      "--json lease-keepers --leases=200 --lease-ttl=3 --idle-s=1 "
      "--keep-s=4");
  ASSERT_EQ(keepers.exit_code, 0) << keepers.out << keepers.err;
  const json& j = keepers.result;
  EXPECT_EQ(j.value("granted", 0), 200) << keepers.out;
  EXPECT_EQ(j.value("lost", -1), 0) << keepers.out;
  // Kept past their TTL: every lease checked has time left.
  EXPECT_GT(j.value("checked", 0), 0) << keepers.out;
  EXPECT_GT(j.value("min_ttl_left_s", 0), 0) << keepers.out;
  EXPECT_EQ(j["cpu_s_per_min"].size(), 3u) << keepers.out;
}

}  // namespace
}  // namespace raftkv
