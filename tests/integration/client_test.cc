// raftkv::Client against real raftkvd processes: one client shared by many
// threads, exactly-once writes across leader kills, compare-and-swap and
// prefix operations.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tools/local_cluster.h"

namespace raftkv {
namespace {

TEST(ClientTest, OneClientServesManyThreads) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const std::string key =
            "t" + std::to_string(t) + "/" + std::to_string(i);
        if (!client->Put(key, std::to_string(i)).ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  auto all = client->GetPrefix("t");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->kvs.size(), 800u);
  // Every write of every thread was numbered in the same session.
  EXPECT_NE(client->client_id(), 0u);
}

TEST(ClientTest, RetriedWritesApplyExactlyOnceAcrossLeaderKills) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient(std::chrono::seconds(20));
  auto observer = cluster.NewClient();
  constexpr int kWrites = 300;
  for (int i = 1; i <= kWrites; ++i) {
    if (i == 100 || i == 200) {
      // Kill the leader while the next write is in flight.
      auto leader = observer->Leader();
      ASSERT_TRUE(leader.ok());
      std::thread killer([&cluster, id = leader->first] {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        cluster.Kill(static_cast<int>(id));
        cluster.Start(static_cast<int>(id));
      });
      ASSERT_TRUE(client->Put("counter", std::to_string(i)).ok()) << i;
      killer.join();
      continue;
    }
    ASSERT_TRUE(client->Put("counter", std::to_string(i)).ok()) << i;
  }
  auto kv = client->Get("counter");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->value, std::to_string(kWrites));
  // version counts the puts applied to the key: a retry applied twice would
  // make it larger than the number of writes.
  EXPECT_EQ(kv->version, kWrites);
}

TEST(ClientTest, CompareAndSwapAndPrefixes) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  ASSERT_TRUE(client->Put("cfg/a", "1").ok());
  EXPECT_TRUE(*client->CompareAndSwap("cfg/a", "1", "2"));
  EXPECT_FALSE(*client->CompareAndSwap("cfg/a", "1", "3"));
  EXPECT_EQ(client->Get("cfg/a")->value, "2");
  // Version 0 means "must not exist": create-if-absent.
  EXPECT_TRUE(*client->CompareVersionAndSwap("cfg/b", 0, "new"));
  EXPECT_FALSE(*client->CompareVersionAndSwap("cfg/b", 0, "again"));
  ASSERT_TRUE(client->Put("other", "x").ok());
  auto prefix = client->GetPrefix("cfg/");
  ASSERT_TRUE(prefix.ok());
  ASSERT_EQ(prefix->kvs.size(), 2u);
  EXPECT_EQ(prefix->kvs[0].key, "cfg/a");
  EXPECT_EQ(prefix->kvs[1].key, "cfg/b");
  EXPECT_EQ(*client->DeletePrefix("cfg/"), 2);
  EXPECT_TRUE(client->Get("cfg/a").status().IsNotFound());
  EXPECT_TRUE(client->Get("other").ok());
  EXPECT_EQ(PrefixRangeEnd("a\xff"), "b");
  EXPECT_EQ(PrefixRangeEnd(""), std::string(1, '\0'));
}

}  // namespace
}  // namespace raftkv
