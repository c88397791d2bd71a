// Integration tests with real raftkvd processes for a node that lost its
// disk: restarted on an empty data dir under its old id, it rejoins by
// itself through a snapshot streamed from the leader (raft/rejoin.h,
// server/snapshot_transfer.h), while a client keeps writing without an
// error and the leader stays the leader; and a damaged or interrupted
// snapshot transfer is refused by the receiver and retried. Sizes are small
// enough for CI; docs/steadiness.md has the figures at a million keys
// (scripts/soak). Timeouts are generous on purpose. Must never signal a
// process that LocalCluster did not start.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "tests/integration/key_writer.h"
#include "tests/integration/log_text.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using ::raftkv::integration::Count;
using ::raftkv::integration::KeyWriter;
using ::raftkv::integration::ReadFile;

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Small log limits, so that a wiped node can only catch up by snapshot.
const std::vector<std::string> kCompactingFlags = {"--snapshot_entries=400",
                                                   "--log_entries_kept=50"};

// Loads `keys` keys of 300 bytes through `client`.
void Load(Client& client, int keys) {
  for (int i = 0; i < keys; ++i) {
    ASSERT_TRUE(client.Put("k" + std::to_string(i), std::string(300, 'v')).ok())
        << i;
  }
}

// Waits until node `id` takes part again and has applied everything the
// leader had committed when the wait began. Returns the status last seen.
NodeInfo WaitUntilCaughtUp(const LocalCluster& cluster, int id, int leader,
                           std::chrono::seconds timeout) {
  auto direct = cluster.NewClientOf(id);
  auto to_leader = cluster.NewClientOf(leader);
  const uint64_t target = to_leader->ClusterStatus()[0].commit_index;
  NodeInfo info;
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    info = direct->ClusterStatus()[0];
    if (info.error.ok() && info.rejoin.empty() &&
        info.applied_index >= target) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return info;
}

TEST(RejoinTest, AWipedNodeRejoinsByItselfWhileWritesGoOn) {
  LocalCluster cluster(3, kCompactingFlags);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient(std::chrono::seconds(10));
  Load(*client, 3000);
  const NodeInfo before = cluster.NewClientOf(leader)->ClusterStatus()[0];
  const int wiped = leader == 3 ? 2 : 3;

  KeyWriter writer(client.get(), 200);
  writer.Start();
  std::this_thread::sleep_for(milliseconds(300));
  cluster.Kill(wiped);
  std::filesystem::remove_all(cluster.data_dir(wiped));
  cluster.Start(wiped);
  const NodeInfo info =
      WaitUntilCaughtUp(cluster, wiped, leader, std::chrono::seconds(60));
  std::this_thread::sleep_for(milliseconds(300));
  writer.StopAndJoin();

  ASSERT_TRUE(info.error.ok()) << info.error.ToString();
  EXPECT_EQ(info.rejoin, "") << "node " << wiped << " never rejoined";
  EXPECT_TRUE(writer.errors().empty())
      << writer.errors().size() << " errors, first: " << writer.errors()[0];
  EXPECT_GT(writer.acked().size(), 0u);
  // The leader stayed the leader, in the same term: no election.
  const NodeInfo after = cluster.NewClientOf(leader)->ClusterStatus()[0];
  EXPECT_EQ(after.role, "leader");
  EXPECT_EQ(after.term, before.term);
  // It went through the protocol: the poll, a streamed snapshot, the
  // rejoin record.
  const std::string log = ReadFile(cluster.log_path(wiped));
  EXPECT_EQ(Count(log, "rejoining as incarnation"), 1u) << log;
  EXPECT_GE(Count(log, "installed the snapshot at"), 1u);
  EXPECT_EQ(Count(log, "votes again"), 1u);
  // Its state is the cluster's: old keys and the writer's last one, read
  // locally on the wiped node.
  auto direct = cluster.NewClientOf(wiped);
  auto old = direct->Get("k1234", ReadOptions{true});
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->value, std::string(300, 'v'));
  const std::string last = KeyWriter::Key(writer.acked().back());
  bool found = false;
  for (int i = 0; i < 100 && !found; ++i) {
    found = direct->Get(last, ReadOptions{true}).ok();
    if (!found) std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(found) << last;
  // No staging left behind.
  const std::string staging = cluster.data_dir(wiped) + "/snapshot-staging";
  EXPECT_TRUE(!std::filesystem::exists(staging) ||
              std::filesystem::is_empty(staging));
}

// A snapshot takes a while to send (seconds at a million keys; here a test
// fault of raftkvd sleeps before each chunk), and writes go on meanwhile.
// The leader, which compacts its log every few hundred entries here, must
// keep what follows the snapshot for the node receiving it: otherwise the
// node needs a second snapshot as soon as it has installed the first.
TEST(RejoinTest, TheLeaderKeepsWhatFollowsASnapshotInFlight) {
  const std::vector<std::string> flags = {
      "--snapshot_entries=100", "--log_entries_kept=20",
      "--testonly_snapshot_fault=slow:3000"};
  LocalCluster cluster(3, flags);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient(std::chrono::seconds(10));
  Load(*client, 3000);
  const int wiped = leader == 3 ? 2 : 3;

  KeyWriter writer(client.get(), 200);
  writer.Start();
  cluster.Kill(wiped);
  std::filesystem::remove_all(cluster.data_dir(wiped));
  cluster.Start(wiped);
  const NodeInfo info =
      WaitUntilCaughtUp(cluster, wiped, leader, std::chrono::seconds(60));
  const uint64_t written_meanwhile = writer.acked().size();
  writer.StopAndJoin();

  EXPECT_EQ(info.rejoin, "") << "node " << wiped << " never rejoined";
  EXPECT_TRUE(writer.errors().empty())
      << writer.errors().size() << " errors, first: " << writer.errors()[0];
  // Enough was written during the transfer (at least 3 s) for the leader to
  // have compacted past the snapshot (every 100 entries, keeping 20).
  EXPECT_GE(written_meanwhile, 300);
  const std::string log = ReadFile(cluster.log_path(wiped));
  EXPECT_EQ(Count(log, "installed the snapshot at"), 1u) << log;
}

// The leader's first snapshot transfer is damaged by a test fault of
// raftkvd; the wiped follower must refuse it (nothing staged or installed
// from it) and still catch up from the retry.
void RejoinDespiteAFaultyTransfer(const std::string& fault,
                                  const std::string& receiver_says) {
  std::vector<std::string> flags = kCompactingFlags;
  flags.push_back("--testonly_snapshot_fault=" + fault);
  LocalCluster cluster(3, flags);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient(std::chrono::seconds(10));
  // Several chunks: values of 20 KB.
  for (int i = 0; i < 150; ++i) {
    ASSERT_TRUE(
        client->Put("big" + std::to_string(i), std::string(20000, 'b')).ok());
  }
  Load(*client, 500);  // and enough entries to compact the log
  const int wiped = leader == 3 ? 2 : 3;
  cluster.Kill(wiped);
  std::filesystem::remove_all(cluster.data_dir(wiped));
  cluster.Start(wiped);
  const NodeInfo info =
      WaitUntilCaughtUp(cluster, wiped, leader, std::chrono::seconds(60));
  EXPECT_EQ(info.rejoin, "");
  const std::string sender = ReadFile(cluster.log_path(leader));
  EXPECT_EQ(Count(sender, "TEST FAULT"), 1u) << sender;
  const std::string receiver = ReadFile(cluster.log_path(wiped));
  EXPECT_GE(Count(receiver, "abandoned after"), 1u) << receiver;
  EXPECT_GE(Count(receiver, receiver_says), 1u) << receiver << "\nsender:\n"
                                                << sender;
  EXPECT_GE(Count(receiver, "installed the snapshot at"), 1u);
  auto value = cluster.NewClientOf(wiped)->Get("big77", ReadOptions{true});
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(value->value, std::string(20000, 'b'));
}

TEST(RejoinTest, ACorruptSnapshotChunkIsRefusedAndTheTransferRetried) {
  RejoinDespiteAFaultyTransfer("corrupt:1", "checksum mismatch");
}

TEST(RejoinTest, AnInterruptedSnapshotTransferIsRetried) {
  RejoinDespiteAFaultyTransfer("cut:1", "connection closed");
}

// A leader may send a snapshot again while the first copy is still being
// staged or installed (its append raced the install, and the follower's
// empty log rejected it). The test fault streams the first snapshot twice,
// on two connections, before either is acknowledged: the receiver must
// stage the two apart (the second must not remove the directory the first
// is installed from: in CI that stopped the node with "STAGED: no such
// file"), install one, discard the other, and rejoin.
TEST(RejoinTest, ASnapshotSentTwiceIsInstalledOnce) {
  std::vector<std::string> flags = kCompactingFlags;
  flags.push_back("--testonly_snapshot_fault=twice:0");
  LocalCluster cluster(3, flags);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient(std::chrono::seconds(10));
  for (int i = 0; i < 150; ++i) {
    ASSERT_TRUE(
        client->Put("big" + std::to_string(i), std::string(20000, 'b')).ok());
  }
  Load(*client, 500);
  const int wiped = leader == 3 ? 2 : 3;
  cluster.Kill(wiped);
  std::filesystem::remove_all(cluster.data_dir(wiped));
  cluster.Start(wiped);
  const NodeInfo info =
      WaitUntilCaughtUp(cluster, wiped, leader, std::chrono::seconds(60));
  ASSERT_TRUE(info.error.ok()) << info.error.ToString();
  EXPECT_EQ(info.rejoin, "");
  EXPECT_EQ(cluster.ExitedWith(wiped), -1) << "the wiped node stopped";
  const std::string sender = ReadFile(cluster.log_path(leader));
  ASSERT_EQ(Count(sender, "TEST FAULT: sending it again"), 1u) << sender;
  // The second stream may still be arriving when the first is installed:
  // wait (bounded) for its outcome.
  std::string receiver;
  for (int i = 0; i < 200; ++i) {
    receiver = ReadFile(cluster.log_path(wiped));
    if (Count(receiver, "not needed; discarding it") > 0) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(Count(receiver, "staged:"), 2u) << receiver;
  EXPECT_EQ(Count(receiver, "installed the snapshot at"), 1u) << receiver;
  EXPECT_EQ(Count(receiver, "not needed; discarding it"), 1u) << receiver;
  EXPECT_EQ(Count(receiver, "STORAGE FAILURE"), 0u) << receiver;
  auto value = cluster.NewClientOf(wiped)->Get("big77", ReadOptions{true});
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(value->value, std::string(20000, 'b'));
}

}  // namespace
}  // namespace raftkv
