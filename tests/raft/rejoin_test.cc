// Rejoining after a lost disk (raft/rejoin.h): the start-up poll's tally,
// a blank cluster bootstrapping through the poll, and a wiped node that
// rejoins without voting or counting in a quorum until it has caught up.
#include "raft/rejoin.h"

#include <gtest/gtest.h>

#include "raft/raw_node.h"
#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::TestNetwork;

using Outcome = StartupPoll::Outcome;

// --- The poll's tally
// ---------------------------------------------------------

TEST(StartupPollTest, QuorumMeetsEveryMajorityOutsideThePoller) {
  EXPECT_EQ(RejoinPollQuorum(1), 1u);
  EXPECT_EQ(RejoinPollQuorum(2), 1u);
  EXPECT_EQ(RejoinPollQuorum(3), 2u);
  EXPECT_EQ(RejoinPollQuorum(4), 2u);
  EXPECT_EQ(RejoinPollQuorum(5), 3u);
  EXPECT_EQ(RejoinPollQuorum(7), 4u);
}

TEST(StartupPollTest, ASingleNodeClusterIsNewAtOnce) {
  StartupPoll poll({1}, 1, "n");
  EXPECT_EQ(poll.outcome(), Outcome::kNewCluster);
}

TEST(StartupPollTest, BlankPeersMakingAMajorityMeanANewCluster) {
  StartupPoll poll({1, 2, 3}, 1, "n");
  EXPECT_EQ(poll.outcome(), Outcome::kPending);
  EXPECT_EQ(poll.Record(2, 0, 0, false), Outcome::kNewCluster);
}

TEST(StartupPollTest, APeerWithStateRulesOutANewCluster) {
  StartupPoll poll({1, 2, 3, 4, 5}, 1, "n");
  EXPECT_EQ(poll.Record(2, 7, 40, false), Outcome::kPending);
  // Two blank peers and this node would be a majority, but node 2 has state.
  EXPECT_EQ(poll.Record(3, 0, 0, false), Outcome::kPending);
  EXPECT_EQ(poll.Record(4, 0, 0, false), Outcome::kPending);
  EXPECT_EQ(poll.Record(5, 9, 41, false), Outcome::kPending);
  // A third peer with state completes the rejoin quorum of 3.
  EXPECT_EQ(poll.Record(3, 8, 42, false), Outcome::kRejoin);
  EXPECT_EQ(poll.max_term(), 9u);
}

TEST(StartupPollTest, RejoiningPeersDoNotCountForTheRejoinQuorum) {
  StartupPoll poll({1, 2, 3}, 1, "n");
  EXPECT_EQ(poll.Record(2, 5, 10, /*rejoining=*/true), Outcome::kPending);
  EXPECT_EQ(poll.Record(3, 5, 10, false), Outcome::kPending);
  EXPECT_EQ(poll.PeersToAsk(), std::vector<uint64_t>{2});
  EXPECT_EQ(poll.Record(2, 6, 11, false), Outcome::kRejoin);
  EXPECT_EQ(poll.max_term(), 6u);
}

TEST(StartupPollTest, ALaterAnswerReplacesAnEarlierOne) {
  // Node 2 answered blank, then joined a cluster with node 3: the poller
  // must not stay stuck on the blank answer.
  StartupPoll poll({1, 2, 3}, 1, "n");
  EXPECT_EQ(poll.Record(3, 1, 1, false), Outcome::kPending);
  EXPECT_EQ(poll.Record(2, 0, 0, false), Outcome::kPending);
  EXPECT_EQ(poll.PeersToAsk(), std::vector<uint64_t>{2});
  EXPECT_EQ(poll.Record(2, 1, 1, false), Outcome::kRejoin);
}

TEST(StartupPollTest, OnceDecidedTheOutcomeStays) {
  StartupPoll poll({1, 2, 3}, 1, "n");
  EXPECT_EQ(poll.Record(2, 0, 0, false), Outcome::kNewCluster);
  EXPECT_EQ(poll.Record(3, 4, 9, false), Outcome::kNewCluster);
}

TEST(StartupPollTest, RejoinRecordsNameNodeAndIncarnation) {
  Entry e = MakeRejoinEntry(3, 77);
  EXPECT_EQ(e.type(), ENTRY_REJOIN);
  EXPECT_TRUE(IsRejoinEntryFor(e, 3, 77));
  EXPECT_FALSE(IsRejoinEntryFor(e, 3, 78));
  EXPECT_FALSE(IsRejoinEntryFor(e, 2, 77));
  e.set_type(ENTRY_NORMAL);
  EXPECT_FALSE(IsRejoinEntryFor(e, 3, 77));
}

// --- Nodes -----------------------------------------------------------------

auto kPolling = [](Config* c) { c->blank_storage_is_new_cluster = false; };

TEST(RejoinTest, ABlankClusterBootstrapsThroughThePoll) {
  TestNetwork net(3, kPolling);
  for (uint64_t id : net.ids()) {
    EXPECT_EQ(net.node(id).GetStatus().rejoin, "polling") << id;
  }
  // Polling nodes take no part: a campaign is refused.
  net.node(1).Campaign();
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  net.Stabilize();  // the polls and their answers
  for (uint64_t id : net.ids()) {
    EXPECT_EQ(net.node(id).GetStatus().rejoin, "") << id;
    EXPECT_TRUE(net.storage(id).hard_state().initialized()) << id;
  }
  net.Elect(1);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
  EXPECT_EQ(net.applied_index(3), 2u);
}

// Delivers messages one batch at a time until node `id` finished its poll
// and is rejoining (before its rejoin record can commit).
void RunUntilRejoining(TestNetwork& net, uint64_t id) {
  for (int i = 0; i < 200; ++i) {
    if (net.node(id).GetStatus().rejoin == "rejoining") return;
    net.HandleAllReadys();
    if (net.DeliverQueued() == 0) {
      for (uint64_t peer : net.ids()) net.Tick(peer);
    }
  }
  FAIL() << "node " << id << " never started rejoining";
}

// Elects node 1 and commits `count` proposals everywhere.
void ElectAndCommit(TestNetwork& net, int count) {
  net.Elect(1);
  for (int i = 0; i < count; ++i) {
    ASSERT_TRUE(net.node(1).Propose("v" + std::to_string(i)).ok());
  }
  net.Stabilize();
}

TEST(RejoinTest, AWipedFollowerRejoinsWithoutDisturbingTheLeader) {
  TestNetwork net(3);
  ElectAndCommit(net, 5);
  const uint64_t term = net.node(1).term();
  const uint64_t last = net.node(1).GetStatus().last_index;
  net.WipeDisk(3);
  EXPECT_EQ(net.node(3).GetStatus().rejoin, "polling");
  // The leader still believes node 3 holds everything: its heartbeat names
  // a commit index far beyond node 3's empty log, which must not crash it.
  net.TickAllAndStabilize(3);
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_EQ(net.node(1).term(), term);
  EXPECT_EQ(net.node(3).GetStatus().rejoin, "");
  EXPECT_EQ(net.storage(3).hard_state().incarnation() != 0, true);
  EXPECT_FALSE(net.storage(3).hard_state().rejoining());
  // It caught up: the rejoin record came after the old entries.
  EXPECT_GT(net.node(3).GetStatus().commit, last);
  EXPECT_EQ(net.applied_index(3), net.applied_index(1));
  EXPECT_FALSE(net.node(1).GetStatus().progress.at(3).rejoining);
}

// Entry "x" commits on nodes 1 and 3 only; node 3 then loses its disk
// while node 1 is away. Node 2 lacks "x": if node 3 voted for it, "x" would
// be lost.
void CommitOnOneAndThree(TestNetwork& net) {
  net.Elect(1);
  net.Isolate(2);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
  ASSERT_EQ(net.node(1).GetStatus().commit, net.node(3).GetStatus().last_index);
  net.Heal();
}

// Node 2 campaigns again and again; it must never win.
void ExpectNodeTwoNeverWins(TestNetwork& net) {
  for (int i = 0; i < 5; ++i) {
    net.node(2).Campaign();
    net.Stabilize();
    EXPECT_NE(net.node(2).role(), Role::kLeader) << "node 2 lacks entry x";
    net.TickAllAndStabilize(25);
  }
}

// Node 1 returns and leads; node 3 rejoins and "x" is everywhere.
void ExpectXSurvives(TestNetwork& net, uint64_t x_index) {
  net.Heal();
  for (int i = 0; i < 100; ++i) {
    if (net.Leader() == 1 && net.node(3).GetStatus().rejoin.empty() &&
        net.applied_index(2) >= x_index) {
      break;
    }
    if (net.Leader() != 1) net.node(1).Campaign();
    net.TickAllAndStabilize(3);
  }
  ASSERT_EQ(net.Leader(), 1u);
  EXPECT_EQ(net.node(3).GetStatus().rejoin, "");
  ASSERT_TRUE(net.committed().count(x_index) > 0);
  EXPECT_EQ(net.committed().at(x_index).data(), "x");
  EXPECT_GE(net.applied_index(2), x_index);
}

TEST(RejoinTest, AWipedNodeThatCannotPollTakesNoPart) {
  TestNetwork net(3);
  CommitOnOneAndThree(net);
  const uint64_t x_index = net.node(1).GetStatus().commit;
  net.Isolate(1);
  net.WipeDisk(3);
  net.ClearSent();
  // Only node 2 answers; a three-node cluster needs both peers' answers.
  ExpectNodeTwoNeverWins(net);
  EXPECT_EQ(net.node(3).GetStatus().rejoin, "polling");
  EXPECT_EQ(net.CountSent(MSG_VOTE_RESP, 3), 0u);
  ExpectXSurvives(net, x_index);
}

TEST(RejoinTest, ARejoiningNodeRefusesToVote) {
  // Without leader stickiness, so that node 3 answers node 2 at all.
  TestNetwork net(3, [](Config* c) {
    c->pre_vote = false;
    c->check_quorum = false;
  });
  CommitOnOneAndThree(net);
  const uint64_t x_index = net.node(1).GetStatus().commit;
  net.WipeDisk(3);
  RunUntilRejoining(net, 3);
  net.Isolate(1);  // before node 3 caught up
  net.ClearQueue();
  net.ClearSent();
  ExpectNodeTwoNeverWins(net);
  EXPECT_EQ(net.node(3).GetStatus().rejoin, "rejoining");
  EXPECT_GT(net.CountSent(MSG_VOTE_RESP, 3, 2), 0u);
  EXPECT_EQ(net.storage(3).hard_state().vote(), 0u);
  ExpectXSurvives(net, x_index);
}

TEST(RejoinTest, ARejoiningNodeDoesNotCountTowardsACommit) {
  TestNetwork net(3);
  ElectAndCommit(net, 2);
  net.WipeDisk(3);
  RunUntilRejoining(net, 3);
  net.Isolate(2);
  net.TickAllAndStabilize(3);
  ASSERT_EQ(net.node(3).GetStatus().rejoin, "rejoining");
  const uint64_t commit = net.node(1).GetStatus().commit;
  ASSERT_TRUE(net.node(1).Propose("y").ok());
  net.TickAllAndStabilize(3);
  // Node 3 holds "y" but only node 1's copy counts: not committed.
  EXPECT_EQ(net.node(3).GetStatus().last_index,
            net.node(1).GetStatus().last_index);
  EXPECT_EQ(net.node(1).GetStatus().commit, commit);
  EXPECT_TRUE(net.node(1).GetStatus().progress.at(3).rejoining);
  // Leadership cannot go to it either.
  EXPECT_FALSE(net.node(1).TransferLeader(3).ok());
  net.Heal();
  net.TickAllAndStabilize(3);
  EXPECT_GT(net.node(1).GetStatus().commit, commit);
  EXPECT_EQ(net.node(3).GetStatus().rejoin, "");
}

TEST(RejoinTest, ANewLeaderCountsANodeThatRejoinedEarlierAtOnce) {
  TestNetwork net(3);
  ElectAndCommit(net, 2);
  net.WipeDisk(3);
  net.TickAllAndStabilize(3);
  ASSERT_EQ(net.node(3).GetStatus().rejoin, "");
  // Node 2 takes over. Node 3 answers it as an incarnation that has
  // rejoined: it is tracked as is, with no record of the new term and no
  // time out of the quorum, so with node 1 away node 2 commits with it.
  ASSERT_TRUE(net.node(1).TransferLeader(2).ok());
  net.Stabilize();
  ASSERT_EQ(net.Leader(), 2u);
  const uint64_t term = net.node(2).term();
  std::vector<Entry> entries;
  MemoryStorage& log = net.storage(2);
  ASSERT_TRUE(
      log.Entries(log.FirstIndex(), log.LastIndex() + 1, UINT64_MAX, &entries)
          .ok());
  size_t records = 0;
  for (const Entry& e : entries) {
    records += e.type() == ENTRY_REJOIN && e.term() == term;
  }
  EXPECT_EQ(records, 0u);
  EXPECT_FALSE(net.node(2).GetStatus().progress.at(3).rejoining);
  net.Isolate(1);
  ASSERT_TRUE(net.node(2).Propose("z").ok());
  net.TickAllAndStabilize(3);
  const NodeStatus st = net.node(2).GetStatus();
  EXPECT_FALSE(st.progress.at(3).rejoining);
  EXPECT_EQ(st.commit, st.last_index);
  EXPECT_EQ(net.committed().rbegin()->second.data(), "z");
}

TEST(RejoinTest, IncarnationAndRejoiningSurviveARestart) {
  TestNetwork net(3);
  ElectAndCommit(net, 2);
  net.WipeDisk(3);
  RunUntilRejoining(net, 3);
  net.Isolate(2);  // no commit without node 2: node 3 stays rejoining
  net.TickAllAndStabilize(3);
  ASSERT_EQ(net.node(3).GetStatus().rejoin, "rejoining");
  const uint64_t incarnation = net.storage(3).hard_state().incarnation();
  EXPECT_NE(incarnation, 0u);
  EXPECT_TRUE(net.storage(3).hard_state().rejoining());
  net.Restart(3, net.applied_index(3));
  EXPECT_EQ(net.node(3).GetStatus().rejoin, "rejoining");
  net.Heal();
  net.TickAllAndStabilize(3);
  EXPECT_EQ(net.node(3).GetStatus().rejoin, "");
  EXPECT_EQ(net.storage(3).hard_state().incarnation(), incarnation);
  EXPECT_FALSE(net.storage(3).hard_state().rejoining());
}

}  // namespace
}  // namespace raftkv::raft
