// Streamed snapshots end to end on real RocksDB data dirs: a SnapshotSource
// on a "leader" state machine, its chunks through a SnapshotStager into a
// staging directory, and the atomic install on a "follower"
// (storage/snapshot*.h). Covers: a round trip that replaces (not merges)
// the follower's state, determinism, a consistent view while writes go on,
// damaged, reordered, missing and truncated chunks, content the state
// machine could not load, an install that a crash interrupted and that the
// next start-up finishes, abandoned staging, and the start-up check of log
// against state machine. Must never touch anything outside its temp dirs.
#include "storage/snapshot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/table_properties.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "storage/coding.h"
#include "storage/engine.h"
#include "storage/engine_rep.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot_install.h"
#include "storage/snapshot_stager.h"
#include "storage/storage.pb.h"
#include "tests/storage/test_util.h"

namespace raftkv::storage {
namespace {

namespace fs = std::filesystem;
using testing::CommandEntry;
using ::testing::HasSubstr;
using testing::PutCommand;
using testing::TempDir;

// An Engine, its RaftLog and its state machine in one data dir.
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
  // Appends and applies `entries` (as committed entries).
  void Apply(const std::vector<raft::Entry>& entries) {
    ASSERT_TRUE(log->Append(entries).ok());
    std::vector<kv::CommandResult> results;
    ASSERT_TRUE(sm->ApplyBatch(entries, &results).ok());
  }
  std::string Get(const std::string& key) {
    kv::RangeRequest r;
    r.set_key(key);
    auto got = sm->Range(r);
    return got.ok() && got->kvs_size() == 1 ? got->kvs(0).value() : "<none>";
  }
  std::string dir;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<RaftLog> log;
  std::unique_ptr<KvStateMachine> sm;
};

std::vector<raft::Entry> Puts(uint64_t first, uint64_t count, uint64_t term,
                              const std::string& prefix) {
  std::vector<raft::Entry> out;
  for (uint64_t i = first; i < first + count; ++i) {
    out.push_back(CommandEntry(
        i, term,
        PutCommand(prefix + std::to_string(i), "v" + std::to_string(i))));
  }
  return out;
}

std::vector<std::string> Chunks(const SnapshotSource& source,
                                size_t chunk_bytes) {
  std::vector<std::string> chunks;
  Status s = source.Stream(chunk_bytes, [&](std::string_view c) {
    chunks.emplace_back(c);
    return Status::OK();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return chunks;
}

raft::SnapshotMetadata Meta(const SnapshotSource& source) {
  raft::SnapshotMetadata meta;
  meta.set_index(source.index());
  meta.set_term(source.term());
  meta.mutable_conf_state()->add_voters(1);
  return meta;
}

class SnapshotTest : public ::testing::Test {
 protected:
  SnapshotTest() : leader_(tmp_.Sub("leader")), follower_(tmp_.Sub("f")) {}

  // Stages `chunks` for the follower; the stager's last status.
  Status Stage(const std::vector<std::string>& chunks, uint64_t term,
               uint64_t index, std::string* dir) {
    *dir = StagingDir(follower_.dir, term, index);
    auto stager = SnapshotStager::Create(*dir, "test");
    if (!stager.ok()) return stager.status();
    for (const std::string& c : chunks) {
      RAFTKV_RETURN_IF_ERROR((*stager)->Add(c));
    }
    return (*stager)->Finish();
  }

  TempDir tmp_;
  Replica leader_;
  Replica follower_;
};

TEST_F(SnapshotTest, RoundTripReplacesTheFollowersState) {
  // The leader: a session with a remembered result, and 300 keys.
  kv::Command reg;
  reg.mutable_register_client();
  leader_.Apply({CommandEntry(1, 2, reg)});
  const uint64_t client = 1;
  kv::Command session_put = PutCommand("s", "once", client, 1);
  session_put.set_first_outstanding(1);
  leader_.Apply({CommandEntry(2, 2, session_put)});
  leader_.Apply(Puts(3, 300, 2, "k"));
  // The follower has state of its own that must vanish.
  follower_.Apply(Puts(1, 5, 1, "old"));

  auto source = SnapshotSource::Create(*leader_.sm);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->index(), 302u);
  // Small chunks: many of them.
  const auto chunks = Chunks(**source, 512);
  EXPECT_GT(chunks.size(), 10u);
  std::string dir;
  ASSERT_TRUE(Stage(chunks, 2, 302, &dir).ok());
  ASSERT_TRUE(InstallStagedSnapshot(dir, Meta(**source), follower_.log.get(),
                                    follower_.sm.get())
                  .ok());
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_EQ(follower_.sm->applied_index(), 302u);
  EXPECT_EQ(follower_.sm->revision(), leader_.sm->revision());
  EXPECT_EQ(follower_.sm->session_count(), 1u);
  EXPECT_EQ(follower_.Get("k150"), "v150");
  EXPECT_EQ(follower_.Get("old3"), "<none>");  // replaced, not merged
  EXPECT_EQ(follower_.log->FirstIndex(), 303u);
  EXPECT_EQ(follower_.log->snapshot_index(), 302u);
  // A retried session command is answered from the installed table: with
  // the revision of its first (and only) execution.
  const raft::Entry retry_entry = CommandEntry(303, 2, session_put);
  ASSERT_TRUE(follower_.log->Append({retry_entry}).ok());
  auto retry = follower_.sm->Apply(retry_entry);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->put().header().revision(), 1);
  EXPECT_EQ(follower_.Get("s"), "once");
  // It survives a restart, and the image is the leader's, byte for byte.
  follower_.Open();
  ASSERT_TRUE(RecoverSnapshotState(follower_.dir, follower_.log.get(),
                                   follower_.sm.get())
                  .ok());
  EXPECT_EQ(follower_.sm->applied_index(), 303u);
  EXPECT_EQ(follower_.Get("k3"), "v3");
}

// An installed snapshot's files read like the engine's own: partitioned
// index and bloom filters that live in the block cache (the memory budget
// covers them), not a whole index block held outside it for each file.
TEST_F(SnapshotTest, InstalledFilesHaveTheEnginesTableFormat) {
  leader_.Apply(Puts(1, 2000, 1, "k"));
  auto source = SnapshotSource::Create(*leader_.sm);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::string dir;
  ASSERT_TRUE(Stage(Chunks(**source, 4096), 1, 2000, &dir).ok());
  ASSERT_TRUE(InstallStagedSnapshot(dir, Meta(**source), follower_.log.get(),
                                    follower_.sm.get())
                  .ok());
  Engine::Rep* rep = follower_.engine->rep();
  rocksdb::TablePropertiesCollection tables;
  ASSERT_TRUE(rep->db->GetPropertiesOfAllTables(rep->kv, &tables).ok());
  ASSERT_FALSE(tables.empty());
  for (const auto& [file, props] : tables) {
    EXPECT_THAT(props->filter_policy_name, ::testing::HasSubstr("bloom"))
        << file;
    EXPECT_GT(props->index_partitions, 0u) << file;
  }
}

TEST_F(SnapshotTest, TheImageIsDeterministicAndConsistent) {
  leader_.Apply(Puts(1, 100, 1, "k"));
  auto source = SnapshotSource::Create(*leader_.sm);
  ASSERT_TRUE(source.ok());
  const auto first = Chunks(**source, 1024);
  // Writes after the point change nothing in its image.
  leader_.Apply(Puts(101, 100, 1, "k"));
  kv::Command del;
  del.mutable_delete_range()->set_key("k1");
  leader_.Apply({CommandEntry(201, 1, del)});
  EXPECT_EQ(Chunks(**source, 1024), first);
  // Two points of equal states give equal images.
  Replica other(tmp_.Sub("other"));
  other.Apply(Puts(1, 100, 1, "k"));
  auto twin = SnapshotSource::Create(*other.sm);
  ASSERT_TRUE(twin.ok());
  EXPECT_EQ(Chunks(**twin, 1024), first);
}

TEST_F(SnapshotTest, ChunksStayNearTheirSizeWhateverTheData) {
  leader_.Apply(Puts(1, 2000, 1, "key-with-some-length-"));
  auto source = SnapshotSource::Create(*leader_.sm);
  ASSERT_TRUE(source.ok());
  size_t largest = 0, total = 0;
  ASSERT_TRUE((*source)
                  ->Stream(16 << 10,
                           [&](std::string_view c) {
                             largest = std::max(largest, c.size());
                             total += c.size();
                             return Status::OK();
                           })
                  .ok());
  EXPECT_GT(total, 50u << 10);
  EXPECT_LT(largest, (16u << 10) + 1024);
}

TEST_F(SnapshotTest, DamagedOrMisorderedChunksAreRejected) {
  leader_.Apply(Puts(1, 200, 1, "k"));
  auto source = SnapshotSource::Create(*leader_.sm);
  ASSERT_TRUE(source.ok());
  const auto good = Chunks(**source, 512);
  ASSERT_GT(good.size(), 4u);
  std::string dir;

  auto damaged = good;
  damaged[2][damaged[2].size() / 2] ^= 0x01;
  Status s = Stage(damaged, 1, 200, &dir);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("checksum"));

  auto skipped = good;
  skipped.erase(skipped.begin() + 2);
  s = Stage(skipped, 1, 200, &dir);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("was expected"));

  auto swapped = good;
  std::swap(swapped[1], swapped[2]);
  EXPECT_TRUE(Stage(swapped, 1, 200, &dir).IsCorruption());

  auto truncated = good;
  truncated.pop_back();  // no trailer: an interrupted transfer
  s = Stage(truncated, 1, 200, &dir);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("ended early"));
  SnapshotHeader staged;
  EXPECT_TRUE(ReadStagedHeader(dir, &staged).IsNotFound());

  // None of it touched the follower; the intact stream still installs.
  follower_.Apply(Puts(1, 3, 1, "mine"));
  EXPECT_EQ(follower_.sm->applied_index(), 3u);
  ASSERT_TRUE(Stage(good, 1, 200, &dir).ok());
  ASSERT_TRUE(InstallStagedSnapshot(dir, Meta(**source), follower_.log.get(),
                                    follower_.sm.get())
                  .ok());
  EXPECT_EQ(follower_.Get("k200"), "v200");
}

TEST_F(SnapshotTest, RecordsOutOfKeyOrderAreRejected) {
  SnapshotChunk header;
  header.set_sequence(0);
  header.mutable_header()->set_format_version(kFormatVersion);
  header.mutable_header()->set_index(1);
  header.mutable_header()->set_term(1);
  header.mutable_header()->mutable_applied()->set_index(1);
  header.mutable_header()->mutable_applied()->set_term(1);
  SnapshotChunk records;
  records.set_sequence(1);
  for (const char* key : {"b", "a"}) {
    SnapshotRecord* r = records.add_records();
    r->set_family(FAMILY_KV);
    r->set_key(key);
  }
  auto stager = SnapshotStager::Create(tmp_.Sub("order"), "test");
  ASSERT_TRUE(stager.ok());
  ASSERT_TRUE((*stager)->Add(EncodeSnapshotChunk(header)).ok());
  Status s = (*stager)->Add(EncodeSnapshotChunk(records));
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_THAT(s.message(), HasSubstr("out of key order"));
}

// A stream whose checksums are right but whose content the state machine
// could not load or read is refused while staging: the install clears the
// old state before it loads the new one, so a refusal then would leave a
// node that cannot start (found by fuzz/snapshot_chunk_fuzzer).
TEST_F(SnapshotTest, RecordsTheStateMachineCannotLoadAreRejected) {
  auto stage = [&](const SnapshotHeader& header,
                   const std::vector<SnapshotRecord>& records) {
    SnapshotChunk first;
    *first.mutable_header() = header;
    SnapshotChunk body;
    body.set_sequence(1);
    for (const SnapshotRecord& r : records) *body.add_records() = r;
    auto stager = SnapshotStager::Create(tmp_.Sub("content"), "test");
    EXPECT_TRUE(stager.ok());
    Status s = (*stager)->Add(EncodeSnapshotChunk(first));
    if (s.ok()) s = (*stager)->Add(EncodeSnapshotChunk(body));
    return s;
  };
  SnapshotHeader header;
  header.set_format_version(kFormatVersion);
  header.set_index(8);
  header.set_term(2);
  header.mutable_applied()->set_index(8);
  header.mutable_applied()->set_term(2);
  header.mutable_applied()->set_revision(3);
  auto record = [](SnapshotFamily family, std::string key, std::string value) {
    SnapshotRecord r;
    r.set_family(family);
    r.set_key(std::move(key));
    r.set_value(std::move(value));
    return r;
  };
  SessionHeader session;
  session.set_first_outstanding(1);
  const std::string session_value = session.SerializeAsString();
  kv::KeyValue kv;
  kv.set_value("v");
  const std::string kv_value = kv.SerializeAsString();

  // What the stager must take: a session of client 8 with a result, a key.
  EXPECT_TRUE(
      stage(header, {record(FAMILY_SESSIONS, SessionKey(8), session_value),
                     record(FAMILY_SESSIONS, SessionResultKey(8, 1), ""),
                     record(FAMILY_KV, "k", kv_value)})
          .ok());

  const std::vector<std::vector<SnapshotRecord>> bad_records = {
      {record(FAMILY_SESSIONS, SessionKey(9), session_value)},
      {record(FAMILY_SESSIONS, SessionKey(1), "\xff")},
      {record(FAMILY_SESSIONS, SessionResultKey(1, 1), "")},
      {record(FAMILY_SESSIONS, SessionKey(1), session_value),
       record(FAMILY_SESSIONS, SessionResultKey(2, 1), "")},
      {record(FAMILY_SESSIONS, SessionKey(1), session_value),
       record(FAMILY_SESSIONS, SessionResultKey(1, 1), "\xff")},
      {record(FAMILY_SESSIONS, "abc", "")},
      {record(FAMILY_KV, "k", "\xff\xff")}};
  for (const auto& records : bad_records) {
    Status s = stage(header, records);
    EXPECT_TRUE(s.IsCorruption())
        << records[0].key().size() << " " << s.ToString();
  }

  SnapshotHeader bad = header;
  bad.mutable_applied()->set_term(3);
  EXPECT_TRUE(stage(bad, {}).IsCorruption());
  bad = header;
  bad.set_index(UINT64_MAX);
  bad.mutable_applied()->set_index(UINT64_MAX);
  EXPECT_TRUE(stage(bad, {}).IsCorruption());
  for (int64_t revision : {int64_t{-1}, int64_t{9}, INT64_MAX}) {
    bad = header;
    bad.mutable_applied()->set_revision(revision);
    EXPECT_TRUE(stage(bad, {}).IsCorruption()) << revision;
  }
}

TEST_F(SnapshotTest, AnInterruptedInstallIsFinishedAtStartUp) {
  leader_.Apply(Puts(1, 50, 3, "k"));
  auto source = SnapshotSource::Create(*leader_.sm);
  ASSERT_TRUE(source.ok());
  follower_.Apply(Puts(1, 5, 1, "old"));
  std::string dir;
  ASSERT_TRUE(Stage(Chunks(**source, 1024), 3, 50, &dir).ok());
  // A crash right after step 1 of the install (the log reset, the old
  // state cleared and the redo recorded, nothing ingested yet): emulated by
  // writing what step 1 writes by hand.
  raft::Snapshot reset;
  *reset.mutable_metadata() = Meta(**source);
  ASSERT_TRUE(follower_.log->ApplySnapshot(reset).ok());
  Engine::Rep* rep = follower_.engine->rep();
  rocksdb::WriteBatch step1 = NewWriteBatch();
  ASSERT_TRUE(step1.DeleteRange(rep->kv, "", "\xff").ok());
  ASSERT_TRUE(step1.Delete(rep->kv_meta, "applied").ok());
  PendingInstall pending;
  pending.set_staging_dir(dir);
  pending.set_index(50);
  pending.set_term(3);
  ASSERT_TRUE(
      step1.Put(rep->raft_meta, "install_pending", pending.SerializeAsString())
          .ok());
  ASSERT_TRUE(rep->Write(&step1, /*sync=*/true, "test").ok());
  follower_.Open();
  EXPECT_EQ(follower_.Get("old1"), "<none>");
  EXPECT_EQ(follower_.sm->applied_index(), 0u);
  Status s = RecoverSnapshotState(follower_.dir, follower_.log.get(),
                                  follower_.sm.get());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(follower_.sm->applied_index(), 50u);
  EXPECT_EQ(follower_.Get("k50"), "v50");
  EXPECT_FALSE(fs::exists(dir));
  // The redo record is gone: the next start-up has nothing to redo.
  rep = follower_.engine->rep();  // the reopened engine's
  std::string value;
  EXPECT_TRUE(rep->db
                  ->Get(rocksdb::ReadOptions(), rep->raft_meta,
                        "install_pending", &value)
                  .IsNotFound());
}

TEST_F(SnapshotTest, AnInstallInterruptedAfterItsIngestionIsFinished) {
  leader_.Apply(Puts(1, 50, 3, "k"));
  auto source = SnapshotSource::Create(*leader_.sm);
  ASSERT_TRUE(source.ok());
  follower_.Apply(Puts(1, 5, 1, "old"));
  const auto chunks = Chunks(**source, 1024);
  std::string dir;
  ASSERT_TRUE(Stage(chunks, 3, 50, &dir).ok());
  ASSERT_TRUE(InstallStagedSnapshot(dir, Meta(**source), follower_.log.get(),
                                    follower_.sm.get())
                  .ok());
  // A crash after the ingestion, before the redo record was deleted:
  // RocksDB has already removed the staged SST files (move_files), STAGED
  // is left. Emulated by staging again, removing the SST files and
  // writing the record back.
  ASSERT_TRUE(Stage(chunks, 3, 50, &dir).ok());
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".sst") fs::remove(e.path());
  }
  Engine::Rep* rep = follower_.engine->rep();
  PendingInstall pending;
  pending.set_staging_dir(dir);
  pending.set_index(50);
  pending.set_term(3);
  rocksdb::WriteBatch record = NewWriteBatch();
  ASSERT_TRUE(
      record.Put(rep->raft_meta, "install_pending", pending.SerializeAsString())
          .ok());
  ASSERT_TRUE(rep->Write(&record, /*sync=*/true, "test").ok());
  follower_.Open();
  Status s = RecoverSnapshotState(follower_.dir, follower_.log.get(),
                                  follower_.sm.get());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(follower_.sm->applied_index(), 50u);
  EXPECT_EQ(follower_.Get("k50"), "v50");
  EXPECT_EQ(follower_.Get("old1"), "<none>");
  EXPECT_FALSE(fs::exists(dir));
}

TEST_F(SnapshotTest, IngestionLeavesTheStagedFilesAsTheyWere) {
  // After a crash during the ingestion, the redo ingests the staged files
  // again; the first attempt had hard-linked them into the database, so it
  // must not have written into them (as RocksDB's write_global_seqno does).
  leader_.Apply(Puts(1, 50, 3, "k"));
  auto source = SnapshotSource::Create(*leader_.sm);
  ASSERT_TRUE(source.ok());
  follower_.Apply(Puts(1, 5, 1, "old"));
  std::string dir;
  ASSERT_TRUE(Stage(Chunks(**source, 1024), 3, 50, &dir).ok());
  const std::string kept = tmp_.Sub("kept");
  fs::create_directories(kept);
  std::map<std::string, std::string> staged;  // name -> bytes
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    std::ifstream in(e.path(), std::ios::binary);
    staged[name].assign(std::istreambuf_iterator<char>(in), {});
    fs::create_hard_link(e.path(), kept + "/" + name);
  }
  ASSERT_TRUE(InstallStagedSnapshot(dir, Meta(**source), follower_.log.get(),
                                    follower_.sm.get())
                  .ok());
  EXPECT_EQ(follower_.Get("k50"), "v50");
  for (const auto& [name, bytes] : staged) {
    std::ifstream in(kept + "/" + name, std::ios::binary);
    const std::string now(std::istreambuf_iterator<char>(in), {});
    EXPECT_TRUE(now == bytes) << name << " was changed by its ingestion";
  }
}

TEST_F(SnapshotTest, AbandonedStagingIsRemovedAtStartUp) {
  const std::string junk = StagingDir(follower_.dir, 9, 99);
  fs::create_directories(junk);
  std::ofstream(junk + "/kv.sst") << "half a file";
  ASSERT_TRUE(RecoverSnapshotState(follower_.dir, follower_.log.get(),
                                   follower_.sm.get())
                  .ok());
  EXPECT_FALSE(fs::exists(StagingRoot(follower_.dir)));
}

TEST_F(SnapshotTest, StartUpRefusesAStateMachineTheLogCannotReach) {
  follower_.Apply(Puts(1, 10, 1, "k"));
  // The log was compacted beyond what the state machine holds: the
  // entries in between are gone.
  ASSERT_TRUE(follower_.log->Append(Puts(11, 10, 1, "k")).ok());
  ASSERT_TRUE(follower_.log->Compact(15).ok());
  Status s = RecoverSnapshotState(follower_.dir, follower_.log.get(),
                                  follower_.sm.get());
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("entries are missing"));
}

}  // namespace
}  // namespace raftkv::storage
