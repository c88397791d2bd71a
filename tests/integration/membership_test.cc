// Integration tests of membership changes with real raftkvd processes
// (docs/membership.md): a node added with `member add` and started with
// --join catches up from a snapshot and becomes a voter by itself; the
// leader removes itself and hands over; a dead node is replaced; a removed
// node learns it was removed and its data dir is refused; the membership
// survives restarts; a removed id is never reused. A client writes all the
// while and must see no error. Timeouts are generous on purpose; the
// figures (catch-up time at a million keys) are benchmarks, not tests.
// Must never signal a process that LocalCluster did not start.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "tests/integration/key_writer.h"
#include "tests/integration/log_text.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using ::raftkv::integration::KeyWriter;
using ::raftkv::integration::ReadFile;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Small log limits: a new node can only catch up by snapshot.
const std::vector<std::string> kCompactingFlags = {"--snapshot_entries=400",
                                                   "--log_entries_kept=50"};

// The members as `client` reports them: id -> "voter" / "learner".
std::map<uint64_t, std::string> Roles(Client& client) {
  std::map<uint64_t, std::string> roles;
  auto list = client.MemberList();
  if (!list.ok()) return roles;
  for (const MemberInfo& m : *list) {
    roles[m.id] = m.learner ? "learner" : "voter";
  }
  return roles;
}

// Waits until every listed node reports `want` as the membership.
bool WaitForMembership(
    const LocalCluster& cluster, const std::vector<int>& ids,
    const std::map<uint64_t, std::string>& want,
    std::chrono::seconds timeout = std::chrono::seconds(30)) {
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    bool all = true;
    for (int id : ids) {
      if (Roles(*cluster.NewClientOf(id, milliseconds(1000))) != want) {
        all = false;
        break;
      }
    }
    if (all) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

// Every acknowledged key is readable (linearizably) through `client`.
void ExpectAllAcked(Client& client, const std::vector<int>& acked) {
  for (int i : acked) {
    auto r = client.Get(KeyWriter::Key(i));
    ASSERT_TRUE(r.ok()) << "acknowledged key w" << i << ": "
                        << r.status().ToString();
  }
}

TEST(MembershipTest, ANodeAddedAndStartedWithJoinCatchesUpAndBecomesAVoter) {
  LocalCluster cluster(3, kCompactingFlags);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(client->Put("k" + std::to_string(i), "v").ok());
  }
  KeyWriter writer(client.get(), 100);
  writer.Start();

  const int added = cluster.AddNode();
  auto after_add = client->MemberAdd(added, cluster.peer_address(added),
                                     cluster.client_address(added),
                                     /*learner=*/false);
  ASSERT_TRUE(after_add.ok()) << after_add.status().ToString();
  EXPECT_EQ(Roles(*client),
            (std::map<uint64_t, std::string>{
                {1, "voter"}, {2, "voter"}, {3, "voter"}, {4, "learner"}}));
  cluster.Start(added);
  // It catches up from a snapshot (the log was compacted) and the leader
  // promotes it by itself.
  ASSERT_TRUE(WaitForMembership(
      cluster, {1, 2, 3, added},
      {{1, "voter"}, {2, "voter"}, {3, "voter"}, {4, "voter"}}));
  // An old node leaves while the writer goes on.
  auto after_remove = client->MemberRemove(3);
  ASSERT_TRUE(after_remove.ok()) << after_remove.status().ToString();
  EXPECT_EQ(cluster.WaitForExit(3), 0);
  std::this_thread::sleep_for(milliseconds(300));
  writer.StopAndJoin();
  EXPECT_TRUE(writer.errors().empty()) << writer.errors().front();
  EXPECT_NE(ReadFile(cluster.log_path(added)).find("installed snapshot"),
            std::string::npos);

  // It serves what was written before and during its catch-up.
  auto direct = cluster.NewClientOf(added);
  auto old = direct->Get("k1999", ReadOptions{/*serializable=*/true});
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  ExpectAllAcked(*direct, writer.acked());

  // Voters {1, 2, 4}: with node 1 down, 2 and 4 are a majority; with
  // node 2 down as well, nothing commits.
  cluster.Kill(1);
  ASSERT_TRUE(client->Put("two-of-three", "x").ok());
  cluster.Kill(2);
  auto short_client = cluster.NewClient(std::chrono::seconds(1));
  EXPECT_FALSE(short_client->Put("one-of-three", "x").ok());
  cluster.Start(1);
  ASSERT_TRUE(client->Put("one-of-three", "x").ok());
}

TEST(MembershipTest, TheLeaderRemovesItselfHandsOverAndStops) {
  LocalCluster cluster(3);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient();
  KeyWriter writer(client.get(), 100);
  writer.Start();
  std::this_thread::sleep_for(milliseconds(300));

  auto after = client->MemberRemove(leader);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  std::set<uint64_t> left;
  for (const MemberInfo& m : *after) left.insert(m.id);
  EXPECT_EQ(left.count(leader), 0u);
  EXPECT_EQ(left.size(), 2u);

  // It learns it was removed and exits cleanly; it handed over first.
  EXPECT_EQ(cluster.WaitForExit(leader), 0);
  const std::string log = ReadFile(cluster.log_path(leader));
  EXPECT_NE(log.find("its removal from the cluster is committed"),
            std::string::npos);
  EXPECT_NE(log.find("was removed from the cluster"), std::string::npos);
  std::this_thread::sleep_for(milliseconds(500));
  writer.StopAndJoin();
  EXPECT_TRUE(writer.errors().empty()) << writer.errors().front();
  ASSERT_GT(writer.acked().size(), 0u);
  ExpectAllAcked(*client, writer.acked());

  // Its data dir is refused, with the reason.
  cluster.Start(leader);
  EXPECT_NE(cluster.WaitForExit(leader), 0);
  EXPECT_NE(ReadFile(cluster.log_path(leader)).find("its data cannot serve"),
            std::string::npos);
  // Its id is never reused.
  auto again = client->MemberAdd(leader, "127.0.0.1:1", "127.0.0.1:2", false);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("never reused"), std::string::npos);
}

TEST(MembershipTest, ADeadNodeIsReplacedAndTheMembershipSurvivesRestarts) {
  LocalCluster cluster(3, kCompactingFlags);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  KeyWriter writer(client.get(), 100);
  writer.Start();
  // Node 3's machine dies for good, its disk with it.
  cluster.Kill(3);
  std::filesystem::remove_all(cluster.data_dir(3));
  const int replacement = cluster.AddNode();
  ASSERT_TRUE(client
                  ->MemberAdd(replacement, cluster.peer_address(replacement),
                              cluster.client_address(replacement), false)
                  .ok());
  cluster.Start(replacement);
  ASSERT_TRUE(WaitForMembership(
      cluster, {1, 2, replacement},
      {{1, "voter"}, {2, "voter"}, {3, "voter"}, {4, "voter"}}));
  auto after = client->MemberRemove(3);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  const std::map<uint64_t, std::string> replaced = {
      {1, "voter"}, {2, "voter"}, {4, "voter"}};
  ASSERT_TRUE(WaitForMembership(cluster, {1, 2, replacement}, replaced));
  writer.StopAndJoin();
  EXPECT_TRUE(writer.errors().empty()) << writer.errors().front();

  // Every node restarts with its old flags (the founding --cluster still
  // names node 3): the recorded membership wins.
  for (int id : {1, 2, replacement}) cluster.Stop(id);
  for (int id : {1, 2, replacement}) cluster.Start(id);
  ASSERT_TRUE(WaitForMembership(cluster, {1, 2, replacement}, replaced));
  ExpectAllAcked(*client, writer.acked());
  // Node 1 alone down: 2 and 4 are a majority of the three voters.
  cluster.Kill(1);
  EXPECT_TRUE(client->Put("after-restart", "x").ok());
}

TEST(MembershipTest, ALearnerAddedAsSuchStaysOneUntilPromoted) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  ASSERT_TRUE(client->Put("a", "1").ok());
  const int learner = cluster.AddNode();
  ASSERT_TRUE(client
                  ->MemberAdd(learner, cluster.peer_address(learner),
                              cluster.client_address(learner),
                              /*learner=*/true)
                  .ok());
  cluster.Start(learner);
  const std::map<uint64_t, std::string> with_learner = {
      {1, "voter"}, {2, "voter"}, {3, "voter"}, {4, "learner"}};
  ASSERT_TRUE(WaitForMembership(cluster, {1, 2, 3, learner}, with_learner));
  // It receives the log...
  auto direct = cluster.NewClientOf(learner);
  const auto until = Clock::now() + std::chrono::seconds(20);
  StatusOr<KeyValue> seen = Status::NotFound("");
  while (Clock::now() < until && !seen.ok()) {
    seen = direct->Get("a", ReadOptions{/*serializable=*/true});
    if (!seen.ok()) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  // ...stays a learner, and never counts: two voters down stop writes.
  std::this_thread::sleep_for(milliseconds(1000));
  EXPECT_EQ(Roles(*client), with_learner);
  cluster.Kill(2);
  cluster.Kill(3);
  auto short_client = cluster.NewClient(std::chrono::seconds(1));
  EXPECT_FALSE(short_client->Put("no-quorum", "x").ok());
  cluster.Start(2);
  cluster.Start(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  // Promoted, it does count.
  auto promoted = client->MemberPromote(learner);
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  EXPECT_EQ(Roles(*client),
            (std::map<uint64_t, std::string>{
                {1, "voter"}, {2, "voter"}, {3, "voter"}, {4, "voter"}}));
  // Refusals name the reason.
  auto twice = client->MemberAdd(2, "127.0.0.1:1", "127.0.0.1:2", false);
  EXPECT_FALSE(twice.ok());
  auto bad = client->MemberAdd(9, "not-an-address", "127.0.0.1:2", false);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
}

TEST(MembershipTest, AVoterThatMissedAChangeHearsALeaderItDoesNotKnow) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  ASSERT_TRUE(client->Put("before", "1").ok());
  // Node 2 is down while node 4 joins and takes the lead.
  EXPECT_EQ(cluster.Stop(2), 0);
  const int added = cluster.AddNode();
  ASSERT_TRUE(client
                  ->MemberAdd(added, cluster.peer_address(added),
                              cluster.client_address(added), false)
                  .ok());
  cluster.Start(added);
  ASSERT_TRUE(WaitForMembership(
      cluster, {1, 3, added},
      {{1, "voter"}, {2, "voter"}, {3, "voter"}, {4, "voter"}}));
  Status moved = Status::Unavailable("");
  for (int i = 0; i < 100 && !moved.ok(); ++i) {
    moved = client->TransferLeader(added);
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(moved.ok()) << moved.ToString();
  ASSERT_EQ(cluster.WaitForLeader(), added);
  ASSERT_TRUE(client->Put("after", "2").ok());
  // Node 2's log names members 1-3 only; its leader is node 4.
  cluster.Start(2);
  ASSERT_TRUE(WaitForMembership(
      cluster, {2}, {{1, "voter"}, {2, "voter"}, {3, "voter"}, {4, "voter"}}));
  auto direct = cluster.NewClientOf(2);
  auto got = direct->Get("after");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "2");
}

TEST(MembershipTest, AChangeLeavingNoReachableMajorityIsRefused) {
  LocalCluster cluster(3);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient();
  ASSERT_TRUE(client->Put("k", "v").ok());
  const int dead = leader == 1 ? 2 : 1;
  const int alive = 6 - leader - dead;
  cluster.Kill(dead);
  std::this_thread::sleep_for(milliseconds(500));  // an election timeout
  // Removing the live follower would leave {leader, dead}: it could never
  // commit, and would block every later change.
  auto refused = client->MemberRemove(alive);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("fewer than a majority"),
            std::string::npos);
  // Removing the dead one is fine, and the cluster still writes.
  auto removed = client->MemberRemove(dead);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(removed->size(), 2u);
  EXPECT_TRUE(client->Put("k", "w").ok());
}

TEST(MembershipTest, AfterLosingAMajorityASurvivorForcesANewCluster) {
  LocalCluster cluster(3);
  const int survivor = cluster.WaitForLeader();
  ASSERT_NE(survivor, 0);
  auto client = cluster.NewClient();
  std::vector<int> acked;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(client->Put("w" + std::to_string(i), "v").ok());
    acked.push_back(i);
  }
  // Two machines are gone for good; the survivor held every acknowledged
  // write (it was the leader).
  std::vector<int> lost;
  for (int id = 1; id <= 3; ++id) {
    if (id != survivor) lost.push_back(id);
  }
  for (int id : lost) cluster.Kill(id);
  cluster.Kill(survivor);
  cluster.Start(survivor, {"--force_new_cluster"});
  auto alone = cluster.NewClient();
  const auto until = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < until && Roles(*alone).size() != 1) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(Roles(*alone),
            (std::map<uint64_t, std::string>{{survivor, "voter"}}));
  ExpectAllAcked(*alone, acked);
  ASSERT_TRUE(alone->Put("after", "forced").ok());
  EXPECT_NE(ReadFile(cluster.log_path(survivor))
                .find("makes itself a single-node cluster"),
            std::string::npos);

  // A lost node that comes back after all is told it was removed.
  cluster.Start(lost[0]);
  EXPECT_EQ(cluster.WaitForExit(lost[0]), 0);
  // Without the flag from now on, and growing again.
  EXPECT_EQ(cluster.Stop(survivor), 0);
  cluster.Start(survivor);
  const int added = cluster.AddNode();
  ASSERT_TRUE(alone
                  ->MemberAdd(added, cluster.peer_address(added),
                              cluster.client_address(added), false)
                  .ok());
  cluster.Start(added);
  ASSERT_TRUE(WaitForMembership(
      cluster, {survivor, added},
      {{survivor, "voter"}, {static_cast<uint64_t>(added), "voter"}}));
  auto got = alone->Get("after");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "forced");
  // The flag left in place after the cluster grew again is refused: it
  // would remove the new member.
  EXPECT_EQ(cluster.Stop(survivor), 0);
  cluster.Start(survivor, {"--force_new_cluster"});
  EXPECT_NE(cluster.WaitForExit(survivor), 0);
  EXPECT_NE(ReadFile(cluster.log_path(survivor)).find("has moved on since"),
            std::string::npos);
}

}  // namespace
}  // namespace raftkv
