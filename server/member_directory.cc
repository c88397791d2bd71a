// MemberDirectory: the addresses and roles of the members (see
// member_directory.h). No I/O.
#include "server/member_directory.h"

#include <glog/logging.h>

#include "raft/conf_change.h"
#include "storage/membership.h"

namespace raftkv::server {

void MemberDirectory::SetFallback(
    const std::map<uint64_t, std::string>& peer_addresses,
    const std::map<uint64_t, std::string>& client_addresses) {
  for (const auto& [id, peer] : peer_addresses) {
    fallback_[id].set_id(id);
    fallback_[id].set_peer_address(peer);
  }
  for (const auto& [id, client] : client_addresses) {
    fallback_[id].set_id(id);
    fallback_[id].set_client_address(client);
  }
}

void MemberDirectory::NoteHeard(uint64_t id, const std::string& peer_address) {
  if (known_.count(id)) return;
  fallback_[id].set_id(id);
  fallback_[id].set_peer_address(peer_address);
}

void MemberDirectory::SetApplied(const kv::Membership& membership) {
  applied_ = membership;
  for (const kv::MemberStatus& m : membership.members()) known_[m.id()] = m;
}

void MemberDirectory::NoteChange(const raft::Entry& entry) {
  auto change = raft::DecodeConfChange(entry);
  if (!change.ok() || change->type() != raft::CONF_ADD_LEARNER) return;
  kv::MemberStatus member;
  if (!member.ParseFromString(change->context())) return;
  member.set_id(change->node());
  member.set_learner(true);
  auto it = known_.find(member.id());
  if (it == known_.end() ||
      it->second.peer_address() != member.peer_address() ||
      it->second.client_address() != member.client_address()) {
    LOG(INFO) << "member " << member.id() << " (peer " << member.peer_address()
              << ", client " << member.client_address()
              << ") is being added at index " << entry.index();
  }
  known_[member.id()] = member;
}

const kv::MemberStatus* MemberDirectory::Find(uint64_t id) const {
  auto it = known_.find(id);
  if (it != known_.end()) return &it->second;
  it = fallback_.find(id);
  return it == fallback_.end() ? nullptr : &it->second;
}

std::string MemberDirectory::PeerAddress(uint64_t id) const {
  const kv::MemberStatus* m = Find(id);
  return m ? m->peer_address() : std::string();
}

std::string MemberDirectory::ClientAddress(uint64_t id) const {
  const kv::MemberStatus* m = Find(id);
  return m ? m->client_address() : std::string();
}

bool MemberDirectory::WasRemoved(uint64_t id) const {
  return storage::WasRemoved(applied_, id);
}

std::vector<kv::MemberStatus> MemberDirectory::List(const raft::ConfState& conf,
                                                    uint64_t leader) const {
  std::map<uint64_t, kv::MemberStatus> out;
  auto add = [&](uint64_t id, bool learner) {
    kv::MemberStatus m;
    if (const kv::MemberStatus* known = Find(id)) m = *known;
    m.set_id(id);
    m.set_learner(learner);
    m.set_leader(id == leader);
    out[id] = m;
  };
  for (uint64_t id : conf.voters()) add(id, false);
  for (uint64_t id : conf.learners()) add(id, true);
  std::vector<kv::MemberStatus> list;
  for (auto& [id, m] : out) list.push_back(std::move(m));
  return list;
}

}  // namespace raftkv::server
