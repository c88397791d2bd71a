// Unit tests of the leader's per-follower bookkeeping: Inflights (flow
// control of pipelined AppendEntries) and Progress (probe / replicate /
// snapshot, dissertation §3.5 and etcd's progress tracker), including the
// back-off on rejections (Raft paper §5.3).
#include "raft/progress.h"

#include <gtest/gtest.h>

namespace raftkv::raft {
namespace {

TEST(InflightsTest, FullAtMaxCount) {
  Inflights in(3, 0);
  EXPECT_FALSE(in.Full());
  in.Add(5, 10);
  in.Add(7, 10);
  EXPECT_FALSE(in.Full());
  in.Add(9, 10);
  EXPECT_TRUE(in.Full());
  EXPECT_EQ(in.Count(), 3u);
  EXPECT_EQ(in.Bytes(), 30u);
}

TEST(InflightsTest, FullAtMaxBytes) {
  Inflights in(100, 50);
  in.Add(1, 20);
  in.Add(2, 29);
  EXPECT_FALSE(in.Full());  // 49 < 50
  in.Add(3, 1);
  EXPECT_TRUE(in.Full());  // 50 >= 50
  in.FreeLE(1);
  EXPECT_FALSE(in.Full());
  EXPECT_EQ(in.Bytes(), 30u);
}

TEST(InflightsTest, ZeroMaxBytesMeansNoByteLimit) {
  Inflights in(2, 0);
  in.Add(1, 1u << 30);
  EXPECT_FALSE(in.Full());
}

TEST(InflightsTest, FreeLEFreesEverythingUpToIndex) {
  Inflights in(10, 0);
  for (uint64_t i = 1; i <= 5; ++i) in.Add(i * 2, i);  // 2,4,6,8,10
  in.FreeLE(5);                                        // frees 2 and 4
  EXPECT_EQ(in.Count(), 3u);
  EXPECT_EQ(in.Bytes(), 3u + 4u + 5u);
  in.FreeLE(5);  // idempotent
  EXPECT_EQ(in.Count(), 3u);
  in.FreeLE(1);  // below everything: nothing
  EXPECT_EQ(in.Count(), 3u);
  in.FreeLE(10);
  EXPECT_EQ(in.Count(), 0u);
  EXPECT_EQ(in.Bytes(), 0u);
}

TEST(InflightsTest, FreeFirstOneAndReset) {
  Inflights in(2, 0);
  in.Add(1, 7);
  in.Add(2, 8);
  ASSERT_TRUE(in.Full());
  in.FreeFirstOne();
  EXPECT_FALSE(in.Full());
  EXPECT_EQ(in.Bytes(), 8u);
  in.FreeFirstOne();
  in.FreeFirstOne();  // empty: no-op
  EXPECT_EQ(in.Count(), 0u);
  in.Add(3, 1);
  in.Reset();
  EXPECT_EQ(in.Count(), 0u);
  EXPECT_EQ(in.Bytes(), 0u);
}

TEST(InflightsDeathTest, AddMustIncrease) {
  Inflights in(10, 0);
  in.Add(5, 1);
  EXPECT_DEATH(in.Add(5, 1), "increasing");
}

TEST(ProgressTest, MaybeUpdateRaisesMatchAndNext) {
  Progress pr(5, 10, 0);
  EXPECT_TRUE(pr.MaybeUpdate(3));
  EXPECT_EQ(pr.match(), 3u);
  EXPECT_EQ(pr.next(), 5u);  // next never moves back
  EXPECT_FALSE(pr.MaybeUpdate(2));
  EXPECT_EQ(pr.match(), 3u);
  EXPECT_TRUE(pr.MaybeUpdate(7));
  EXPECT_EQ(pr.next(), 8u);
}

TEST(ProgressTest, ProbeSendsOneMessageAtATime) {
  Progress pr(5, 10, 0);
  ASSERT_EQ(pr.state(), ProgressState::kProbe);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(6, 10);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.next(), 5u);  // probing does not move next optimistically
  pr.OnHeartbeatResponse();
  EXPECT_FALSE(pr.IsPaused());
  pr.PauseProbe();
  EXPECT_TRUE(pr.IsPaused());
  // An accepted append unpauses.
  EXPECT_TRUE(pr.MaybeUpdate(6));
  EXPECT_FALSE(pr.IsPaused());
}

TEST(ProgressTest, ReplicateSendsOptimisticallyUntilInflightsFull) {
  Progress pr(1, 2, 0);
  pr.MaybeUpdate(4);
  pr.BecomeReplicate();
  EXPECT_EQ(pr.next(), 5u);
  pr.SentEntries(6, 10);
  EXPECT_EQ(pr.next(), 7u);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(8, 10);
  EXPECT_EQ(pr.next(), 9u);
  EXPECT_TRUE(pr.IsPaused());
  pr.MaybeUpdate(6);
  pr.inflights().FreeLE(6);
  EXPECT_FALSE(pr.IsPaused());
}

TEST(ProgressTest, HeartbeatResponseFreesOneSlotOfFullPipeline) {
  Progress pr(1, 1, 0);
  pr.BecomeReplicate();
  pr.SentEntries(3, 10);
  ASSERT_TRUE(pr.IsPaused());
  pr.OnHeartbeatResponse();
  EXPECT_FALSE(pr.IsPaused());
}

TEST(ProgressTest, ReplicateRejectionFallsBackToMatch) {
  Progress pr(1, 10, 0);
  pr.MaybeUpdate(5);
  pr.BecomeReplicate();
  pr.SentEntries(8, 1);
  pr.SentEntries(10, 1);
  EXPECT_EQ(pr.next(), 11u);
  // Stale: rejected index at or below match.
  EXPECT_FALSE(pr.MaybeDecrTo(5, 2));
  EXPECT_EQ(pr.next(), 11u);
  EXPECT_TRUE(pr.MaybeDecrTo(8, 2));
  EXPECT_EQ(pr.next(), 6u);  // match + 1, the hint is irrelevant
}

TEST(ProgressTest, ProbeRejectionUsesHintButNotBelowMatch) {
  Progress pr(10, 10, 0);
  // Only a rejection of the last probe (next - 1) counts.
  EXPECT_FALSE(pr.MaybeDecrTo(5, 2));
  EXPECT_EQ(pr.next(), 10u);
  EXPECT_TRUE(pr.MaybeDecrTo(9, 3));
  EXPECT_EQ(pr.next(), 4u);  // hint + 1
  pr.MaybeUpdate(2);
  EXPECT_TRUE(pr.MaybeDecrTo(3, 0));
  EXPECT_EQ(pr.next(), 3u);  // never below match + 1
  // A hint above the rejected index cannot raise next.
  Progress pr2(10, 10, 0);
  EXPECT_TRUE(pr2.MaybeDecrTo(9, 20));
  EXPECT_EQ(pr2.next(), 9u);
}

TEST(ProgressTest, SnapshotStateIsPausedAndProbesPastTheSnapshot) {
  Progress pr(3, 10, 0);
  pr.MaybeUpdate(2);
  pr.BecomeSnapshot(20);
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_EQ(pr.pending_snapshot(), 20u);
  pr.OnHeartbeatResponse();
  EXPECT_TRUE(pr.IsPaused());
  pr.BecomeProbe();
  EXPECT_EQ(pr.next(), 21u);
  EXPECT_EQ(pr.pending_snapshot(), 0u);
  // Without a pending snapshot (delivery failed), back to match + 1.
  pr.BecomeSnapshot(0);
  pr.BecomeProbe();
  EXPECT_EQ(pr.next(), 3u);
}

TEST(ProgressTest, StateChangesResetInflights) {
  Progress pr(1, 10, 100);
  pr.BecomeReplicate();
  pr.SentEntries(2, 60);
  pr.SentEntries(3, 60);
  ASSERT_TRUE(pr.IsPaused());  // 120 bytes >= 100
  pr.BecomeProbe();
  EXPECT_EQ(pr.inflights().Count(), 0u);
  EXPECT_EQ(pr.inflights().Bytes(), 0u);
  EXPECT_EQ(pr.next(), 1u);
}

}  // namespace
}  // namespace raftkv::raft
