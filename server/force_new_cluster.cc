// --force_new_cluster: a surviving node becomes a single-node cluster of
// itself (see force_new_cluster.h). Runs once, at start-up, before the
// Raft core; never touches anything but this node's own data dir.
#include "server/force_new_cluster.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "raft/conf_change.h"
#include "storage/files.h"
#include "storage/kv_state_machine.h"
#include "storage/membership.h"
#include "storage/raft_log.h"

namespace raftkv::server {
namespace {

// In the data dir once done: the last index the forced log ended at.
constexpr char kForcedMarker[] = "FORCED_NEW_CLUSTER";

}  // namespace

Status ForceNewCluster(uint64_t self, const std::string& data_dir,
                       storage::RaftLog* log,
                       const storage::KvStateMachine& state_machine) {
  // Used once: a flag left in a unit file must not undo what the cluster
  // did since (members added again, entries committed by them).
  const std::string marker = data_dir + "/" + kForcedMarker;
  std::string forced_at;
  if (storage::ReadSmallFile(marker, &forced_at).ok()) {
    const uint64_t at = std::strtoull(forced_at.c_str(), nullptr, 10);
    if (log->LastIndex() > at) {
      return Status::FailedPrecondition(
          "--force_new_cluster was used on this data dir at index " +
          std::to_string(at) +
          " and the cluster has moved on since: start without the flag "
          "(for a new disaster, remove " +
          marker + " first)");
    }
    LOG(WARNING) << "--force_new_cluster: already done at index " << at
                 << "; nothing to do (start without the flag)";
    return Status::OK();
  }
  const raft::HardState& hs = log->hard_state();
  if (hs.rejoining()) {
    return Status::FailedPrecondition(
        "--force_new_cluster: this node is still rejoining after a lost "
        "disk (its data is incomplete); recover from another survivor");
  }
  const kv::Membership* record = state_machine.membership();
  if (record == nullptr) {
    return Status::FailedPrecondition(
        "--force_new_cluster: this data dir holds no cluster to recover");
  }
  // The configuration as of the end of the log: the record (as of the
  // applied index) and the changes after it.
  raft::ConfState conf = storage::ConfStateOf(*record);
  uint64_t last_term = 0;
  RAFTKV_RETURN_IF_ERROR(log->Term(log->LastIndex(), &last_term));
  for (uint64_t i = state_machine.applied_index() + 1; i <= log->LastIndex();) {
    std::vector<raft::Entry> entries;
    RAFTKV_RETURN_IF_ERROR(
        log->Entries(i, log->LastIndex() + 1, 4 << 20, &entries));
    for (const raft::Entry& e : entries) {
      if (e.type() != raft::ENTRY_CONF_CHANGE) continue;
      auto next = raft::ApplyConfChangeEntry(conf, e);  // invalid: no effect
      if (next.ok()) conf = std::move(next).value();
    }
    i = entries.back().index() + 1;
  }
  if (!raft::IsMember(conf, self)) {
    return Status::FailedPrecondition(
        "--force_new_cluster: node " + std::to_string(self) +
        " is not a member of the cluster its data records (" +
        raft::DescribeConfState(conf) + ")");
  }
  // Promote ourselves if need be, then remove everyone else, one
  // single-server change per entry, in a term no other node has used: the
  // lost nodes may hold other entries at these indexes.
  const uint64_t term = std::max(hs.term(), last_term) + 1;
  std::vector<raft::ConfChange> changes;
  if (raft::IsLearner(conf, self)) {
    raft::ConfChange c;
    c.set_type(raft::CONF_PROMOTE_LEARNER);
    c.set_node(self);
    changes.push_back(c);
  }
  for (const auto* ids : {&conf.voters(), &conf.learners()}) {
    for (uint64_t id : *ids) {
      if (id == self) continue;
      raft::ConfChange c;
      c.set_type(raft::CONF_REMOVE_NODE);
      c.set_node(id);
      changes.push_back(c);
    }
  }
  LOG(ERROR) << "--force_new_cluster: node " << self
             << " makes itself a single-node cluster out of "
             << raft::DescribeConfState(conf) << ", keeping and committing "
             << "its whole log (last index " << log->LastIndex()
             << "). Writes acknowledged with the help of the lost nodes "
                "only may be gone, and entries never committed before are "
                "committed now. Start the node without the flag from now "
                "on, and add new members with raftkvctl member add.";
  std::vector<raft::Entry> entries;
  uint64_t index = log->LastIndex();
  for (const raft::ConfChange& c : changes) {
    raft::Entry e;
    e.set_term(term);
    e.set_index(++index);
    e.set_type(raft::ENTRY_CONF_CHANGE);
    e.set_data(c.SerializeAsString());
    LOG(ERROR) << "--force_new_cluster: " << raft::DescribeConfChange(c)
               << " at index " << index;
    entries.push_back(std::move(e));
  }
  if (!entries.empty()) RAFTKV_RETURN_IF_ERROR(log->Append(entries));
  raft::HardState next = hs;
  next.set_term(term);
  next.set_vote(0);
  next.set_commit(log->LastIndex());
  next.set_initialized(true);
  RAFTKV_RETURN_IF_ERROR(log->SetHardState(next));
  return storage::WriteFileDurably(marker, std::to_string(log->LastIndex()));
}

}  // namespace raftkv::server
