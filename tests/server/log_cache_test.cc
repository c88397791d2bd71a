// LogCache tests: it mirrors the durable log it is loaded from, answers the
// core's reads, and keeps exact byte counts (in total and above an index)
// through appends, conflicting suffixes, compaction and snapshots; the raft
// loop's back-pressure (docs/server.md) relies on BytesAfter(). It holds the
// appended batches themselves and gives each back once compaction has
// passed every entry it still refers to. Must never touch anything outside
// its temp dir.
#include "server/log_cache.h"

#include <gtest/gtest.h>

#include "storage/engine.h"
#include "storage/raft_log.h"
#include "tests/storage/test_util.h"

namespace raftkv::server {
namespace {

using storage::testing::MakeEntries;
using storage::testing::MakeEntry;

EntryBatch Batch(std::vector<raft::Entry> entries) {
  return std::make_shared<const std::vector<raft::Entry>>(std::move(entries));
}

uint64_t SizeOf(const std::vector<raft::Entry>& entries) {
  uint64_t size = 0;
  for (const raft::Entry& e : entries) size += e.ByteSizeLong();
  return size;
}

class LogCacheTest : public ::testing::Test {
 protected:
  // A cache loaded from a durable log holding `entries`.
  std::unique_ptr<LogCache> LoadWith(const std::vector<raft::Entry>& entries) {
    storage::EngineOptions o;
    o.memory_budget_bytes = 8 << 20;
    o.write_buffer_bytes = 1 << 20;
    auto engine = storage::Engine::Open(tmp_.Sub("node"), o);
    EXPECT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    auto log = storage::RaftLog::Open(engine_.get());
    EXPECT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    if (!entries.empty()) {
      Status s = log_->Append(entries);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    auto cache = LogCache::Load(*log_, raft::ConfState(),
                                log_->FirstIndex() - 1, nullptr);
    EXPECT_TRUE(cache.ok()) << cache.status().ToString();
    return std::move(cache).value();
  }

  storage::testing::TempDir tmp_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::RaftLog> log_;
};

TEST_F(LogCacheTest, LoadsTheDurableLog) {
  const auto entries = MakeEntries(1, 11, 1);
  auto cache = LoadWith(entries);
  EXPECT_EQ(cache->FirstIndex(), 1u);
  EXPECT_EQ(cache->LastIndex(), 10u);
  EXPECT_EQ(cache->bytes(), SizeOf(entries));
  std::vector<raft::Entry> out;
  ASSERT_TRUE(cache->Entries(3, 6, UINT64_MAX, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].data(), "e3");
  EXPECT_EQ(out[2].data(), "e5");
}

TEST_F(LogCacheTest, BytesAfterCountsTheTailAboveAnIndex) {
  auto cache = LoadWith({});
  const auto entries = MakeEntries(1, 11, 1);
  cache->Append(Batch(entries));
  EXPECT_EQ(cache->BytesAfter(0), SizeOf(entries));
  EXPECT_EQ(cache->BytesAfter(4), SizeOf({entries.begin() + 4, entries.end()}));
  EXPECT_EQ(cache->BytesAfter(9), entries[9].ByteSizeLong());
  EXPECT_EQ(cache->BytesAfter(10), 0u);
  EXPECT_EQ(cache->BytesAfter(99), 0u);
}

TEST_F(LogCacheTest, ByteCountsFollowAConflictingSuffix) {
  auto cache = LoadWith(MakeEntries(1, 11, 1));
  // A new leader's entries replace 6..10 with a longer 6..7.
  std::vector<raft::Entry> replacing = {
      MakeEntry(6, 2, std::string(1000, 'x')),
      MakeEntry(7, 2, std::string(2000, 'y'))};
  cache->Append(Batch(replacing));
  EXPECT_EQ(cache->LastIndex(), 7u);
  const auto kept = MakeEntries(1, 6, 1);
  EXPECT_EQ(cache->bytes(), SizeOf(kept) + SizeOf(replacing));
  EXPECT_EQ(cache->BytesAfter(5), SizeOf(replacing));
  EXPECT_EQ(cache->BytesAfter(6), replacing[1].ByteSizeLong());
  uint64_t term = 0;
  ASSERT_TRUE(cache->Term(6, &term).ok());
  EXPECT_EQ(term, 2u);
}

TEST_F(LogCacheTest, ByteCountsFollowCompaction) {
  const auto entries = MakeEntries(1, 11, 1);
  auto cache = LoadWith(entries);
  cache->Compact(4);
  EXPECT_EQ(cache->FirstIndex(), 5u);
  const std::vector<raft::Entry> rest(entries.begin() + 4, entries.end());
  EXPECT_EQ(cache->bytes(), SizeOf(rest));
  EXPECT_EQ(cache->BytesAfter(0), SizeOf(rest));  // below the start: all
  EXPECT_EQ(cache->BytesAfter(7), SizeOf({entries.begin() + 7, entries.end()}));
  uint64_t term = 0;
  ASSERT_TRUE(cache->Term(4, &term).ok());
  EXPECT_EQ(term, 1u);
  std::vector<raft::Entry> out;
  EXPECT_TRUE(cache->Entries(4, 6, UINT64_MAX, &out).IsCompacted());
  // Appending after compaction keeps the counts exact.
  const auto more = MakeEntries(11, 14, 1);
  cache->Append(Batch(more));
  EXPECT_EQ(cache->bytes(), SizeOf(rest) + SizeOf(more));
  EXPECT_EQ(cache->BytesAfter(10), SizeOf(more));
}

TEST_F(LogCacheTest, ASnapshotReplacesTheLog) {
  auto cache = LoadWith(MakeEntries(1, 11, 1));
  raft::SnapshotMetadata meta;
  meta.set_index(50);
  meta.set_term(3);
  std::vector<EntryBatch> released = cache->ResetToSnapshot(meta);
  ASSERT_EQ(released.size(), 1u);  // Load()'s one batch
  EXPECT_EQ(released[0]->size(), 10u);
  EXPECT_EQ(cache->bytes(), 0u);
  EXPECT_EQ(cache->FirstIndex(), 51u);
  EXPECT_EQ(cache->LastIndex(), 50u);
  const auto next = MakeEntries(51, 53, 3);
  cache->Append(Batch(next));
  EXPECT_EQ(cache->bytes(), SizeOf(next));
  EXPECT_EQ(cache->BytesAfter(51), next[1].ByteSizeLong());
  raft::HardState hs;
  raft::ConfState cs;
  ASSERT_TRUE(cache->InitialState(&hs, &cs).ok());
  EXPECT_EQ(hs.commit(), 50u);
}

TEST_F(LogCacheTest, CompactionPointKeepsATailWithinItsLimits) {
  auto cache = LoadWith(MakeEntries(1, 101, 1));
  // Keep 10 entries at or below 80: compact to 70.
  EXPECT_EQ(cache->CompactionPoint(80, 10, UINT64_MAX), 70u);
  // A byte limit of three entries' worth keeps three.
  const uint64_t three = 3 * MakeEntry(80, 1, "e80").ByteSizeLong();
  EXPECT_EQ(cache->CompactionPoint(80, 10, three), 77u);
  EXPECT_EQ(cache->CompactionPoint(80, 10, three + 1), 77u);
  EXPECT_EQ(cache->CompactionPoint(80, 10, three - 1), 78u);
  // Not even the entry at `upto` fits: keep nothing at or below it.
  EXPECT_EQ(cache->CompactionPoint(80, 10, 1), 80u);
  // More to keep than is held: nothing to compact.
  EXPECT_EQ(cache->CompactionPoint(80, 1000, UINT64_MAX), 0u);
  cache->Compact(50);
  EXPECT_EQ(cache->CompactionPoint(80, 1000, UINT64_MAX), 50u);
  EXPECT_EQ(cache->CompactionPoint(80, 10, three), 77u);
}

TEST_F(LogCacheTest, EntriesStopAtTheByteLimitButReturnAtLeastOne) {
  auto cache = LoadWith({});
  const auto entries = MakeEntries(1, 11, 1);
  cache->Append(Batch(entries));
  const uint64_t one = entries[2].ByteSizeLong();
  std::vector<raft::Entry> out;
  ASSERT_TRUE(cache->Entries(3, 9, 2 * one, &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].data(), "e4");
  out.clear();
  ASSERT_TRUE(cache->Entries(3, 9, 0, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data(), "e3");
}

TEST_F(LogCacheTest, CompactionGivesBackTheBatchesItPassed) {
  auto cache = LoadWith({});
  cache->Append(Batch(MakeEntries(1, 4, 1)));   // 1..3
  cache->Append(Batch(MakeEntries(4, 7, 1)));   // 4..6
  cache->Append(Batch(MakeEntries(7, 10, 1)));  // 7..9
  // 4..6 is still needed for 6.
  std::vector<EntryBatch> released = cache->Compact(5);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0]->front().index(), 1u);
  EXPECT_TRUE(cache->Compact(5).empty());
  released = cache->Compact(6);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0]->front().index(), 4u);
  // The cache kept the batch it still refers to alive on its own.
  std::vector<raft::Entry> out;
  ASSERT_TRUE(cache->Entries(7, 10, UINT64_MAX, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].data(), "e9");
  EXPECT_EQ(cache->Compact(9).size(), 1u);
  EXPECT_EQ(cache->bytes(), 0u);
}

TEST_F(LogCacheTest, ABatchCutByAConflictIsGivenBackAtItsLastHeldEntry) {
  auto cache = LoadWith({});
  cache->Append(Batch(MakeEntries(1, 6, 1)));  // 1..5, term 1
  cache->Append(Batch(MakeEntries(4, 7, 2)));  // 4..6, term 2: cuts 4..5
  uint64_t term = 0;
  ASSERT_TRUE(cache->Term(5, &term).ok());
  EXPECT_EQ(term, 2u);
  // The first batch is referred to through 3 only.
  std::vector<EntryBatch> released = cache->Compact(3);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0]->front().term(), 1u);
  // A batch wholly replaced is dropped at once and never given back.
  cache->Append(Batch(MakeEntries(5, 6, 3)));  // 5, term 3: cuts 5..6
  cache->Append(Batch(MakeEntries(5, 6, 4)));  // 5, term 4: replaces it
  ASSERT_TRUE(cache->Term(5, &term).ok());
  EXPECT_EQ(term, 4u);
  EXPECT_EQ(cache->LastIndex(), 5u);
  released = cache->Compact(5);
  ASSERT_EQ(released.size(), 2u);  // 4..6 of term 2 and 5 of term 4
  EXPECT_EQ(released[0]->front().term(), 2u);
  EXPECT_EQ(released[1]->front().term(), 4u);
}

}  // namespace
}  // namespace raftkv::server
