// Tests of the majority arithmetic used for commitment and elections.
#include "raft/quorum.h"

#include <gtest/gtest.h>

namespace raftkv::raft {
namespace {

TEST(QuorumTest, CommittedIndexIsTheMajorityMatch) {
  EXPECT_EQ(CommittedIndex({1, 2, 3}, {{1, 5}, {2, 3}, {3, 1}}), 3u);
  EXPECT_EQ(CommittedIndex({1, 2, 3}, {{1, 5}}), 0u);
  EXPECT_EQ(
      CommittedIndex({1, 2, 3, 4, 5}, {{1, 9}, {2, 8}, {3, 7}, {4, 2}, {5, 1}}),
      7u);
  EXPECT_EQ(CommittedIndex({1, 2, 3, 4}, {{1, 9}, {2, 8}, {3, 7}, {4, 1}}),
            8u - 1u);
  EXPECT_EQ(CommittedIndex({1}, {{1, 4}}), 4u);
}

TEST(QuorumTest, MatchOfNonVotersIsIgnored) {
  EXPECT_EQ(CommittedIndex({1, 2, 3}, {{1, 5}, {7, 5}, {8, 5}}), 0u);
}

TEST(QuorumTest, TallyVotes) {
  EXPECT_EQ(TallyVotes({1, 2, 3}, {{1, true}}), VoteResult::kPending);
  EXPECT_EQ(TallyVotes({1, 2, 3}, {{1, true}, {2, true}}), VoteResult::kWon);
  EXPECT_EQ(TallyVotes({1, 2, 3}, {{1, true}, {2, false}}),
            VoteResult::kPending);
  EXPECT_EQ(TallyVotes({1, 2, 3}, {{2, false}, {3, false}}), VoteResult::kLost);
  EXPECT_EQ(TallyVotes({1, 2, 3, 4}, {{1, true}, {2, true}}),
            VoteResult::kPending);
  EXPECT_EQ(TallyVotes({1, 2, 3, 4}, {{1, false}, {2, false}}),
            VoteResult::kLost);
  EXPECT_EQ(TallyVotes({1}, {{1, true}}), VoteResult::kWon);
  // Votes from non-voters never count.
  EXPECT_EQ(TallyVotes({1, 2, 3}, {{1, true}, {9, true}}),
            VoteResult::kPending);
}

}  // namespace
}  // namespace raftkv::raft
