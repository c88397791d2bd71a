// MemberRequests: membership requests proposed through the Raft core and
// answered once applied (see member_requests.h).
#include "server/member_requests.h"

#include <glog/logging.h>

#include "raft/conf_change.h"
#include "raft/quorum.h"
#include "raft/raw_node.h"
#include "server/member_directory.h"
#include "server/peer_transport.h"
#include "server/raft_loop.h"
#include "storage/membership.h"

namespace raftkv::server {

kv::MemberListResponse MemberRequests::List() const {
  raft::RawNode& raft = loop_->raft();
  kv::MemberListResponse list;
  for (kv::MemberStatus& m : members_->List(raft.conf_state(), raft.lead())) {
    // Our own client address is what we serve on, whatever was recorded.
    if (m.id() == config_.id && m.client_address().empty()) {
      m.set_client_address(config_.listen_client);
    }
    *list.add_members() = std::move(m);
  }
  kv::ResponseHeader* header = list.mutable_header();
  header->set_cluster_id(config_.cluster_id);
  header->set_member_id(config_.id);
  header->set_raft_term(raft.term());
  header->set_revision(loop_->revision());
  return list;
}

kv::ClientResponse MemberRequests::ListResponse() const {
  kv::ClientResponse response;
  *response.mutable_members() = List();
  return response;
}

void MemberRequests::Handle(const kv::ClientRequest& request, Responder respond,
                            Clock::time_point deadline) {
  raft::ConfChange change;
  switch (request.request_case()) {
    case kv::ClientRequest::kMemberList:
      respond(ListResponse());
      return;
    case kv::ClientRequest::kMemberAdd: {
      const kv::MemberStatus& add = request.member_add().member();
      if (add.id() == 0) {
        respond(ErrorResponse(kv::INVALID, "member id must be non-zero"));
        return;
      }
      // The client address may be left empty (etcd's MemberAdd names only
      // peer URLs): the member reports its own once it runs.
      for (const std::string* address :
           {&add.peer_address(), &add.client_address()}) {
        if (address == &add.client_address() && address->empty()) continue;
        auto endpoint = ParseEndpoint(*address);
        if (!endpoint.ok()) {
          respond(ErrorResponse(kv::INVALID, endpoint.status().message()));
          return;
        }
      }
      if (members_->WasRemoved(add.id())) {
        respond(ErrorResponse(
            kv::INVALID, "node " + std::to_string(add.id()) +
                             " was removed from this cluster; a removed id "
                             "is never reused (add the node under a new id)"));
        return;
      }
      for (const kv::MemberStatus& m : members_->applied().members()) {
        if (m.id() == add.id()) continue;  // refused by the core, clearly
        if (m.peer_address() == add.peer_address() ||
            (!add.client_address().empty() &&
             m.client_address() == add.client_address())) {
          respond(ErrorResponse(kv::INVALID,
                                "member " + std::to_string(m.id()) +
                                    " already uses address " +
                                    (m.peer_address() == add.peer_address()
                                         ? add.peer_address()
                                         : add.client_address())));
          return;
        }
      }
      if (const kv::MemberStatus* known =
              storage::FindMember(members_->applied(), add.id())) {
        if (known->peer_address() == add.peer_address() &&
            known->client_address() == add.client_address() &&
            (add.learner()
                 ? known->learner() && !known->promote_when_caught_up()
                 : !known->learner() || known->promote_when_caught_up())) {
          respond(ListResponse());  // a retry of an add that took effect
          return;
        }
      }
      kv::MemberStatus context;
      context.set_id(add.id());
      context.set_peer_address(add.peer_address());
      context.set_client_address(add.client_address());
      context.set_promote_when_caught_up(!add.learner());
      change.set_type(raft::CONF_ADD_LEARNER);
      change.set_node(add.id());
      change.set_context(storage::ConfChangeContext(context));
      break;
    }
    case kv::ClientRequest::kMemberPromote:
      if (raft::IsVoter(loop_->raft().conf_state(),
                        request.member_promote().id()) &&
          loop_->applied_index() >= loop_->raft().GetStatus().last_conf_index) {
        respond(ListResponse());  // a retry of a promotion that took effect
        return;
      }
      change.set_type(raft::CONF_PROMOTE_LEARNER);
      change.set_node(request.member_promote().id());
      break;
    case kv::ClientRequest::kMemberRemove:
      if (members_->WasRemoved(request.member_remove().id())) {
        respond(ListResponse());  // a retry of a removal that took effect
        return;
      }
      change.set_type(raft::CONF_REMOVE_NODE);
      change.set_node(request.member_remove().id());
      break;
    default:
      respond(ErrorResponse(kv::MALFORMED, "not a member request"));
      return;
  }
  Propose(change, std::move(respond), deadline);
}

void MemberRequests::Propose(const raft::ConfChange& change, Responder respond,
                             Clock::time_point deadline) {
  raft::RawNode& raft = loop_->raft();
  if (raft.role() != raft::Role::kLeader) {
    respond(NotLeaderResponse(config_.id, raft.lead(),
                              members_->ClientAddress(raft.lead())));
    return;
  }
  // The checks above read the applied membership: it must be current.
  const uint64_t last_change = raft.GetStatus().last_conf_index;
  if (loop_->applied_index() < last_change) {
    respond(ErrorResponse(kv::UNAVAILABLE,
                          "the membership change at index " +
                              std::to_string(last_change) +
                              " is not applied yet; retry shortly"));
    return;
  }
  // Strict reconfiguration (as etcd's --strict-reconfig-check): a change
  // takes effect at once, so one whose voters are not mostly reachable
  // would leave the cluster unable to commit it, or anything after it.
  auto next = raft::ApplyConfChange(raft.conf_state(), change);
  if (next.ok()) {
    size_t reachable = 0;
    for (uint64_t id : next->voters()) reachable += loop_->HeardRecently(id);
    if (reachable < raft::MajoritySize(next->voters_size())) {
      respond(ErrorResponse(
          kv::INVALID,
          raft::DescribeConfChange(change) + " refused: only " +
              std::to_string(reachable) + " of the " +
              std::to_string(next->voters_size()) +
              " voters it leaves are reachable, fewer than a majority; "
              "bring members back (or remove an unreachable one) first"));
      return;
    }
  }
  auto index = raft.ProposeConfChange(change);
  if (!index.ok()) {
    const Status& s = index.status();
    if (s.code() == Status::Code::kNotLeader) {
      respond(NotLeaderResponse(config_.id, raft.lead(),
                                members_->ClientAddress(raft.lead())));
    } else if (s.code() == Status::Code::kProposalDropped) {
      respond(ErrorResponse(kv::UNAVAILABLE, s.message() + "; retry shortly"));
    } else {
      respond(ErrorResponse(kv::INVALID, s.message()));
    }
    return;
  }
  LOG(INFO) << "raftkvd " << config_.id << ": "
            << raft::DescribeConfChange(change) << " proposed at index "
            << *index;
  pending_.emplace(*index,
                   PendingChange{raft.term(), std::move(respond), deadline});
}

void MemberRequests::OnApplied(const Applied& applied) {
  for (const auto& [index, term] : applied.conf_changes) {
    auto it = pending_.find(index);
    if (it == pending_.end()) continue;
    if (it->second.term != term) {
      it->second.respond(ErrorResponse(
          kv::UNAVAILABLE, "leadership changed before the change committed"));
    } else {
      it->second.respond(ListResponse());
    }
    pending_.erase(it);
  }
  // Anything else at or below the applied index was replaced by another
  // leader's entry, or came in a snapshot this node installed after it
  // lost the leadership: the outcome is not known here.
  for (auto it = pending_.begin();
       it != pending_.end() && it->first <= applied.index;) {
    it->second.respond(ErrorResponse(
        kv::UNAVAILABLE,
        "leadership changed: the change may or may not have taken effect "
        "(see `raftkvctl member list`)"));
    it = pending_.erase(it);
  }
}

void MemberRequests::Sweep(Clock::time_point now) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline <= now) {
      it->second.respond(
          ErrorResponse(kv::TIMEOUT,
                        "membership change not applied in time (it may still "
                        "take effect; see `raftkvctl member list`)"));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace raftkv::server
