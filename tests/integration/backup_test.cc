// Backup and restore with real processes: `raftkvctl snapshot save FILE`
// streams a consistent, checked image of a member's data, and a new cluster
// started with `raftkvd --restore_from=FILE` serves every key of it under
// a cluster id of its own; a damaged or truncated backup is refused with
// the reason and nothing is installed. Must never signal a process that
// LocalCluster did not start.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/integration/log_text.h"
#include "tests/integration/raftkvctl_run.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using ::raftkv::integration::Ctl;
using ::raftkv::integration::Join;
using ::raftkv::integration::ReadFile;
using std::chrono::milliseconds;

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/raftkv-backup-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string dir_;
};

uint64_t ClusterIdOf(LocalCluster& cluster) {
  auto client = cluster.NewClient();
  for (const NodeInfo& n : client->ClusterStatus()) {
    if (n.error.ok()) return n.cluster_id;
  }
  return 0;
}

TEST_F(BackupTest, ABackupRestoresIntoANewClusterWithEveryKey) {
  const std::string file = dir_ + "/backup";
  uint64_t old_cluster = 0;
  int64_t last_revision = 0;
  {
    LocalCluster cluster(3);
    ASSERT_NE(cluster.WaitForLeader(), 0);
    auto client = cluster.NewClient();
    for (int i = 0; i < 1000; ++i) {
      auto r = client->Put("k" + std::to_string(i), "v" + std::to_string(i));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      last_revision = *r;
    }
    ASSERT_TRUE(client->Delete("k7").ok());
    ++last_revision;
    old_cluster = ClusterIdOf(cluster);
    const auto saved =
        Ctl(Join(cluster.endpoints()), "--json snapshot save " + file);
    ASSERT_EQ(saved.exit_code, 0) << saved.out;
    const auto json = nlohmann::json::parse(saved.out);
    EXPECT_EQ(json["file"], file);
    EXPECT_EQ(json["cluster_id"].get<uint64_t>(), old_cluster);
    EXPECT_GE(json["records"].get<uint64_t>(), 999u);
    EXPECT_GT(json["index"].get<uint64_t>(), 1000u);
    // Never overwritten.
    EXPECT_EQ(Ctl(Join(cluster.endpoints()), "snapshot save " + file).exit_code,
              4);
  }

  LocalCluster restored(3, {"--restore_from=" + file});
  ASSERT_NE(restored.WaitForLeader(), 0);
  auto client = restored.NewClient();
  for (int i = 0; i < 1000; ++i) {
    auto r = client->Get("k" + std::to_string(i));
    if (i == 7) {
      EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
      continue;
    }
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ(r->value, "v" + std::to_string(i));
  }
  // The store's history goes on from the backup's revision...
  auto next = client->Put("after", "restore");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, last_revision + 1);
  // ...in a cluster of its own, of its own members.
  const uint64_t new_cluster = ClusterIdOf(restored);
  EXPECT_NE(new_cluster, 0u);
  EXPECT_NE(new_cluster, old_cluster);
  auto members = client->MemberList();
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->size(), 3u);
  EXPECT_EQ((*members)[0].peer_address, restored.peer_address(1));
  // A restart with the same flags keeps the data (the flag is ignored).
  EXPECT_EQ(restored.Stop(2), 0);
  restored.Start(2);
  restored.Kill(1);
  restored.Kill(3);
  restored.Start(1);
  ASSERT_NE(restored.WaitForLeader(), 0);
  EXPECT_NE(ReadFile(restored.log_path(2))
                .find("--restore_from=" + file + " ignored"),
            std::string::npos);
  auto again = restored.NewClient()->Get("after");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->value, "restore");
}

TEST_F(BackupTest, ADamagedOrTruncatedBackupIsRefused) {
  const std::string file = dir_ + "/backup";
  {
    LocalCluster cluster(3);
    ASSERT_NE(cluster.WaitForLeader(), 0);
    auto client = cluster.NewClient();
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(
          client->Put("k" + std::to_string(i), std::string(100, 'x')).ok());
    }
    ASSERT_EQ(Ctl(Join(cluster.endpoints()), "snapshot save " + file).exit_code,
              0);
  }
  const std::string good = ReadFile(file);
  ASSERT_GT(good.size(), 1000u);
  const std::vector<std::pair<std::string, std::string>> damaged = {
      {"flipped",
       [&] {
         std::string bad = good;
         bad[bad.size() / 2] ^= 0x20;
         return bad;
       }()},
      {"truncated", good.substr(0, good.size() - 10)},
  };
  for (const auto& [name, bytes] : damaged) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    LocalCluster cluster(1, {"--restore_from=" + path});
    EXPECT_NE(cluster.WaitForExit(1), 0) << name;
    const std::string log = ReadFile(cluster.log_path(1));
    EXPECT_NE(log.find(path), std::string::npos) << name << ": " << log;
    EXPECT_NE(log.find("Corruption"), std::string::npos) << name << ": " << log;
    // Nothing was installed: started again with the intact backup, the
    // node restores it.
    cluster.Start(1, {"--restore_from=" + file});
    ASSERT_NE(cluster.WaitForLeader(), 0) << name;
    auto r = cluster.NewClient()->Get("k299");
    EXPECT_TRUE(r.ok()) << name << ": " << r.status().ToString();
  }
}

}  // namespace
}  // namespace raftkv
