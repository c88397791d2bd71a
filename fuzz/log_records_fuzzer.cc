// Fuzz target: what a node reads back from its data dir at start-up.
//
// Feeds: records of the raft_log, raft_meta, kv, kv_sessions and kv_meta
// column families, written as is into a real storage::Engine (temp dir,
// emptied before every input), so the decoders see them exactly as RocksDB
// returns them; then the start-up path of Node::Open and what follows it:
//   RaftLog::Open (ParseLogKey, HardState / log start / SnapshotMetadata
//   records, contiguity, last entry), KvStateMachine::Open (AppliedState,
//   SessionTable::Load of every session record), Reconcile, the
//   raft::Storage reads the core makes (InitialState, Entries, Term,
//   GetSnapshot), ApplyBatch of the committed entries not yet applied (the
//   entries' data are Commands from the fuzzer), and a Range over every
//   key (the KeyValue decode of kv_ops).
// The Raft core itself is not started: it treats a storage error as fatal
// by design (CHECK in raft/log.cc), so a damaged entry in the middle of the
// log would stop it, as intended.
//
// Input: a sequence of records, each
//   1 byte   column family / record: tag % 8 = 0 raft_log, 1 hard_state,
//            2 log_start, 3 snapshot_meta, 4 snapshot_data, 5 kv,
//            6 kv_sessions, 7 kv_meta "applied";
//   keyed families (0, 5, 6) only: 1 byte key length, then the key;
//   2 bytes value length (big-endian), then the value.
// A truncated record ends the input. A later record for the same key wins.
//
// Must never: crash, trip a sanitizer or a CHECK; report a damaged record
// as anything but Corruption (FailedPrecondition for an entry applied out
// of order); serve an entry whose stored index differs from its key; leave
// the state machine unable to apply once it has opened.
#include <glog/logging.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "client/kv.pb.h"
#include "fuzz/fuzz_util.h"
#include "storage/engine_rep.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot.h"

namespace raftkv::fuzz {
namespace {

void ExpectCorruption(const Status& s) {
  CHECK(s.ok() || s.code() == Status::Code::kCorruption) << s.ToString();
}

// Writes the records of `data` into the emptied Engine, in one batch.
void WriteRecords(const uint8_t* data, size_t size) {
  storage::Engine::Rep* rep = ScratchEngine::Get().engine()->rep();
  rocksdb::WriteBatch batch = storage::NewWriteBatch();
  size_t pos = 0;
  while (pos < size) {
    const uint8_t tag = data[pos++] % 8;
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
        key = "snapshot_data";
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
    CHECK(batch
              .Put(cf, key,
                   rocksdb::Slice(reinterpret_cast<const char*>(data + pos), n))
              .ok());
    pos += n;
  }
  CHECK(rep->Write(&batch, /*sync=*/false, "fuzz records").ok());
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
  fuzz::WriteRecords(data, size);

  auto log = storage::RaftLog::Open(scratch.engine());
  fuzz::ExpectCorruption(log.status());
  if (!log.ok()) return 0;
  auto sm = storage::KvStateMachine::Open(scratch.engine());
  fuzz::ExpectCorruption(sm.status());
  if (!sm.ok()) return 0;
  Status s = storage::Reconcile(log->get(), sm->get());
  CHECK(s.ok() || s.code() == Status::Code::kCorruption ||
        s.code() == Status::Code::kFailedPrecondition)
      << s.ToString();
  if (!s.ok()) return 0;
  fuzz::ReadLog(**log);
  fuzz::ApplyCommitted(**log, sm->get());
  fuzz::ReadAll(**sm);
  return 0;
}
