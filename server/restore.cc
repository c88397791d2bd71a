// Starting a new cluster's member from a backup (see restore.h). Runs at
// start-up, before the node serves; touches only its own data dir.
#include "server/restore.h"

#include <glog/logging.h>

#include <memory>

#include "raft/conf_change.h"
#include "server/cluster_identity.h"
#include "storage/backup_file.h"
#include "storage/kv_state_machine.h"
#include "storage/membership.h"
#include "storage/raft_log.h"
#include "storage/snapshot.h"
#include "storage/snapshot_install.h"
#include "storage/snapshot_stager.h"
#include "storage/storage.pb.h"

namespace raftkv::server {

Status RestoreFromBackup(const RestoreOptions& options, storage::RaftLog* log,
                         storage::KvStateMachine* state_machine,
                         bool* restored) {
  *restored = false;
  if (log->LastIndex() != 0 || log->snapshot_index() != 0 ||
      log->hard_state().initialized() || state_machine->applied_index() != 0) {
    LOG(WARNING) << "--restore_from=" << options.backup_path
                 << " ignored: " << options.data_dir
                 << " already holds state (restored before?)";
    return Status::OK();
  }
  LOG(WARNING) << "restoring " << options.data_dir << " from the backup "
               << options.backup_path << " as a member of a new cluster";
  // The image goes in as it is, but for its membership: the new cluster's
  // founding members.
  const std::string membership =
      storage::BootstrapMembership(options.peer_addresses,
                                   options.client_addresses)
          .SerializeAsString();
  std::unique_ptr<storage::SnapshotStager> stager;
  storage::SnapshotHeader header;
  Status s = storage::ReadBackup(
      options.backup_path,
      [&](std::string_view encoded) -> Status {
        if (stager != nullptr) return stager->Add(encoded);
        storage::SnapshotChunk first;
        RAFTKV_RETURN_IF_ERROR(
            storage::DecodeSnapshotChunk(encoded, options.backup_path, &first));
        first.mutable_header()->set_membership(membership);
        auto created = storage::SnapshotStager::Create(
            storage::StagingDir(options.data_dir, first.header().term(),
                                first.header().index()),
            "restore from " + options.backup_path);
        if (!created.ok()) return created.status();
        stager = std::move(created).value();
        return stager->Add(storage::EncodeSnapshotChunk(first));
      },
      &header);
  if (s.ok()) s = stager->Finish();
  if (!s.ok()) return s;
  raft::SnapshotMetadata meta;
  meta.set_index(header.index());
  meta.set_term(header.term());
  std::set<uint64_t> voters;
  for (const auto& [id, address] : options.peer_addresses) voters.insert(id);
  *meta.mutable_conf_state() = raft::MakeConfState(voters);
  RAFTKV_RETURN_IF_ERROR(
      storage::InstallStagedSnapshot(stager->dir(), meta, log, state_machine));
  raft::HardState hs;
  hs.set_term(header.term());
  hs.set_commit(header.index());
  hs.set_initialized(true);  // a member of a new cluster, not a blank disk
  RAFTKV_RETURN_IF_ERROR(log->SetHardState(hs));
  // Its own cluster id: the same on every member restoring this backup
  // with these flags, and never the old cluster's.
  const std::string identity =
      options.cluster_token + "\nrestored from index " +
      std::to_string(header.index()) + " term " +
      std::to_string(header.term()) + " revision " +
      std::to_string(header.applied().revision()) + " log time " +
      std::to_string(header.applied().log_time_ms());
  const uint64_t cluster_id =
      BootstrapClusterId(identity, options.peer_addresses);
  RAFTKV_RETURN_IF_ERROR(log->SetClusterId(cluster_id));
  LOG(WARNING) << "restored " << stager->records() << " records at index "
               << header.index() << " (term " << header.term() << ", revision "
               << header.applied().revision() << ") from "
               << options.backup_path << " into new cluster "
               << ClusterIdText(cluster_id) << " of "
               << raft::DescribeConfState(meta.conf_state());
  *restored = true;
  return Status::OK();
}

}  // namespace raftkv::server
