// Disaster recovery when a majority of the cluster is lost for good
// (raftkvd --force_new_cluster, as etcd's --force-new-cluster): rewrites
// this node's durable state into a single-node cluster of itself, keeping
// every entry its log holds. Once no majority can ever answer again, the
// data a surviving node holds is the best there is.
//
// The risk, said loudly in the log and in docs/membership.md: writes that
// were acknowledged with the help of the lost majority only (committed on
// nodes that are gone, never received by this one) are lost; entries this
// node holds that were never committed become committed. Never done
// without the flag; never on a node that is still rejoining after a lost
// disk (its data is incomplete).
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace raftkv::storage {
class KvStateMachine;
class RaftLog;
}  // namespace raftkv::storage

namespace raftkv::server {

// Appends to `log` the membership changes that leave `self` the only voter
// (promoting it first if it is a learner), in a new term, and commits the
// whole log, all synced, before the Raft core starts; then marks
// `data_dir`. Used once: with the mark present it does nothing if the log
// has not grown since, and refuses (FailedPrecondition) if it has (a flag
// left in a unit file after the cluster grew again).
Status ForceNewCluster(uint64_t self, const std::string& data_dir,
                       storage::RaftLog* log,
                       const storage::KvStateMachine& state_machine);

}  // namespace raftkv::server
