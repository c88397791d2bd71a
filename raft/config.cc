// Validation of raft::Config. Never reads flags or the environment.
#include "raft/config.h"

#include <algorithm>
#include <string>

namespace raftkv::raft {

Status Config::Validate() const {
  if (id == kNone) return Status::InvalidArgument("raft: id must be non-zero");
  if (heartbeat_tick <= 0) {
    return Status::InvalidArgument("raft: heartbeat_tick must be positive");
  }
  if (election_tick <= heartbeat_tick) {
    return Status::InvalidArgument(
        "raft: election_tick must be greater than heartbeat_tick");
  }
  if (max_inflight_msgs == 0) {
    return Status::InvalidArgument("raft: max_inflight_msgs must be positive");
  }
  if (std::count(peers.begin(), peers.end(), kNone) > 0) {
    return Status::InvalidArgument("raft: peer id 0 is reserved");
  }
  return Status::OK();
}

}  // namespace raftkv::raft
