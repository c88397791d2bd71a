// Unit tests of the SafetyChecker: every property is fed a fabricated
// violation and must report it (a checker that cannot fail proves nothing),
// and a consistent history must pass. Never runs a cluster.
#include "tests/sim/invariants.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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

void ExpectViolation(const Status& s, const std::string& property) {
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(property), std::string::npos) << s.ToString();
}

TEST(SafetyCheckerTest, ConsistentHistoryPasses) {
  SafetyChecker checker(3);
  Disk a(&checker, 1), b(&checker, 2);
  ASSERT_TRUE(a.Write({E(1, 1, ""), E(2, 1, "x")}, 2).ok());
  ASSERT_TRUE(b.Write({E(1, 1, ""), E(2, 1, "x")}, 1).ok());
  ASSERT_TRUE(checker.OnBecomeLeader(1, 1, a.storage()).ok());
  ASSERT_TRUE(checker.OnBecomeLeader(2, 2, b.storage()).ok());
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
  ASSERT_TRUE(checker.OnBecomeLeader(1, 4, empty).ok());
  ASSERT_TRUE(checker.OnBecomeLeader(1, 4, empty).ok());  // same node again
  ExpectViolation(checker.OnBecomeLeader(2, 4, empty), "election safety");
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
  ExpectViolation(checker.OnBecomeLeader(2, 2, short_log.storage()),
                  "leader completeness");
  ASSERT_TRUE(other_term.Write({E(1, 1, "a"), E(2, 2, "q")}).ok());
  ExpectViolation(checker.OnBecomeLeader(3, 3, other_term.storage()),
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

}  // namespace
}  // namespace raftkv::sim
