// The state machine's membership record and how committed membership
// changes update it. No state, no I/O.
#include "storage/membership.h"

#include <algorithm>

#include "raft/conf_change.h"

namespace raftkv::storage {

kv::Membership BootstrapMembership(
    const std::map<uint64_t, std::string>& peer_addresses,
    const std::map<uint64_t, std::string>& client_addresses) {
  kv::Membership membership;
  for (const auto& [id, peer] : peer_addresses) {
    kv::MemberStatus* m = membership.add_members();
    m->set_id(id);
    m->set_peer_address(peer);
    auto client = client_addresses.find(id);
    if (client != client_addresses.end()) {
      m->set_client_address(client->second);
    }
  }
  return membership;
}

raft::ConfState ConfStateOf(const kv::Membership& membership) {
  raft::ConfState conf;
  for (const kv::MemberStatus& m : membership.members()) {
    if (m.learner()) {
      conf.add_learners(m.id());
    } else {
      conf.add_voters(m.id());
    }
  }
  return conf;  // members are kept by id, so both lists are sorted
}

const kv::MemberStatus* FindMember(const kv::Membership& membership,
                                   uint64_t id) {
  for (const kv::MemberStatus& m : membership.members()) {
    if (m.id() == id) return &m;
  }
  return nullptr;
}

bool WasRemoved(const kv::Membership& membership, uint64_t id) {
  return std::find(membership.removed().begin(), membership.removed().end(),
                   id) != membership.removed().end();
}

std::string ConfChangeContext(const kv::MemberStatus& member) {
  kv::MemberStatus context = member;
  context.clear_leader();
  return context.SerializeAsString();
}

Status ApplyMembershipChange(const raft::Entry& entry,
                             kv::Membership* membership) {
  auto change = raft::DecodeConfChange(entry);
  if (!change.ok()) return change.status();
  // The core's verdict on the same configuration.
  auto conf = raft::ApplyConfChange(ConfStateOf(*membership), *change);
  if (!conf.ok()) return conf.status();
  const uint64_t id = change->node();
  std::map<uint64_t, kv::MemberStatus> members;
  for (const kv::MemberStatus& m : membership->members()) members[m.id()] = m;
  switch (change->type()) {
    case raft::CONF_ADD_LEARNER: {
      kv::MemberStatus added;
      if (!added.ParseFromString(change->context())) added.Clear();
      added.set_id(id);
      added.set_learner(true);
      added.clear_leader();
      members[id] = added;
      break;
    }
    case raft::CONF_PROMOTE_LEARNER:
      members[id].set_learner(false);
      members[id].clear_promote_when_caught_up();
      break;
    case raft::CONF_REMOVE_NODE: {
      members.erase(id);
      auto* removed = membership->mutable_removed();
      removed->Add(id);
      std::sort(removed->begin(), removed->end());
      break;
    }
    default:
      break;  // ApplyConfChange refused anything else
  }
  membership->clear_members();
  for (auto& [member_id, m] : members) *membership->add_members() = m;
  membership->set_changed_at(entry.index());
  return Status::OK();
}

}  // namespace raftkv::storage
