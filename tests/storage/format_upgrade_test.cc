// Format 1 -> 2 (storage/engine.cc): a data dir with only format 1's six
// column families and format record "1", built here with plain RocksDB,
// opens with Engine::Open, gains the "kv_history" and "kv_leases" families
// and format record "2", keeps its data, and then works like any format-2
// dir (history, leases, reads at a revision). Must never touch anything
// outside its temp dirs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <map>

#include "storage/engine.h"
#include "storage/history.h"
#include "storage/kv_state_machine.h"
#include "storage/storage.pb.h"
#include "tests/storage/mvcc_fixture.h"

namespace raftkv::storage {
namespace {

using testing::CommandEntry;
using ::testing::Contains;
using testing::GrantCommand;
using ::testing::HasSubstr;
using testing::LeasedPut;
using testing::RangeAt;
using testing::TempDir;
using ::testing::UnorderedElementsAre;

constexpr const char* kFormat1Families[] = {
    "default", "raft_log", "raft_meta", "kv", "kv_sessions", "kv_meta"};

EngineOptions SmallOptions() {
  EngineOptions o;
  o.memory_budget_bytes = 8 << 20;
  o.write_buffer_bytes = 1 << 20;
  return o;
}

// Plain RocksDB on `dir` with the column families `names` (created when
// missing).
struct RawDb {
  RawDb(const std::string& dir, const std::vector<std::string>& names) {
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names) {
      cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, dir, cfs, &handles, &raw);
    CHECK(s.ok()) << s.ToString();
    db.reset(raw);
    for (size_t i = 0; i < names.size(); ++i) by_name[names[i]] = handles[i];
  }
  ~RawDb() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  void Put(const std::string& family, const std::string& key,
           const std::string& value) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    CHECK(db->Put(wo, by_name.at(family), key, value).ok());
  }
  std::string Get(const std::string& family, const std::string& key) {
    std::string value;
    rocksdb::Status s =
        db->Get(rocksdb::ReadOptions(), by_name.at(family), key, &value);
    return s.ok() ? value : "<" + s.ToString() + ">";
  }
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;
};

std::vector<std::string> Families(const std::string& dir) {
  std::vector<std::string> names;
  CHECK(
      rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names).ok());
  return names;
}

// A format-1 data dir as a raftkv of format 1 left it: key "k" = "v" at
// revision 1, applied through index 1.
void MakeFormat1Dir(const std::string& dir) {
  RawDb raw(dir, {std::begin(kFormat1Families), std::end(kFormat1Families)});
  raw.Put("default", "raftkv_format_version", "1");
  kv::KeyValue kv;  // stored without its key
  kv.set_create_revision(1);
  kv.set_mod_revision(1);
  kv.set_version(1);
  kv.set_value("v");
  raw.Put("kv", "k", kv.SerializeAsString());
  AppliedState applied;
  applied.set_index(1);
  applied.set_term(1);
  applied.set_revision(1);
  raw.Put("kv_meta", "applied", applied.SerializeAsString());
}

TEST(FormatUpgradeTest, AFormat1DirIsUpgradedInPlaceAndKeepsItsData) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  MakeFormat1Dir(dir);
  ASSERT_EQ(Families(dir).size(), 6u);
  {
    auto engine = Engine::Open(dir, SmallOptions());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto sm = KvStateMachine::Open(engine->get());
    ASSERT_TRUE(sm.ok()) << sm.status().ToString();
    EXPECT_EQ((*sm)->applied_index(), 1u);
    EXPECT_EQ((*sm)->revision(), 1);
    // Format 1 kept no history: it starts at the upgrade's revision, so a
    // read or watch below it is Compacted rather than answered with the
    // current values.
    EXPECT_EQ((*sm)->compacted_revision(), 1);
    auto got = (*sm)->Range(RangeAt("k", "", 0));
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->kvs_size(), 1);
    EXPECT_EQ(got->kvs(0).value(), "v");
    EXPECT_EQ(got->kvs(0).mod_revision(), 1);
  }
  EXPECT_THAT(Families(dir),
              UnorderedElementsAre("default", "raft_log", "raft_meta", "kv",
                                   "kv_sessions", "kv_meta", "kv_history",
                                   "kv_leases"));
  {
    RawDb raw(dir, Families(dir));
    EXPECT_EQ(raw.Get("default", "raftkv_format_version"),
              std::to_string(kFormatVersion));
    EXPECT_EQ(raw.Get("default", "raftkv_format_version"), "2");
  }

  // Opened again (now format 2), it records history and leases.
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  auto sm = std::move(KvStateMachine::Open(engine->get())).value();
  std::vector<kv::CommandResult> results;
  ASSERT_TRUE(sm->ApplyBatch({CommandEntry(2, 1, GrantCommand(0, 10)),
                              CommandEntry(3, 1, LeasedPut("k", "v2", 2))},
                             &results)
                  .ok());
  ASSERT_EQ(results[1].error(), kv::CommandResult::OK)
      << results[1].error_message();
  EXPECT_EQ(sm->revision(), 2);
  EXPECT_EQ(*sm->LeaseKeys(2), std::vector<std::string>{"k"});
  auto old = sm->Range(RangeAt("k", "", 1));  // undone from the new history
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  ASSERT_EQ(old->kvs_size(), 1);
  EXPECT_EQ(old->kvs(0).value(), "v");
  std::vector<kv::Event> events;
  int64_t next = 0;
  EXPECT_TRUE(ReadHistory(**engine, 1, 2, 10, &events, &next).IsCompacted());
  ASSERT_TRUE(ReadHistory(**engine, 2, 2, 10, &events, &next).ok());
  ASSERT_EQ(events.size(), 1u);  // nothing was retained before the upgrade
  EXPECT_EQ(events[0].kv().mod_revision(), 2);
  EXPECT_EQ(events[0].prev_kv().value(), "v");
}

// A format-1 dir whose format record is not "1" is not upgraded.
TEST(FormatUpgradeTest, AFormat1LayoutWithAnotherRecordIsRefused) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  MakeFormat1Dir(dir);
  {
    RawDb raw(dir, Families(dir));
    raw.Put("default", "raftkv_format_version", "7");
  }
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_FALSE(engine.ok());
  EXPECT_THAT(engine.status().message(), HasSubstr(dir));
  EXPECT_THAT(engine.status().message(), HasSubstr("'7'"));
  // Still refused at the next open.
  engine = Engine::Open(dir, SmallOptions());
  ASSERT_FALSE(engine.ok());
  EXPECT_THAT(engine.status().message(), HasSubstr("'7'"));
}

// The upgrade creates the two families, then writes record "2": a crash
// between the two leaves the eight families with record "1", which the
// next open finishes (it was refused before the fix).
TEST(FormatUpgradeTest, AnInterruptedUpgradeIsFinishedAtTheNextOpen) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  MakeFormat1Dir(dir);
  {
    std::vector<std::string> all = Families(dir);
    all.push_back("kv_history");
    all.push_back("kv_leases");
    RawDb raw(dir, all);  // creates them; the record stays "1"
  }
  ASSERT_THAT(Families(dir), Contains("kv_leases"));
  {
    auto engine = Engine::Open(dir, SmallOptions());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    auto sm = KvStateMachine::Open(engine->get());
    ASSERT_TRUE(sm.ok()) << sm.status().ToString();
    EXPECT_EQ((*sm)->revision(), 1);
  }
  RawDb raw(dir, Families(dir));
  EXPECT_EQ(raw.Get("default", "raftkv_format_version"), "2");
}

}  // namespace
}  // namespace raftkv::storage
