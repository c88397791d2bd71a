// RaftLog tests against an on-disk RocksDB: each operation of the write
// side, reopening, and a randomized differential test against
// raft::MemoryStorage (the twin whose semantics RaftLog must match). Must
// never touch anything outside its temp dirs.
#include "storage/raft_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "raft/memory_storage.h"
#include "tests/storage/test_util.h"

namespace raftkv::storage {
namespace {

using testing::MakeEntries;
using testing::MakeEntry;
using testing::TempDir;

class RaftLogTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    log_.reset();
    engine_.reset();
    EngineOptions o;
    o.memory_budget_bytes = 8 << 20;
    o.write_buffer_bytes = 1 << 20;
    auto engine = Engine::Open(tmp_.Sub("node"), o);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    auto log = RaftLog::Open(engine_.get());
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
  }

  std::vector<raft::Entry> All() {
    std::vector<raft::Entry> out;
    Status s = log_->Entries(log_->FirstIndex(), log_->LastIndex() + 1,
                             UINT64_MAX, &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  uint64_t TermOf(uint64_t index) {
    uint64_t term = 0;
    Status s = log_->Term(index, &term);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return term;
  }

  TempDir tmp_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<RaftLog> log_;
};

TEST_F(RaftLogTest, EmptyLog) {
  EXPECT_EQ(log_->FirstIndex(), 1u);
  EXPECT_EQ(log_->LastIndex(), 0u);
  EXPECT_EQ(TermOf(0), 0u);
  uint64_t term = 0;
  EXPECT_TRUE(log_->Term(1, &term).IsUnavailable());
  raft::HardState hs;
  raft::ConfState cs;
  ASSERT_TRUE(log_->InitialState(&hs, &cs).ok());
  EXPECT_EQ(hs.term(), 0u);
  EXPECT_EQ(cs.voters_size(), 0);
  raft::Snapshot snap;
  ASSERT_TRUE(log_->GetSnapshot(&snap).ok());
  EXPECT_EQ(snap.metadata().index(), 0u);
}

TEST_F(RaftLogTest, AppendAndReadBack) {
  ASSERT_TRUE(log_->Append(MakeEntries(1, 11, 1)).ok());
  EXPECT_EQ(log_->LastIndex(), 10u);
  auto all = All();
  ASSERT_EQ(all.size(), 10u);
  for (uint64_t i = 1; i <= 10; ++i) {
    EXPECT_EQ(all[i - 1].index(), i);
    EXPECT_EQ(all[i - 1].data(), "e" + std::to_string(i));
    EXPECT_EQ(TermOf(i), 1u);
  }
  Reopen();
  EXPECT_EQ(log_->LastIndex(), 10u);
  EXPECT_EQ(All().size(), 10u);
  EXPECT_EQ(TermOf(10), 1u);
}

TEST_F(RaftLogTest, AppendTruncatesConflictingSuffix) {
  ASSERT_TRUE(log_->Append(MakeEntries(1, 11, 1)).ok());
  ASSERT_TRUE(log_->Append(MakeEntries(6, 8, 2)).ok());
  EXPECT_EQ(log_->LastIndex(), 7u);
  EXPECT_EQ(TermOf(5), 1u);
  EXPECT_EQ(TermOf(6), 2u);
  EXPECT_EQ(TermOf(7), 2u);
  uint64_t term = 0;
  EXPECT_TRUE(log_->Term(8, &term).IsUnavailable());
  Reopen();  // the truncated entries stay gone
  EXPECT_EQ(log_->LastIndex(), 7u);
  EXPECT_EQ(All().size(), 7u);
  ASSERT_TRUE(log_->Append(MakeEntries(8, 9, 2)).ok());
  EXPECT_EQ(All().back().index(), 8u);
}

TEST_F(RaftLogTest, AppendIgnoresCompactedPrefix) {
  ASSERT_TRUE(log_->Append(MakeEntries(1, 11, 1)).ok());
  ASSERT_TRUE(log_->Compact(5).ok());
  ASSERT_TRUE(log_->Append(MakeEntries(3, 13, 1)).ok());
  EXPECT_EQ(log_->FirstIndex(), 6u);
  EXPECT_EQ(log_->LastIndex(), 12u);
  ASSERT_TRUE(log_->Append(MakeEntries(1, 4, 1)).ok());  // all compacted
  EXPECT_EQ(log_->LastIndex(), 12u);
}

TEST_F(RaftLogTest, AppendWithAGapIsABug) {
  ASSERT_TRUE(log_->Append(MakeEntries(1, 3, 1)).ok());
  EXPECT_DEATH((void)log_->Append(MakeEntries(5, 6, 1)), "gap");
}

TEST_F(RaftLogTest, EntriesHonoursMaxBytes) {
  ASSERT_TRUE(log_->Append(MakeEntries(1, 11, 1)).ok());
  const uint64_t one = MakeEntries(1, 2, 1)[0].ByteSizeLong();
  std::vector<raft::Entry> out;
  ASSERT_TRUE(log_->Entries(1, 11, 0, &out).ok());
  EXPECT_EQ(out.size(), 1u);  // at least one
  out.clear();
  ASSERT_TRUE(log_->Entries(2, 11, 3 * one, &out).ok());
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(out.front().index(), 2u);
  out.clear();
  ASSERT_TRUE(log_->Entries(4, 4, UINT64_MAX, &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST_F(RaftLogTest, CompactKeepsTheTermOfTheLastCompactedEntry) {
  ASSERT_TRUE(log_->Append(MakeEntries(1, 6, 1)).ok());
  ASSERT_TRUE(log_->Append(MakeEntries(6, 11, 2)).ok());
  ASSERT_TRUE(log_->Compact(7).ok());
  EXPECT_EQ(log_->FirstIndex(), 8u);
  EXPECT_EQ(TermOf(7), 2u);
  uint64_t term = 0;
  EXPECT_TRUE(log_->Term(6, &term).IsCompacted());
  std::vector<raft::Entry> out;
  EXPECT_TRUE(log_->Entries(7, 9, UINT64_MAX, &out).IsCompacted());
  EXPECT_TRUE(log_->Compact(3).ok());  // below first index: no-op
  EXPECT_EQ(log_->Compact(11).code(), Status::Code::kInvalidArgument);
  Reopen();
  EXPECT_EQ(log_->FirstIndex(), 8u);
  EXPECT_EQ(log_->LastIndex(), 10u);
  EXPECT_EQ(TermOf(7), 2u);
  EXPECT_EQ(All().size(), 3u);
}

TEST_F(RaftLogTest, HardStateAndConfStatePersist) {
  raft::HardState hs;
  hs.set_term(7);
  hs.set_vote(3);
  hs.set_commit(0);
  ASSERT_TRUE(log_->SetHardState(hs).ok());
  raft::ConfState cs;
  cs.add_voters(1);
  cs.add_voters(2);
  cs.add_voters(3);
  ASSERT_TRUE(log_->SetConfState(cs).ok());
  Reopen();
  raft::HardState got_hs;
  raft::ConfState got_cs;
  ASSERT_TRUE(log_->InitialState(&got_hs, &got_cs).ok());
  EXPECT_EQ(got_hs.term(), 7u);
  EXPECT_EQ(got_hs.vote(), 3u);
  EXPECT_EQ(got_cs.voters_size(), 3);
}

TEST_F(RaftLogTest, SaveWritesEverythingInOneBatch) {
  raft::Ready ready;
  ready.hard_state.emplace();
  ready.hard_state->set_term(2);
  ready.hard_state->set_vote(1);
  ready.hard_state->set_commit(3);
  ready.entries = MakeEntries(1, 6, 2);
  ready.must_sync = true;
  ASSERT_TRUE(log_->Save(ready).ok());
  Reopen();
  EXPECT_EQ(log_->LastIndex(), 5u);
  EXPECT_EQ(log_->hard_state().commit(), 3u);
  EXPECT_TRUE(log_->Save(nullptr, {}, false).ok());  // nothing: no-op
}

TEST_F(RaftLogTest, SnapshotCreateAndApply) {
  ASSERT_TRUE(log_->Append(MakeEntries(1, 11, 3)).ok());
  raft::ConfState cs;
  cs.add_voters(1);
  ASSERT_TRUE(log_->CreateSnapshot(6, cs, "image-6").ok());
  EXPECT_EQ(log_->CreateSnapshot(6, cs, "again").code(),
            Status::Code::kFailedPrecondition);
  EXPECT_EQ(log_->CreateSnapshot(11, cs, "x").code(),
            Status::Code::kInvalidArgument);
  raft::Snapshot snap;
  ASSERT_TRUE(log_->GetSnapshot(&snap).ok());
  EXPECT_EQ(snap.metadata().index(), 6u);
  EXPECT_EQ(snap.metadata().term(), 3u);
  EXPECT_EQ(snap.data(), "image-6");
  EXPECT_EQ(log_->FirstIndex(), 1u);  // creating does not compact

  raft::Snapshot newer;
  newer.mutable_metadata()->set_index(20);
  newer.mutable_metadata()->set_term(5);
  *newer.mutable_metadata()->mutable_conf_state() = cs;
  newer.set_data("image-20");
  bool applied = false;
  ASSERT_TRUE(log_->ApplySnapshot(newer, &applied).ok());
  EXPECT_TRUE(applied);
  EXPECT_EQ(log_->FirstIndex(), 21u);
  EXPECT_EQ(log_->LastIndex(), 20u);
  EXPECT_EQ(TermOf(20), 5u);
  EXPECT_EQ(log_->hard_state().commit(), 20u);  // a snapshot is committed
  ASSERT_TRUE(log_->ApplySnapshot(snap, &applied).ok());  // older: ignored
  EXPECT_FALSE(applied);
  Reopen();
  ASSERT_TRUE(log_->GetSnapshot(&snap).ok());
  EXPECT_EQ(snap.data(), "image-20");
  EXPECT_EQ(log_->FirstIndex(), 21u);
  EXPECT_EQ(log_->LastIndex(), 20u);
  ASSERT_TRUE(log_->Append(MakeEntries(21, 23, 5)).ok());
  EXPECT_EQ(All().size(), 2u);
}

TEST_F(RaftLogTest, SnapshotBelowTheCompactedPrefixIsRefused) {
  ASSERT_TRUE(log_->Append(MakeEntries(1, 11, 1)).ok());
  ASSERT_TRUE(log_->Compact(6).ok());
  raft::ConfState cs;
  EXPECT_TRUE(log_->CreateSnapshot(5, cs, "x").IsCompacted());
  EXPECT_TRUE(log_->CreateSnapshot(6, cs, "at the log start").ok());
}

TEST_F(RaftLogTest, SaveWithSnapshotThenEntries) {
  ASSERT_TRUE(log_->Append(MakeEntries(1, 4, 1)).ok());
  raft::Snapshot snap;
  snap.mutable_metadata()->set_index(10);
  snap.mutable_metadata()->set_term(2);
  raft::HardState hs;
  hs.set_term(2);
  hs.set_commit(10);
  ASSERT_TRUE(log_->Save(&hs, &snap, MakeEntries(11, 13, 2), true).ok());
  Reopen();
  EXPECT_EQ(log_->FirstIndex(), 11u);
  EXPECT_EQ(log_->LastIndex(), 12u);
  EXPECT_EQ(log_->snapshot_index(), 10u);
}

// Applies the same random operations to a MemoryStorage and a RaftLog and
// checks every read agrees, including after reopening.
TEST_F(RaftLogTest, MatchesMemoryStorage) {
  raft::MemoryStorage mem;
  std::mt19937_64 rng(42);
  uint64_t term = 1;
  auto check = [&](int step) {
    SCOPED_TRACE("step " + std::to_string(step));
    ASSERT_EQ(log_->FirstIndex(), mem.FirstIndex());
    ASSERT_EQ(log_->LastIndex(), mem.LastIndex());
    for (uint64_t i = mem.FirstIndex() - 1; i <= mem.LastIndex() + 1; ++i) {
      uint64_t a = 0, b = 0;
      Status sa = log_->Term(i, &a), sb = mem.Term(i, &b);
      ASSERT_EQ(sa.code(), sb.code()) << "term of " << i;
      ASSERT_EQ(a, b) << "term of " << i;
    }
    std::vector<raft::Entry> a, b;
    const uint64_t lo = mem.FirstIndex(), hi = mem.LastIndex() + 1;
    const uint64_t max_bytes = rng() % 200;
    ASSERT_EQ(log_->Entries(lo, hi, max_bytes, &a).code(),
              mem.Entries(lo, hi, max_bytes, &b).code());
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].SerializeAsString(), b[i].SerializeAsString());
    }
    raft::Snapshot sa, sb;
    ASSERT_TRUE(log_->GetSnapshot(&sa).ok());
    ASSERT_TRUE(mem.GetSnapshot(&sb).ok());
    ASSERT_EQ(sa.metadata().index(), sb.metadata().index());
    ASSERT_EQ(sa.data(), sb.data());
  };
  for (int step = 0; step < 400; ++step) {
    const int op = static_cast<int>(rng() % 10);
    const uint64_t first = mem.FirstIndex(), last = mem.LastIndex();
    if (op < 6) {  // append, possibly overlapping the tail
      if (rng() % 4 == 0) ++term;
      const uint64_t span = last - first + 1;
      const uint64_t from = first + (span == 0 ? 0 : rng() % (span + 1));
      auto entries = MakeEntries(from, from + 1 + rng() % 5, term);
      mem.Append(entries);
      ASSERT_TRUE(log_->Append(entries).ok());
    } else if (op < 8 && last >= first) {  // compact
      const uint64_t to = first - 1 + rng() % (last - first + 2);
      ASSERT_EQ(mem.Compact(to).code(), log_->Compact(to).code());
    } else if (op < 9 && last >= first) {  // snapshot
      // Mostly inside the log; sometimes at or below the compacted prefix.
      const uint64_t at =
          rng() % 4 == 0 ? first - 1 - std::min<uint64_t>(first - 1, rng() % 3)
                         : first + rng() % (last - first + 1);
      raft::ConfState cs;
      cs.add_voters(1);
      const std::string data = "snap" + std::to_string(at);
      ASSERT_EQ(mem.CreateSnapshot(at, cs, data).code(),
                log_->CreateSnapshot(at, cs, data).code());
    } else if (rng() % 3 == 0) {  // install a leader's snapshot
      raft::Snapshot snap;
      snap.mutable_metadata()->set_index(last + rng() % 5);
      snap.mutable_metadata()->set_term(++term);
      snap.set_data("leader" + std::to_string(step));
      bool applied = false;
      const bool mem_applied = mem.ApplySnapshot(snap);
      ASSERT_TRUE(log_->ApplySnapshot(snap, &applied).ok());
      ASSERT_EQ(applied, mem_applied);
    } else {
      Reopen();
    }
    check(step);
  }
}

}  // namespace
}  // namespace raftkv::storage

namespace raftkv::storage {
namespace {

TEST_F(RaftLogTest, TheClusterIdIsRecordedOnceAndKeptThroughSnapshots) {
  EXPECT_EQ(log_->cluster_id(), 0u);
  ASSERT_TRUE(log_->SetClusterId(0x1234).ok());
  EXPECT_TRUE(log_->SetClusterId(0x1234).ok());  // the same: nothing to do
  const Status other = log_->SetClusterId(0x5678);
  EXPECT_EQ(other.code(), Status::Code::kFailedPrecondition)
      << other.ToString();
  Reopen();
  EXPECT_EQ(log_->cluster_id(), 0x1234u);

  // Installing a snapshot (a wiped node catching up) and compacting keep it.
  ASSERT_TRUE(log_->Append(MakeEntries(1, 11, 1)).ok());
  raft::Snapshot snapshot;
  snapshot.mutable_metadata()->set_index(20);
  snapshot.mutable_metadata()->set_term(2);
  snapshot.set_data("image");
  ASSERT_TRUE(log_->ApplySnapshot(snapshot).ok());
  ASSERT_TRUE(log_->Append(MakeEntries(21, 31, 2)).ok());
  ASSERT_TRUE(log_->Compact(25).ok());
  Reopen();
  EXPECT_EQ(log_->cluster_id(), 0x1234u);
  EXPECT_EQ(log_->snapshot_index(), 20u);
}

}  // namespace
}  // namespace raftkv::storage
