// Reads at a RocksDB snapshot of the state machine (see read_snapshot.h).
#include "storage/read_snapshot.h"

#include "storage/engine_rep.h"
#include "storage/kv_ops.h"
#include "storage/kv_state_machine.h"
#include "storage/leases.h"
#include "storage/write_view.h"

namespace raftkv::storage {

ReadSnapshot::ReadSnapshot(const KvStateMachine& state_machine)
    : rep_(state_machine.engine()->rep()),
      snapshot_(rep_->db->GetSnapshot()),
      revision_(state_machine.revision()),
      compacted_revision_(state_machine.compacted_revision()) {}

ReadSnapshot::~ReadSnapshot() { rep_->db->ReleaseSnapshot(snapshot_); }

StatusOr<kv::RangeResponse> ReadSnapshot::Range(
    const kv::RangeRequest& request) const {
  const Revisions revisions{revision_, compacted_revision_};
  RAFTKV_RETURN_IF_ERROR(ValidateRange(request));
  RAFTKV_RETURN_IF_ERROR(CheckReadRevision(request.revision(), revisions));
  WriteView view(rep_, snapshot_);
  kv::RangeResponse response;
  RAFTKV_RETURN_IF_ERROR(ExecRange(&view, revisions, request, &response));
  response.mutable_header()->set_revision(revision_);
  return response;
}

StatusOr<std::vector<std::string>> ReadSnapshot::LeaseKeys(int64_t id) const {
  WriteView view(rep_, snapshot_);
  Lease lease;
  bool found = false;
  RAFTKV_RETURN_IF_ERROR(FindLease(&view, id, &lease, &found));
  if (!found) {
    return Status::NotFound("etcdserver: requested lease not found (lease " +
                            std::to_string(id) + ")");
  }
  std::vector<std::string> keys;
  RAFTKV_RETURN_IF_ERROR(storage::LeaseKeys(&view, id, &keys));
  return keys;
}

}  // namespace raftkv::storage
