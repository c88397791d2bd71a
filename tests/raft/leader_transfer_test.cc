// Leadership transfer tests (dissertation §3.10): the leader catches the
// target up, sends it MSG_TIMEOUT_NOW, and the target campaigns at once
// (skipping PreVote and overriding leader stickiness). Proposals are
// dropped meanwhile, and a transfer that does not finish within an election
// timeout is abandoned.
#include <gtest/gtest.h>

#include <string>

#include "raft/raw_node.h"
#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::TestNetwork;

// Position of the first message in `msgs` matching `pred`, or -1.
template <typename Pred>
int FirstIndexOf(const std::vector<Message>& msgs, Pred pred) {
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (pred(msgs[i])) return static_cast<int>(i);
  }
  return -1;
}

TEST(LeaderTransferTest, TransferToUpToDateFollower) {
  TestNetwork net(3);
  net.Elect(1);
  net.ClearSent();
  ASSERT_TRUE(net.node(1).TransferLeader(2).ok());
  net.Stabilize();
  EXPECT_EQ(net.node(2).role(), Role::kLeader);
  EXPECT_EQ(net.node(2).term(), 2u);
  EXPECT_EQ(net.node(1).role(), Role::kFollower);
  EXPECT_EQ(net.node(1).lead(), 2u);
  EXPECT_EQ(net.node(3).lead(), 2u);
  EXPECT_EQ(net.CountSent(MSG_TIMEOUT_NOW, 1, 2), 1u);
  // The target campaigns directly: no pre-vote, and node 3, although in
  // contact with leader 1, votes because the request is part of a transfer.
  EXPECT_EQ(net.CountSent(MSG_PRE_VOTE), 0u);
  EXPECT_EQ(net.CountSent(MSG_VOTE_RESP, 3, 2), 1u);
}

TEST(LeaderTransferTest, LaggingTargetIsCaughtUpBeforeTimeoutNow) {
  TestNetwork net(3);
  net.Elect(1);
  net.SetDropFilter(
      [](const Message& m) { return m.type() == MSG_APP && m.to() == 3; });
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(net.node(1).Propose("v" + std::to_string(i)).ok());
  }
  net.Stabilize();
  ASSERT_EQ(net.storage(3).LastIndex(), 1u);
  ASSERT_EQ(net.node(1).GetStatus().commit, 6u);
  net.Heal();
  net.ClearSent();
  ASSERT_TRUE(net.node(1).TransferLeader(3).ok());
  EXPECT_EQ(net.node(1).GetStatus().lead_transferee, 3u);
  net.Stabilize();
  const auto& sent = net.sent();
  const int caught_up = FirstIndexOf(sent, [](const Message& m) {
    return m.type() == MSG_APP_RESP && m.from() == 3 && !m.reject() &&
           m.index() == 6;
  });
  const int timeout_now = FirstIndexOf(
      sent, [](const Message& m) { return m.type() == MSG_TIMEOUT_NOW; });
  ASSERT_GE(caught_up, 0);
  ASSERT_GE(timeout_now, 0);
  EXPECT_LT(caught_up, timeout_now);
  EXPECT_EQ(net.node(3).role(), Role::kLeader);
  // Nothing committed was lost.
  for (uint64_t id : net.ids()) {
    ASSERT_EQ(net.applied(id).count(6), 1u) << "node " << id;
    EXPECT_EQ(net.applied(id).at(6).data(), "v4");
  }
}

TEST(LeaderTransferTest, ProposalsAreDroppedDuringTransfer) {
  TestNetwork net(3);
  net.Elect(1);
  net.Cut(1, 2);  // the transfer cannot complete
  ASSERT_TRUE(net.node(1).TransferLeader(2).ok());
  net.Stabilize();
  auto r = net.node(1).Propose("x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kProposalDropped);
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
}

// Dissertation §3.10: "if the transfer does not complete after about one
// election timeout, the prior leader aborts the transfer and resumes
// accepting client requests".
TEST(LeaderTransferTest,
     TransferToUnreachableTargetAbortsAfterElectionTimeout) {
  TestNetwork net(3);
  net.Elect(1);
  net.Cut(1, 2);
  ASSERT_TRUE(net.node(1).TransferLeader(2).ok());
  net.Stabilize();
  for (int i = 0; i < 9; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.node(1).GetStatus().lead_transferee, 2u);
  EXPECT_FALSE(net.node(1).Propose("x").ok());
  net.Tick(1);
  net.Stabilize();
  EXPECT_EQ(net.node(1).GetStatus().lead_transferee, kNone);
  EXPECT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_TRUE(net.node(1).Propose("y").ok());
  net.Stabilize();
  EXPECT_EQ(net.applied(3).rbegin()->second.data(), "y");
}

TEST(LeaderTransferTest, NewTransferReplacesPendingOne) {
  TestNetwork net(3);
  net.Elect(1);
  net.Cut(1, 2);
  ASSERT_TRUE(net.node(1).TransferLeader(2).ok());
  net.Stabilize();
  ASSERT_TRUE(net.node(1).TransferLeader(3).ok());
  net.Stabilize();
  EXPECT_EQ(net.node(3).role(), Role::kLeader);
}

TEST(LeaderTransferTest, InvalidTransfers) {
  TestNetwork net(3);
  net.Elect(1);
  EXPECT_TRUE(net.node(2).TransferLeader(3).IsNotLeader());
  EXPECT_EQ(net.node(1).TransferLeader(7).code(),
            Status::Code::kInvalidArgument);
  // To itself: nothing to do, proposals keep flowing.
  ASSERT_TRUE(net.node(1).TransferLeader(1).ok());
  EXPECT_EQ(net.node(1).GetStatus().lead_transferee, kNone);
  EXPECT_TRUE(net.node(1).Propose("x").ok());
}

}  // namespace
}  // namespace raftkv::raft
