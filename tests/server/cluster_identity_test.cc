// Tests of server/cluster_identity.h: the id every founding member computes
// on its own, and the hello that opens a peer connection.
#include "server/cluster_identity.h"

#include <gtest/gtest.h>

namespace raftkv::server {
namespace {

const std::map<uint64_t, std::string> kThree = {
    {1, "127.0.0.1:7001"}, {2, "127.0.0.1:7002"}, {3, "127.0.0.1:7003"}};

TEST(ClusterIdentityTest, EveryFoundingMemberComputesTheSameId) {
  // A map is ordered, but the flag's order must not matter either: build
  // it in another order.
  std::map<uint64_t, std::string> reversed;
  for (auto it = kThree.rbegin(); it != kThree.rend(); ++it) {
    reversed.insert(*it);
  }
  EXPECT_EQ(BootstrapClusterId("raftkv", kThree),
            BootstrapClusterId("raftkv", reversed));
  // Stable across builds, machines and versions (a data dir records it):
  // FNV-1a of "raftkv\n1=127.0.0.1:7001\n2=...\n3=...", computed
  // independently.
  EXPECT_EQ(ClusterIdText(BootstrapClusterId("raftkv", kThree)),
            "0601c55087884af8");
  EXPECT_NE(BootstrapClusterId("raftkv", kThree), 0u);
}

TEST(ClusterIdentityTest, AnotherTokenAddressOrMemberIsAnotherCluster) {
  const uint64_t id = BootstrapClusterId("raftkv", kThree);
  EXPECT_NE(BootstrapClusterId("staging", kThree), id);
  auto moved = kThree;
  moved[3] = "127.0.0.1:7004";
  EXPECT_NE(BootstrapClusterId("raftkv", moved), id);
  auto fewer = kThree;
  fewer.erase(3);
  EXPECT_NE(BootstrapClusterId("raftkv", fewer), id);
  auto renumbered = kThree;
  renumbered.erase(3);
  renumbered[4] = "127.0.0.1:7003";
  EXPECT_NE(BootstrapClusterId("raftkv", renumbered), id);
}

TEST(ClusterIdentityTest, AHelloRoundTripsAndNothingElseIsOne) {
  const std::string hello =
      EncodePeerHello(0xfeedfacecafebeefULL, 7, "127.0.0.1:7007");
  uint64_t cluster_id = 0, from = 0;
  std::string address;
  ASSERT_TRUE(DecodePeerHello(hello, &cluster_id, &from, &address));
  EXPECT_EQ(cluster_id, 0xfeedfacecafebeefULL);
  EXPECT_EQ(from, 7u);
  EXPECT_EQ(address, "127.0.0.1:7007");
  EXPECT_EQ(ClusterIdText(cluster_id), "feedfacecafebeef");
  // Without an address too.
  ASSERT_TRUE(
      DecodePeerHello(EncodePeerHello(1, 2, ""), &cluster_id, &from, &address));
  EXPECT_EQ(from, 2u);
  EXPECT_EQ(address, "");

  const std::string bare = EncodePeerHello(1, 2, "");
  EXPECT_FALSE(DecodePeerHello("", &cluster_id, &from, &address));
  EXPECT_FALSE(DecodePeerHello(bare.substr(0, bare.size() - 1), &cluster_id,
                               &from, &address));
  EXPECT_FALSE(DecodePeerHello(bare + std::string(kMaxHelloAddress + 1, 'x'),
                               &cluster_id, &from, &address));
  std::string other_magic = hello;
  other_magic[4] ^= 1;
  EXPECT_FALSE(DecodePeerHello(other_magic, &cluster_id, &from, &address));
  std::string no_zero = hello;
  no_zero[0] = 'R';
  EXPECT_FALSE(DecodePeerHello(no_zero, &cluster_id, &from, &address));
  // A removal notice is not a hello.
  EXPECT_FALSE(
      DecodePeerHello(EncodePeerRemoved(1, 2), &cluster_id, &from, &address));
}

TEST(ClusterIdentityTest, ARemovalNoticeRoundTrips) {
  uint64_t cluster_id = 0, node = 0;
  ASSERT_TRUE(DecodePeerRemoved(EncodePeerRemoved(9, 4), &cluster_id, &node));
  EXPECT_EQ(cluster_id, 9u);
  EXPECT_EQ(node, 4u);
  EXPECT_FALSE(
      DecodePeerRemoved(EncodePeerHello(9, 4, ""), &cluster_id, &node));
}

}  // namespace
}  // namespace raftkv::server
