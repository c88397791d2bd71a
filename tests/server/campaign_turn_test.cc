// Tests of CampaignTurn: the survivors of a lost leader campaign in id
// order, each with its own turn.
#include "server/campaign_turn.h"

#include <gtest/gtest.h>

namespace raftkv::server {
namespace {

TEST(CampaignTurnTest, SurvivorsTakeTurnsInIdOrderSkippingTheLostLeader) {
  const std::set<uint64_t> voters = {1, 2, 3};
  EXPECT_EQ(CampaignTurn(voters, 2, 1), 0);
  EXPECT_EQ(CampaignTurn(voters, 3, 1), 1);
  EXPECT_EQ(CampaignTurn(voters, 1, 2), 0);
  EXPECT_EQ(CampaignTurn(voters, 3, 2), 1);
  EXPECT_EQ(CampaignTurn(voters, 1, 3), 0);
  EXPECT_EQ(CampaignTurn(voters, 2, 3), 1);
}

TEST(CampaignTurnTest, EverySurvivorOfFiveHasItsOwnTurn) {
  const std::set<uint64_t> voters = {2, 4, 6, 8, 10};
  for (uint64_t lost : voters) {
    std::set<int> turns;
    for (uint64_t self : voters) {
      if (self != lost) turns.insert(CampaignTurn(voters, self, lost));
    }
    EXPECT_EQ(turns, (std::set<int>{0, 1, 2, 3})) << "lost leader " << lost;
  }
}

TEST(CampaignTurnTest, ANonVoterGoesAfterEveryVoter) {
  EXPECT_EQ(CampaignTurn({1, 2, 3}, 4, 1), 2);
  EXPECT_EQ(CampaignTurn({1, 2, 3}, 1, 1), 2);
}

}  // namespace
}  // namespace raftkv::server
