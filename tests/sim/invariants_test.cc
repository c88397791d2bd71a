// Unit tests of the SafetyChecker: every property is fed a fabricated
// violation and must report it (a checker that cannot fail proves nothing),
// and a consistent history must pass. Never runs a cluster.
#include "tests/sim/invariants.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "raft/conf_change.h"
#include "raft/memory_storage.h"

namespace raftkv::sim {
namespace {

raft::Entry E(uint64_t index, uint64_t term, const std::string& data) {
  raft::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(data);
  return e;
}

raft::HardState Hs(uint64_t term, uint64_t commit) {
  raft::HardState hs;
  hs.set_term(term);
  hs.set_commit(commit);
  return hs;
}

// A node's disk after writing `entries` and `commit`, reported to `checker`.
class Disk {
 public:
  Disk(SafetyChecker* checker, uint64_t node)
      : checker_(checker), node_(node) {}
  Status Write(const std::vector<raft::Entry>& entries, uint64_t commit = 0) {
    storage_.Append(entries);
    RAFTKV_RETURN_IF_ERROR(
        checker_->OnPersistEntries(node_, entries, storage_));
    if (commit == 0) return Status::OK();
    const raft::HardState hs =
        Hs(entries.empty() ? 1 : entries.back().term(), commit);
    storage_.SetHardState(hs);
    return checker_->OnPersistHardState(node_, hs, storage_);
  }
  const raft::MemoryStorage& storage() const { return storage_; }

 private:
  SafetyChecker* checker_;
  uint64_t node_;
  raft::MemoryStorage storage_;
};

raft::ConfState Conf(std::vector<uint64_t> voters,
                     std::vector<uint64_t> learners = {}) {
  raft::ConfState conf;
  for (uint64_t v : voters) conf.add_voters(v);
  for (uint64_t l : learners) conf.add_learners(l);
  return conf;
}

// `node` wins `term` in configuration {1,2,3} with the votes of all three.
Status Lead(SafetyChecker& checker, uint64_t node, uint64_t term,
            const raft::Storage& log) {
  for (uint64_t voter : {1, 2, 3}) checker.OnVoteGranted(voter, node, term);
  return checker.OnBecomeLeader(node, term, log, Conf({1, 2, 3}));
}

raft::Entry ConfEntry(uint64_t index, uint64_t term, raft::ConfChangeType type,
                      uint64_t node) {
  raft::ConfChange change;
  change.set_type(type);
  change.set_node(node);
  raft::Entry e = E(index, term, change.SerializeAsString());
  e.set_type(raft::ENTRY_CONF_CHANGE);
  return e;
}

void ExpectViolation(const Status& s, const std::string& property) {
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(property), std::string::npos) << s.ToString();
}

TEST(SafetyCheckerTest, ConsistentHistoryPasses) {
  SafetyChecker checker(3);
  Disk a(&checker, 1), b(&checker, 2);
  ASSERT_TRUE(a.Write({E(1, 1, ""), E(2, 1, "x")}, 2).ok());
  ASSERT_TRUE(b.Write({E(1, 1, ""), E(2, 1, "x")}, 1).ok());
  ASSERT_TRUE(Lead(checker, 1, 1, a.storage()).ok());
  ASSERT_TRUE(Lead(checker, 2, 2, b.storage()).ok());
  AppliedState s1{1, ChainHash(0, E(1, 1, ""))};
  AppliedState s2{2, ChainHash(s1.hash, E(2, 1, "x"))};
  EXPECT_TRUE(checker.OnApply(1, E(1, 1, ""), s1).ok());
  EXPECT_TRUE(checker.OnApply(1, E(2, 1, "x"), s2).ok());
  EXPECT_TRUE(checker.OnApply(2, E(1, 1, ""), s1).ok());
  EXPECT_TRUE(checker.OnRestoreStateMachine(3, s2).ok());
  checker.OnReadRequested(1);
  EXPECT_TRUE(checker.OnReadState(2, 1, 2).ok());
  EXPECT_TRUE(
      SafetyChecker::CheckLogMatching({&a.storage(), &b.storage()}).ok());
  EXPECT_EQ(checker.committed_index(), 2u);
  EXPECT_EQ(checker.terms_with_leader(), 2u);
  EXPECT_EQ(checker.reads_checked(), 1u);
}

TEST(SafetyCheckerTest, TwoLeadersInOneTerm) {
  SafetyChecker checker(3);
  raft::MemoryStorage empty;
  ASSERT_TRUE(Lead(checker, 1, 4, empty).ok());
  ASSERT_TRUE(Lead(checker, 1, 4, empty).ok());  // same node again
  ExpectViolation(Lead(checker, 2, 4, empty), "election safety");
}

TEST(SafetyCheckerTest, SameIndexAndTermWithDifferentData) {
  SafetyChecker checker(3);
  Disk a(&checker, 1), b(&checker, 2);
  ASSERT_TRUE(a.Write({E(1, 1, "a"), E(2, 1, "b")}).ok());
  ExpectViolation(b.Write({E(1, 1, "a"), E(2, 1, "X")}), "log matching");
}

TEST(SafetyCheckerTest, SameIndexAndTermAfterDifferentPredecessors) {
  SafetyChecker checker(3);
  Disk a(&checker, 1), b(&checker, 2);
  ASSERT_TRUE(a.Write({E(1, 1, "a"), E(2, 2, "b")}).ok());
  ExpectViolation(b.Write({E(1, 2, "z"), E(2, 2, "b")}), "log matching");
}

TEST(SafetyCheckerTest, WholeLogsThatShareAnEntryButNotItsPrefix) {
  raft::MemoryStorage a, b;
  a.Append({E(1, 1, "a"), E(2, 1, "b"), E(3, 2, "c")});
  b.Append({E(1, 1, "a"), E(2, 1, "B"), E(3, 2, "c")});
  ExpectViolation(SafetyChecker::CheckLogMatching({&a, &b}), "log matching");
  raft::MemoryStorage c;
  c.Append({E(1, 1, "a"), E(2, 3, "other"), E(3, 3, "d")});
  EXPECT_TRUE(SafetyChecker::CheckLogMatching({&a, &c}).ok());
}

TEST(SafetyCheckerTest, CommittedEntryChangesTerm) {
  SafetyChecker checker(3);
  Disk a(&checker, 1), b(&checker, 2);
  ASSERT_TRUE(a.Write({E(1, 1, "a"), E(2, 1, "b")}, 2).ok());
  ExpectViolation(b.Write({E(1, 1, "a"), E(2, 2, "c")}, 2), "committed prefix");
}

TEST(SafetyCheckerTest, CommitBeyondThePersistedLog) {
  SafetyChecker checker(3);
  Disk a(&checker, 1);
  ExpectViolation(a.Write({E(1, 1, "a")}, 3), "committed prefix");
}

TEST(SafetyCheckerTest, LeaderWithoutACommittedEntry) {
  SafetyChecker checker(3);
  Disk a(&checker, 1), short_log(&checker, 2), other_term(&checker, 3);
  ASSERT_TRUE(a.Write({E(1, 1, "a"), E(2, 1, "b")}, 2).ok());
  ASSERT_TRUE(short_log.Write({E(1, 1, "a")}).ok());
  ExpectViolation(Lead(checker, 2, 2, short_log.storage()),
                  "leader completeness");
  ASSERT_TRUE(other_term.Write({E(1, 1, "a"), E(2, 2, "q")}).ok());
  ExpectViolation(Lead(checker, 3, 3, other_term.storage()),
                  "leader completeness");
}

TEST(SafetyCheckerTest, DifferentEntriesAppliedAtOneIndex) {
  SafetyChecker checker(3);
  Disk a(&checker, 1);
  ASSERT_TRUE(a.Write({E(1, 1, "a")}, 1).ok());
  ASSERT_TRUE(checker.OnApply(1, E(1, 1, "a"), {1, 111}).ok());
  ExpectViolation(checker.OnApply(2, E(1, 1, "a"), {1, 222}),
                  "state machine safety");
}

TEST(SafetyCheckerTest, ApplyingAnUncommittedEntry) {
  SafetyChecker checker(3);
  Disk a(&checker, 1);
  ASSERT_TRUE(a.Write({E(1, 1, "a"), E(2, 1, "b")}, 1).ok());
  ExpectViolation(checker.OnApply(1, E(2, 1, "b"), {2, 5}),
                  "state machine safety");
}

TEST(SafetyCheckerTest, RestoringAStateNobodyReached) {
  SafetyChecker checker(3);
  ExpectViolation(checker.OnRestoreStateMachine(1, {7, 99}),
                  "state machine safety");
}

TEST(SafetyCheckerTest, StaleAndUncommittedReads) {
  SafetyChecker checker(3);
  Disk a(&checker, 1);
  ASSERT_TRUE(a.Write({E(1, 1, "a"), E(2, 1, "b"), E(3, 1, "c")}, 2).ok());
  checker.OnReadRequested(1);
  ExpectViolation(checker.OnReadState(2, 1, 1), "linearizable reads");
  checker.OnReadRequested(2);
  ExpectViolation(checker.OnReadState(2, 2, 3), "linearizable reads");
  // A duplicate answer to an answered read is ignored.
  EXPECT_TRUE(checker.OnReadState(2, 1, 2).ok());
}

// --- Membership
// ---------------------------------------------------------------

TEST(SafetyCheckerTest, LeaderOutsideItsVotersOrWithoutAMajorityOfGrants) {
  SafetyChecker checker(5, 3);
  raft::MemoryStorage empty;
  // A learner of its own configuration.
  for (uint64_t v : {1, 2, 3}) checker.OnVoteGranted(v, 4, 1);
  ExpectViolation(checker.OnBecomeLeader(4, 1, empty, Conf({1, 2, 3}, {4})),
                  "membership");
  // Grants from a learner and a stranger do not count: 1 and 4, 5 of
  // voters {1,2,3}.
  for (uint64_t v : {1, 4, 5}) checker.OnVoteGranted(v, 1, 2);
  ExpectViolation(checker.OnBecomeLeader(1, 2, empty, Conf({1, 2, 3}, {4})),
                  "membership");
  checker.OnVoteGranted(2, 1, 3);
  checker.OnVoteGranted(1, 1, 3);
  EXPECT_TRUE(checker.OnBecomeLeader(1, 3, empty, Conf({1, 2, 3}, {4})).ok());
}

TEST(SafetyCheckerTest, RemovedNodeLeadsAfterItsRemovalCommitted) {
  SafetyChecker checker(4, 3);
  Disk a(&checker, 1);
  ASSERT_TRUE(
      a.Write({E(1, 1, ""), ConfEntry(2, 1, raft::CONF_REMOVE_NODE, 3)}, 2)
          .ok());
  EXPECT_TRUE(checker.RemovalCommitted(3));
  for (uint64_t v : {1, 2, 3}) checker.OnVoteGranted(v, 3, 2);
  ExpectViolation(checker.OnBecomeLeader(3, 2, a.storage(), Conf({1, 2, 3})),
                  "after its removal at index 2 committed");
}

TEST(SafetyCheckerTest, TwoUncommittedMembershipChanges) {
  SafetyChecker checker(5, 3);
  Disk a(&checker, 1);
  ASSERT_TRUE(a.Write({E(1, 1, "x")}, 1).ok());
  EXPECT_TRUE(checker.OnLeaderLog(1, 1, {2}).ok());
  // One committed and one not: fine.
  EXPECT_TRUE(checker.OnLeaderLog(1, 1, {1, 2}).ok());
  ExpectViolation(checker.OnLeaderLog(1, 1, {2, 3}), "more than one at a time");
}

TEST(SafetyCheckerTest, ConfigurationInEffectDiffersFromTheLog) {
  EXPECT_TRUE(
      SafetyChecker::OnConfInEffect(1, Conf({1, 2}, {3}), Conf({2, 1}, {3}))
          .ok());
  ExpectViolation(
      SafetyChecker::OnConfInEffect(1, Conf({1, 2, 3}), Conf({1, 2}, {3})),
      "membership");
}

TEST(SafetyCheckerTest, SnapshotRecordsAnotherConfiguration) {
  SafetyChecker checker(4, 3);
  Disk a(&checker, 1);
  ASSERT_TRUE(
      a.Write({E(1, 1, ""), ConfEntry(2, 1, raft::CONF_ADD_LEARNER, 4),
               ConfEntry(3, 1, raft::CONF_PROMOTE_LEARNER, 4), E(4, 1, "x")},
              4)
          .ok());
  raft::ConfState committed;
  ASSERT_TRUE(checker.CommittedConfAt(2, &committed));
  EXPECT_EQ(raft::DescribeConfState(committed), "voters {1,2,3} learners {4}");
  raft::SnapshotMetadata meta;
  meta.set_index(4);
  meta.set_term(1);
  *meta.mutable_conf_state() = Conf({1, 2, 3, 4});
  EXPECT_TRUE(checker.OnSnapshotConf(1, meta).ok());
  // The founding configuration, as the simulator once recorded.
  *meta.mutable_conf_state() = Conf({1, 2, 3});
  ExpectViolation(checker.OnSnapshotConf(1, meta), "committed as of");
}

}  // namespace
}  // namespace raftkv::sim
