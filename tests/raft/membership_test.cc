// Membership change tests (dissertation §4.1-§4.2; raft/raft_membership.cc):
// learners receive the log but never campaign or count; a learner is
// promoted only once it caught up; one change at a time, and only after the
// leader committed an entry of its term; a change takes effect on each node
// when appended and is undone when truncated; removed followers and a
// removed leader cannot disrupt the cluster, and a removed leader hands over
// at once; restarts rebuild the configuration from storage; a node joining
// a running cluster starts from the leader's snapshot.
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "raft/conf_change.h"
#include "raft/raw_node.h"
#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::Msg;
using rafttest::TestNetwork;
using Ids = std::set<uint64_t>;

ConfChange Change(ConfChangeType type, uint64_t node) {
  ConfChange change;
  change.set_type(type);
  change.set_node(node);
  return change;
}

// Node `id`'s configuration as a ConfState.
ConfState ConfOf(TestNetwork& net, uint64_t id) {
  const NodeStatus st = net.node(id).GetStatus();
  ConfState conf;
  for (uint64_t v : st.voters) conf.add_voters(v);
  for (uint64_t l : st.learners) conf.add_learners(l);
  return conf;
}

// Node `id` snapshots what it applied, with the configuration in effect,
// and compacts its log up to there, as an application would.
void SnapshotAndCompact(TestNetwork& net, uint64_t id) {
  const uint64_t index = net.applied_index(id);
  ASSERT_LE(net.node(id).GetStatus().last_conf_index, index)
      << "a change after the snapshot's index is in effect";
  ASSERT_TRUE(
      net.storage(id).CreateSnapshot(index, ConfOf(net, id), "image").ok());
  ASSERT_TRUE(net.storage(id).Compact(index).ok());
}

// Nodes 1-3 led by 1, with two entries committed, and a snapshot on the
// leader (a joining node starts from one).
void StartThreeNodes(TestNetwork& net) {
  net.Elect(1);
  ASSERT_TRUE(net.node(1).Propose("a").ok());
  ASSERT_TRUE(net.node(1).Propose("b").ok());
  net.Stabilize();
  ASSERT_EQ(net.node(1).commit(), 3u);
  SnapshotAndCompact(net, 1);
}

// Proposes `change` on `leader` and delivers until the network is quiet;
// returns the change's index.
uint64_t ProposeAndStabilize(TestNetwork& net, uint64_t leader,
                             const ConfChange& change) {
  auto index = net.node(leader).ProposeConfChange(change);
  EXPECT_TRUE(index.ok()) << DescribeConfChange(change) << ": "
                          << index.status().ToString();
  net.Stabilize();
  return index.ok() ? index.value() : 0;
}

// Node `id` joins the cluster StartThreeNodes made, as a learner.
void AddLearner(TestNetwork& net, uint64_t id) {
  net.AddNode(id);
  const uint64_t index =
      ProposeAndStabilize(net, 1, Change(CONF_ADD_LEARNER, id));
  ASSERT_GE(net.node(1).commit(), index);
  ASSERT_EQ(net.node(id).GetStatus().learners.count(id), 1u);
}

void AddLearner4(TestNetwork& net) { AddLearner(net, 4); }

size_t CountCampaignMessages(const TestNetwork& net, uint64_t from) {
  return net.CountSent(MSG_PRE_VOTE, from) + net.CountSent(MSG_VOTE, from);
}

size_t CountSentBetween(const TestNetwork& net, uint64_t from, uint64_t to) {
  size_t n = 0;
  for (const Message& m : net.sent()) n += m.from() == from && m.to() == to;
  return n;
}

// --- Learners --------------------------------------------------------------

TEST(MembershipTest, ALearnerStartsFromTheLeadersSnapshotAndReceivesTheLog) {
  TestNetwork net(3);
  StartThreeNodes(net);
  net.ClearSent();
  AddLearner4(net);
  // The snapshot (index 3) brought the voters; the log after it the change.
  EXPECT_EQ(net.CountSent(MSG_SNAP, 1, 4), 1u);
  Snapshot snap;
  ASSERT_TRUE(net.storage(4).GetSnapshot(&snap).ok());
  EXPECT_EQ(snap.metadata().index(), 3u);
  EXPECT_EQ(Voters(snap.metadata().conf_state()), (Ids{1, 2, 3}));
  const NodeStatus st = net.node(4).GetStatus();
  EXPECT_EQ(st.voters, (Ids{1, 2, 3}));
  EXPECT_EQ(st.learners, Ids{4});
  EXPECT_EQ(st.lead, 1u);
  EXPECT_EQ(st.last_index, net.node(1).GetStatus().last_index);
  EXPECT_EQ(net.applied_index(4), net.node(1).commit());
  // The application was told the configuration.
  ASSERT_FALSE(net.conf_states(4).empty());
  EXPECT_TRUE(SameConfState(net.conf_states(4).back(), ConfOf(net, 1)));

  // New entries stream to the learner, which applies them.
  auto index = net.node(1).Propose("c");
  ASSERT_TRUE(index.ok());
  net.Stabilize();
  ASSERT_EQ(net.applied(4).count(*index), 1u);
  EXPECT_EQ(net.applied(4).at(*index).data(), "c");
  EXPECT_EQ(net.node(1).GetStatus().progress.at(4).match, *index);
}

TEST(MembershipTest, ASnapshotTakenAfterTheAddCarriesTheLearner) {
  TestNetwork net(3);
  StartThreeNodes(net);
  net.AddNode(4);
  net.Isolate(4);
  const uint64_t index =
      ProposeAndStabilize(net, 1, Change(CONF_ADD_LEARNER, 4));
  ASSERT_TRUE(net.node(1).Propose("c").ok());
  net.Stabilize();
  ASSERT_GT(net.applied_index(1), index);
  // The leader's log no longer holds the change itself.
  SnapshotAndCompact(net, 1);
  ASSERT_GT(net.storage(1).FirstIndex(), index);
  net.Heal();
  net.Tick(1);  // a heartbeat finds the learner
  net.Stabilize();
  Snapshot snap;
  ASSERT_TRUE(net.storage(4).GetSnapshot(&snap).ok());
  EXPECT_EQ(Voters(snap.metadata().conf_state()), (Ids{1, 2, 3}));
  EXPECT_EQ(Learners(snap.metadata().conf_state()), Ids{4});
  EXPECT_EQ(net.node(4).GetStatus().voters, (Ids{1, 2, 3}));
  EXPECT_EQ(net.node(4).GetStatus().learners, Ids{4});
  EXPECT_EQ(net.applied_index(4), net.node(1).commit());
}

TEST(MembershipTest, ALearnerNeverCampaignsEvenWithoutALeader) {
  TestNetwork net(3);
  StartThreeNodes(net);
  AddLearner4(net);
  const uint64_t term = net.node(4).term();
  net.Isolate(4);
  net.ClearSent();
  // Far beyond any randomized election timeout ([10, 20) ticks).
  for (int i = 0; i < 100; ++i) {
    net.Tick(4);
    net.HandleAllReadys();
  }
  net.node(4).Campaign();  // not even when asked
  net.HandleAllReadys();
  EXPECT_EQ(CountCampaignMessages(net, 4), 0u);
  EXPECT_EQ(net.node(4).role(), Role::kFollower);
  EXPECT_EQ(net.node(4).term(), term);
}

TEST(MembershipTest, LearnersDoNotCountTowardsCommit) {
  TestNetwork net(3);
  StartThreeNodes(net);
  AddLearner(net, 4);
  AddLearner(net, 5);
  net.Cut(1, 2);
  net.Cut(1, 3);
  auto index = net.node(1).Propose("x");
  ASSERT_TRUE(index.ok());
  net.Stabilize();
  // The leader and both learners hold it: three of five members, but one
  // of three voters.
  for (uint64_t learner : {4, 5}) {
    uint64_t term = 0;
    ASSERT_TRUE(net.storage(learner).Term(*index, &term).ok()) << learner;
    EXPECT_EQ(net.node(1).GetStatus().progress.at(learner).match, *index);
    EXPECT_LT(net.node(learner).commit(), *index);
  }
  EXPECT_LT(net.node(1).commit(), *index);
  // One voter more commits it.
  net.Heal();
  net.Cut(1, 3);
  net.Tick(1);
  net.Stabilize();
  EXPECT_GE(net.node(1).commit(), *index);
  EXPECT_EQ(net.applied(4).count(*index), 1u);
}

TEST(MembershipTest, RemovingALearnerStopsItsReplication) {
  TestNetwork net(3);
  StartThreeNodes(net);
  AddLearner4(net);
  ProposeAndStabilize(net, 1, Change(CONF_REMOVE_NODE, 4));
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(net.node(id).GetStatus().voters, (Ids{1, 2, 3})) << id;
    EXPECT_TRUE(net.node(id).GetStatus().learners.empty()) << id;
  }
  EXPECT_EQ(net.node(1).GetStatus().progress.count(4), 0u);
  net.ClearSent();
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  net.Tick(1, 3);
  net.Stabilize();
  EXPECT_EQ(CountSentBetween(net, 1, 4), 0u);
}

// --- Promotion -------------------------------------------------------------

TEST(MembershipTest, PromotingALearnerThatIsStillProbedIsRefused) {
  TestNetwork net(3);
  StartThreeNodes(net);
  net.AddNode(4);
  net.Isolate(4);
  ProposeAndStabilize(net, 1, Change(CONF_ADD_LEARNER, 4));
  ASSERT_EQ(net.node(1).GetStatus().progress.at(4).state, "probe");
  const uint64_t last = net.node(1).GetStatus().last_index;
  auto refused = net.node(1).ProposeConfChange(Change(CONF_PROMOTE_LEARNER, 4));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("has not caught up"),
            std::string::npos)
      << refused.status().ToString();
  EXPECT_EQ(net.node(1).GetStatus().last_index, last);  // nothing appended

  net.Heal();
  net.Tick(1);
  net.Stabilize();
  ASSERT_EQ(net.node(1).GetStatus().progress.at(4).state, "replicate");
  const uint64_t index =
      ProposeAndStabilize(net, 1, Change(CONF_PROMOTE_LEARNER, 4));
  EXPECT_GE(net.node(1).commit(), index);
  for (uint64_t id : {1, 2, 3, 4}) {
    EXPECT_EQ(net.node(id).GetStatus().voters, (Ids{1, 2, 3, 4})) << id;
    EXPECT_TRUE(net.node(id).GetStatus().learners.empty()) << id;
  }
}

TEST(MembershipTest, PromotingALearnerThatLagsTooFarIsRefused) {
  TestNetwork net(3, [](Config* c) { c->max_learner_lag = 2; });
  StartThreeNodes(net);
  AddLearner4(net);
  net.SetDropFilter(
      [](const Message& m) { return m.type() == MSG_APP && m.to() == 4; });
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
  const NodeStatus st = net.node(1).GetStatus();
  // Streaming, but 3 entries behind the commit index.
  ASSERT_EQ(st.progress.at(4).state, "replicate");
  ASSERT_EQ(st.progress.at(4).match + 3, st.commit);
  auto refused = net.node(1).ProposeConfChange(Change(CONF_PROMOTE_LEARNER, 4));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);

  net.Heal();
  net.Tick(1);
  net.Stabilize();
  ASSERT_EQ(net.node(1).GetStatus().progress.at(4).match, net.node(1).commit());
  EXPECT_TRUE(
      net.node(1).ProposeConfChange(Change(CONF_PROMOTE_LEARNER, 4)).ok());
}

TEST(MembershipTest, APromotedLearnerMakesTheMajorityThreeOfFour) {
  TestNetwork net(3);
  StartThreeNodes(net);
  AddLearner4(net);
  ProposeAndStabilize(net, 1, Change(CONF_PROMOTE_LEARNER, 4));
  ASSERT_EQ(net.node(4).GetStatus().voters, (Ids{1, 2, 3, 4}));
  // Leader and node 4 only: two of four.
  net.Cut(1, 2);
  net.Cut(1, 3);
  auto index = net.node(1).Propose("x");
  ASSERT_TRUE(index.ok());
  net.Stabilize();
  ASSERT_EQ(net.node(1).GetStatus().progress.at(4).match, *index);
  EXPECT_LT(net.node(1).commit(), *index);
  // Node 2 as well: three of four.
  net.Heal();
  net.Cut(1, 3);
  net.Tick(1);
  net.Stabilize();
  EXPECT_GE(net.node(1).commit(), *index);
  EXPECT_LT(net.storage(3).LastIndex(), *index);
}

// --- The leader's rule -------------------------------------------------------

TEST(MembershipTest, ASecondChangeWaitsUntilTheFirstIsCommitted) {
  TestNetwork net(3);
  net.Elect(1);
  net.Cut(1, 2);
  net.Cut(1, 3);
  auto first = net.node(1).ProposeConfChange(Change(CONF_ADD_LEARNER, 4));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  net.Stabilize();
  ASSERT_LT(net.node(1).commit(), *first);
  EXPECT_EQ(net.node(1).GetStatus().last_conf_index, *first);
  auto second = net.node(1).ProposeConfChange(Change(CONF_ADD_LEARNER, 5));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kProposalDropped);
  EXPECT_EQ(net.node(1).GetStatus().last_index, *first);
  // Ordinary proposals are not held back.
  EXPECT_TRUE(net.node(1).Propose("x").ok());

  net.Heal();
  net.Tick(1);
  net.Stabilize();
  ASSERT_GE(net.node(1).commit(), *first);
  EXPECT_TRUE(net.node(1).ProposeConfChange(Change(CONF_ADD_LEARNER, 5)).ok());
  EXPECT_EQ(net.node(1).GetStatus().learners, (Ids{4, 5}));
}

TEST(MembershipTest, WithoutTheRuleASecondUncommittedChangeIsAccepted) {
  // Shows that the rule above is what refuses (the simulator's mutant).
  TestNetwork net(3, [](Config* c) { c->disable_conf_change_rule = true; });
  net.Elect(1);
  net.Cut(1, 2);
  net.Cut(1, 3);
  ASSERT_TRUE(net.node(1).ProposeConfChange(Change(CONF_ADD_LEARNER, 4)).ok());
  EXPECT_TRUE(net.node(1).ProposeConfChange(Change(CONF_ADD_LEARNER, 5)).ok());
}

TEST(MembershipTest, ANewLeaderChangesNothingBeforeItCommitsAnEntryOfItsTerm) {
  TestNetwork net(3);
  net.Elect(1);
  // Node 2 wins an election, but its no-op reaches no one.
  net.SetDropFilter(
      [](const Message& m) { return m.type() == MSG_APP && m.from() == 2; });
  net.node(3).ForgetLeader();
  net.node(2).Campaign();
  net.Stabilize();
  ASSERT_EQ(net.node(2).role(), Role::kLeader);
  ASSERT_EQ(net.node(2).term(), 2u);
  auto refused = net.node(2).ProposeConfChange(Change(CONF_ADD_LEARNER, 4));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Status::Code::kProposalDropped);
  EXPECT_NE(refused.status().message().find("not committed an entry"),
            std::string::npos)
      << refused.status().ToString();

  net.Heal();
  net.Tick(2);
  net.Stabilize();
  ASSERT_EQ(net.storage(2).hard_state().commit(), net.node(2).commit());
  EXPECT_TRUE(net.node(2).ProposeConfChange(Change(CONF_ADD_LEARNER, 4)).ok());
}

TEST(MembershipTest, AFollowerCannotProposeAChangeAndNonsenseIsRefused) {
  TestNetwork net(3);
  net.Elect(1);
  auto follower = net.node(2).ProposeConfChange(Change(CONF_ADD_LEARNER, 4));
  ASSERT_FALSE(follower.ok());
  EXPECT_EQ(follower.status().code(), Status::Code::kNotLeader);
  const uint64_t last = net.node(1).GetStatus().last_index;
  for (const ConfChange& c :
       {Change(CONF_ADD_LEARNER, 2), Change(CONF_PROMOTE_LEARNER, 3),
        Change(CONF_REMOVE_NODE, 9), Change(CONF_ADD_LEARNER, 0)}) {
    auto refused = net.node(1).ProposeConfChange(c);
    ASSERT_FALSE(refused.ok()) << DescribeConfChange(c);
    EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument);
  }
  EXPECT_EQ(net.node(1).GetStatus().last_index, last);
}

// --- In effect once appended
// ---------------------------------------------------

// Dissertation §4.1: a server uses the latest configuration in its log,
// committed or not, and goes back to the previous one if a new leader
// overwrites the entry.
TEST(MembershipTest, AChangeTakesEffectWhenAppendedAndIsUndoneWhenTruncated) {
  TestNetwork net(5);
  net.Elect(1);
  // Only node 2 receives the leader's next entries.
  net.SetDropFilter([](const Message& m) {
    return m.type() == MSG_APP && m.from() == 1 && m.to() != 2;
  });
  auto index = net.node(1).ProposeConfChange(Change(CONF_REMOVE_NODE, 5));
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(net.node(1).GetStatus().voters, (Ids{1, 2, 3, 4}));  // at once
  net.set_defer_readys(true);
  net.HandleReady(1);
  net.DeliverQueued();
  Ready rd = net.HandleReady(2);
  net.set_defer_readys(false);
  ASSERT_TRUE(rd.conf_state.has_value());
  EXPECT_EQ(Voters(*rd.conf_state), (Ids{1, 2, 3, 4}));
  NodeStatus st = net.node(2).GetStatus();
  EXPECT_LT(st.commit, *index);
  EXPECT_EQ(st.voters, (Ids{1, 2, 3, 4}));
  EXPECT_EQ(st.last_conf_index, *index);

  // Node 3 leads without the change; its no-op replaces it on node 2.
  net.Isolate(1);
  net.ClearQueue();
  for (uint64_t id : {3, 4, 5}) net.node(id).ForgetLeader();
  net.node(3).Campaign();
  net.Stabilize();
  ASSERT_EQ(net.node(3).role(), Role::kLeader);
  uint64_t term = 0;
  ASSERT_TRUE(net.storage(2).Term(*index, &term).ok());
  ASSERT_EQ(term, net.node(3).term());
  st = net.node(2).GetStatus();
  EXPECT_EQ(st.voters, (Ids{1, 2, 3, 4, 5}));
  EXPECT_EQ(st.last_conf_index, 0u);
  ASSERT_FALSE(net.conf_states(2).empty());
  EXPECT_EQ(Voters(net.conf_states(2).back()), (Ids{1, 2, 3, 4, 5}));
  // The old leader's entry is overwritten on the old leader too.
  net.Heal();
  net.Tick(3);
  net.Stabilize();
  EXPECT_EQ(net.node(1).GetStatus().voters, (Ids{1, 2, 3, 4, 5}));
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
}

// --- Removing followers
// ---------------------------------------------------------

TEST(MembershipTest, TheLeaderStopsSendingToARemovedFollower) {
  TestNetwork net(3);
  net.Elect(1);
  const uint64_t index =
      ProposeAndStabilize(net, 1, Change(CONF_REMOVE_NODE, 3));
  ASSERT_GE(net.node(1).commit(), index);
  EXPECT_EQ(net.node(1).GetStatus().voters, (Ids{1, 2}));
  EXPECT_EQ(net.node(2).GetStatus().voters, (Ids{1, 2}));
  EXPECT_EQ(net.node(1).GetStatus().progress.count(3), 0u);
  net.ClearSent();
  auto x = net.node(1).Propose("x");
  ASSERT_TRUE(x.ok());
  for (int i = 0; i < 5; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(CountSentBetween(net, 1, 3), 0u);
  EXPECT_GE(net.node(1).commit(), *x);  // nodes 1 and 2 suffice
}

TEST(MembershipTest, ARemovedFollowerCannotDisruptWithPreVoteAndCheckQuorum) {
  TestNetwork net(3);
  net.Elect(1);
  ProposeAndStabilize(net, 1, Change(CONF_REMOVE_NODE, 3));
  net.AllowRejectedFrom(3);
  // Node 3 never learns of its removal: it still believes it is a voter.
  ASSERT_EQ(net.node(3).GetStatus().voters, (Ids{1, 2, 3}));
  net.TickAllAndStabilize(100);
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_EQ(net.node(1).term(), 1u);
  EXPECT_EQ(net.node(2).term(), 1u);
  EXPECT_EQ(net.node(2).lead(), 1u);
  EXPECT_NE(net.node(3).role(), Role::kLeader);
  EXPECT_GT(net.CountSent(MSG_PRE_VOTE, 3), 0u);  // it did try
  EXPECT_EQ(net.CountSent(MSG_VOTE, 3), 0u);      // and never got further
}

// Without pre-vote its elections raise its own term, but the others,
// hearing from their leader, ignore its vote requests (leader stickiness,
// dissertation §4.2.3).
TEST(MembershipTest, ARemovedFollowerCannotRaiseTheClusterTermWithoutPreVote) {
  TestNetwork net(3, [](Config* c) { c->pre_vote = false; });
  net.Elect(1);
  ProposeAndStabilize(net, 1, Change(CONF_REMOVE_NODE, 3));
  net.AllowRejectedFrom(3);
  net.TickAllAndStabilize(100);
  EXPECT_GT(net.node(3).term(), 1u);
  EXPECT_GT(net.CountSent(MSG_VOTE, 3), 0u);
  EXPECT_EQ(net.node(1).term(), 1u);
  EXPECT_EQ(net.node(2).term(), 1u);
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
}

TEST(MembershipTest, ADeadVoterIsReplacedWhileTheOtherTwoKeepCommitting) {
  TestNetwork net(3);
  StartThreeNodes(net);
  net.Isolate(3);  // dead
  const uint64_t removed =
      ProposeAndStabilize(net, 1, Change(CONF_REMOVE_NODE, 3));
  ASSERT_GE(net.node(1).commit(), removed);
  ASSERT_EQ(net.node(2).GetStatus().voters, (Ids{1, 2}));
  auto x = net.node(1).Propose("x");
  ASSERT_TRUE(x.ok());
  net.Stabilize();
  EXPECT_GE(net.node(2).commit(), *x);
  // A replacement joins and is promoted; now node 2 may fail in turn.
  AddLearner4(net);
  ProposeAndStabilize(net, 1, Change(CONF_PROMOTE_LEARNER, 4));
  ASSERT_EQ(net.node(1).GetStatus().voters, (Ids{1, 2, 4}));
  net.Isolate(2);
  auto y = net.node(1).Propose("y");
  ASSERT_TRUE(y.ok());
  net.Stabilize();
  EXPECT_GE(net.node(1).commit(), *y);
  EXPECT_EQ(net.applied(4).count(*y), 1u);
}

TEST(MembershipTest, RemovingAVoterShrinksTheMajorityAndCommitsPendingEntries) {
  TestNetwork net(4);
  net.Elect(1);
  net.Cut(1, 3);
  net.Cut(1, 4);
  auto x = net.node(1).Propose("x");
  ASSERT_TRUE(x.ok());
  net.Stabilize();
  ASSERT_EQ(net.node(1).GetStatus().progress.at(2).match, *x);
  ASSERT_LT(net.node(1).commit(), *x);  // two of four
  // Two of {1,2,3} is a majority: "x" commits as the change is appended,
  // before anyone acknowledged anything more.
  ASSERT_TRUE(net.node(1).ProposeConfChange(Change(CONF_REMOVE_NODE, 4)).ok());
  EXPECT_EQ(net.node(1).commit(), *x);
}

// --- Removing the leader
// ----------------------------------------------------------

// Dissertation §4.2.2: a leader that removes itself manages the cluster
// until the change commits, without counting itself, then steps down.
TEST(MembershipTest, ALeaderRemovingItselfStepsDownOnceCommittedAndHandsOver) {
  TestNetwork net(3);
  net.Elect(1);
  net.Cut(1, 3);
  const uint64_t index =
      ProposeAndStabilize(net, 1, Change(CONF_REMOVE_NODE, 1));
  auto x = net.node(1).Propose("x");  // it still leads
  ASSERT_TRUE(x.ok());
  net.Stabilize();
  // Nodes 1 and 2 hold both entries: a majority of {1,2,3}, not of {2,3}.
  ASSERT_EQ(net.node(1).GetStatus().progress.at(2).match, *x);
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_LT(net.node(1).commit(), index);
  EXPECT_EQ(net.node(1).GetStatus().voters, (Ids{2, 3}));

  net.Heal();
  net.ClearSent();
  net.Tick(1);  // one heartbeat; nobody else ticks
  net.Stabilize();
  ASSERT_EQ(net.CountSent(MSG_TIMEOUT_NOW, 1), 1u);
  uint64_t successor = kNone;
  for (const Message& m : net.sent()) {
    if (m.type() == MSG_TIMEOUT_NOW) successor = m.to();
  }
  EXPECT_EQ(net.node(successor).role(), Role::kLeader);
  EXPECT_EQ(net.node(successor).term(), 2u);
  EXPECT_EQ(net.CountSent(MSG_PRE_VOTE), 0u);  // a transfer campaign
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_GE(net.node(successor).commit(), *x);
  EXPECT_EQ(net.committed().count(*x), 1u);

  // The old leader never campaigns again (nobody sends it anything now).
  const uint64_t old_term = net.node(1).term();
  net.ClearSent();
  for (int i = 0; i < 100; ++i) {
    net.Tick(1);
    net.HandleAllReadys();
  }
  net.node(1).Campaign();
  net.HandleAllReadys();
  EXPECT_EQ(CountCampaignMessages(net, 1), 0u);
  EXPECT_EQ(net.node(1).term(), old_term);
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
}

// The read path must not count the leader's own acknowledgement once it is
// no longer a voter: with voters {2} and node 2 unreachable, no read.
TEST(MembershipTest, ALeaderThatRemovedItselfServesReadsOnlyWithTheVoters) {
  TestNetwork net(2);
  net.Elect(1);
  net.Cut(1, 2);
  ASSERT_TRUE(net.node(1).ProposeConfChange(Change(CONF_REMOVE_NODE, 1)).ok());
  ASSERT_EQ(net.node(1).GetStatus().voters, Ids{2});
  ASSERT_TRUE(net.node(1).ReadIndex("r").ok());
  for (int i = 0; i < 5; ++i) {  // heartbeat rounds, within check quorum
    net.Tick(1);
    net.Stabilize();
  }
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_TRUE(net.read_states(1).empty());
  net.Heal();
  net.Tick(1);
  net.Stabilize();
  ASSERT_EQ(net.read_states(1).size(), 1u);
  EXPECT_EQ(net.read_states(1)[0].request_ctx, "r");
}

TEST(MembershipTest, LeadershipCannotBeTransferredToALearnerOrARemovedNode) {
  TestNetwork net(3);
  StartThreeNodes(net);
  AddLearner4(net);
  net.ClearSent();
  Status s = net.node(1).TransferLeader(4);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  ProposeAndStabilize(net, 1, Change(CONF_REMOVE_NODE, 3));
  s = net.node(1).TransferLeader(3);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  net.Stabilize();
  EXPECT_EQ(net.node(1).GetStatus().lead_transferee, kNone);
  EXPECT_EQ(net.CountSent(MSG_TIMEOUT_NOW), 0u);
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
}

// --- Restarts
// -------------------------------------------------------------------------

TEST(MembershipTest, ARestartedNodeReplaysTheChangesInItsLog) {
  TestNetwork net(3);
  net.Elect(1);
  ProposeAndStabilize(net, 1, Change(CONF_REMOVE_NODE, 3));
  // A second change that node 2 holds but nobody committed.
  net.SetDropFilter([](const Message& m) { return m.type() == MSG_APP_RESP; });
  const uint64_t index =
      ProposeAndStabilize(net, 1, Change(CONF_ADD_LEARNER, 9));
  ASSERT_LT(net.node(2).commit(), index);
  ASSERT_EQ(net.storage(2).LastIndex(), index);
  net.Heal();
  net.Restart(2, net.applied_index(2));  // Config::peers is still {1,2,3}
  const NodeStatus st = net.node(2).GetStatus();
  EXPECT_EQ(st.voters, (Ids{1, 2}));
  EXPECT_EQ(st.learners, Ids{9});
  EXPECT_EQ(st.last_conf_index, index);
}

TEST(MembershipTest, TheStoredConfigurationWinsOverConfiguredPeers) {
  TestNetwork net(3);
  net.Elect(1);
  ProposeAndStabilize(net, 1, Change(CONF_REMOVE_NODE, 3));
  SnapshotAndCompact(net, 2);  // records voters {1,2}
  const uint64_t index =
      ProposeAndStabilize(net, 1, Change(CONF_ADD_LEARNER, 9));
  ASSERT_GT(index, net.storage(2).FirstIndex() - 1);  // only in the log
  net.Restart(2, net.applied_index(2), [](Config* c) {
    c->peers = {1, 2, 3, 4, 5};
  });
  const NodeStatus st = net.node(2).GetStatus();
  EXPECT_EQ(st.voters, (Ids{1, 2}));
  EXPECT_EQ(st.learners, Ids{9});
}

TEST(MembershipTest, ARestartedLearnerKeepsTheConfigurationItJoinedWith) {
  TestNetwork net(3);
  StartThreeNodes(net);
  AddLearner4(net);
  net.Restart(4, net.applied_index(4));  // still join_existing_cluster
  NodeStatus st = net.node(4).GetStatus();
  EXPECT_EQ(st.voters, (Ids{1, 2, 3}));
  EXPECT_EQ(st.learners, Ids{4});
  // And it keeps working.
  auto x = net.node(1).Propose("x");
  ASSERT_TRUE(x.ok());
  net.Tick(1);
  net.Stabilize();
  EXPECT_EQ(net.applied(4).count(*x), 1u);
}

// --- Joining a running cluster
// -------------------------------------------------------

TEST(MembershipTest, AJoiningNodeNeitherPollsNorCampaigns) {
  TestNetwork net(3);
  net.Elect(1);
  net.AddNode(4);  // not proposed: nobody sends it anything
  net.HandleAllReadys();
  // No start-up poll (raft/rejoin.h): it knows no one to ask.
  EXPECT_NE(net.node(4).GetStatus().rejoin, "polling");
  EXPECT_TRUE(net.storage(4).hard_state().initialized());
  net.ClearSent();
  for (int i = 0; i < 100; ++i) {
    net.Tick(4);
    net.HandleAllReadys();
  }
  net.node(4).Campaign();
  net.HandleAllReadys();
  EXPECT_EQ(net.CountSent(MSG_POLL, 4), 0u);
  EXPECT_EQ(CountCampaignMessages(net, 4), 0u);
  const NodeStatus st = net.node(4).GetStatus();
  EXPECT_NE(st.rejoin, "polling");
  EXPECT_EQ(st.term, 0u);
  EXPECT_TRUE(st.voters.empty());
  EXPECT_TRUE(st.learners.empty());
}

TEST(MembershipTest, AJoiningNodeHearsAnUnknownLeaderAndAsksForASnapshot) {
  TestNetwork net(3);
  StartThreeNodes(net);
  net.AddNode(4);
  // Before it is a member, a heartbeat from the leader it knows nothing of
  // is heard.
  Message hb = Msg(MSG_HEARTBEAT, 1, 4, net.node(1).term());
  EXPECT_TRUE(net.node(4).Step(hb).ok());
  EXPECT_EQ(net.node(4).lead(), 1u);
  net.HandleReady(4);
  net.ClearQueue();  // the leader does not know node 4 yet
  net.ClearSent();
  ProposeAndStabilize(net, 1, Change(CONF_ADD_LEARNER, 4));
  // The first append is refused with a request for a snapshot: entries
  // alone cannot tell the node who the voters are.
  bool asked = false;
  for (const Message& m : net.sent()) {
    if (m.type() == MSG_APP_RESP && m.from() == 4 && m.reject()) {
      asked = asked || m.wants_snapshot();
    }
  }
  EXPECT_TRUE(asked);
  EXPECT_EQ(net.CountSent(MSG_SNAP, 1, 4), 1u);
  EXPECT_EQ(net.node(4).GetStatus().voters, (Ids{1, 2, 3}));
  EXPECT_EQ(net.node(4).GetStatus().learners, Ids{4});
}

TEST(MembershipTest, AJoiningNodeRefusesWhatOnlyMembersSend) {
  TestNetwork net(3);
  StartThreeNodes(net);
  net.AddNode(4);
  for (MessageType type : {MSG_APP_RESP, MSG_HEARTBEAT_RESP, MSG_READ_INDEX}) {
    Status s = net.node(4).Step(Msg(type, 2, 4, 1));
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument)
        << MessageType_Name(type) << ": " << s.ToString();
  }
  // Once a learner it knows the voters, and still not node 9.
  ProposeAndStabilize(net, 1, Change(CONF_ADD_LEARNER, 4));
  EXPECT_TRUE(net.node(4).Step(Msg(MSG_READ_INDEX_RESP, 1, 4, 1)).ok());
  EXPECT_EQ(net.node(4).Step(Msg(MSG_APP_RESP, 9, 4, 1)).code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace raftkv::raft
