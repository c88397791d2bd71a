// Integration test of cluster identity (server/cluster_identity.h): a node
// started on another cluster's data dir is refused by its peers and refuses
// them, logging both cluster ids, while the cluster serves on without it.
// Must never signal a process that LocalCluster did not start.
#include "server/cluster_identity.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/integration/log_text.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using integration::ReadFile;

uint64_t ClusterIdOf(LocalCluster& cluster) {
  for (const NodeInfo& n : cluster.NewClient()->ClusterStatus()) {
    if (n.error.ok()) return n.cluster_id;
  }
  return 0;
}

// Whether the log of node `id` says it refused a peer of `cluster_id`,
// within a generous wait.
bool LogsRefusal(LocalCluster& cluster, int id, uint64_t cluster_id) {
  const std::string text =
      "belongs to cluster " + server::ClusterIdText(cluster_id);
  for (int i = 0; i < 300; ++i) {
    if (ReadFile(cluster.log_path(id)).find(text) != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(ForeignPeerTest, ANodeOnAnotherClustersDataIsRefusedAndTakesNothing) {
  LocalCluster other(3);
  ASSERT_NE(other.WaitForLeader(), 0);
  ASSERT_TRUE(other.NewClient()->Put("from", "the other cluster").ok());
  const uint64_t other_id = ClusterIdOf(other);
  for (int id = 1; id <= 3; ++id) EXPECT_EQ(other.Stop(id), 0);

  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  ASSERT_TRUE(client->Put("k", "0").ok());
  const uint64_t ours = ClusterIdOf(cluster);
  ASSERT_NE(ours, 0u);
  ASSERT_NE(ours, other_id);

  // Node 3's disk is swapped for the other cluster's node 3.
  EXPECT_EQ(cluster.Stop(3), 0);
  std::filesystem::remove_all(cluster.data_dir(3));
  std::filesystem::copy(other.data_dir(3), cluster.data_dir(3),
                        std::filesystem::copy_options::recursive);
  cluster.Start(3);

  // The cluster serves on with nodes 1 and 2 ...
  for (int i = 1; i <= 50; ++i) {
    ASSERT_TRUE(client->Put("k", std::to_string(i)).ok()) << i;
  }
  // ... node 3 refuses our nodes, naming the cluster they belong to (it
  // dials the members its data records, the other cluster's, now gone:
  // BadInputTest.APeerOfAnotherClusterIsRefused covers our side refusing
  // it) ...
  EXPECT_TRUE(LogsRefusal(cluster, 3, ours)) << ReadFile(cluster.log_path(3));
  // ... and node 3 keeps the other cluster's identity and data: it took
  // nothing from this one.
  bool saw_node_3 = false;
  for (const NodeInfo& n : client->ClusterStatus()) {
    if (!n.error.ok() || n.id != 3) continue;
    saw_node_3 = true;
    EXPECT_EQ(n.cluster_id, other_id);
    EXPECT_NE(n.role, "leader");
  }
  EXPECT_TRUE(saw_node_3);
  auto got = client->Get("k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "50");
}

}  // namespace
}  // namespace raftkv
