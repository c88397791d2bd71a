// Unit tests of MemoryStorage, the in-memory raft::Storage the tests and the
// simulator persist to: the contract in raft/storage.h (index ranges, size
// limits, compaction) and the write side used when handling a Ready.
#include "raft/memory_storage.h"

#include <gtest/gtest.h>

#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::MakeEntries;
using rafttest::MakeEntry;

std::vector<uint64_t> Indexes(const std::vector<Entry>& entries) {
  std::vector<uint64_t> out;
  for (const Entry& e : entries) out.push_back(e.index());
  return out;
}

TEST(MemoryStorageTest, EmptyStorageHasOnlyTheDummyEntry) {
  MemoryStorage s;
  EXPECT_EQ(s.FirstIndex(), 1u);
  EXPECT_EQ(s.LastIndex(), 0u);
  uint64_t term = 7;
  ASSERT_TRUE(s.Term(0, &term).ok());
  EXPECT_EQ(term, 0u);
  EXPECT_TRUE(s.Term(1, &term).IsUnavailable());
  HardState hs;
  ConfState cs;
  ASSERT_TRUE(s.InitialState(&hs, &cs).ok());
  EXPECT_EQ(hs.term(), 0u);
  EXPECT_EQ(cs.voters_size(), 0);
}

TEST(MemoryStorageTest, AppendTruncatesConflictingSuffix) {
  MemoryStorage s;
  s.Append(MakeEntries(1, {1, 1, 1, 1}));
  s.Append(MakeEntries(3, {2}));
  EXPECT_EQ(s.LastIndex(), 3u);
  uint64_t term = 0;
  ASSERT_TRUE(s.Term(3, &term).ok());
  EXPECT_EQ(term, 2u);
  s.Append(MakeEntries(4, {2, 2}));
  EXPECT_EQ(s.LastIndex(), 5u);
}

TEST(MemoryStorageDeathTest, AppendWithGapDies) {
  MemoryStorage s;
  s.Append(MakeEntries(1, {1}));
  EXPECT_DEATH(s.Append(MakeEntries(3, {1})), "gap");
}

TEST(MemoryStorageTest, EntriesHonoursRangeAndSizeLimit) {
  MemoryStorage s;
  std::vector<Entry> entries;
  for (uint64_t i = 1; i <= 5; ++i) {
    entries.push_back(MakeEntry(1, i, std::string(50, 'x')));
  }
  s.Append(entries);
  const uint64_t size = entries[0].ByteSizeLong();
  std::vector<Entry> out;
  ASSERT_TRUE(s.Entries(2, 5, UINT64_MAX, &out).ok());
  EXPECT_EQ(Indexes(out), (std::vector<uint64_t>{2, 3, 4}));
  out.clear();
  ASSERT_TRUE(s.Entries(1, 6, 2 * size, &out).ok());
  EXPECT_EQ(Indexes(out), (std::vector<uint64_t>{1, 2}));
  out.clear();
  ASSERT_TRUE(s.Entries(1, 6, 0, &out).ok());  // at least one
  EXPECT_EQ(Indexes(out), (std::vector<uint64_t>{1}));
}

TEST(MemoryStorageTest, CompactKeepsTermOfLastCompactedEntry) {
  MemoryStorage s;
  s.Append(MakeEntries(1, {1, 2, 3, 4, 5}));
  ASSERT_TRUE(s.Compact(3).ok());
  EXPECT_EQ(s.FirstIndex(), 4u);
  EXPECT_EQ(s.LastIndex(), 5u);
  uint64_t term = 0;
  ASSERT_TRUE(s.Term(3, &term).ok());
  EXPECT_EQ(term, 3u);
  EXPECT_TRUE(s.Term(2, &term).IsCompacted());
  std::vector<Entry> out;
  EXPECT_TRUE(s.Entries(3, 5, UINT64_MAX, &out).IsCompacted());
  ASSERT_TRUE(s.Compact(2).ok());  // below: no-op
  EXPECT_EQ(s.FirstIndex(), 4u);
  EXPECT_FALSE(s.Compact(6).ok());  // beyond the log
  // Appending entries that were compacted is ignored, the rest attach.
  s.Append(MakeEntries(2, {2, 3, 4, 5, 6}));
  EXPECT_EQ(s.FirstIndex(), 4u);
  EXPECT_EQ(s.LastIndex(), 6u);
}

TEST(MemoryStorageTest, CreateSnapshotRecordsIndexTermAndMembership) {
  MemoryStorage s;
  s.Append(MakeEntries(1, {1, 1, 2}));
  ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  ASSERT_TRUE(s.CreateSnapshot(3, cs, "data").ok());
  Snapshot snap;
  ASSERT_TRUE(s.GetSnapshot(&snap).ok());
  EXPECT_EQ(snap.metadata().index(), 3u);
  EXPECT_EQ(snap.metadata().term(), 2u);
  EXPECT_EQ(snap.data(), "data");
  EXPECT_EQ(snap.metadata().conf_state().voters_size(), 2);
  EXPECT_EQ(s.CreateSnapshot(2, cs, "").code(),
            Status::Code::kFailedPrecondition);  // older
  EXPECT_EQ(s.CreateSnapshot(9, cs, "").code(),
            Status::Code::kInvalidArgument);  // beyond the log
  HardState hs;
  ConfState restored;
  ASSERT_TRUE(s.InitialState(&hs, &restored).ok());
  EXPECT_EQ(restored.voters_size(), 2);
}

TEST(MemoryStorageTest, ApplySnapshotReplacesLogAndIgnoresOlder) {
  MemoryStorage s;
  s.Append(MakeEntries(1, {1, 1, 1}));
  Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(3);
  ASSERT_TRUE(s.ApplySnapshot(snap));
  EXPECT_EQ(s.FirstIndex(), 11u);
  EXPECT_EQ(s.LastIndex(), 10u);
  uint64_t term = 0;
  ASSERT_TRUE(s.Term(10, &term).ok());
  EXPECT_EQ(term, 3u);
  snap.mutable_metadata()->set_index(5);
  EXPECT_FALSE(s.ApplySnapshot(snap));
  EXPECT_EQ(s.FirstIndex(), 11u);
  s.Append(MakeEntries(11, {3}));
  EXPECT_EQ(s.LastIndex(), 11u);
}

}  // namespace
}  // namespace raftkv::raft
