// raftkv-bench --api=etcd run as a user runs it (the binary, --json),
// against the 3-node cluster it starts itself with --listen_etcd on every
// node: puts and linearizable gets through etcd's v3 API over gRPC must
// all be answered, every put acknowledged with a revision of its own, the
// connections spread over the members (or all on the leader with
// --target-leader), and the servers' CPU reported. A few seconds; no
// timing is asserted (docs/etcd-api.md, "Measured" has the figures).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
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

std::set<std::string> Endpoints(const json& j) {
  std::set<std::string> out;
  for (const json& e : j.value("conn_endpoints", json::array())) {
    out.insert(e.get<std::string>());
  }
  return out;
}

TEST(BenchEtcdTest, EveryPutThroughEtcdsApiIsAcknowledged) {
  // etcd's flag names, as its benchmark tool spells them.
  const BenchRun run = Bench(
      "--json --api=etcd --conns=3 --clients=12 put --total=300 "
      "--val-size=256 --key-space-size=1000");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_TRUE(run.result.is_object()) << run.out << run.err;
  const json& j = run.result;
  EXPECT_EQ(j.value("api", ""), "etcd");
  EXPECT_EQ(j.value("op", ""), "put");
  EXPECT_EQ(j.value("succeeded", 0), 300) << run.out;
  EXPECT_EQ(j.value("errors", -1), 0) << run.out;
  // Each acknowledged put made a revision of its own.
  EXPECT_EQ(j.value("distinct_revisions", 0), 300) << run.out;
  EXPECT_EQ(j.value("leader_changes", -1), 0) << run.out;
  // One connection per member, as etcd's tool spreads them.
  EXPECT_EQ(Endpoints(j).size(), 3u) << run.out;
  ASSERT_EQ(j["cpu_s_per_1k"].size(), 3u) << run.out;
  double cpu = 0;
  for (const json& c : j["cpu_s_per_1k"]) cpu += c.get<double>();
  EXPECT_GT(cpu, 0.0) << run.out;
}

TEST(BenchEtcdTest, LinearizableGetsOnTheLeaderAreAnswered) {
  const BenchRun run = Bench(
      "--json --api=etcd --target-leader --conns=2 --clients=8 range foo "
      "--consistency=l --total=300");
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  ASSERT_TRUE(run.result.is_object()) << run.out << run.err;
  const json& j = run.result;
  EXPECT_EQ(j.value("op", ""), "range");
  EXPECT_EQ(j.value("consistency", ""), "l");
  EXPECT_EQ(j.value("succeeded", 0), 300) << run.out;
  EXPECT_EQ(j.value("errors", -1), 0) << run.out;
  EXPECT_EQ(j.value("target_leader", false), true) << run.out;
  // Both connections on the one member that leads.
  EXPECT_EQ(j["conn_endpoints"].size(), 2u) << run.out;
  EXPECT_EQ(Endpoints(j).size(), 1u) << run.out;
}

TEST(BenchEtcdTest, RefusesWhatEtcdsApiDoesNotRun) {
  const BenchRun txn =
      Bench("--api=etcd --etcd-endpoints=127.0.0.1:1 txn-put --total=1");
  EXPECT_EQ(txn.exit_code, 2) << txn.out << txn.err;
  const BenchRun api = Bench("--api=http put --total=1");
  EXPECT_EQ(api.exit_code, 2) << api.out << api.err;
}

}  // namespace
}  // namespace raftkv
