// MemberRequests: raftkvd's membership requests (`raftkvctl member ...`),
// on the loop's thread: list answers from this node's view of the
// membership; add, promote and remove are proposed by the leader through
// the Raft core as single-server changes (raft/conf_change.h) and answered
// once applied, with the membership afterwards. `add` without --learner
// adds a learner that any leader promotes once it has caught up
// (RaftLoop::MaybePromoteLearners). A removed id is never a member again.
//
// Must never answer a change as done before its entry is committed and
// applied, or let a change through that the applied membership has not
// caught up with (the directory would judge it on stale records).
// Thread-safety: the loop's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>

#include "client/kv.pb.h"
#include "server/client_service.h"
#include "server/handoff.h"
#include "server/server_config.h"

namespace raftkv::server {

class MemberDirectory;
class RaftLoop;

class MemberRequests {
 public:
  using Clock = std::chrono::steady_clock;

  MemberRequests(const ServerConfig& config, RaftLoop* loop,
                 MemberDirectory* members)
      : config_(config), loop_(loop), members_(members) {}

  // A member_list, member_add, member_promote or member_remove request.
  void Handle(const kv::ClientRequest& request, Responder respond,
              Clock::time_point deadline);
  // Answers the changes the applier applied.
  void OnApplied(const Applied& applied);
  // Answers TIMEOUT to changes whose deadline passed.
  void Sweep(Clock::time_point now);
  // The members as this node knows them (also the status' member list).
  kv::MemberListResponse List() const;
  size_t pending() const { return pending_.size(); }

 private:
  struct PendingChange {
    uint64_t term;
    Responder respond;
    Clock::time_point deadline;
  };

  // Checks `change` against the applied membership and proposes it.
  void Propose(const raft::ConfChange& change, Responder respond,
               Clock::time_point deadline);
  kv::ClientResponse ListResponse() const;

  const ServerConfig& config_;
  RaftLoop* const loop_;
  MemberDirectory* const members_;
  std::map<uint64_t, PendingChange> pending_;  // by log index
};

}  // namespace raftkv::server
