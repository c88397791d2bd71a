// LogCache tests: it mirrors the durable log it is loaded from, answers the
// core's reads, and keeps exact byte counts (in total and above an index)
// through appends, conflicting suffixes, compaction and snapshots; the raft
// loop's back-pressure (docs/server.md) relies on BytesAfter(). Must never
// touch anything outside its temp dir.
#include "server/log_cache.h"

#include <gtest/gtest.h>

#include "storage/engine.h"
#include "storage/raft_log.h"
#include "tests/storage/test_util.h"

namespace raftkv::server {
namespace {

using storage::testing::MakeEntries;
using storage::testing::MakeEntry;

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
    auto cache = LogCache::Load(*log_, raft::ConfState(), nullptr);
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
  cache->Append(entries);
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
  cache->Append(replacing);
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
  cache->Append(more);
  EXPECT_EQ(cache->bytes(), SizeOf(rest) + SizeOf(more));
  EXPECT_EQ(cache->BytesAfter(10), SizeOf(more));
}

TEST_F(LogCacheTest, ASnapshotReplacesTheLog) {
  auto cache = LoadWith(MakeEntries(1, 11, 1));
  raft::SnapshotMetadata meta;
  meta.set_index(50);
  meta.set_term(3);
  cache->ResetToSnapshot(meta);
  EXPECT_EQ(cache->bytes(), 0u);
  EXPECT_EQ(cache->FirstIndex(), 51u);
  EXPECT_EQ(cache->LastIndex(), 50u);
  const auto next = MakeEntries(51, 53, 3);
  cache->Append(next);
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
}

}  // namespace
}  // namespace raftkv::server
