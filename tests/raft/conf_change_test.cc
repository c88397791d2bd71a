// Tests of the pure membership functions (raft/conf_change.h): what one
// single-server change (dissertation §4.1) makes of a configuration, every
// change it refuses, and the helpers around ConfState and ConfChange.
#include "raft/conf_change.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

namespace raftkv::raft {
namespace {

ConfState Conf(std::vector<uint64_t> voters, std::vector<uint64_t> learners) {
  ConfState conf;
  for (uint64_t id : voters) conf.add_voters(id);
  for (uint64_t id : learners) conf.add_learners(id);
  return conf;
}

ConfChange Change(ConfChangeType type, uint64_t node) {
  ConfChange change;
  change.set_type(type);
  change.set_node(node);
  return change;
}

std::vector<uint64_t> VotersOf(const ConfState& conf) {
  return {conf.voters().begin(), conf.voters().end()};
}

std::vector<uint64_t> LearnersOf(const ConfState& conf) {
  return {conf.learners().begin(), conf.learners().end()};
}

// The change is refused with InvalidArgument and a message naming why.
void ExpectRefused(const ConfState& conf, const ConfChange& change,
                   const std::string& why) {
  auto next = ApplyConfChange(conf, change);
  ASSERT_FALSE(next.ok()) << DescribeConfChange(change) << " on "
                          << DescribeConfState(conf) << " gave "
                          << DescribeConfState(next.value());
  EXPECT_EQ(next.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(next.status().message().find(why), std::string::npos)
      << next.status().ToString();
}

TEST(ApplyConfChangeTest, AddingALearnerKeepsTheVotersAndSortsTheOutput) {
  // Unsorted input: the output is sorted all the same.
  auto next =
      ApplyConfChange(Conf({3, 1, 2}, {9}), Change(CONF_ADD_LEARNER, 5));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(VotersOf(*next), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(LearnersOf(*next), (std::vector<uint64_t>{5, 9}));
}

TEST(ApplyConfChangeTest, PromotingALearnerMakesItAVoter) {
  auto next =
      ApplyConfChange(Conf({1, 2, 3}, {6, 4}), Change(CONF_PROMOTE_LEARNER, 4));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(VotersOf(*next), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(LearnersOf(*next), (std::vector<uint64_t>{6}));
}

TEST(ApplyConfChangeTest, RemovingAVoterKeepsTheLearners) {
  auto next =
      ApplyConfChange(Conf({1, 2, 3}, {4}), Change(CONF_REMOVE_NODE, 2));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(VotersOf(*next), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(LearnersOf(*next), (std::vector<uint64_t>{4}));
}

TEST(ApplyConfChangeTest, RemovingALearnerKeepsTheVoters) {
  auto next =
      ApplyConfChange(Conf({1, 2, 3}, {4}), Change(CONF_REMOVE_NODE, 4));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(VotersOf(*next), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(LearnersOf(*next).empty());
}

TEST(ApplyConfChangeTest, TheSoleVoterMayLoseItsLearners) {
  auto next = ApplyConfChange(Conf({1}, {2}), Change(CONF_REMOVE_NODE, 2));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(VotersOf(*next), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(LearnersOf(*next).empty());
}

TEST(ApplyConfChangeTest, AnEmptyConfigurationAcceptsALearner) {
  // What a joining node starts from before it knows the cluster.
  auto next = ApplyConfChange(ConfState(), Change(CONF_ADD_LEARNER, 4));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_TRUE(VotersOf(*next).empty());
  EXPECT_EQ(LearnersOf(*next), (std::vector<uint64_t>{4}));
}

TEST(ApplyConfChangeTest, AddingAMemberAgainIsRefused) {
  ExpectRefused(Conf({1, 2, 3}, {4}), Change(CONF_ADD_LEARNER, 2),
                "member already");
  ExpectRefused(Conf({1, 2, 3}, {4}), Change(CONF_ADD_LEARNER, 4),
                "member already");
}

TEST(ApplyConfChangeTest, PromotingAVoterOrANonMemberIsRefused) {
  ExpectRefused(Conf({1, 2, 3}, {4}), Change(CONF_PROMOTE_LEARNER, 2),
                "is a voter already");
  ExpectRefused(Conf({1, 2, 3}, {4}), Change(CONF_PROMOTE_LEARNER, 7),
                "is not a learner");
}

TEST(ApplyConfChangeTest, RemovingANonMemberIsRefused) {
  ExpectRefused(Conf({1, 2, 3}, {4}), Change(CONF_REMOVE_NODE, 5),
                "is not a member");
}

TEST(ApplyConfChangeTest, RemovingTheLastVoterIsRefused) {
  ExpectRefused(Conf({1}, {}), Change(CONF_REMOVE_NODE, 1), "last voter");
  // Learners do not make it any less the last voter.
  ExpectRefused(Conf({1}, {2, 3}), Change(CONF_REMOVE_NODE, 1), "last voter");
}

TEST(ApplyConfChangeTest, NodeZeroIsRefusedForEveryType) {
  for (ConfChangeType type :
       {CONF_ADD_LEARNER, CONF_PROMOTE_LEARNER, CONF_REMOVE_NODE}) {
    ExpectRefused(Conf({1, 2, 3}, {}), Change(type, 0), "node id 0");
  }
}

TEST(ApplyConfChangeTest, AnUnknownTypeIsRefused) {
  ExpectRefused(Conf({1, 2, 3}, {}), Change(CONF_UNKNOWN, 4), "unknown");
  ExpectRefused(Conf({1, 2, 3}, {}), Change(static_cast<ConfChangeType>(42), 4),
                "unknown");
}

TEST(ConfStateTest, MakeConfStateHasSortedVotersAndNoLearners) {
  ConfState conf = MakeConfState({3, 1, 2});
  EXPECT_EQ(VotersOf(conf), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(LearnersOf(conf).empty());
}

TEST(ConfStateTest, MembershipQueriesTellVotersFromLearners) {
  ConfState conf = Conf({1, 2}, {3});
  EXPECT_EQ(Voters(conf), (std::set<uint64_t>{1, 2}));
  EXPECT_EQ(Learners(conf), (std::set<uint64_t>{3}));
  EXPECT_TRUE(IsVoter(conf, 1));
  EXPECT_FALSE(IsVoter(conf, 3));
  EXPECT_TRUE(IsLearner(conf, 3));
  EXPECT_FALSE(IsLearner(conf, 1));
  EXPECT_TRUE(IsMember(conf, 2));
  EXPECT_TRUE(IsMember(conf, 3));
  EXPECT_FALSE(IsMember(conf, 4));
}

TEST(ConfStateTest, SameConfStateIgnoresOrderButNotRoles) {
  EXPECT_TRUE(SameConfState(Conf({1, 2, 3}, {5, 4}), Conf({3, 2, 1}, {4, 5})));
  EXPECT_FALSE(SameConfState(Conf({1, 2, 3}, {4}), Conf({1, 2, 3, 4}, {})));
  EXPECT_FALSE(SameConfState(Conf({1, 2}, {}), Conf({1, 2, 3}, {})));
}

TEST(ConfStateTest, DescriptionsNameTheMembersAndTheChange) {
  EXPECT_EQ(DescribeConfState(Conf({3, 1}, {})), "voters {1,3}");
  EXPECT_EQ(DescribeConfState(Conf({1, 2, 3}, {4})),
            "voters {1,2,3} learners {4}");
  EXPECT_EQ(DescribeConfChange(Change(CONF_ADD_LEARNER, 4)), "add learner 4");
  EXPECT_EQ(DescribeConfChange(Change(CONF_PROMOTE_LEARNER, 4)), "promote 4");
  EXPECT_EQ(DescribeConfChange(Change(CONF_REMOVE_NODE, 2)), "remove 2");
  EXPECT_EQ(DescribeConfChange(Change(CONF_UNKNOWN, 2)), "unknown change of 2");
}

TEST(DecodeConfChangeTest, AConfChangeEntryRoundTrips) {
  ConfChange change = Change(CONF_PROMOTE_LEARNER, 7);
  change.set_context("10.0.0.7:7000");
  Entry e;
  e.set_index(12);
  e.set_type(ENTRY_CONF_CHANGE);
  e.set_data(change.SerializeAsString());
  auto decoded = DecodeConfChange(e);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->type(), CONF_PROMOTE_LEARNER);
  EXPECT_EQ(decoded->node(), 7u);
  EXPECT_EQ(decoded->context(), "10.0.0.7:7000");
}

TEST(DecodeConfChangeTest, ANormalEntryOrGarbageHoldsNoChange) {
  Entry normal;
  normal.set_index(3);
  normal.set_type(ENTRY_NORMAL);
  normal.set_data(Change(CONF_REMOVE_NODE, 2).SerializeAsString());
  auto decoded = DecodeConfChange(normal);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), Status::Code::kInvalidArgument);

  Entry garbage;
  garbage.set_index(4);
  garbage.set_type(ENTRY_CONF_CHANGE);
  garbage.set_data("\xff\xff\xff");  // a truncated varint
  decoded = DecodeConfChange(garbage);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace raftkv::raft
