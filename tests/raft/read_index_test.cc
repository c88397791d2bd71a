// ReadIndex tests (dissertation §6.4): the leader records its commit index,
// confirms leadership with one heartbeat round shared by all reads that
// arrived since the previous round, defers reads until it has committed an
// entry of its term, never answers without a quorum, and answers reads
// forwarded by followers.
#include <gtest/gtest.h>

#include <string>

#include "raft/raw_node.h"
#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::TestNetwork;

std::vector<Message> Heartbeats(const std::vector<Message>& msgs) {
  std::vector<Message> out;
  for (const Message& m : msgs) {
    if (m.type() == MSG_HEARTBEAT) out.push_back(m);
  }
  return out;
}

// §6.4 steps 1-4: one heartbeat round to confirm leadership, then the read
// is released at the commit index recorded when it arrived.
TEST(ReadIndexTest, LeaderConfirmsLeadershipWithOneHeartbeatRound) {
  TestNetwork net(3);
  net.Elect(1);
  net.ClearSent();
  ASSERT_TRUE(net.node(1).ReadIndex("r1").ok());
  Ready rd = net.HandleReady(1);
  EXPECT_TRUE(rd.read_states.empty());
  auto hbs = Heartbeats(rd.messages);
  ASSERT_EQ(hbs.size(), 2u);
  for (const Message& hb : hbs) EXPECT_FALSE(hb.context().empty());
  net.DeliverQueued();  // heartbeats
  EXPECT_TRUE(net.read_states(1).empty());
  net.DeliverQueued();  // their responses
  ASSERT_EQ(net.read_states(1).size(), 1u);
  EXPECT_EQ(net.read_states(1)[0].request_ctx, "r1");
  EXPECT_EQ(net.read_states(1)[0].index, 1u);
  EXPECT_EQ(net.CountSent(MSG_HEARTBEAT), 2u);
  EXPECT_EQ(net.CountSent(MSG_APP), 0u);  // reads never touch the log
}

TEST(ReadIndexTest, NoReadStateWithoutAQuorumOfAcks) {
  TestNetwork net(3);
  net.Elect(1);
  net.SetDropFilter(
      [](const Message& m) { return m.type() == MSG_HEARTBEAT_RESP; });
  ASSERT_TRUE(net.node(1).ReadIndex("r").ok());
  net.Stabilize();
  EXPECT_TRUE(net.read_states(1).empty());
  // One follower's answer makes a majority with the leader.
  net.SetDropFilter([](const Message& m) {
    return m.type() == MSG_HEARTBEAT_RESP && m.from() == 3;
  });
  net.Tick(1);  // the next heartbeat carries the same round
  net.Stabilize();
  ASSERT_EQ(net.read_states(1).size(), 1u);
}

// §6.4 batching: any number of reads between two Readys share one round.
TEST(ReadIndexTest, ReadsBetweenReadysShareOneHeartbeatRound) {
  TestNetwork net(3);
  net.Elect(1);
  net.ClearSent();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(net.node(1).ReadIndex("r" + std::to_string(i)).ok());
  }
  net.Stabilize();
  EXPECT_EQ(net.CountSent(MSG_HEARTBEAT), 2u);  // one per follower
  ASSERT_EQ(net.read_states(1).size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(net.read_states(1)[i].request_ctx, "r" + std::to_string(i));
    EXPECT_EQ(net.read_states(1)[i].index, 1u);
  }
}

// §6.4 step 1: the read index is the commit index when the request
// arrived, not the last index (uncommitted entries are not waited for).
TEST(ReadIndexTest, ReadStateIndexIsTheCommitIndex) {
  TestNetwork net(3);
  net.Elect(1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(net.node(1).Propose("w").ok());
  net.Stabilize();
  ASSERT_EQ(net.node(1).GetStatus().commit, 4u);
  ASSERT_TRUE(net.node(1).Propose("pending").ok());  // index 5, uncommitted
  ASSERT_TRUE(net.node(1).ReadIndex("r").ok());
  net.Stabilize();
  ASSERT_EQ(net.read_states(1).size(), 1u);
  EXPECT_EQ(net.read_states(1)[0].index, 4u);
  EXPECT_EQ(net.node(1).GetStatus().commit, 5u);
}

// A read must not be confirmed by a heartbeat sent before it arrived: the
// leader might have been deposed in between (§6.4 step 3).
TEST(ReadIndexTest, OlderRoundDoesNotConfirmNewerRead) {
  TestNetwork net(3);
  net.Elect(1);
  ASSERT_TRUE(net.node(1).ReadIndex("a").ok());
  net.HandleReady(1);
  std::deque<Message> round_a;
  round_a.swap(net.queue());
  ASSERT_TRUE(net.node(1).ReadIndex("b").ok());
  net.HandleReady(1);
  std::deque<Message> round_b;
  round_b.swap(net.queue());
  ASSERT_EQ(round_a.size(), 2u);
  ASSERT_EQ(round_b.size(), 2u);
  net.queue() = round_a;
  net.Stabilize();
  ASSERT_EQ(net.read_states(1).size(), 1u);
  EXPECT_EQ(net.read_states(1)[0].request_ctx, "a");
  net.queue() = round_b;
  net.Stabilize();
  ASSERT_EQ(net.read_states(1).size(), 2u);
  EXPECT_EQ(net.read_states(1)[1].request_ctx, "b");
}

// §6.4 step 1: until the leader has committed an entry of its own term its
// commit index may be stale, so reads wait; they are then served at the new
// commit index.
TEST(ReadIndexTest, NewLeaderDefersReadsUntilItCommitsInItsTerm) {
  TestNetwork net(3);
  net.SetDropFilter([](const Message& m) { return m.type() == MSG_APP_RESP; });
  net.Elect(1);
  ASSERT_EQ(net.node(1).GetStatus().commit, 0u);
  net.ClearSent();
  ASSERT_TRUE(net.node(1).ReadIndex("early").ok());
  net.Stabilize();
  EXPECT_TRUE(net.read_states(1).empty());
  for (const Message& hb : Heartbeats(net.sent())) {
    EXPECT_TRUE(hb.context().empty()) << "read round before commit";
  }
  net.SetDropFilter(nullptr);
  net.Tick(1);
  net.Stabilize();
  ASSERT_EQ(net.node(1).GetStatus().commit, 1u);
  ASSERT_EQ(net.read_states(1).size(), 1u);
  EXPECT_EQ(net.read_states(1)[0].request_ctx, "early");
  EXPECT_EQ(net.read_states(1)[0].index, 1u);
}

// A leader partitioned away (and deposed by a new leader elsewhere) never
// returns a read state: it can gather no quorum of heartbeat acks, and
// after healing it learns the new term and drops its reads.
TEST(ReadIndexTest, PartitionedLeaderNeverReturnsReadStates) {
  TestNetwork net(3);
  net.Elect(1);
  net.Isolate(1);
  ASSERT_TRUE(net.node(1).ReadIndex("stale").ok());
  net.Stabilize();
  // Nodes 2 and 3 elect a new leader; node 1 is not ticked, so it still
  // believes it leads.
  for (int i = 0; i < 40 && net.Leader() != 2 && net.Leader() != 3; ++i) {
    net.Tick(2);
    net.Tick(3);
    net.Stabilize();
  }
  const uint64_t leader = net.Leader();
  ASSERT_TRUE(leader == 2 || leader == 3);
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  ASSERT_TRUE(net.node(leader).Propose("new").ok());
  net.Stabilize();
  net.Tick(1);
  net.Stabilize();
  EXPECT_TRUE(net.read_states(1).empty());
  net.Heal();
  for (int i = 0; i < 3; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_TRUE(net.read_states(1).empty());
}

TEST(ReadIndexTest, LeaderInMinorityNeverReturnsReadStates) {
  TestNetwork net(5);
  net.Elect(1);
  for (uint64_t a : {1, 2}) {
    for (uint64_t b : {3, 4, 5}) net.Cut(a, b);
  }
  ASSERT_TRUE(net.node(1).ReadIndex("minority").ok());
  ASSERT_TRUE(net.node(2).ReadIndex("forwarded").ok());
  for (int i = 0; i < 40; ++i) net.TickAllAndStabilize();
  EXPECT_TRUE(net.read_states(1).empty());
  EXPECT_TRUE(net.read_states(2).empty());
  EXPECT_GT(net.CountSent(MSG_HEARTBEAT_RESP, 2, 1), 0u);  // 2 did answer
}

// §6.4: a follower forwards ReadIndex to the leader, which confirms its
// leadership and returns the index; the follower serves the read once it
// has applied that index.
TEST(ReadIndexTest, FollowerReadIndexIsForwardedAndAnswered) {
  TestNetwork net(3);
  net.Elect(1);
  ASSERT_TRUE(net.node(1).Propose("w").ok());
  net.Stabilize();
  net.ClearSent();
  ASSERT_TRUE(net.node(2).ReadIndex("f").ok());
  net.Stabilize();
  EXPECT_EQ(net.CountSent(MSG_READ_INDEX, 2, 1), 1u);
  EXPECT_EQ(net.CountSent(MSG_READ_INDEX_RESP, 1, 2), 1u);
  ASSERT_EQ(net.read_states(2).size(), 1u);
  EXPECT_EQ(net.read_states(2)[0].request_ctx, "f");
  EXPECT_EQ(net.read_states(2)[0].index, 2u);
  EXPECT_GE(net.applied_index(2), 2u);
  EXPECT_TRUE(net.read_states(1).empty());  // the leader keeps none
}

TEST(ReadIndexTest, FollowerWithoutLeaderReturnsNotLeader) {
  TestNetwork net(3);
  Status s = net.node(2).ReadIndex("x");
  EXPECT_TRUE(s.IsNotLeader()) << s.ToString();
}

TEST(ReadIndexTest, SingleNodeAnswersAtOnce) {
  TestNetwork net(1);
  net.Elect(1);
  net.ClearSent();
  ASSERT_TRUE(net.node(1).ReadIndex("solo").ok());
  Ready rd = net.HandleReady(1);
  ASSERT_EQ(rd.read_states.size(), 1u);
  EXPECT_EQ(rd.read_states[0].index, 1u);
  EXPECT_TRUE(rd.messages.empty());
}

}  // namespace
}  // namespace raftkv::raft
