// Fuzz target: a snapshot image received from the leader (or read back from
// raft_meta/snapshot_data at start-up).
//
// Feeds: raft::Snapshot.data -> storage::InstallSnapshot, as the node does
// with a Ready's snapshot: UnsealSnapshotImage (magic, CRC32C), the
// SnapshotImage parse and the restore staging checks of KvStateMachine
// (format version, index, SessionTable::Load of every session record), on
// a real storage::Engine in a temp dir emptied before every input, with the
// RaftLog on the same Engine. The snapshot's index and term are taken from
// the image itself (its applied state), so that the index check is passed
// unless the input asks otherwise. After a successful install the restored
// state is used as a node would: read in full, snapshotted again, commands
// applied on top (client registration, session writes, a log-time jump
// that expires sessions), then reopened as after a restart.
//
// Input: 1 byte of flags, then the data.
//   bit 0: the data is the payload: the harness seals it (magic and a
//          valid checksum), so the fuzzer gets past the CRC; otherwise the
//          data is the image as received.
//   bit 1: announce the image at index + 1 (the index check must refuse).
//
// Snapshot chunks (transfer in pieces) are to be added as their own target
// next to this one: reassemble the chunks, then call InstallAndUse() with
// the result (see fuzz/README.md).
//
// Must never: crash, trip a sanitizer or a CHECK; refuse an image with
// anything but Corruption or FailedPrecondition; change the log or the
// state machine when it refuses; install at an index other than the
// snapshot's; leave a state that cannot be read, snapshotted, applied to,
// or reopened.
#include <glog/logging.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client/kv.pb.h"
#include "fuzz/fuzz_util.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot.h"
#include "storage/storage.pb.h"

namespace raftkv::fuzz {
namespace {

void ExpectCorruption(const Status& s) {
  CHECK(s.ok() || s.code() == Status::Code::kCorruption) << s.ToString();
}

// The snapshot a leader would send with `data`: index and term from the
// image when it can be read (plus `index_skew`), membership {1, 2, 3}.
raft::Snapshot MakeSnapshot(std::string data, uint64_t index_skew) {
  raft::Snapshot snapshot;
  std::string_view payload;
  storage::SnapshotImage image;
  uint64_t index = 1;
  uint64_t term = 1;
  if (storage::UnsealSnapshotImage(data, "fuzz", &payload).ok() &&
      image.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    index = image.applied().index();
    term = image.applied().term();
  }
  raft::SnapshotMetadata* meta = snapshot.mutable_metadata();
  meta->set_index(index + index_skew);
  meta->set_term(term);
  for (uint64_t id : {1, 2, 3}) meta->mutable_conf_state()->add_voters(id);
  snapshot.set_data(std::move(data));
  return snapshot;
}

raft::Entry MakeEntry(uint64_t index, const kv::Command& command) {
  raft::Entry e;
  e.set_index(index);
  e.set_term(1);
  e.set_data(command.SerializeAsString());
  return e;
}

// Uses a freshly restored state machine the way a node would.
void UseRestored(storage::KvStateMachine* sm, storage::RaftLog* log) {
  kv::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  ExpectCorruption(sm->Range(all).status());
  ExpectCorruption(sm->CreateSnapshotData().status());

  // Commands on top: register, a write in the oldest restored session (or
  // the new one), a write without session, then a jump in log time.
  const uint64_t base = sm->applied_index();
  const uint64_t now = sm->log_time_ms();
  std::vector<raft::Entry> entries;
  kv::Command c;
  c.mutable_register_client();
  c.set_proposed_at_ms(now);
  entries.push_back(MakeEntry(base + 1, c));
  c.Clear();
  c.set_client_id(base + 1);
  c.set_sequence(1);
  c.set_proposed_at_ms(now + 1);
  c.mutable_put()->set_key("k");
  c.mutable_put()->set_value("v");
  entries.push_back(MakeEntry(base + 2, c));
  c.set_client_id(0);
  c.mutable_put()->set_prev_kv(true);
  entries.push_back(MakeEntry(base + 3, c));
  c.Clear();
  c.set_proposed_at_ms(now + (1ull << 40));  // every session expires
  c.mutable_delete_range()->set_key(std::string(1, '\0'));
  c.mutable_delete_range()->set_range_end(std::string(1, '\0'));
  entries.push_back(MakeEntry(base + 4, c));
  std::vector<kv::CommandResult> results;
  Status s = sm->ApplyBatch(entries, &results);
  ExpectCorruption(s);
  if (s.ok()) {
    CHECK_EQ(sm->applied_index(), base + entries.size());
    // What the node does next: a snapshot of the new state for the log.
    s = log->Append(entries);
    CHECK(s.ok()) << s.ToString();
    raft::HardState hs = log->hard_state();
    hs.set_commit(sm->applied_index());
    CHECK(log->SetHardState(hs).ok());
    ExpectCorruption(log->CreateSnapshot(sm->applied_index(), *sm));
  }
}

// Installs `snapshot` on an empty node and, if accepted, uses the result;
// then reopens the data dir as after a restart.
void InstallAndUse(const raft::Snapshot& snapshot) {
  ScratchEngine& scratch = ScratchEngine::Get();
  scratch.Reset();
  storage::Engine* engine = scratch.engine();
  {
    auto log = storage::RaftLog::Open(engine);
    CHECK(log.ok()) << log.status().ToString();
    auto sm = storage::KvStateMachine::Open(engine);
    CHECK(sm.ok()) << sm.status().ToString();
    Status s = storage::InstallSnapshot(snapshot, log->get(), sm->get());
    const uint64_t index = snapshot.metadata().index();
    if (!s.ok()) {
      CHECK(s.code() == Status::Code::kCorruption ||
            s.code() == Status::Code::kFailedPrecondition)
          << s.ToString();
      CHECK_EQ((*sm)->applied_index(), 0u);
      CHECK_EQ((*log)->snapshot_index(), 0u);
      CHECK_EQ((*log)->LastIndex(), 0u);
      return;
    }
    if (index == 0) return;  // not newer than the empty log: ignored
    CHECK_EQ((*sm)->applied_index(), index);
    CHECK_EQ((*log)->snapshot_index(), index);
    CHECK_EQ((*log)->LastIndex(), index);
    CHECK_GE((*log)->hard_state().commit(), index);
    UseRestored(sm->get(), log->get());
  }
  // A restart: the data dir must open and agree with itself.
  auto log = storage::RaftLog::Open(engine);
  ExpectCorruption(log.status());
  if (!log.ok()) return;
  auto sm = storage::KvStateMachine::Open(engine);
  ExpectCorruption(sm.status());
  if (!sm.ok()) return;
  ExpectCorruption(storage::Reconcile(log->get(), sm->get()));
}

}  // namespace
}  // namespace raftkv::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  raftkv::fuzz::InitLogging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftkv;
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (flags & 1) rest = storage::SealSnapshotImage(rest);
  fuzz::InstallAndUse(fuzz::MakeSnapshot(std::move(rest), (flags >> 1) & 1));
  return 0;
}
