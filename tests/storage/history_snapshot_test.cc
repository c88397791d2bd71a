// Streamed snapshots carry the retained history and the leases
// (FAMILY_HISTORY, FAMILY_LEASES): a leader with history, a compaction and
// leases with keys streamed through a SnapshotStager and installed on a
// follower that had history, a compaction and leases of its own. The
// follower must then answer every read at a revision, every history read
// and every lease question as the leader does. Must never touch anything
// outside its temp dirs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "storage/engine.h"
#include "storage/history.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot.h"
#include "storage/snapshot_install.h"
#include "storage/snapshot_stager.h"
#include "tests/storage/mvcc_fixture.h"

namespace raftkv::storage {
namespace {

using testing::CommandEntry;
using testing::CompactCommand;
using testing::DeleteCommand;
using ::testing::ElementsAre;
using testing::GrantCommand;
using testing::LeasedPut;
using testing::PutCommand;
using testing::RangeAt;
using testing::RevokeCommand;
using testing::TempDir;

// An Engine, its RaftLog and its state machine in one data dir (as in
// snapshot_test.cc), applying commands as the next entries.
struct Replica {
  explicit Replica(std::string d) : dir(std::move(d)) { Open(); }
  void Open() {
    sm.reset();
    log.reset();
    engine.reset();
    EngineOptions o;
    o.memory_budget_bytes = 8 << 20;
    o.write_buffer_bytes = 1 << 20;
    engine = std::move(Engine::Open(dir, o)).value();
    log = std::move(RaftLog::Open(engine.get())).value();
    sm = std::move(KvStateMachine::Open(engine.get())).value();
  }
  kv::CommandResult Run(const kv::Command& command) {
    const raft::Entry e = CommandEntry(sm->applied_index() + 1, 1, command);
    EXPECT_TRUE(log->Append({e}).ok());
    std::vector<kv::CommandResult> results;
    Status s = sm->ApplyBatch({e}, &results);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return results.empty() ? kv::CommandResult() : results.front();
  }
  // Every key with its whole state at `revision`, or the error.
  std::string StateAt(int64_t revision) {
    auto got = sm->Range(RangeAt("\x01", std::string(1, '\0'), revision));
    if (!got.ok()) return "error: " + got.status().ToString();
    std::string out;
    for (const auto& kv : got->kvs()) out += kv.ShortDebugString() + "\n";
    return out;
  }
  std::string HistoryFrom(int64_t from) {
    std::vector<kv::Event> events;
    int64_t next = 0;
    Status s =
        ReadHistory(*engine, from, sm->revision(), 1 << 20, &events, &next);
    if (!s.ok()) return "error: " + s.ToString();
    std::string out;
    for (const auto& e : events) out += e.ShortDebugString() + "\n";
    return out;
  }
  std::string Leases() {
    auto leases = sm->Leases();
    if (!leases.ok()) return "error: " + leases.status().ToString();
    std::string out;
    for (const LeaseInfo& l : *leases) {
      out += std::to_string(l.id) + "/" + std::to_string(l.ttl) + ":";
      auto keys = sm->LeaseKeys(l.id);
      if (!keys.ok()) return "error: " + keys.status().ToString();
      for (const std::string& k : *keys) out += " " + k;
      out += "\n";
    }
    return out;
  }
  std::string dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<RaftLog> log;
  std::unique_ptr<KvStateMachine> sm;
};

TEST(HistorySnapshotTest, HistoryCompactionAndLeasesTravelWithTheSnapshot) {
  TempDir tmp;
  Replica leader(tmp.Sub("leader"));
  Replica follower(tmp.Sub("follower"));

  // The leader: 12 revisions, compacted at 4, two leases with keys.
  const int64_t l1 = leader.Run(GrantCommand(0, 30)).lease_grant().id();
  const int64_t l2 = leader.Run(GrantCommand(900, 60)).lease_grant().id();
  for (int i = 1; i <= 6; ++i) {
    leader.Run(
        PutCommand("k" + std::to_string(i % 3), "v" + std::to_string(i)));
  }
  leader.Run(LeasedPut("a", "1", l1));
  leader.Run(LeasedPut("b", "1", l1));
  leader.Run(LeasedPut("c", "1", l2));
  leader.Run(DeleteCommand("k1"));
  ASSERT_EQ(leader.Run(CompactCommand(4)).error(), kv::CommandResult::OK);
  leader.Run(PutCommand("k2", "late"));
  leader.Run(LeasedPut("a", "2", l2));  // moves a to l2
  ASSERT_EQ(leader.sm->revision(), 12);

  // The follower (behind the leader's index): history compacted further,
  // and a lease, of its own.
  const int64_t mine = follower.Run(GrantCommand(77, 5)).lease_grant().id();
  for (int i = 0; i < 8; ++i) follower.Run(LeasedPut("mine", "x", mine));
  ASSERT_EQ(follower.Run(CompactCommand(6)).error(), kv::CommandResult::OK);
  ASSERT_LT(follower.sm->applied_index(), leader.sm->applied_index());

  auto source = SnapshotSource::Create(*leader.sm);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::vector<std::string> chunks;
  ASSERT_TRUE((*source)
                  ->Stream(256,
                           [&](std::string_view c) {
                             chunks.emplace_back(c);
                             return Status::OK();
                           })
                  .ok());
  const std::string staging =
      StagingDir(follower.dir, (*source)->term(), (*source)->index());
  auto stager = SnapshotStager::Create(staging, "test");
  ASSERT_TRUE(stager.ok());
  for (const std::string& c : chunks) ASSERT_TRUE((*stager)->Add(c).ok());
  ASSERT_TRUE((*stager)->Finish().ok());
  raft::SnapshotMetadata meta;
  meta.set_index((*source)->index());
  meta.set_term((*source)->term());
  meta.mutable_conf_state()->add_voters(1);
  Status s = InstallStagedSnapshot(staging, meta, follower.log.get(),
                                   follower.sm.get());
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(follower.sm->applied_index(), leader.sm->applied_index());

  auto same_answers = [&](const char* when) {
    SCOPED_TRACE(when);
    EXPECT_EQ(follower.sm->revision(), 12);
    EXPECT_EQ(follower.sm->compacted_revision(), 4);
    EXPECT_EQ(CompactedRevision(*follower.engine), 4);
    for (int64_t rev = 1; rev <= 12; ++rev) {
      EXPECT_EQ(follower.StateAt(rev), leader.StateAt(rev)) << "at " << rev;
    }
    EXPECT_THAT(follower.StateAt(3), ::testing::HasSubstr("compacted"));
    EXPECT_THAT(follower.StateAt(4), ::testing::HasSubstr("k0"));
    EXPECT_EQ(follower.HistoryFrom(5), leader.HistoryFrom(5));
    EXPECT_THAT(follower.HistoryFrom(5), ::testing::HasSubstr("late"));
    EXPECT_THAT(follower.HistoryFrom(4), ::testing::HasSubstr("compacted"));
    EXPECT_EQ(follower.Leases(), leader.Leases());
    EXPECT_EQ(follower.Leases(), std::to_string(l1) + "/30: b\n900/60: a c\n");
    EXPECT_TRUE(follower.sm->LeaseKeys(mine).status().IsNotFound());
  };
  same_answers("installed");
  follower.Open();
  same_answers("reopened");

  // Both go on alike: a revoke takes the same keys in the same revision.
  const kv::Command revoke = RevokeCommand(900);
  EXPECT_EQ(follower.Run(revoke).error(), kv::CommandResult::OK);
  EXPECT_EQ(leader.Run(revoke).error(), kv::CommandResult::OK);
  EXPECT_EQ(follower.StateAt(13), leader.StateAt(13));
  EXPECT_EQ(follower.StateAt(0), leader.StateAt(0));
  auto now = follower.sm->Range(RangeAt("\x01", std::string(1, '\0'), 0));
  ASSERT_TRUE(now.ok());
  std::vector<std::string> keys;
  for (const auto& kv : now->kvs()) keys.push_back(kv.key());
  EXPECT_THAT(keys, ElementsAre("b", "k0", "k2"));
}

}  // namespace
}  // namespace raftkv::storage
