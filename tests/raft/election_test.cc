// Leader election tests (Raft paper §5.1, §5.2, §5.4.1; dissertation §4.2.3
// leader stickiness, §6.2 CheckQuorum, §9.6 PreVote): randomized timeouts,
// terms, durable single votes, the up-to-date check, split votes, and the
// behaviour of PreVote and CheckQuorum around partitions.
#include <gtest/gtest.h>

#include <set>

#include "raft/raw_node.h"
#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::MakeEntries;
using rafttest::Msg;
using rafttest::TestConfig;
using rafttest::TestNetwork;

auto kNoPreVote = [](Config* c) { c->pre_vote = false; };
auto kPlainRaft = [](Config* c) {
  c->pre_vote = false;
  c->check_quorum = false;
};

const Message* FindMessage(const std::vector<Message>& msgs, MessageType type,
                           uint64_t to) {
  for (const Message& m : msgs) {
    if (m.type() == type && m.to() == to) return &m;
  }
  return nullptr;
}

// Ticks a lone node until it starts campaigning; returns the ticks taken.
int TicksUntilCampaign(RawNode& node, Role campaigning_role) {
  for (int t = 1; t <= 1000; ++t) {
    node.Tick();
    if (node.role() == campaigning_role) return t;
  }
  return -1;
}

// Raft paper §5.2: election timeouts are chosen randomly from a fixed
// interval ([election_tick, 2 * election_tick) here) so that split votes
// are rare; each seed gives its own sequence.
TEST(ElectionTest, ElectionTimeoutIsRandomizedWithinRange) {
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    MemoryStorage storage;
    Config c = TestConfig(1, {1, 2, 3});
    c.seed = seed;
    auto node = RawNode::Create(c, &storage);
    ASSERT_TRUE(node.ok());
    const int t = TicksUntilCampaign(**node, Role::kPreCandidate);
    EXPECT_GE(t, c.election_tick) << "seed " << seed;
    EXPECT_LT(t, 2 * c.election_tick) << "seed " << seed;
    seen.insert(t);
  }
  // 40 seeds over 10 possible values: a constant timeout would give one.
  EXPECT_GE(seen.size(), 5u);
}

TEST(ElectionTest, ElectionTimeoutIsRedrawnForEachElection) {
  // Raft paper §5.2: "each candidate restarts its randomized election
  // timeout at the start of an election".
  MemoryStorage storage;
  Config c = TestConfig(1, {1, 2, 3});
  c.pre_vote = false;
  auto node = RawNode::Create(c, &storage);
  ASSERT_TRUE(node.ok());
  std::set<int> seen;
  for (int election = 0; election < 30; ++election) {
    const uint64_t term = (*node)->term();
    int t = 0;
    while ((*node)->term() == term && t < 1000) {
      (*node)->Tick();
      ++t;
    }
    EXPECT_GE(t, c.election_tick);
    EXPECT_LT(t, 2 * c.election_tick);
    seen.insert(t);
  }
  EXPECT_GE(seen.size(), 4u);
}

TEST(ElectionTest, NodesOfANetworkHaveDifferentTimeouts) {
  TestNetwork net(5);
  std::set<int> seen;
  for (uint64_t id : net.ids()) {
    seen.insert(TicksUntilCampaign(net.node(id), Role::kPreCandidate));
  }
  EXPECT_GE(seen.size(), 2u);
}

// Raft paper §5.2 and Figure 2: a candidate increments its term and votes
// for itself, and currentTerm/votedFor are durable before it asks for votes.
TEST(ElectionTest, CandidatePersistsTermAndSelfVoteBeforeRequestingVotes) {
  TestNetwork net(3, kNoPreVote);
  net.node(1).Campaign();
  Ready rd = net.HandleReady(1);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term(), 1u);
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  EXPECT_TRUE(rd.must_sync);
  ASSERT_EQ(rd.messages.size(), 2u);
  for (const Message& m : rd.messages) {
    EXPECT_EQ(m.type(), MSG_VOTE);
    EXPECT_EQ(m.term(), 1u);
  }
  EXPECT_EQ(net.node(1).role(), Role::kCandidate);
}

// Raft paper §5.4.1: a vote request carries the candidate's last log index
// and last log term, for the voters' up-to-date check.
TEST(ElectionTest, VoteRequestCarriesLastLogIndexAndTerm) {
  TestNetwork net(3, kNoPreVote);
  net.storage(1).Append(MakeEntries(1, {1, 1, 3}));
  HardState hs;
  hs.set_term(4);
  net.storage(1).SetHardState(hs);
  net.Restart(1);
  net.node(1).Campaign();
  Ready rd = net.HandleReady(1);
  ASSERT_EQ(rd.messages.size(), 2u);
  for (const Message& m : rd.messages) {
    EXPECT_EQ(m.term(), 5u);
    EXPECT_EQ(m.index(), 3u);
    EXPECT_EQ(m.log_term(), 3u);
  }
}

// Figure 2 ("persistent state ... updated on stable storage before
// responding to RPCs"): the Ready carrying a vote grant also carries the
// hard state with that vote and asks for an fsync.
TEST(ElectionTest, VoteGrantIsDurableInTheReadyThatCarriesIt) {
  TestNetwork net(3, kNoPreVote);
  Message vote = Msg(MSG_VOTE, 1, 2, 1);
  ASSERT_TRUE(net.node(2).Step(vote).ok());
  Ready rd = net.HandleReady(2);
  const Message* resp =
      FindMessage(rd.messages_after_persist, MSG_VOTE_RESP, 1);
  ASSERT_NE(resp, nullptr);
  EXPECT_FALSE(resp->reject());
  EXPECT_EQ(resp->term(), 1u);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term(), 1u);
  EXPECT_EQ(rd.hard_state->vote(), 1u);
  EXPECT_TRUE(rd.must_sync);
}

// Raft paper §5.2: "each server will vote for at most one candidate in a
// given term, on a first-come-first-served basis", also across restarts.
TEST(ElectionTest, VotesAtMostOncePerTermEvenAcrossRestart) {
  TestNetwork net(3, kPlainRaft);
  auto ask = [&](uint64_t candidate) {
    EXPECT_TRUE(net.node(1).Step(Msg(MSG_VOTE, candidate, 1, 1)).ok());
    Ready rd = net.HandleReady(1);
    const Message* resp =
        FindMessage(rd.messages_after_persist, MSG_VOTE_RESP, candidate);
    EXPECT_NE(resp, nullptr);
    return resp != nullptr && !resp->reject();
  };
  EXPECT_TRUE(ask(2));
  EXPECT_FALSE(ask(3));
  EXPECT_TRUE(ask(2));  // a retransmitted request gets the same answer
  EXPECT_EQ(net.storage(1).hard_state().vote(), 2u);
  net.Restart(1);
  EXPECT_FALSE(ask(3));
  EXPECT_TRUE(ask(2));
  EXPECT_EQ(net.node(1).term(), 1u);
}

struct UpToDateCase {
  uint64_t last_index;
  uint64_t last_term;
  bool granted;
};

// Raft paper §5.4.1: the voter denies its vote if its own log is more
// up-to-date than the candidate's (later last term, or same last term and
// longer). Checked for votes and for pre-votes (dissertation §9.6).
TEST(ElectionTest, VoteRequiresUpToDateLog) {
  // Voter's log: terms 1, 1, 2 at indexes 1..3; current term 2.
  const UpToDateCase cases[] = {
      {3, 2, true},  {4, 2, true},   {1, 3, true},
      {2, 2, false}, {10, 1, false}, {0, 0, false},
  };
  for (MessageType type : {MSG_VOTE, MSG_PRE_VOTE}) {
    for (const UpToDateCase& c : cases) {
      SCOPED_TRACE(MessageType_Name(type) +
                   " last_index=" + std::to_string(c.last_index) +
                   " last_term=" + std::to_string(c.last_term));
      TestNetwork net(3, kNoPreVote);
      net.storage(2).Append(MakeEntries(1, {1, 1, 2}));
      HardState hs;
      hs.set_term(2);
      net.storage(2).SetHardState(hs);
      net.Restart(2);
      Message req = Msg(type, 1, 2, 3);
      req.set_index(c.last_index);
      req.set_log_term(c.last_term);
      ASSERT_TRUE(net.node(2).Step(req).ok());
      Ready rd = net.HandleReady(2);
      const Message* resp =
          type == MSG_VOTE
              ? FindMessage(rd.messages_after_persist, MSG_VOTE_RESP, 1)
              : FindMessage(rd.messages, MSG_PRE_VOTE_RESP, 1);
      ASSERT_NE(resp, nullptr);
      EXPECT_EQ(resp->reject(), !c.granted);
      if (type == MSG_VOTE) {
        EXPECT_EQ(net.node(2).term(), 3u);
        EXPECT_EQ(net.storage(2).hard_state().vote(), c.granted ? 1u : 0u);
      } else {
        // A pre-vote changes neither term nor vote.
        EXPECT_EQ(net.node(2).term(), 2u);
        EXPECT_EQ(net.storage(2).hard_state().term(), 2u);
        EXPECT_EQ(net.storage(2).hard_state().vote(), 0u);
        EXPECT_EQ(resp->term(), c.granted ? 3u : 2u);
      }
    }
  }
}

// Raft paper §5.2: a candidate wins with votes from a majority.
TEST(ElectionTest, CandidateWinsWithMajority) {
  TestNetwork net(5);
  net.Isolate(4);
  net.Isolate(5);
  net.Elect(1);
  EXPECT_EQ(net.node(1).term(), 1u);
  for (uint64_t id : {2, 3}) {
    EXPECT_EQ(net.node(id).role(), Role::kFollower);
    EXPECT_EQ(net.node(id).lead(), 1u);
    EXPECT_EQ(net.node(id).term(), 1u);
  }
}

TEST(ElectionTest, CandidateWithoutMajorityDoesNotWin) {
  for (bool pre_vote : {true, false}) {
    SCOPED_TRACE(pre_vote ? "pre-vote" : "no pre-vote");
    TestNetwork net(5, [&](Config* c) { c->pre_vote = pre_vote; });
    net.Isolate(3);
    net.Isolate(4);
    net.Isolate(5);
    net.node(1).Campaign();
    net.Stabilize();
    EXPECT_NE(net.node(1).role(), Role::kLeader);
    // Pre-vote: the failed pre-campaign left the term alone (§9.6).
    EXPECT_EQ(net.node(1).term(), pre_vote ? 0u : 1u);
    EXPECT_EQ(net.node(2).lead(), kNone);
  }
}

// Raft paper §5.2: a candidate that receives AppendEntries from a leader
// whose term is at least its own returns to follower.
TEST(ElectionTest, CandidateStepsDownForLeaderOfItsTerm) {
  for (MessageType type : {MSG_APP, MSG_HEARTBEAT}) {
    TestNetwork net(3, kNoPreVote);
    net.node(2).Campaign();
    net.HandleReady(2);
    ASSERT_EQ(net.node(2).role(), Role::kCandidate);
    ASSERT_TRUE(net.node(2).Step(Msg(type, 1, 2, 1)).ok());
    EXPECT_EQ(net.node(2).role(), Role::kFollower);
    EXPECT_EQ(net.node(2).lead(), 1u);
    EXPECT_EQ(net.node(2).term(), 1u);
  }
}

// Raft paper §5.1: a server that sees a larger term adopts it and, if it
// was leader, reverts to follower.
TEST(ElectionTest, LeaderStepsDownOnHigherTerm) {
  TestNetwork net(3);
  net.Elect(1);
  Message resp = Msg(MSG_APP_RESP, 2, 1, 5);
  ASSERT_TRUE(net.node(1).Step(resp).ok());
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_EQ(net.node(1).term(), 5u);
  Ready rd = net.HandleReady(1);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term(), 5u);
  EXPECT_EQ(rd.hard_state->vote(), 0u);
}

// Raft paper §5.1: a request with a stale term is rejected; with PreVote
// or CheckQuorum the reply carries the newer term so a stale leader learns
// it (a pre-vote never raises anyone's term).
TEST(ElectionTest, StaleTermAppendIsRejectedWithCurrentTerm) {
  TestNetwork net(3);
  HardState hs;
  hs.set_term(2);
  net.storage(2).SetHardState(hs);
  net.Restart(2);
  Message app = Msg(MSG_APP, 1, 2, 1);
  *app.add_entries() = rafttest::MakeEntry(1, 1, "stale");
  ASSERT_TRUE(net.node(2).Step(app).ok());
  Ready rd = net.HandleReady(2);
  EXPECT_TRUE(rd.entries.empty());
  EXPECT_EQ(net.storage(2).LastIndex(), 0u);
  const Message* resp = FindMessage(rd.messages_after_persist, MSG_APP_RESP, 1);
  ASSERT_NE(resp, nullptr);
  EXPECT_EQ(resp->term(), 2u);
  EXPECT_EQ(net.node(2).lead(), kNone);
}

// Raft paper §5.2: randomized timeouts resolve split votes. Four nodes, two
// simultaneous candidates each get one other vote: nobody wins term 1, and
// the next timeout elects a single leader.
TEST(ElectionTest, SplitVoteIsResolvedByRandomizedTimeouts) {
  TestNetwork net(4, kPlainRaft);
  net.Cut(1, 4);
  net.Cut(2, 3);
  net.node(1).Campaign();
  net.node(2).Campaign();
  net.Stabilize();
  EXPECT_EQ(net.Leader(), kNone);
  EXPECT_EQ(net.storage(3).hard_state().vote(), 1u);
  EXPECT_EQ(net.storage(4).hard_state().vote(), 2u);
  for (uint64_t id : net.ids()) EXPECT_EQ(net.node(id).term(), 1u);
  net.Heal();
  int ticks = 0;
  while (net.Leader() == kNone && ticks < 100) {
    net.TickAllAndStabilize();
    ++ticks;
  }
  const uint64_t leader = net.Leader();
  ASSERT_NE(leader, kNone) << "split vote never resolved";
  EXPECT_LT(ticks, 2 * 10 + 1);
  EXPECT_GE(net.node(leader).term(), 2u);
  for (uint64_t id : net.ids()) {
    EXPECT_EQ(net.node(id).lead(), leader);
    EXPECT_EQ(net.node(id).term(), net.node(leader).term());
  }
}

TEST(ElectionTest, ColdStartElectsOneLeaderWithinTwoTimeouts) {
  TestNetwork net(5);
  int ticks = 0;
  while (net.Leader() == kNone && ticks < 100) {
    net.TickAllAndStabilize();
    ++ticks;
  }
  const uint64_t leader = net.Leader();
  ASSERT_NE(leader, kNone);
  EXPECT_LT(ticks, 2 * 10);
  EXPECT_EQ(net.node(leader).term(), 1u);  // PreVote wasted no term
  for (uint64_t id : net.ids()) EXPECT_EQ(net.node(id).lead(), leader);
}

// Dissertation §9.6: a pre-candidate keeps its term and vote; only a
// successful pre-vote leads to a real (term-raising) campaign.
TEST(PreVoteTest, PreCandidateKeepsTermAndVote) {
  TestNetwork net(3);
  net.Isolate(1);
  net.node(1).Campaign();
  Ready rd = net.HandleReady(1);
  EXPECT_EQ(net.node(1).role(), Role::kPreCandidate);
  EXPECT_FALSE(rd.hard_state.has_value());
  EXPECT_FALSE(rd.must_sync);
  ASSERT_EQ(rd.messages.size(), 2u);
  for (const Message& m : rd.messages) {
    EXPECT_EQ(m.type(), MSG_PRE_VOTE);
    EXPECT_EQ(m.term(), 1u);  // the term it would campaign in
  }
  for (int i = 0; i < 100; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.node(1).term(), 0u);
  EXPECT_EQ(net.storage(1).hard_state().term(), 0u);
  EXPECT_EQ(net.storage(1).hard_state().vote(), 0u);
  EXPECT_GE(net.CountSent(MSG_PRE_VOTE, 1), 10u);  // it kept trying
  EXPECT_EQ(net.CountSent(MSG_VOTE, 1), 0u);
}

// Dissertation §9.6: a node partitioned away cannot win a pre-vote, so it
// neither raises its own term nor, when it rejoins, the cluster's.
TEST(PreVoteTest, RejoiningNodeDoesNotDisruptLeader) {
  TestNetwork net(3);
  net.Elect(1);
  net.Isolate(3);
  net.TickAllAndStabilize(100);  // node 3 times out about 5 times
  EXPECT_NE(net.node(3).role(), Role::kLeader);
  EXPECT_EQ(net.node(3).term(), 1u);
  net.Heal();
  net.TickAllAndStabilize(30);
  EXPECT_EQ(net.Leader(), 1u);
  for (uint64_t id : net.ids()) {
    EXPECT_EQ(net.node(id).term(), 1u) << "node " << id;
    EXPECT_EQ(net.node(id).lead(), 1u) << "node " << id;
  }
}

// The same scenario without PreVote and CheckQuorum: the rejoining node's
// higher term deposes the healthy leader (why §9.6 exists). This guards the
// test above against passing vacuously.
TEST(PreVoteTest, WithoutPreVoteRejoiningNodeDisruptsLeader) {
  TestNetwork net(3, kPlainRaft);
  net.Elect(1);
  net.Isolate(3);
  net.TickAllAndStabilize(100);
  EXPECT_GT(net.node(3).term(), 1u);
  net.Heal();
  net.TickAllAndStabilize(60);
  ASSERT_NE(net.Leader(), kNone);
  EXPECT_GT(net.node(net.Leader()).term(), 1u);
}

// Dissertation §9.6: voters grant a pre-vote only "if the candidate's log
// is sufficiently up-to-date, and the voters have not received heartbeats
// from a valid leader for at least a baseline election timeout". Config
// documents pre_vote as keeping a rejoining node from disrupting a healthy
// leader; that must hold without check_quorum too. The rejoining node's log
// is as up-to-date as everyone's (an idle cluster), and it pre-campaigns
// right after the partition heals, before the next heartbeat reaches it.
TEST(PreVoteTest, PreVoteIgnoredWhileHearingFromLeaderWithoutCheckQuorum) {
  TestNetwork net(3, [](Config* c) { c->check_quorum = false; });
  net.Elect(1);
  net.Isolate(3);
  for (int i = 0; i < 20 && net.node(3).role() != Role::kPreCandidate; ++i) {
    net.Tick(3);
  }
  net.Stabilize();
  ASSERT_EQ(net.node(3).role(), Role::kPreCandidate);
  net.Heal();
  net.ClearQueue();
  // Node 3 times out again; nodes 1 and 2 heard from the leader 0 ticks ago.
  const size_t pre_votes = net.CountSent(MSG_PRE_VOTE, 3);
  for (int i = 0; i < 20 && net.CountSent(MSG_PRE_VOTE, 3) == pre_votes; ++i) {
    net.Tick(3);
    net.HandleReady(3);
  }
  net.Stabilize();
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_EQ(net.node(1).term(), 1u);
  EXPECT_EQ(net.node(2).term(), 1u);
}

// Dissertation §6.2: a leader that has not heard from a majority for an
// election timeout steps down. The activity flags are checked every
// election_tick ticks, so acknowledgements received just before the
// partition can keep it leader until the second check: at most
// 2 * election_tick ticks.
TEST(CheckQuorumTest, IsolatedLeaderStepsDown) {
  TestNetwork net(3);
  net.Elect(1);
  net.Isolate(1);
  int ticks = 0;
  while (net.node(1).role() == Role::kLeader && ticks < 100) {
    net.Tick(1);
    net.Stabilize();
    ++ticks;
  }
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_LE(ticks, 2 * 10);
  EXPECT_GE(ticks, 10);
  EXPECT_EQ(net.node(1).term(), 1u);  // stepping down keeps the term
  EXPECT_EQ(net.node(1).lead(), kNone);
}

TEST(CheckQuorumTest, LeaderInMinorityStepsDownAndMajorityElectsAnother) {
  TestNetwork net(5);
  net.Elect(1);
  for (uint64_t a : {1, 2}) {
    for (uint64_t b : {3, 4, 5}) net.Cut(a, b);
  }
  net.TickAllAndStabilize(2 * 10);
  EXPECT_NE(net.node(1).role(), Role::kLeader);
  const uint64_t leader = net.Leader();
  ASSERT_NE(leader, kNone);
  EXPECT_GE(leader, 3u);
  EXPECT_EQ(net.node(leader).term(), 2u);
}

TEST(CheckQuorumTest, HealthyLeaderStaysLeader) {
  TestNetwork net(3);
  net.Elect(1);
  net.TickAllAndStabilize(200);
  EXPECT_EQ(net.Leader(), 1u);
  EXPECT_EQ(net.node(1).term(), 1u);
}

TEST(CheckQuorumTest, WithoutCheckQuorumIsolatedLeaderStaysLeader) {
  TestNetwork net(3, [](Config* c) { c->check_quorum = false; });
  net.Elect(1);
  net.Isolate(1);
  for (int i = 0; i < 100; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
}

// Dissertation §4.2.3 / §6.2: a follower that heard from a leader within
// the election timeout ignores vote requests (here without PreVote, so a
// real vote at a higher term): it keeps its term and its vote.
TEST(CheckQuorumTest, FollowerInContactWithLeaderIgnoresVoteRequests) {
  TestNetwork net(3, kNoPreVote);
  net.Elect(1);
  net.ClearSent();
  net.node(3).Campaign();
  net.Stabilize();
  EXPECT_EQ(net.node(3).role(), Role::kCandidate);
  EXPECT_EQ(net.node(3).term(), 2u);
  EXPECT_EQ(net.node(2).term(), 1u);
  EXPECT_EQ(net.storage(2).hard_state().vote(), 1u);
  EXPECT_EQ(net.node(2).lead(), 1u);
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_EQ(net.node(1).term(), 1u);
  EXPECT_EQ(net.CountSent(MSG_VOTE_RESP), 0u);
}

TEST(CheckQuorumTest, WithoutCheckQuorumFollowerGrantsVoteDespiteLeader) {
  TestNetwork net(3, kPlainRaft);
  net.Elect(1);
  net.node(3).Campaign();
  net.Stabilize();
  EXPECT_EQ(net.node(3).role(), Role::kLeader);
  EXPECT_EQ(net.node(3).term(), 2u);
}

}  // namespace
}  // namespace raftkv::raft
