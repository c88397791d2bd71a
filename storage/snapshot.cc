// Snapshot image sealing and the atomic install of a snapshot into a
// node's log and state machine. Must never write a partial install.
#include "storage/snapshot.h"

#include <cstring>

#include "storage/checksum.h"
#include "storage/engine_rep.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"

namespace raftkv::storage {
namespace {

constexpr char kMagic[] = "RKVIMG01";
constexpr size_t kMagicSize = 8;
constexpr size_t kHeaderSize = kMagicSize + 4;

}  // namespace

std::string SealSnapshotImage(std::string_view payload) {
  std::string out(kMagic, kMagicSize);
  const uint32_t crc = Crc32c(payload);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(crc >> (8 * i)));
  out.append(payload);
  return out;
}

Status UnsealSnapshotImage(std::string_view data, const std::string& what,
                           std::string_view* payload) {
  if (data.size() < kHeaderSize ||
      std::memcmp(data.data(), kMagic, kMagicSize) != 0) {
    return Status::Corruption(what +
                              ": not a raftkv snapshot image (bad "
                              "magic or truncated header)");
  }
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) {
    stored |=
        static_cast<uint32_t>(static_cast<unsigned char>(data[kMagicSize + i]))
        << (8 * i);
  }
  *payload = data.substr(kHeaderSize);
  if (Crc32c(*payload) != stored) {
    return Status::Corruption(what + ": snapshot image checksum mismatch (" +
                              std::to_string(payload->size()) +
                              " payload bytes)");
  }
  return Status::OK();
}

Status InstallSnapshot(const raft::Snapshot& snapshot, RaftLog* log,
                       KvStateMachine* state_machine) {
  CHECK_EQ(log->engine_, state_machine->engine_) << "different engines";
  Engine::Rep* rep = log->engine_->rep();
  rocksdb::WriteBatch batch = NewWriteBatch();
  if (!log->StageSnapshotInstall(snapshot, &batch)) return Status::OK();
  Status s = state_machine->StageRestore(snapshot, &batch);
  if (s.ok()) s = rep->Write(&batch, /*sync=*/true, "install snapshot");
  if (!s.ok()) {
    log->DiscardStaged();
    state_machine->DiscardStaged();
    return s;
  }
  log->AdoptStaged();
  state_machine->AdoptStaged();
  return Status::OK();
}

Status Reconcile(RaftLog* log, KvStateMachine* state_machine) {
  if (log->snapshot_index() > state_machine->applied_index()) {
    raft::Snapshot snapshot;
    RAFTKV_RETURN_IF_ERROR(log->GetSnapshot(&snapshot));
    LOG(WARNING) << log->dir() << ": state machine at applied index "
                 << state_machine->applied_index()
                 << " is behind the log's snapshot at "
                 << snapshot.metadata().index() << "; restoring it";
    return state_machine->RestoreSnapshot(snapshot);
  }
  if (state_machine->applied_index() > log->hard_state().commit()) {
    LOG(WARNING) << log->dir() << ": state machine at applied index "
                 << state_machine->applied_index()
                 << " is ahead of the log's commit index "
                 << log->hard_state().commit()
                 << "; installing its image as the log's snapshot";
    auto data = state_machine->CreateSnapshotData();
    if (!data.ok()) return data.status();
    raft::HardState hs;
    raft::Snapshot snapshot;
    RAFTKV_RETURN_IF_ERROR(log->InitialState(
        &hs, snapshot.mutable_metadata()->mutable_conf_state()));
    snapshot.mutable_metadata()->set_index(state_machine->applied_index());
    snapshot.mutable_metadata()->set_term(state_machine->applied_term());
    snapshot.set_data(std::move(data).value());
    return log->ApplySnapshot(snapshot);
  }
  return Status::OK();
}

}  // namespace raftkv::storage
