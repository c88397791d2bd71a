// Fuzz target: what a node reads back from its data dir at start-up.
//
// Feeds: records of the raft_log, raft_meta, kv, kv_sessions and kv_meta
// column families, written as is into a real storage::Engine (temp dir,
// emptied before every input), so the decoders see them exactly as RocksDB
// returns them; then the start-up path of Node::Open and what follows it:
//   RaftLog::Open (ParseLogKey, HardState / log start / SnapshotMetadata
//   records, contiguity, last entry), KvStateMachine::Open (AppliedState,
//   SessionTable::Load of every session record), RecoverSnapshotState (the
//   redo of an interrupted snapshot install named by raft_meta/
//   install_pending, the removal of abandoned staging, the check of log
//   against state machine), the raft::Storage reads the core makes
//   (InitialState, Entries, Term,
//   GetSnapshot), ApplyBatch of the committed entries not yet applied (the
//   entries' data are Commands from the fuzzer), and a Range over every
//   key (the KeyValue decode of kv_ops).
// The Raft core itself is not started: it treats a storage error as fatal
// by design (CHECK in raft/log.cc), so a damaged entry in the middle of the
// log would stop it, as intended.
//
// Input: a sequence of records, each
//   1 byte   column family / record: tag % 8 = 0 raft_log, 1 hard_state,
//            2 log_start, 3 snapshot_meta, 4 snapshot_data (install_pending
//            if tag bit 3 is set), 5 kv, 6 kv_sessions, 7 kv_meta
//            "applied";
//   keyed families (0, 5, 6) only: 1 byte key length, then the key;
//   2 bytes value length (big-endian), then the value.
// A truncated record ends the input. A later record for the same key wins.
// An install_pending record that parses names the staging directory the
// harness picks (StagingDir of its data dir, at the record's term and
// index: the fuzzer never names a path); with tag bit 4 set, the harness
// first stages a real snapshot there (one key, at that index and term), as
// a crash between the install's first write and its ingestion leaves it.
//
// Must never: crash, trip a sanitizer or a CHECK; report a damaged record
// as anything but Corruption; serve an entry whose stored index differs
// from its key; leave the state machine unable to apply once it has
// opened; leave an install pending or a staging directory behind once
// RecoverSnapshotState succeeded.
#include <glog/logging.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "client/kv.pb.h"
#include "fuzz/fuzz_util.h"
#include "storage/engine_rep.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot_install.h"
#include "storage/snapshot_stager.h"
#include "storage/storage.pb.h"

namespace raftkv::fuzz {
namespace {

void ExpectCorruption(const Status& s) {
  CHECK(s.ok() || s.code() == Status::Code::kCorruption) << s.ToString();
}

// Stages a snapshot of one key at `index`/`term` in `dir`, as a transfer
// would (SnapshotStager), for an install_pending record to name.
void StageSnapshot(const std::string& dir, uint64_t index, uint64_t term) {
  storage::SnapshotHeader header;
  header.set_format_version(storage::kFormatVersion);
  header.set_index(index);
  header.set_term(term);
  header.mutable_applied()->set_index(index);
  header.mutable_applied()->set_term(term);
  header.mutable_applied()->set_revision(1);
  storage::SnapshotRecord record;
  record.set_family(storage::FAMILY_KV);
  record.set_key("staged");
  kv::KeyValue value;
  value.set_value("1");
  value.set_create_revision(1);
  value.set_mod_revision(1);
  value.set_version(1);
  record.set_value(value.SerializeAsString());
  auto stager = storage::SnapshotStager::Create(dir, "fuzz");
  CHECK(stager.ok()) << stager.status().ToString();
  for (const std::string& chunk : ChunkPayloads(header, {record}, 1)) {
    if (!(*stager)->Add(SealChunk(chunk)).ok()) return;  // e.g. index 2^64-1
  }
  Status s = (*stager)->Finish();
  CHECK(s.ok()) << s.ToString();
}

// The install_pending record written last (the one recovery sees).
struct Pending {
  bool present = false;
  bool staged = false;  // parsed, and its snapshot staged
  uint64_t index = 0;
};

// Writes the records of `data` into the emptied Engine, in one batch.
Pending WriteRecords(const uint8_t* data, size_t size) {
  Pending last;
  const std::string& data_dir = ScratchEngine::Get().data_dir();
  storage::Engine::Rep* rep = ScratchEngine::Get().engine()->rep();
  rocksdb::WriteBatch batch = storage::NewWriteBatch();
  size_t pos = 0;
  while (pos < size) {
    const uint8_t raw_tag = data[pos++];
    const uint8_t tag = raw_tag % 8;
    rocksdb::ColumnFamilyHandle* cf = nullptr;
    std::string key;
    bool keyed = false;
    switch (tag) {
      case 0:
        cf = rep->raft_log;
        keyed = true;
        break;
      case 1:
        cf = rep->raft_meta;
        key = "hard_state";
        break;
      case 2:
        cf = rep->raft_meta;
        key = "log_start";
        break;
      case 3:
        cf = rep->raft_meta;
        key = "snapshot_meta";
        break;
      case 4:
        cf = rep->raft_meta;
        key = raw_tag & 8 ? "install_pending" : "snapshot_data";
        break;
      case 5:
        cf = rep->kv;
        keyed = true;
        break;
      case 6:
        cf = rep->kv_sessions;
        keyed = true;
        break;
      default:
        cf = rep->kv_meta;
        key = "applied";
        break;
    }
    if (keyed) {
      if (pos >= size) break;
      const size_t n = data[pos++];
      if (size - pos < n) break;
      key.assign(reinterpret_cast<const char*>(data + pos), n);
      pos += n;
    }
    if (size - pos < 2) break;
    const size_t n = (size_t{data[pos]} << 8) | data[pos + 1];
    pos += 2;
    if (size - pos < n) break;
    std::string value(reinterpret_cast<const char*>(data + pos), n);
    pos += n;
    storage::PendingInstall pending;
    const bool is_pending = tag == 4 && (raw_tag & 8);
    const bool parsed = is_pending && pending.ParseFromString(value);
    if (parsed) {
      pending.set_staging_dir(
          storage::StagingDir(data_dir, pending.term(), pending.index()));
      value = pending.SerializeAsString();
      if (raw_tag & 16) {
        StageSnapshot(pending.staging_dir(), pending.index(), pending.term());
      }
    }
    if (is_pending) {
      storage::SnapshotHeader staged;
      last.present = true;
      last.staged =
          parsed &&
          storage::ReadStagedHeader(pending.staging_dir(), &staged).ok();
      last.index = pending.index();
    }
    CHECK(batch.Put(cf, key, value).ok());
  }
  CHECK(rep->Write(&batch, /*sync=*/false, "fuzz records").ok());
  return last;
}

void ReadLog(const storage::RaftLog& log) {
  raft::HardState hs;
  raft::ConfState cs;
  CHECK(log.InitialState(&hs, &cs).ok());
  const uint64_t first = log.FirstIndex();
  const uint64_t last = log.LastIndex();
  CHECK_GE(last + 1, first);
  CHECK_LE(hs.commit(), last);
  std::vector<raft::Entry> entries;
  Status s = log.Entries(first, last + 1, UINT64_MAX, &entries);
  ExpectCorruption(s);
  if (s.ok()) {
    CHECK_EQ(entries.size(), last + 1 - first);
    for (size_t i = 0; i < entries.size(); ++i) {
      CHECK_EQ(entries[i].index(), first + i);
    }
  }
  for (uint64_t i = first - 1; i <= last; ++i) {
    uint64_t term = 0;
    ExpectCorruption(log.Term(i, &term));
  }
  raft::Snapshot snapshot;
  ExpectCorruption(log.GetSnapshot(&snapshot));
}

// Applies the committed entries the state machine has not applied yet, as
// the node does once the core hands them out.
void ApplyCommitted(const storage::RaftLog& log, storage::KvStateMachine* sm) {
  const uint64_t commit = log.hard_state().commit();
  const uint64_t from = sm->applied_index() + 1;
  if (commit < from || from < log.FirstIndex()) return;
  std::vector<raft::Entry> entries;
  if (!log.Entries(from, commit + 1, UINT64_MAX, &entries).ok()) return;
  std::vector<kv::CommandResult> results;
  Status s = sm->ApplyBatch(entries, &results);
  ExpectCorruption(s);
  if (s.ok()) {
    CHECK_EQ(results.size(), entries.size());
    CHECK_EQ(sm->applied_index(), commit);
  }
}

void ReadAll(const storage::KvStateMachine& sm) {
  kv::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  auto result = sm.Range(all);
  ExpectCorruption(result.status());
}

// After RecoverSnapshotState succeeded: no install is pending any more.
void CheckNothingPending(storage::Engine* engine) {
  storage::Engine::Rep* rep = engine->rep();
  std::string value;
  rocksdb::Status s = rep->db->Get(rocksdb::ReadOptions(), rep->raft_meta,
                                   "install_pending", &value);
  CHECK(s.IsNotFound()) << "install_pending survived recovery";
}

}  // namespace
}  // namespace raftkv::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  raftkv::fuzz::InitLogging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftkv;
  fuzz::ScratchEngine& scratch = fuzz::ScratchEngine::Get();
  scratch.Reset();
  // What an earlier input staged and did not recover.
  std::filesystem::remove_all(storage::StagingRoot(scratch.data_dir()));
  const fuzz::Pending pending = fuzz::WriteRecords(data, size);

  auto log = storage::RaftLog::Open(scratch.engine());
  fuzz::ExpectCorruption(log.status());
  if (!log.ok()) return 0;
  auto sm = storage::KvStateMachine::Open(scratch.engine());
  fuzz::ExpectCorruption(sm.status());
  if (!sm.ok()) return 0;
  Status s =
      storage::RecoverSnapshotState(scratch.data_dir(), log->get(), sm->get());
  fuzz::ExpectCorruption(s);
  if (!s.ok()) return 0;
  CHECK(!std::filesystem::exists(storage::StagingRoot(scratch.data_dir())));
  if (pending.present) {  // the install was finished
    CHECK(pending.staged) << "an install without its staged snapshot passed";
    CHECK_EQ((*sm)->applied_index(), pending.index);
  }
  fuzz::CheckNothingPending(scratch.engine());
  fuzz::ReadLog(**log);
  fuzz::ApplyCommitted(**log, sm->get());
  fuzz::ReadAll(**sm);
  return 0;
}
