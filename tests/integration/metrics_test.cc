// Integration tests of raftkvd's monitoring endpoint (--listen_metrics):
// /metrics is valid Prometheus text (checked by Prometheus' own promtool)
// and counts what happened; /health, /livez and /readyz answer as etcd's
// do, and /health turns unhealthy when the node loses its leader. Must
// never signal a process that LocalCluster did not start.
#include <gtest/gtest.h>
#include <httplib.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <cstdio>
#include <fstream>
#include <regex>
#include <thread>

#include "server/stage_thread.h"
#include "tests/integration/log_text.h"
#include "tests/integration/metrics_scrape.h"
#include "tools/local_cluster.h"
#include "util/current_thread.h"

namespace raftkv {
namespace {

using ::raftkv::integration::Get;
using ::raftkv::integration::Got;
using ::raftkv::integration::MetricsPort;
using ::raftkv::integration::ReadFile;
using ::raftkv::integration::Sample;

using std::chrono::milliseconds;

// /metrics once it shows `applied` entries applied (the loop refreshes its
// gauges every tick); the last scrape if that never happens.
Got ScrapeOnceApplied(int port, double applied) {
  Got got;
  for (int i = 0; i < 100; ++i) {
    got = Get(port, "/metrics");
    if (got.status == 200 &&
        Sample(got.body, "raftkv_raft_applied_index") >= applied) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return got;
}

TEST(MetricsTest, MetricsArePrometheusTextAndCountWhatHappened) {
  LocalCluster cluster(3, {"--listen_metrics=127.0.0.1:0"});
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(client->Put("m" + std::to_string(i), "v").ok());
  }
  ASSERT_TRUE(client->Get("m1").ok());
  const int port = MetricsPort(cluster, leader);
  ASSERT_NE(port, 0) << ReadFile(cluster.log_path(leader));
  const Got got = ScrapeOnceApplied(port, 50);
  ASSERT_EQ(got.status, 200);
  const std::string& text = got.body;

  EXPECT_EQ(Sample(text, "raftkv_raft_is_leader"), 1) << text;
  EXPECT_EQ(Sample(text, "raftkv_raft_leader_id"), leader);
  EXPECT_GE(Sample(text, "raftkv_raft_term"), 1);
  EXPECT_GE(Sample(text, "raftkv_raft_applied_index"), 50);
  EXPECT_GE(Sample(text, "raftkv_raft_leader_changes_total"), 1);
  EXPECT_GE(
      Sample(text, "raftkv_client_requests_total{op=\"put\",outcome=\"ok\"}"),
      50);
  EXPECT_GE(
      Sample(text, "raftkv_client_request_duration_seconds_count{op=\"put\"}"),
      50);
  EXPECT_GE(Sample(text, "raftkv_log_write_duration_seconds_count"), 1);
  EXPECT_GT(Sample(text, "raftkv_rocksdb_memory_bytes"), 0);
  // The loop may be raised to real-time (the default priority) wherever
  // this test may ask for it, as the node does; never otherwise.
  int refused = 0;
  std::thread([&] { refused = RaiseThreadToRealtime(0, 1); }).join();
  EXPECT_EQ(Sample(text, "raftkv_loop_realtime_priority"),
            refused == 0 ? server::kEventLoopRealtimePriority : 0)
      << ReadFile(cluster.log_path(leader));
  EXPECT_GT(Sample(text, "raftkv_loop_tick_lateness_seconds_count"), 0);
  EXPECT_GE(Sample(text, "raftkv_proposals_total{outcome=\"applied\"}"), 50);
  EXPECT_EQ(Sample(text, "raftkv_proposals_total{outcome=\"lost\"}"), 0);
  EXPECT_GE(Sample(text, "raftkv_proposal_duration_seconds_count"), 50);
  EXPECT_GE(Sample(text, "raftkv_apply_duration_seconds_count"), 1);
  EXPECT_GE(Sample(text, "raftkv_proposals_pending"), 0);
  for (int peer = 1; peer <= 3; ++peer) {
    const std::string rtt = "raftkv_peer_round_trip_seconds_count{peer=\"" +
                            std::to_string(peer) + "\"}";
    // The leader heartbeats each peer every tick and times the answers.
    if (peer == leader) {
      EXPECT_EQ(Sample(text, rtt), -1) << "no round trips to itself";
    } else {
      EXPECT_GE(Sample(text, rtt), 1) << rtt;
    }
  }

  // Prometheus' own checker accepts it (Debian's prometheus package;
  // scripts/install-deps installs it).
  const std::string file = cluster.data_dir(leader) + "/../metrics.txt";
  std::ofstream(file) << text;
  FILE* check =
      ::popen(("promtool check metrics < " + file + " 2>&1").c_str(), "r");
  ASSERT_NE(check, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), check)) out += buf;
  const int rc = ::pclose(check);
  EXPECT_EQ(rc, 0) << "promtool check metrics: " << out;
}

// Each node writes its log once per write a lone client makes, not twice:
// a Ready that only moves the commit index writes nothing (the commit
// index is saved with the next write that must be synced).
TEST(MetricsTest, ACommitCostsNoLogWriteOfItsOwn) {
  LocalCluster cluster(3, {"--listen_metrics=127.0.0.1:0"});
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient();
  constexpr int kWrites = 100;
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_TRUE(client->Put("c" + std::to_string(i), "v").ok());
  }
  for (int id = 1; id <= 3; ++id) {
    const int port = MetricsPort(cluster, id);
    ASSERT_NE(port, 0);
    const Got got = ScrapeOnceApplied(port, kWrites);
    ASSERT_EQ(got.status, 200) << "node " << id;
    const double writes =
        Sample(got.body, "raftkv_log_write_duration_seconds_count");
    // One per client write, plus the election's and the client session's
    // (the writer may also merge some); a write per commit would double it.
    EXPECT_GE(writes, kWrites / 2) << "node " << id;
    EXPECT_LE(writes, kWrites + 20) << "node " << id;
  }
}

TEST(MetricsTest, HealthFollowsTheLeader) {
  LocalCluster cluster(3, {"--listen_metrics=127.0.0.1:0"});
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  ASSERT_TRUE(cluster.NewClient()->Put("h", "1").ok());
  const int follower = leader == 1 ? 2 : 1;
  const int port = MetricsPort(cluster, follower);
  ASSERT_NE(port, 0);
  Got health = Get(port, "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"health":"true","reason":""})");
  EXPECT_EQ(Get(port, "/livez").status, 200);
  EXPECT_EQ(Get(port, "/readyz").status, 200);

  // Alone, the follower knows no leader: unhealthy, not ready, still live.
  for (int id = 1; id <= 3; ++id) {
    if (id != follower) cluster.Kill(id);
  }
  for (int i = 0; i < 100; ++i) {
    health = Get(port, "/health");
    if (health.status == 503) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.body, R"({"health":"false","reason":"no leader"})");
  EXPECT_EQ(Get(port, "/readyz").status, 503);
  EXPECT_EQ(Get(port, "/livez").status, 200);
}

// A node that cannot start (here: its peer port is taken) after its
// monitoring endpoint is up must still exit with its reason, not hang in
// the endpoint's shutdown: the endpoint's thread may not have begun
// listening when it is told to stop.
TEST(MetricsTest, ANodeThatCannotStartExitsAfterItsEndpointStarted) {
  LocalCluster cluster(1, {"--listen_metrics=127.0.0.1:0"});
  ASSERT_NE(cluster.WaitForLeader(), 0);
  ASSERT_EQ(cluster.Stop(1), 0);

  // Something else takes the node's peer port.
  const std::string peer = cluster.peer_address(1);
  const size_t colon = peer.rfind(':');
  asio::io_context io;
  asio::ip::tcp::acceptor squatter(io);
  std::error_code ec;
  const asio::ip::tcp::endpoint at(
      asio::ip::make_address(peer.substr(0, colon), ec),
      static_cast<uint16_t>(std::stoi(peer.substr(colon + 1))));
  ASSERT_FALSE(ec) << peer;
  squatter.open(at.protocol(), ec);
  if (!ec) squatter.bind(at, ec);
  if (!ec) squatter.listen(1, ec);
  ASSERT_FALSE(ec) << peer << ": " << ec.message();

  for (int attempt = 0; attempt < 3; ++attempt) {
    cluster.Start(1);
    int code = -1;
    for (int i = 0; i < 200 && code < 0; ++i) {
      std::this_thread::sleep_for(milliseconds(50));
      code = cluster.ExitedWith(1);
    }
    const std::string log = ReadFile(cluster.log_path(1));
    ASSERT_EQ(code, 1) << "still running 10 s after failing to start:\n" << log;
    EXPECT_NE(log.find("cannot listen for peers"), std::string::npos) << log;
  }
}

}  // namespace
}  // namespace raftkv
