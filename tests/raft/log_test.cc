// Unit tests of RaftLog: the stable + unstable log view, the follower's
// AppendEntries consistency check and truncation (Raft paper §5.3), the
// fast back-off search (dissertation §5.3 / etcd findConflictByTerm), the
// up-to-date check (§5.4.1), commitment by term (§5.4.2) and the size
// limits on slices.
#include "raft/log.h"

#include <gtest/gtest.h>

#include "raft/memory_storage.h"
#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::MakeEntries;
using rafttest::MakeEntry;

constexpr uint64_t kNoLimit = UINT64_MAX;

// Storage holding entries 1..terms.size() with the given terms.
std::unique_ptr<MemoryStorage> StorageWith(const std::vector<uint64_t>& terms) {
  auto s = std::make_unique<MemoryStorage>();
  s->Append(MakeEntries(1, terms));
  return s;
}

std::vector<uint64_t> Terms(const std::vector<Entry>& entries) {
  std::vector<uint64_t> out;
  for (const Entry& e : entries) out.push_back(e.term());
  return out;
}

std::vector<uint64_t> Indexes(const std::vector<Entry>& entries) {
  std::vector<uint64_t> out;
  for (const Entry& e : entries) out.push_back(e.index());
  return out;
}

// Dissertation §5.3 (fast back-off): the largest index <= i whose term is
// <= t lets a leader skip a whole divergent term per round trip.
TEST(RaftLogTest, FindConflictByTermFindsLastIndexWithTermAtMost) {
  // index:  1 2 3 4 5 6 7 8
  // term:   1 1 2 2 4 4 4 5
  auto storage = StorageWith({1, 1, 2, 2, 4, 4, 4, 5});
  RaftLog log(storage.get(), kNoLimit);
  using P = std::pair<uint64_t, uint64_t>;
  EXPECT_EQ(log.FindConflictByTerm(8, 5), P(8, 5));
  EXPECT_EQ(log.FindConflictByTerm(8, 6), P(8, 5));
  EXPECT_EQ(log.FindConflictByTerm(8, 4), P(7, 4));
  EXPECT_EQ(log.FindConflictByTerm(8, 3), P(4, 2));
  EXPECT_EQ(log.FindConflictByTerm(6, 2), P(4, 2));
  EXPECT_EQ(log.FindConflictByTerm(3, 1), P(2, 1));
  EXPECT_EQ(log.FindConflictByTerm(8, 0), P(0, 0));
  // Beyond the log: unknown term, keep the index.
  EXPECT_EQ(log.FindConflictByTerm(20, 3), P(20, 0));
}

TEST(RaftLogTest, FindConflictByTermStopsAtCompactedIndexWithUnknownTerm) {
  MemoryStorage storage;
  Snapshot snap;
  snap.mutable_metadata()->set_index(3);
  snap.mutable_metadata()->set_term(2);
  ASSERT_TRUE(storage.ApplySnapshot(snap));
  storage.Append(MakeEntries(4, {3, 3, 5}));
  RaftLog log(&storage, kNoLimit);
  using P = std::pair<uint64_t, uint64_t>;
  EXPECT_EQ(log.FindConflictByTerm(6, 3), P(5, 3));
  // The snapshot's own index still has a known term.
  EXPECT_EQ(log.FindConflictByTerm(6, 2), P(3, 2));
  // Below the snapshot the term is unknown: stop there, term 0.
  EXPECT_EQ(log.FindConflictByTerm(6, 1), P(2, 0));
}

// Raft paper §5.3: the follower appends only if its entry at prevLogIndex
// has prevLogTerm; a conflicting suffix is deleted and replaced.
TEST(RaftLogTest, MaybeAppendRejectsOnTermMismatch) {
  auto storage = StorageWith({1, 2, 3});
  RaftLog log(storage.get(), kNoLimit);
  EXPECT_FALSE(log.MaybeAppend(2, 3, 3, MakeEntries(3, {4})).has_value());
  EXPECT_FALSE(log.MaybeAppend(4, 3, 3, MakeEntries(5, {4})).has_value());
  EXPECT_EQ(log.LastIndex(), 3u);
  EXPECT_EQ(log.committed(), 0u);
}

TEST(RaftLogTest, MaybeAppendTruncatesConflictingSuffix) {
  auto storage = StorageWith({1, 2, 3, 3});
  RaftLog log(storage.get(), kNoLimit);
  log.CommitTo(1);
  auto last = log.MaybeAppend(1, 1, 3, MakeEntries(2, {4, 4}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 3u);
  // Entry 4 (term 3) was after the conflict: gone.
  EXPECT_EQ(log.LastIndex(), 3u);
  EXPECT_EQ(log.TermOrZero(2), 4u);
  EXPECT_EQ(log.TermOrZero(3), 4u);
  EXPECT_EQ(log.committed(), 3u);
  // The replacement is unstable, starting at the conflict.
  EXPECT_EQ(Indexes(log.UnstableEntries()), (std::vector<uint64_t>{2, 3}));
}

TEST(RaftLogTest, MaybeAppendKeepsLongerMatchingLog) {
  // A stale or duplicated AppendEntries must not truncate entries that
  // follow the ones it carries (Figure 2, receiver rule 3: only delete on a
  // conflict).
  auto storage = StorageWith({1, 1, 1, 1});
  RaftLog log(storage.get(), kNoLimit);
  auto last = log.MaybeAppend(1, 1, 4, MakeEntries(2, {1}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 2u);
  EXPECT_EQ(log.LastIndex(), 4u);
  EXPECT_TRUE(log.UnstableEntries().empty());
  // Commit never goes past what this message proved to match.
  EXPECT_EQ(log.committed(), 2u);
}

TEST(RaftLogTest, MaybeAppendAppendsNewEntries) {
  auto storage = StorageWith({1, 1});
  RaftLog log(storage.get(), kNoLimit);
  auto last = log.MaybeAppend(2, 1, 1, MakeEntries(3, {2, 2}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 4u);
  EXPECT_EQ(Terms(log.UnstableEntries()), (std::vector<uint64_t>{2, 2}));
  EXPECT_EQ(log.committed(), 1u);
}

TEST(RaftLogDeathTest, MaybeAppendNeverTruncatesCommittedEntries) {
  auto storage = StorageWith({1, 1, 1});
  RaftLog log(storage.get(), kNoLimit);
  log.CommitTo(3);
  EXPECT_DEATH(log.MaybeAppend(1, 1, 3, MakeEntries(2, {2})), "committed");
}

TEST(RaftLogTest, TermRangeCoversSnapshotIndexToLastIndex) {
  MemoryStorage storage;
  storage.Append(MakeEntries(1, {1, 2, 3, 4, 5}));
  ASSERT_TRUE(storage.CreateSnapshot(3, ConfState(), "").ok());
  ASSERT_TRUE(storage.Compact(3).ok());
  RaftLog log(&storage, kNoLimit);
  uint64_t term = 0;
  EXPECT_TRUE(log.Term(2, &term).IsCompacted());
  ASSERT_TRUE(log.Term(3, &term).ok());
  EXPECT_EQ(term, 3u);
  ASSERT_TRUE(log.Term(5, &term).ok());
  EXPECT_EQ(term, 5u);
  EXPECT_TRUE(log.Term(6, &term).IsUnavailable());
  EXPECT_EQ(log.FirstIndex(), 4u);
  EXPECT_EQ(log.LastIndex(), 5u);
  // A restarted log starts committed at the snapshot.
  EXPECT_EQ(log.committed(), 3u);
  EXPECT_EQ(log.applied(), 3u);
}

// Raft paper §5.4.1: the log with the later last term is more up-to-date;
// with equal last terms, the longer log is.
TEST(RaftLogTest, IsUpToDateComparesLastTermThenLength) {
  auto storage = StorageWith({1, 2, 2});
  RaftLog log(storage.get(), kNoLimit);
  EXPECT_TRUE(log.IsUpToDate(1, 3));    // higher term, shorter log
  EXPECT_TRUE(log.IsUpToDate(3, 2));    // same term, same length
  EXPECT_TRUE(log.IsUpToDate(4, 2));    // same term, longer
  EXPECT_FALSE(log.IsUpToDate(2, 2));   // same term, shorter
  EXPECT_FALSE(log.IsUpToDate(10, 1));  // lower term, much longer
}

TEST(RaftLogTest, StableToIgnoresMismatchedTerm) {
  auto storage = StorageWith({1, 1, 1});
  RaftLog log(storage.get(), kNoLimit);
  log.Append(MakeEntries(4, {2, 2}));
  ASSERT_EQ(log.UnstableEntries().size(), 2u);
  // The entry persisted at 5 was term 1, but we now hold term 2 there: the
  // unstable entry must stay until its own version is persisted.
  log.StableTo(5, 1);
  EXPECT_EQ(log.UnstableEntries().size(), 2u);
  // Out of range: ignored.
  log.StableTo(3, 1);
  log.StableTo(6, 2);
  EXPECT_EQ(log.UnstableEntries().size(), 2u);
  log.StableTo(4, 2);
  EXPECT_EQ(Indexes(log.UnstableEntries()), (std::vector<uint64_t>{5}));
  storage->Append(MakeEntries(4, {2}));
  EXPECT_EQ(log.TermOrZero(4), 2u);
  EXPECT_EQ(log.LastIndex(), 5u);
}

TEST(RaftLogTest, AppendTruncatesUnstableTail) {
  auto storage = StorageWith({1});
  RaftLog log(storage.get(), kNoLimit);
  log.Append(MakeEntries(2, {2, 2, 2}));
  EXPECT_EQ(log.Append(MakeEntries(3, {3})), 3u);
  EXPECT_EQ(Terms(log.UnstableEntries()), (std::vector<uint64_t>{2, 3}));
  // Replacing stable entries too: the unstable tail starts at the conflict.
  EXPECT_EQ(log.Append(MakeEntries(1, {4})), 1u);
  EXPECT_EQ(Indexes(log.UnstableEntries()), (std::vector<uint64_t>{1}));
  EXPECT_EQ(log.TermOrZero(1), 4u);
}

// Raft paper §5.4.2: a leader commits by counting replicas only entries of
// its current term.
TEST(RaftLogTest, MaybeCommitOnlyEntriesOfTheGivenTerm) {
  auto storage = StorageWith({1, 1, 2, 3});
  RaftLog log(storage.get(), kNoLimit);
  EXPECT_FALSE(log.MaybeCommit(3, 3));  // entry 3 is from term 2
  EXPECT_EQ(log.committed(), 0u);
  EXPECT_TRUE(log.MaybeCommit(4, 3));
  EXPECT_EQ(log.committed(), 4u);
  EXPECT_FALSE(log.MaybeCommit(2, 1));  // never moves back
  EXPECT_EQ(log.committed(), 4u);
}

TEST(RaftLogTest, SliceLimitsBytesButReturnsAtLeastOneEntry) {
  MemoryStorage storage;
  std::vector<Entry> stable;
  for (uint64_t i = 1; i <= 4; ++i) {
    stable.push_back(MakeEntry(1, i, std::string(100, 'x')));
  }
  storage.Append(stable);
  RaftLog log(&storage, kNoLimit);
  std::vector<Entry> unstable;
  for (uint64_t i = 5; i <= 8; ++i) {
    unstable.push_back(MakeEntry(1, i, std::string(100, 'y')));
  }
  log.Append(unstable);
  const uint64_t size = stable[0].ByteSizeLong();

  std::vector<Entry> out;
  ASSERT_TRUE(log.Slice(1, 9, kNoLimit, &out).ok());
  EXPECT_EQ(out.size(), 8u);
  out.clear();
  ASSERT_TRUE(log.Slice(1, 9, 0, &out).ok());
  EXPECT_EQ(Indexes(out), (std::vector<uint64_t>{1}));
  out.clear();
  // Crossing from stable to unstable entries.
  ASSERT_TRUE(log.Slice(3, 9, 3 * size, &out).ok());
  EXPECT_EQ(Indexes(out), (std::vector<uint64_t>{3, 4, 5}));
  out.clear();
  ASSERT_TRUE(log.Slice(6, 9, 2 * size + size / 2, &out).ok());
  EXPECT_EQ(Indexes(out), (std::vector<uint64_t>{6, 7}));
}

TEST(RaftLogTest, NextCommittedEntriesRespectsSizeLimit) {
  MemoryStorage storage;
  std::vector<Entry> entries;
  for (uint64_t i = 1; i <= 6; ++i) {
    entries.push_back(MakeEntry(1, i, std::string(100, 'x')));
  }
  storage.Append(entries);
  const uint64_t size = entries[0].ByteSizeLong();
  RaftLog log(&storage, 2 * size);
  log.CommitTo(5);
  EXPECT_TRUE(log.HasNextCommittedEntries());
  EXPECT_EQ(Indexes(log.NextCommittedEntries()), (std::vector<uint64_t>{1, 2}));
  log.AppliedTo(2);
  EXPECT_EQ(Indexes(log.NextCommittedEntries()), (std::vector<uint64_t>{3, 4}));
  log.AppliedTo(4);
  EXPECT_EQ(Indexes(log.NextCommittedEntries()), (std::vector<uint64_t>{5}));
  log.AppliedTo(5);
  EXPECT_FALSE(log.HasNextCommittedEntries());
}

// Handed out but not yet applied, committed entries hold back the next
// hand-off once they reach max_committed_size_per_ready: a slow state
// machine leaves the rest in the log rather than queued in memory.
TEST(RaftLogTest, EntriesBeingAppliedHoldBackTheNextHandOff) {
  MemoryStorage storage;
  std::vector<Entry> entries;
  for (uint64_t i = 1; i <= 8; ++i) {
    entries.push_back(MakeEntry(1, i, std::string(100, 'x')));
  }
  storage.Append(entries);
  const uint64_t size = entries[0].ByteSizeLong();
  RaftLog log(&storage, 3 * size);
  log.CommitTo(4);
  std::vector<Entry> first = log.NextCommittedEntries();
  EXPECT_EQ(Indexes(first), (std::vector<uint64_t>{1, 2, 3}));
  log.AcceptApplying(first);
  EXPECT_FALSE(log.HasNextCommittedEntries());  // 3 entries being applied
  EXPECT_TRUE(log.NextCommittedEntries().empty());
  log.AppliedTo(2);  // part of the batch: it still counts
  EXPECT_FALSE(log.HasNextCommittedEntries());
  log.AppliedTo(3);
  ASSERT_TRUE(log.HasNextCommittedEntries());
  std::vector<Entry> second = log.NextCommittedEntries();
  EXPECT_EQ(Indexes(second), (std::vector<uint64_t>{4}));
  log.AcceptApplying(second);
  // One entry being applied: room for two more.
  log.CommitTo(8);
  std::vector<Entry> third = log.NextCommittedEntries();
  EXPECT_EQ(Indexes(third), (std::vector<uint64_t>{5, 6}));
  log.AcceptApplying(third);
  EXPECT_FALSE(log.HasNextCommittedEntries());
  log.AppliedTo(6);
  EXPECT_EQ(Indexes(log.NextCommittedEntries()), (std::vector<uint64_t>{7, 8}));
}

TEST(RaftLogTest, RestoreReplacesTheLogBySnapshot) {
  auto storage = StorageWith({1, 1, 1});
  RaftLog log(storage.get(), kNoLimit);
  Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(4);
  log.Restore(snap);
  EXPECT_EQ(log.FirstIndex(), 11u);
  EXPECT_EQ(log.LastIndex(), 10u);
  EXPECT_EQ(log.LastTerm(), 4u);
  EXPECT_EQ(log.committed(), 10u);
  EXPECT_TRUE(log.UnstableSnapshot().has_value());
  EXPECT_TRUE(log.UnstableEntries().empty());
  EXPECT_FALSE(log.HasNextCommittedEntries());
  // Entries after the snapshot attach to it.
  auto last = log.MaybeAppend(10, 4, 11, MakeEntries(11, {4}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(log.committed(), 11u);
}

}  // namespace
}  // namespace raftkv::raft
