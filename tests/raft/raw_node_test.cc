// RawNode interface tests: proposals on followers, validation of stepped
// messages, the Ready contract (what appears when, must_sync), restart from
// storage (Raft paper Figure 2 persistent state; Config::applied), creation
// errors, and transport feedback (ReportUnreachable / ReportSnapshot).
#include "raft/raw_node.h"

#include <gtest/gtest.h>

#include <string>

#include "raft/memory_storage.h"
#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::MakeEntries;
using rafttest::Msg;
using rafttest::TestConfig;
using rafttest::TestNetwork;

TEST(RawNodeTest, FollowerProposalReturnsNotLeaderNamingLeader) {
  TestNetwork net(3);
  auto before = net.node(2).Propose("x");
  ASSERT_FALSE(before.ok());
  EXPECT_TRUE(before.status().IsNotLeader());
  EXPECT_EQ(before.status().message(), "leader unknown");
  net.Elect(3);
  auto r = net.node(2).Propose("x");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotLeader());
  EXPECT_EQ(r.status().message(), "leader is 3");
  EXPECT_EQ(net.node(2).lead(), 3u);
  EXPECT_FALSE(net.node(2).HasReady());  // nothing was appended or sent
}

TEST(RawNodeTest, CandidateProposalReturnsLeaderUnknown) {
  TestNetwork net(3);
  net.Isolate(1);
  net.node(1).Campaign();
  auto r = net.node(1).Propose("x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().ToString(), "NotLeader: leader unknown");
}

TEST(RawNodeTest, StepRejectsLocalMessageTypes) {
  TestNetwork net(3);
  for (MessageType type :
       {MSG_UNKNOWN, MSG_HUP, MSG_BEAT, MSG_PROP, MSG_CHECK_QUORUM,
        MSG_UNREACHABLE, MSG_SNAP_STATUS, MSG_TRANSFER_LEADER}) {
    Status s = net.node(1).Step(Msg(type, 2, 1, 0));
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument)
        << MessageType_Name(type);
  }
  // MSG_HUP from a peer must not start an election.
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_FALSE(net.node(1).HasReady());
}

// (Vote requests from outside the configuration are heard since 54d0dd7:
// a node behind on the configuration must still vote, raw_node.h.)
TEST(RawNodeTest, StepRejectsUnknownSenderAndWrongRecipient) {
  TestNetwork net(3);
  Message resp = Msg(MSG_APP_RESP, 9, 1, 1);
  EXPECT_EQ(net.node(1).Step(resp).code(), Status::Code::kInvalidArgument);
  Message vote = Msg(MSG_VOTE, 0, 1, 1);
  EXPECT_EQ(net.node(1).Step(vote).code(), Status::Code::kInvalidArgument);
  vote.set_from(2);
  vote.set_to(3);
  EXPECT_EQ(net.node(1).Step(vote).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(net.node(1).term(), 0u);
  EXPECT_FALSE(net.node(1).HasReady());
}

TEST(RawNodeTest, NoReadyWhenNothingHappened) {
  TestNetwork net(3);
  EXPECT_FALSE(net.node(1).HasReady());
  net.Elect(1);
  for (uint64_t id : net.ids()) EXPECT_FALSE(net.node(id).HasReady());
  net.Tick(2);  // a follower's tick changes nothing visible
  EXPECT_FALSE(net.node(2).HasReady());
}

// The soft state appears only when it changed; the hard state likewise;
// a commit-only change needs no fsync.
TEST(RawNodeTest, ReadyCarriesOnlyChangesAndSyncsOnlyWhenNeeded) {
  TestNetwork net(3);
  net.Elect(1);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  Ready leader_rd = net.HandleReady(1);
  EXPECT_FALSE(leader_rd.soft_state.has_value());
  EXPECT_FALSE(leader_rd.hard_state.has_value());
  EXPECT_TRUE(leader_rd.must_sync);  // a new entry
  EXPECT_EQ(leader_rd.entries.size(), 1u);
  net.DeliverQueued();  // MSG_APP to the followers
  net.DeliverQueued();  // acks: the leader commits and tells the followers
  // Follower 2 now receives only the new commit index.
  ASSERT_TRUE(net.queue().size() > 0);
  Message commit_msg;
  bool found = false;
  for (const Message& m : net.queue()) {
    if (m.to() == 2 && m.type() == MSG_APP) {
      commit_msg = m;
      found = true;
    }
  }
  ASSERT_TRUE(found);
  EXPECT_EQ(commit_msg.entries_size(), 0);
  ASSERT_TRUE(net.node(2).Step(commit_msg).ok());
  Ready rd = net.node(2).GetReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->commit(), 2u);
  EXPECT_FALSE(rd.must_sync);
  EXPECT_TRUE(rd.entries.empty());
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  EXPECT_EQ(rd.committed_entries[0].data(), "x");
  net.storage(2).SetHardState(*rd.hard_state);
  net.node(2).Advance(rd);
}

TEST(RawNodeTest, SoftStateReportsRoleAndLeaderChanges) {
  TestNetwork net(3);
  net.node(1).Campaign();
  Ready rd = net.HandleReady(1);
  ASSERT_TRUE(rd.soft_state.has_value());
  EXPECT_EQ(rd.soft_state->role, Role::kPreCandidate);
  net.Stabilize();
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_EQ(net.node(1).lead(), 1u);
}

// Raft paper Figure 2: currentTerm, votedFor (and here commit) are restored
// from stable storage after a crash.
TEST(RawNodeTest, RestartRestoresTermVoteAndCommit) {
  TestNetwork net(3);
  net.Elect(1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(net.node(1).Propose("v").ok());
  net.Stabilize();
  net.Restart(2);
  NodeStatus st = net.node(2).GetStatus();
  EXPECT_EQ(st.term, 1u);
  EXPECT_EQ(st.vote, 1u);
  EXPECT_EQ(st.commit, 4u);
  EXPECT_EQ(st.last_index, 4u);
  EXPECT_EQ(st.role, Role::kFollower);
  EXPECT_EQ(st.lead, kNone);
  // Without Config::applied every committed entry is handed out again.
  Ready rd = net.HandleReady(2);
  ASSERT_EQ(rd.committed_entries.size(), 4u);
  EXPECT_EQ(rd.committed_entries.front().index(), 1u);
  EXPECT_FALSE(rd.hard_state.has_value());  // nothing changed
  // A restarted leader comes back as a follower with its vote for itself.
  net.Restart(1);
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_EQ(net.node(1).GetStatus().vote, 1u);
  EXPECT_EQ(net.node(1).term(), 1u);
}

TEST(RawNodeTest, RestartHonoursConfigApplied) {
  TestNetwork net(3);
  net.Elect(1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(net.node(1).Propose("v").ok());
  net.Stabilize();
  net.Restart(2, /*applied=*/3);
  EXPECT_EQ(net.node(2).GetStatus().applied, 3u);
  Ready rd = net.HandleReady(2);
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  EXPECT_EQ(rd.committed_entries[0].index(), 4u);
  net.Restart(2, /*applied=*/4);
  EXPECT_FALSE(net.node(2).HasReady());
}

TEST(RawNodeTest, RestartedNodeRejoinsAndCatchesUp) {
  TestNetwork net(3);
  net.Elect(1);
  net.Isolate(2);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(net.node(1).Propose("v").ok());
  net.Stabilize();
  net.Restart(2, net.applied_index(2));
  net.Heal();
  net.TickAllAndStabilize(2);
  EXPECT_EQ(net.storage(2).LastIndex(), 4u);
  EXPECT_EQ(net.applied_index(2), 4u);
  EXPECT_EQ(net.Leader(), 1u);
}

TEST(RawNodeTest, CreateRejectsInvalidConfigAndInconsistentStorage) {
  MemoryStorage storage;
  Config c = TestConfig(1, {1, 2, 3});
  c.id = kNone;
  EXPECT_FALSE(RawNode::Create(c, &storage).ok());
  c = TestConfig(1, {1, 2, 3});
  c.election_tick = c.heartbeat_tick;
  EXPECT_FALSE(RawNode::Create(c, &storage).ok());
  c = TestConfig(1, {});
  EXPECT_FALSE(RawNode::Create(c, &storage).ok());  // no membership at all
  c = TestConfig(1, {1, 2, 3});
  c.max_inflight_msgs = 0;
  EXPECT_FALSE(RawNode::Create(c, &storage).ok());
  c = TestConfig(1, {0, 1, 2});
  EXPECT_FALSE(RawNode::Create(c, &storage).ok());  // id 0 is reserved
  // Applied beyond the stored log.
  storage.Append(MakeEntries(1, {1, 1, 1}));
  HardState hs;
  hs.set_term(1);
  hs.set_commit(2);
  storage.SetHardState(hs);
  c = TestConfig(1, {1, 2, 3});
  c.applied = 4;
  EXPECT_EQ(RawNode::Create(c, &storage).status().code(),
            Status::Code::kCorruption);
  // Applied beyond the saved commit index (written without sync) but within
  // the log: applied entries were committed, so the commit index follows.
  c.applied = 3;
  auto node = RawNode::Create(c, &storage);
  ASSERT_TRUE(node.ok()) << node.status().ToString();
  EXPECT_EQ((*node)->GetStatus().commit, 3u);
  EXPECT_EQ((*node)->GetStatus().applied, 3u);
  // Commit beyond the stored log.
  hs.set_commit(9);
  storage.SetHardState(hs);
  c.applied = 0;
  EXPECT_EQ(RawNode::Create(c, &storage).status().code(),
            Status::Code::kCorruption);
}

// ForgetLeader: a follower that lost its leader's connection stops naming
// it, grants pre-votes again (no lease), and re-learns the leader from its
// next heartbeat; a no-op on a leader.
TEST(RawNodeTest, ForgetLeader) {
  TestNetwork net(3);
  net.Elect(1);
  net.node(1).ForgetLeader();
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_EQ(net.node(1).lead(), 1u);
  net.node(2).ForgetLeader();
  EXPECT_EQ(net.node(2).lead(), kNone);
  EXPECT_EQ(net.node(2).term(), 1u);
  EXPECT_EQ(net.node(2).Propose("x").status().message(), "leader unknown");
  Message pre = Msg(MSG_PRE_VOTE, 3, 2, 2);
  pre.set_index(1);
  pre.set_log_term(1);
  ASSERT_TRUE(net.node(2).Step(pre).ok());
  Ready rd = net.HandleReady(2);
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_EQ(rd.messages[0].type(), MSG_PRE_VOTE_RESP);
  EXPECT_FALSE(rd.messages[0].reject());
  EXPECT_EQ(net.node(2).term(), 1u);
  net.ClearQueue();
  net.Tick(1);
  net.Stabilize();
  EXPECT_EQ(net.node(2).lead(), 1u);
}

TEST(RawNodeTest, ReportUnreachableMovesFollowerBackToProbe) {
  TestNetwork net(3);
  net.Elect(1);
  ASSERT_EQ(net.node(1).GetStatus().progress.at(2).state, "replicate");
  net.node(1).ReportUnreachable(2);
  EXPECT_EQ(net.node(1).GetStatus().progress.at(2).state, "probe");
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
  EXPECT_EQ(net.node(1).GetStatus().progress.at(2).state, "replicate");
}

}  // namespace
}  // namespace raftkv::raft
