// Integration tests of leases with real raftkvd processes (docs/api.md):
// keys put with a lease are deleted, in one revision, on every member when
// it expires or is revoked; keep-alives keep it; a failover does not expire
// a lease that is kept alive; leases survive a restart of every node.
// Timeouts are generous on purpose. Must never signal a process that
// LocalCluster did not start.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "client/kv.pb.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// Whether `key` is absent on node `id` (a serializable, local read) within
// `timeout`.
bool GoneOn(const LocalCluster& cluster, int id, const std::string& key,
            seconds timeout) {
  auto client = cluster.NewClientOf(id);
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    auto r = client->Get(key, ReadOptions{.serializable = true});
    if (r.status().code() == Status::Code::kNotFound) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

TEST(LeaseTest, AnExpiredLeasesKeysGoInOneRevisionOnEveryMember) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  auto lease = client->LeaseGrant(2);
  ASSERT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_GT(lease->id, 0);
  EXPECT_EQ(lease->ttl, 2);
  ASSERT_TRUE(client->Put("svc/a", "1", PutOptions{.lease = lease->id}).ok());
  ASSERT_TRUE(client->Put("svc/b", "2", PutOptions{.lease = lease->id}).ok());
  ASSERT_TRUE(client->Put("svc/c", "3").ok());  // no lease
  auto got = client->Get("svc/a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->lease, lease->id);
  auto ttl = client->LeaseTimeToLive(lease->id, /*keys=*/true);
  ASSERT_TRUE(ttl.ok()) << ttl.status().ToString();
  EXPECT_EQ(ttl->granted_ttl, 2);
  EXPECT_LE(ttl->ttl, 2);
  EXPECT_EQ(ttl->keys, (std::vector<std::string>{"svc/a", "svc/b"}));
  auto listed = client->LeaseList();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<int64_t>{lease->id});

  // Both deletions in one revision, as a watcher sees them.
  std::mutex mu;
  std::vector<WatchEvent> events;
  WatchOptions options;
  options.range_end = PrefixRangeEnd("svc/");
  auto watch = client->Watch("svc/", options, [&](StatusOr<WatchUpdate> u) {
    if (!u.ok()) return;
    std::lock_guard<std::mutex> lock(mu);
    for (auto& e : u->events) events.push_back(e);
  });
  for (int id = 1; id <= 3; ++id) {
    EXPECT_TRUE(GoneOn(cluster, id, "svc/a", seconds(20))) << "node " << id;
    EXPECT_TRUE(GoneOn(cluster, id, "svc/b", seconds(20))) << "node " << id;
  }
  EXPECT_TRUE(client->Get("svc/c").ok());
  EXPECT_EQ(client->LeaseTimeToLive(lease->id).status().code(),
            Status::Code::kNotFound);
  std::this_thread::sleep_for(milliseconds(300));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[1].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[0].kv.mod_revision, events[1].kv.mod_revision);
}

TEST(LeaseTest, KeepAlivesKeepALeaseAndRevokeDeletesItsKeys) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  auto lease = client->LeaseGrant(2);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(client->Put("k", "v", PutOptions{.lease = lease->id}).ok());
  {
    auto keeper = client->KeepAlive(lease->id, lease->ttl);
    std::this_thread::sleep_for(seconds(6));  // three TTLs
    EXPECT_TRUE(keeper->alive());
    EXPECT_TRUE(client->Get("k").ok());
  }
  ASSERT_TRUE(client->LeaseRevoke(lease->id).ok());
  EXPECT_EQ(client->Get("k").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(client->LeaseRevoke(lease->id).code(), Status::Code::kNotFound);
  EXPECT_EQ(
      client->Put("k2", "v", PutOptions{.lease = lease->id}).status().code(),
      Status::Code::kNotFound);
  EXPECT_EQ(client->LeaseKeepAliveOnce(lease->id).status().code(),
            Status::Code::kNotFound);
}

TEST(LeaseTest, ALeaseKeptAliveSurvivesAFailover) {
  LocalCluster cluster(3);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient(seconds(20));
  auto lease = client->LeaseGrant(2);
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(client->Put("reg/me", "up", PutOptions{.lease = lease->id}).ok());
  std::mutex mu;
  Status lost;  // guarded by mu
  std::atomic<bool> was_lost{false};
  auto keeper = client->KeepAlive(lease->id, lease->ttl, [&](Status s) {
    std::lock_guard<std::mutex> lock(mu);
    lost = s;
    was_lost = true;
  });
  std::this_thread::sleep_for(seconds(1));
  cluster.Kill(leader);
  const int next = cluster.WaitForLeader();
  ASSERT_NE(next, 0);
  ASSERT_NE(next, leader);
  // Well past the TTL: the new leader extended the lease, the keeper
  // renewed it there.
  std::this_thread::sleep_for(seconds(6));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_FALSE(was_lost) << lost.ToString();
  }
  auto got = client->Get("reg/me");
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  keeper.reset();
  // Without keep-alives it expires under the new leader.
  EXPECT_TRUE(GoneOn(cluster, next, "reg/me", seconds(20)));
}

// A grant answered just before the leader dies: the new leader must know
// it before answering keep-alives (it loads the leases only once it has
// applied everything committed before its term), or the keeper hears
// "not found" and gives the lease up.
TEST(LeaseTest, ALeaseGrantedJustBeforeAFailoverIsKeptAlive) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient(seconds(20));
  for (int round = 0; round < 3; ++round) {
    const int leader = cluster.WaitForLeader();
    ASSERT_NE(leader, 0);
    auto lease = client->LeaseGrant(2);
    ASSERT_TRUE(lease.ok()) << lease.status().ToString();
    const std::string key = "reg/" + std::to_string(round);
    ASSERT_TRUE(client->Put(key, "up", PutOptions{.lease = lease->id}).ok());
    std::atomic<bool> lost{false};
    auto keeper = client->KeepAlive(lease->id, lease->ttl,
                                    [&lost](Status) { lost = true; });
    cluster.Kill(leader);
    std::this_thread::sleep_for(seconds(5));  // two and a half TTLs
    EXPECT_FALSE(lost) << "round " << round;
    EXPECT_TRUE(client->Get(key).ok()) << "round " << round;
    keeper.reset();
    cluster.Start(leader);
  }
}

TEST(LeaseTest, LeasesSurviveARestartOfEveryNode) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  int64_t id = 0;
  {
    auto client = cluster.NewClient();
    auto lease = client->LeaseGrant(3600);
    ASSERT_TRUE(lease.ok());
    id = lease->id;
    ASSERT_TRUE(client->Put("cfg", "v", PutOptions{.lease = id}).ok());
  }
  for (int n = 1; n <= 3; ++n) cluster.Stop(n);
  for (int n = 1; n <= 3; ++n) cluster.Start(n);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient(seconds(20));
  auto ttl = client->LeaseTimeToLive(id, true);
  ASSERT_TRUE(ttl.ok()) << ttl.status().ToString();
  EXPECT_EQ(ttl->granted_ttl, 3600);
  EXPECT_GT(ttl->ttl, 3500);
  EXPECT_EQ(ttl->keys, std::vector<std::string>{"cfg"});
  ASSERT_TRUE(client->LeaseRevoke(id).ok());
  EXPECT_EQ(client->Get("cfg").status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace raftkv
