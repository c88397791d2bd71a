// Installing a staged snapshot with a redo record, and start-up recovery
// (see snapshot_install.h). Must never delete a staging directory while
// "install_pending" names it.
#include "storage/snapshot_install.h"

#include <glog/logging.h>
#include <rocksdb/options.h>

#include <filesystem>
#include <system_error>

#include "storage/engine_rep.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot_stager.h"
#include "storage/storage.pb.h"

namespace raftkv::storage {
namespace {

namespace fs = std::filesystem;

constexpr char kPendingKey[] = "install_pending";  // raft_meta
constexpr char kAppliedKey[] = "applied";          // kv_meta
constexpr char kMembershipKey[] = "membership";    // kv_meta
constexpr char kAuthKey[] = "auth";                // kv_meta

// Adds to `batch` the deletion of every key of `cf`.
Status StageClear(Engine::Rep* rep, rocksdb::ColumnFamilyHandle* cf,
                  rocksdb::WriteBatch* batch) {
  std::unique_ptr<rocksdb::Iterator> it(
      rep->db->NewIterator(rocksdb::ReadOptions(), cf));
  it->SeekToLast();
  if (!it->status().ok()) return rep->Error(it->status(), "scan for install");
  if (!it->Valid()) return Status::OK();
  const std::string end = it->key().ToString() + std::string(1, '\0');
  CHECK(batch->DeleteRange(cf, rocksdb::Slice(), end).ok());
  return Status::OK();
}

Status Ingest(Engine::Rep* rep, const std::string& dir) {
  std::vector<rocksdb::IngestExternalFileArg> args;
  const std::pair<const char*, rocksdb::ColumnFamilyHandle*> files[] = {
      {"sessions.sst", rep->kv_sessions},
      {"kv.sst", rep->kv},
      {"history.sst", rep->kv_history},
      {"leases.sst", rep->kv_leases},
      {"meta.sst", rep->kv_meta}};
  for (const auto& [name, cf] : files) {
    const std::string path = dir + "/" + name;
    std::error_code ec;
    if (!fs::exists(path, ec)) continue;  // an empty family
    rocksdb::IngestExternalFileArg arg;
    arg.column_family = cf;
    arg.external_files = {path};
    // Hard links into the database; RocksDB removes the staged name once
    // the ingestion is durable (see FinishInstall).
    arg.options.move_files = true;
    // Never written into: after a crash during the ingestion, the redo
    // ingests the same files again (the sequence number lives in the
    // MANIFEST; writing it into the file is only for RocksDB before 5.16).
    arg.options.write_global_seqno = false;
    arg.options.allow_blocking_flush = true;
    arg.options.snapshot_consistency = true;
    args.push_back(std::move(arg));
  }
  rocksdb::Status s = rep->db->IngestExternalFiles(args);
  if (!s.ok()) return rep->Error(s, "ingest snapshot " + dir);
  return Status::OK();
}

Status WritePending(Engine::Rep* rep, const PendingInstall* pending,
                    rocksdb::WriteBatch* batch) {
  if (pending == nullptr) {
    CHECK(batch->Delete(rep->raft_meta, kPendingKey).ok());
  } else {
    std::string value;
    CHECK(pending->SerializeToString(&value));
    CHECK(batch->Put(rep->raft_meta, kPendingKey, value).ok());
  }
  return Status::OK();
}

// Whether the snapshot `pending` names was ingested: step 1 deleted the
// state machine's "applied" record, and only the (atomic) ingestion brings
// it back, at the snapshot's index and term.
StatusOr<bool> Ingested(Engine::Rep* rep, const PendingInstall& pending) {
  std::string value;
  rocksdb::Status s =
      rep->db->Get(rocksdb::ReadOptions(), rep->kv_meta, kAppliedKey, &value);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return rep->Error(s, "read the applied record");
  AppliedState applied;
  return applied.ParseFromString(value) && applied.index() == pending.index() &&
         applied.term() == pending.term();
}

// Steps 2 and 3 of the install (also the redo at start-up). A redo may
// find the staged files gone, removed by an ingestion that completed.
Status FinishInstall(Engine::Rep* rep, const PendingInstall& pending,
                     KvStateMachine* state_machine) {
  StatusOr<bool> ingested = Ingested(rep, pending);
  if (!ingested.ok()) return ingested.status();
  if (!*ingested) RAFTKV_RETURN_IF_ERROR(Ingest(rep, pending.staging_dir()));
  rocksdb::WriteBatch done = NewWriteBatch();
  RAFTKV_RETURN_IF_ERROR(WritePending(rep, nullptr, &done));
  RAFTKV_RETURN_IF_ERROR(
      rep->Write(&done, /*sync=*/true, "finish snapshot install"));
  RAFTKV_RETURN_IF_ERROR(state_machine->Reload());
  std::error_code ec;
  fs::remove_all(pending.staging_dir(), ec);  // best effort
  return Status::OK();
}

}  // namespace

std::string StagingRoot(const std::string& data_dir) {
  return data_dir + "/snapshot-staging";
}

std::string StagingDir(const std::string& data_dir, uint64_t term,
                       uint64_t index, uint64_t transfer) {
  return StagingRoot(data_dir) + "/" + std::to_string(term) + "-" +
         std::to_string(index) + "-" + std::to_string(transfer);
}

Status InstallStagedSnapshot(const std::string& staging_dir,
                             const raft::SnapshotMetadata& meta, RaftLog* log,
                             KvStateMachine* state_machine) {
  CHECK_EQ(log->engine(), state_machine->engine()) << "different engines";
  Engine::Rep* rep = state_machine->engine()->rep();
  SnapshotHeader header;
  RAFTKV_RETURN_IF_ERROR(ReadStagedHeader(staging_dir, &header));
  if (header.index() != meta.index() || header.term() != meta.term()) {
    return Status::InvalidArgument(staging_dir + " holds the snapshot at " +
                                   std::to_string(header.term()) + "/" +
                                   std::to_string(header.index()) + ", not " +
                                   std::to_string(meta.term()) + "/" +
                                   std::to_string(meta.index()));
  }
  // Step 1: the log is reset, the old state cleared, the redo recorded.
  rocksdb::WriteBatch batch = NewWriteBatch();
  raft::Snapshot snapshot;
  *snapshot.mutable_metadata() = meta;
  if (!log->StageSnapshotInstall(snapshot, &batch)) {
    std::error_code ec;
    fs::remove_all(staging_dir, ec);
    return Status::OK();  // not newer than what the log already has
  }
  Status s = StageClear(rep, rep->kv, &batch);
  if (s.ok()) s = StageClear(rep, rep->kv_sessions, &batch);
  if (s.ok()) s = StageClear(rep, rep->kv_history, &batch);
  if (s.ok()) s = StageClear(rep, rep->kv_leases, &batch);
  if (s.ok()) CHECK(batch.Delete(rep->kv_meta, kAppliedKey).ok());
  if (s.ok()) CHECK(batch.Delete(rep->kv_meta, kMembershipKey).ok());
  if (s.ok()) CHECK(batch.Delete(rep->kv_meta, kAuthKey).ok());
  PendingInstall pending;
  pending.set_staging_dir(staging_dir);
  pending.set_index(meta.index());
  pending.set_term(meta.term());
  if (s.ok()) s = WritePending(rep, &pending, &batch);
  if (s.ok()) s = rep->Write(&batch, /*sync=*/true, "begin snapshot install");
  if (!s.ok()) {
    log->DiscardStaged();
    return s;
  }
  log->AdoptStaged();
  // Steps 2 and 3.
  return FinishInstall(rep, pending, state_machine);
}

Status RecoverSnapshotState(const std::string& data_dir, RaftLog* log,
                            KvStateMachine* state_machine) {
  Engine::Rep* rep = state_machine->engine()->rep();
  std::string value;
  rocksdb::Status rs =
      rep->db->Get(rocksdb::ReadOptions(), rep->raft_meta, kPendingKey, &value);
  if (!rs.ok() && !rs.IsNotFound()) {
    return rep->Error(rs, "read install_pending");
  }
  std::string keep;
  if (rs.ok()) {
    PendingInstall pending;
    if (!pending.ParseFromString(value)) {
      return Status::Corruption(data_dir +
                                ": raft_meta/install_pending does not parse");
    }
    SnapshotHeader header;
    Status s = ReadStagedHeader(pending.staging_dir(), &header);
    if (!s.ok()) {
      return Status::Corruption(
          data_dir + ": an interrupted snapshot install cannot be finished: " +
          s.ToString());
    }
    LOG(WARNING) << data_dir << ": finishing the install of the snapshot at "
                 << pending.term() << "/" << pending.index()
                 << " that a crash interrupted";
    RAFTKV_RETURN_IF_ERROR(FinishInstall(rep, pending, state_machine));
  }
  // Transfers that never finished or were never installed.
  std::error_code ec;
  fs::remove_all(StagingRoot(data_dir), ec);
  if (ec) {
    return Status::IOError(StagingRoot(data_dir) + ": remove: " + ec.message());
  }
  // Only committed, durable entries are applied, and the log is compacted
  // only below what the state machine made durable: anything else means
  // lost files.
  const uint64_t applied = state_machine->applied_index();
  if (applied + 1 < log->FirstIndex() || applied > log->LastIndex()) {
    return Status::Corruption(
        data_dir + ": the state machine is at index " +
        std::to_string(applied) + " but the Raft log holds [" +
        std::to_string(log->FirstIndex()) + ", " +
        std::to_string(log->LastIndex()) + "]: entries are missing");
  }
  return Status::OK();
}

}  // namespace raftkv::storage
