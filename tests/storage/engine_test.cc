// Engine tests: creating and reopening a data dir, and refusing bad ones
// (not a data dir, another format version, missing or unknown column
// family, damaged records) with an error naming the path and the cause; a
// full disk stops all later writes. Every test works in its own temp dir
// and must never touch anything outside it.
#include "storage/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>

#include "storage/coding.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "tests/storage/fault_fs.h"
#include "tests/storage/test_util.h"

namespace raftkv::storage {
namespace {

using ::testing::HasSubstr;
using testing::MakeEntries;
using testing::TempDir;

EngineOptions SmallOptions() {
  EngineOptions o;
  o.memory_budget_bytes = 8 << 20;
  o.write_buffer_bytes = 1 << 20;
  return o;
}

// Opens `dir` with plain RocksDB (all its column families) to tamper.
struct RawDb {
  explicit RawDb(const std::string& dir) {
    std::vector<std::string> names;
    CHECK(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir, &names)
              .ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names)
      cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s =
        rocksdb::DB::Open(rocksdb::DBOptions(), dir, cfs, &handles, &raw);
    CHECK(s.ok()) << s.ToString();
    db.reset(raw);
    for (size_t i = 0; i < names.size(); ++i) by_name[names[i]] = handles[i];
  }
  ~RawDb() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> by_name;
};

TEST(EngineTest, CreatesAndReopens) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  {
    auto engine = Engine::Open(dir, SmallOptions());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    EXPECT_EQ((*engine)->dir(), dir);
    EXPECT_TRUE((*engine)->write_error().ok());
  }
  EXPECT_FALSE(std::filesystem::exists(dir + ".creating"));
  auto again = Engine::Open(dir, SmallOptions());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

TEST(EngineTest, CreatesInsideAnEmptyDirectory) {
  TempDir tmp;
  const std::string dir = tmp.Sub("empty");
  std::filesystem::create_directory(dir);
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
}

TEST(EngineTest, RemovesAnUnfinishedCreation) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  std::filesystem::create_directory(dir + ".creating");
  std::ofstream(dir + ".creating/junk") << "half made";
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir + ".creating"));
}

TEST(EngineTest, MissingDirWithoutCreateIsNotFound) {
  TempDir tmp;
  EngineOptions o = SmallOptions();
  o.create_if_missing = false;
  auto engine = Engine::Open(tmp.Sub("none"), o);
  ASSERT_FALSE(engine.ok());
  EXPECT_TRUE(engine.status().IsNotFound());
  EXPECT_THAT(engine.status().message(), HasSubstr(tmp.Sub("none")));
}

TEST(EngineTest, RefusesADirectoryThatIsNotADataDir) {
  TempDir tmp;
  const std::string dir = tmp.Sub("other");
  std::filesystem::create_directory(dir);
  std::ofstream(dir + "/notes.txt") << "someone else's files";
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(engine.status().message(), HasSubstr(dir));
  EXPECT_TRUE(std::filesystem::exists(dir + "/notes.txt"));  // untouched
}

TEST(EngineTest, RefusesAnotherFormatVersion) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  ASSERT_TRUE(Engine::Open(dir, SmallOptions()).ok());
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.by_name["default"],
                          "raftkv_format_version", "999")
                    .ok());
  }
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(engine.status().message(), HasSubstr(dir));
  EXPECT_THAT(engine.status().message(), HasSubstr("format version '999'"));
}

TEST(EngineTest, RefusesAPlainRocksDbWithoutFormatRecord) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  ASSERT_TRUE(Engine::Open(dir, SmallOptions()).ok());
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.db
                    ->Delete(rocksdb::WriteOptions(), raw.by_name["default"],
                             "raftkv_format_version")
                    .ok());
    ASSERT_TRUE(
        raw.db->Put(rocksdb::WriteOptions(), raw.by_name["kv"], "k", "v").ok());
  }
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_FALSE(engine.ok());
  EXPECT_THAT(engine.status().message(), HasSubstr("not a raftkv data dir"));
}

// An empty directory (e.g. a new disk's mount point, which rename(2)
// cannot replace) becomes the data dir in place; a creation there that was
// interrupted before its format record (no record, no data) is finished at
// the next open.
TEST(EngineTest, CreatesInPlaceInAnEmptyDirectory) {
  TempDir tmp;
  const std::string dir = tmp.Sub("mount-point");
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(Engine::Open(dir, SmallOptions()).ok());
  EXPECT_TRUE(std::filesystem::exists(dir + "/CURRENT"));
  EXPECT_FALSE(std::filesystem::exists(dir + ".creating"));
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.db
                    ->Delete(rocksdb::WriteOptions(), raw.by_name["default"],
                             "raftkv_format_version")
                    .ok());
  }
  {
    auto engine = Engine::Open(dir, SmallOptions());
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  }
  RawDb raw(dir);
  std::string version;
  EXPECT_TRUE(raw.db
                  ->Get(rocksdb::ReadOptions(), raw.by_name["default"],
                        "raftkv_format_version", &version)
                  .ok());
}

TEST(EngineTest, RefusesAMissingColumnFamily) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  ASSERT_TRUE(Engine::Open(dir, SmallOptions()).ok());
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.db->DropColumnFamily(raw.by_name["kv_sessions"]).ok());
  }
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_FALSE(engine.ok());
  EXPECT_TRUE(engine.status().IsCorruption());
  EXPECT_THAT(engine.status().message(), HasSubstr(dir));
  EXPECT_THAT(engine.status().message(),
              HasSubstr("missing column family 'kv_sessions'"));
}

TEST(EngineTest, RefusesAnUnknownColumnFamily) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  ASSERT_TRUE(Engine::Open(dir, SmallOptions()).ok());
  {
    RawDb raw(dir);
    rocksdb::ColumnFamilyHandle* h = nullptr;
    ASSERT_TRUE(raw.db
                    ->CreateColumnFamily(rocksdb::ColumnFamilyOptions(),
                                         "kv_future", &h)
                    .ok());
    raw.db->DestroyColumnFamilyHandle(h);
  }
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(engine.status().message(), HasSubstr("'kv_future'"));
}

TEST(EngineTest, RefusesASecondOpenOfTheSameDir) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  auto first = Engine::Open(dir, SmallOptions());
  ASSERT_TRUE(first.ok());
  auto second = Engine::Open(dir, SmallOptions());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kIOError);
  EXPECT_THAT(second.status().message(), HasSubstr(dir));
}

TEST(EngineTest, DamagedCurrentFileFailsWithPath) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  ASSERT_TRUE(Engine::Open(dir, SmallOptions()).ok());
  std::ofstream(dir + "/CURRENT", std::ios::trunc) << "MANIFEST-999999\n";
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_FALSE(engine.ok());
  EXPECT_THAT(engine.status().message(), HasSubstr(dir));
}

TEST(EngineTest, CorruptLogRecordNamesPathAndIndex) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  {
    auto engine = Engine::Open(dir, SmallOptions());
    ASSERT_TRUE(engine.ok());
    auto log = RaftLog::Open(engine->get());
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(MakeEntries(1, 6, 1)).ok());
  }
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.by_name["raft_log"],
                          LogKey(3), "\xff\xff garbage")
                    .ok());
  }
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_TRUE(engine.ok());
  auto log = RaftLog::Open(engine->get());
  ASSERT_TRUE(log.ok());
  std::vector<raft::Entry> out;
  Status s = (*log)->Entries(1, 6, UINT64_MAX, &out);
  ASSERT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(dir));
  EXPECT_THAT(s.message(), HasSubstr("entry 3"));
  uint64_t term = 0;
  EXPECT_TRUE((*log)->Term(3, &term).IsCorruption());
}

TEST(EngineTest, LogWithAHoleRefusesToOpen) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  {
    auto engine = Engine::Open(dir, SmallOptions());
    auto log = RaftLog::Open(engine->get());
    ASSERT_TRUE((*log)->Append(MakeEntries(1, 6, 1)).ok());
  }
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.db
                    ->Delete(rocksdb::WriteOptions(), raw.by_name["raft_log"],
                             LogKey(4))
                    .ok());
  }
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_TRUE(engine.ok());
  auto log = RaftLog::Open(engine->get());
  ASSERT_FALSE(log.ok());
  EXPECT_TRUE(log.status().IsCorruption());
  EXPECT_THAT(log.status().message(), HasSubstr("not contiguous"));
  EXPECT_THAT(log.status().message(), HasSubstr(dir));
}

TEST(EngineTest, LostCommittedTailRefusesToOpen) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  {
    auto engine = Engine::Open(dir, SmallOptions());
    auto log = RaftLog::Open(engine->get());
    raft::HardState hs;
    hs.set_term(1);
    hs.set_commit(5);
    ASSERT_TRUE((*log)->Save(&hs, MakeEntries(1, 6, 1), true).ok());
  }
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.db
                    ->Delete(rocksdb::WriteOptions(), raw.by_name["raft_log"],
                             LogKey(5))
                    .ok());
  }
  auto engine = Engine::Open(dir, SmallOptions());
  auto log = RaftLog::Open(engine->get());
  ASSERT_FALSE(log.ok());
  EXPECT_TRUE(log.status().IsCorruption());
  EXPECT_THAT(log.status().message(),
              HasSubstr("committed entries are missing"));
}

TEST(EngineTest, CorruptAppliedStateRefusesToOpen) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  ASSERT_TRUE(Engine::Open(dir, SmallOptions()).ok());
  {
    RawDb raw(dir);
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.by_name["kv_meta"],
                          "applied", "\xff\xff\xff")
                    .ok());
  }
  auto engine = Engine::Open(dir, SmallOptions());
  ASSERT_TRUE(engine.ok());
  auto sm = KvStateMachine::Open(engine->get());
  ASSERT_FALSE(sm.ok());
  EXPECT_TRUE(sm.status().IsCorruption());
  EXPECT_THAT(sm.status().message(), HasSubstr(dir));
}

TEST(EngineTest, FullDiskStopsWritesWithAClearError) {
  TempDir tmp;
  const std::string dir = tmp.Sub("node");
  testing::FaultFs fs;
  EngineOptions o = SmallOptions();
  o.env = fs.env();
  auto opened = Engine::Open(dir, o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<Engine> engine = std::move(opened).value();
  std::unique_ptr<RaftLog> log = std::move(RaftLog::Open(engine.get())).value();
  ASSERT_TRUE(log->Append(MakeEntries(1, 4, 1)).ok());

  fs.set_full(true);
  Status s = log->Append(MakeEntries(4, 6, 1));
  ASSERT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr(dir));
  EXPECT_THAT(s.message(), HasSubstr("disk full"));
  EXPECT_EQ(log->LastIndex(), 3u);  // memory agrees with disk
  EXPECT_FALSE(engine->write_error().ok());

  // Space comes back, but this storage stays stopped until reopened.
  fs.set_full(false);
  Status again = log->Append(MakeEntries(4, 6, 1));
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(log->LastIndex(), 3u);
  std::vector<raft::Entry> out;
  ASSERT_TRUE(log->Entries(1, 4, UINT64_MAX, &out).ok());  // reads work
  EXPECT_EQ(out.size(), 3u);

  log.reset();
  engine.reset();
  auto reopened = Engine::Open(dir, o);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto log2 = RaftLog::Open(reopened->get());
  ASSERT_TRUE(log2.ok()) << log2.status().ToString();
  EXPECT_EQ((*log2)->LastIndex(), 3u);  // nothing acknowledged was lost
  EXPECT_TRUE((*log2)->Append(MakeEntries(4, 6, 1)).ok());
}

TEST(EngineTest, FullDiskStopsTheStateMachine) {
  TempDir tmp;
  testing::FaultFs fs;
  EngineOptions o = SmallOptions();
  o.env = fs.env();
  auto engine = Engine::Open(tmp.Sub("node"), o);
  ASSERT_TRUE(engine.ok());
  auto sm = KvStateMachine::Open(engine->get());
  ASSERT_TRUE(sm.ok());
  ASSERT_TRUE(
      (*sm)
          ->Apply(testing::CommandEntry(1, 1, testing::PutCommand("a", "1")))
          .ok());
  fs.set_full(true);
  auto r =
      (*sm)->Apply(testing::CommandEntry(2, 1, testing::PutCommand("b", "2")));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("disk full"));
  EXPECT_EQ((*sm)->applied_index(), 1u);
  fs.set_full(false);
  EXPECT_FALSE(
      (*sm)
          ->Apply(testing::CommandEntry(2, 1, testing::PutCommand("b", "2")))
          .ok());
  kv::RangeRequest get;
  get.set_key("a");
  auto range = (*sm)->Range(get);
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->kvs_size(), 1);
}

}  // namespace
}  // namespace raftkv::storage
