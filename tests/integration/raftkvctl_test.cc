// raftkvctl against a real three-node cluster: the commands, their output
// and the exit codes the header of tools/raftkvctl.cc promises scripts
// (0 ok, 1 not found / cas failed, 2 usage, 3 unavailable), and the fields
// of `status` (table and --json) that operators and scripts read, and the
// --json of every command (keys and values that are not UTF-8 as base64).
// Must never talk to anything but the cluster it started on loopback.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/integration/log_text.h"
#include "tests/integration/raftkvctl_run.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using ::raftkv::integration::Count;
using ::raftkv::integration::Ctl;
using ::raftkv::integration::CtlRun;
using ::raftkv::integration::Join;
using ::raftkv::integration::RaftkvctlPath;

class RaftkvctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(cluster_.WaitForLeader(), 0);
    endpoints_ = Join(cluster_.endpoints());
  }
  LocalCluster cluster_{3};
  std::string endpoints_;
};

TEST_F(RaftkvctlTest, WritesReadsAndExitCodes) {
  CtlRun put = Ctl(endpoints_, "put color blue");
  EXPECT_EQ(put.exit_code, 0);
  EXPECT_EQ(put.out.rfind("OK revision ", 0), 0u) << put.out;
  CtlRun get = Ctl(endpoints_, "get color");
  EXPECT_EQ(get.exit_code, 0);
  EXPECT_EQ(get.out, "blue\n");
  EXPECT_EQ(Ctl(endpoints_, "get missing").exit_code, 1);
  CtlRun cas_failed = Ctl(endpoints_, "cas color red green");
  EXPECT_EQ(cas_failed.exit_code, 1);
  EXPECT_EQ(cas_failed.out, "compare failed\n");
  EXPECT_EQ(Ctl(endpoints_, "cas color blue green").exit_code, 0);
  EXPECT_EQ(Ctl(endpoints_, "get color").out, "green\n");
  EXPECT_EQ(Ctl(endpoints_, "del color").out, "1\n");
  EXPECT_EQ(Ctl(endpoints_, "get color").exit_code, 1);
  EXPECT_EQ(Ctl(endpoints_, "frobnicate").exit_code, 2);
  EXPECT_EQ(Ctl(endpoints_, "put").exit_code, 2);
  EXPECT_EQ(Ctl(endpoints_, "put a-key a-value one-too-many").exit_code, 2);
}

TEST_F(RaftkvctlTest, StatusShowsEveryNodeAndOneLeader) {
  CtlRun status = Ctl(endpoints_, "status");
  ASSERT_EQ(status.exit_code, 0) << status.out;
  EXPECT_EQ(status.out.rfind("ID ", 0), 0u) << status.out;
  for (const char* column :
       {"ROLE", "TERM", "COMMIT", "APPLIED", "LEADER", "LOG KiB", "STALL ms"}) {
    EXPECT_NE(status.out.find(column), std::string::npos) << column;
  }
  EXPECT_EQ(Count(status.out, "\n"), 4u) << status.out;  // header + 3 nodes
  EXPECT_EQ(Count(status.out, " leader "), 1u) << status.out;
  EXPECT_EQ(Count(status.out, " follower "), 2u) << status.out;
}

TEST_F(RaftkvctlTest, StatusJsonHasEveryDocumentedField) {
  CtlRun status = Ctl(endpoints_, "--json status");
  ASSERT_EQ(status.exit_code, 0) << status.out;
  for (const char* field :
       {"\"address\":", "\"id\":", "\"role\":", "\"rejoin\":\"\"",
        "\"term\":", "\"commit\":", "\"applied\":", "\"last\":", "\"leader\":",
        "\"log_cache_bytes\":", "\"loop_stall_recent_ms\":",
        "\"loop_stall_recent_cpu_wait_ms\":", "\"loop_stall_max_ms\":",
        "\"loop_stall_max_cpu_wait_ms\":"}) {
    EXPECT_EQ(Count(status.out, field), 3u) << field << " in " << status.out;
  }
  EXPECT_EQ(Count(status.out, "\"role\":\"leader\""), 1u) << status.out;
  // scripts/demo greps a node's object by `"id":N,`.
  for (int id = 1; id <= 3; ++id) {
    EXPECT_EQ(Count(status.out, "\"id\":" + std::to_string(id) + ","), 1u)
        << status.out;
  }
}

// The --json output of `args`: one line, parsed (null if it is not JSON).
nlohmann::ordered_json CtlJson(const std::string& endpoints,
                               const std::string& args) {
  const CtlRun run = Ctl(endpoints, "--json " + args);
  EXPECT_EQ(run.exit_code, 0) << args << ": " << run.out;
  EXPECT_EQ(Count(run.out, "\n"), 1u) << args << ": " << run.out;
  auto j = nlohmann::ordered_json::parse(run.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << args << ": " << run.out;
  return j.is_discarded() ? nullptr : j;
}

std::vector<std::string> FieldNames(const nlohmann::ordered_json& j) {
  std::vector<std::string> names;
  for (const auto& [name, value] : j.items()) names.push_back(name);
  return names;
}

TEST_F(RaftkvctlTest, EveryCommandsJsonKeepsItsFields) {
  using Names = std::vector<std::string>;
  auto put = CtlJson(endpoints_, "put color blue");
  EXPECT_EQ(FieldNames(put), Names{"revision"}) << put;
  EXPECT_GT(put["revision"].get<uint64_t>(), 0u);
  auto get = CtlJson(endpoints_, "get color");
  EXPECT_EQ(FieldNames(get), (Names{"key", "value", "create_revision",
                                    "mod_revision", "version"}))
      << get;
  EXPECT_EQ(get["key"], "color");
  EXPECT_EQ(get["value"], "blue");
  EXPECT_EQ(get["mod_revision"], put["revision"]);
  EXPECT_EQ(get["version"], 1);
  EXPECT_EQ(CtlJson(endpoints_, "cas color blue red"),
            nlohmann::ordered_json({{"swapped", true}}));
  auto range = CtlJson(endpoints_, "range col");
  EXPECT_EQ(range, nlohmann::ordered_json::parse(
                       R"([{"key":"color","value":"red"}])"));
  auto leader = CtlJson(endpoints_, "leader");
  EXPECT_EQ(FieldNames(leader), (Names{"id", "address"})) << leader;
  EXPECT_EQ(leader["address"],
            cluster_.client_address(leader["id"].get<int>()));
  EXPECT_EQ(CtlJson(endpoints_, "del color"),
            nlohmann::ordered_json({{"deleted", 1}}));
}

TEST_F(RaftkvctlTest, JsonGivesBytesThatAreNotUtf8AsBase64) {
  // printf's octal escapes: value "v\x80\xff", key "k\xff".
  ASSERT_EQ(Ctl(endpoints_, "put bin \"$(printf 'v\\200\\377')\"").exit_code,
            0);
  ASSERT_EQ(Ctl(endpoints_, "put \"$(printf 'k\\377')\" caf\xc3\xa9").exit_code,
            0);
  auto get = CtlJson(endpoints_, "get bin");
  EXPECT_EQ(get["key"], "bin");
  EXPECT_FALSE(get.contains("value")) << get;
  EXPECT_EQ(get["value_base64"], "doD/");
  auto range = CtlJson(endpoints_, "range k");
  EXPECT_EQ(range, nlohmann::ordered_json::parse(
                       R"([{"key_base64":"a/8=","value":"caf\u00e9"}])"));
}

TEST_F(RaftkvctlTest, StatusMarksAStoppedNodeUnreachable) {
  cluster_.Kill(3);
  CtlRun status = Ctl(endpoints_, "status");
  EXPECT_EQ(status.exit_code, 0) << status.out;
  EXPECT_EQ(Count(status.out, "unreachable"), 1u) << status.out;
  CtlRun json = Ctl(endpoints_, "--json status");
  EXPECT_EQ(Count(json.out, "\"error\":"), 1u) << json.out;
}

TEST_F(RaftkvctlTest, EndpointHealthNamesEachNodeAndFailsWhenOneIsDown) {
  CtlRun health = Ctl(endpoints_, "endpoint health");
  EXPECT_EQ(health.exit_code, 0) << health.out;
  EXPECT_EQ(Count(health.out, " is healthy: served a linearizable read"), 3u)
      << health.out;
  // A follower goes down (killing the leader would leave the others
  // without one for a moment, and rightly unhealthy).
  const int leader = cluster_.WaitForLeader();
  const int down = leader == 2 ? 3 : 2;
  cluster_.Kill(down);
  health = Ctl(endpoints_, "endpoint health");
  EXPECT_EQ(health.exit_code, 3) << health.out;
  EXPECT_EQ(Count(health.out, " is healthy"), 2u) << health.out;
  EXPECT_EQ(Count(health.out, cluster_.client_address(down) + " is unhealthy"),
            1u)
      << health.out;
  CtlRun json = Ctl(endpoints_, "--json endpoint health");
  EXPECT_EQ(Count(json.out, "\"health\":true"), 2u) << json.out;
  EXPECT_EQ(Count(json.out, "\"health\":false"), 1u) << json.out;
}

TEST_F(RaftkvctlTest, ANodeWithoutQuorumAnswersUnavailable) {
  cluster_.Kill(2);
  cluster_.Kill(3);
  const std::string one = cluster_.client_address(1);
  const std::string cmd = RaftkvctlPath() + " --endpoints=" + one +
                          " --deadline_ms=1500 put k v >/dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
}

}  // namespace
}  // namespace raftkv
