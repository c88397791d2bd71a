// --force_new_cluster: a surviving node becomes a single-node cluster of
// itself (see force_new_cluster.h). Runs once, at start-up, before the
// Raft core; never touches anything but this node's own data dir.
#include "server/force_new_cluster.h"

#include <glog/logging.h>

#include <algorithm>
#include <vector>

#include "raft/conf_change.h"
#include "storage/kv_state_machine.h"
#include "storage/membership.h"
#include "storage/raft_log.h"

namespace raftkv::server {

Status ForceNewCluster(uint64_t self, storage::RaftLog* log,
                       const storage::KvStateMachine& state_machine) {
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
      auto change = raft::DecodeConfChange(e);
      if (!change.ok()) continue;
      auto next = raft::ApplyConfChange(conf, *change);
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
  // single-server change per entry, in the current term.
  const uint64_t term = std::max(hs.term(), last_term);
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
  next.set_commit(log->LastIndex());
  next.set_initialized(true);
  return log->SetHardState(next);
}

}  // namespace raftkv::server
