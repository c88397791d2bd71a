// MemberDirectory: who the members of the cluster are and where to reach
// them, as this node knows it. The addresses come from the state machine's
// membership record (storage/membership.h, as of the applied index) and,
// ahead of it, from the membership changes in this node's log (a leader
// must reach a learner it just added before the change commits); the roles
// come from the configuration in effect in the Raft core. It is what the
// transport dials, what a follower names as the leader's client address and
// what `member list` answers.
//
// Never decides membership itself: the core and the applied record do.
// Thread-safety: the loop's thread only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "client/kv.pb.h"
#include "raft/raft.pb.h"

namespace raftkv::server {

class MemberDirectory {
 public:
  // Addresses from the command line (--cluster, --cluster_clients), used
  // only for ids no membership record names: a joining node knows its
  // peers from them until the snapshot brings the membership.
  void SetFallback(const std::map<uint64_t, std::string>& peer_addresses,
                   const std::map<uint64_t, std::string>& client_addresses);
  // A node outside the membership records said hello from `peer_address`:
  // an address to answer it at, until a record names one.
  void NoteHeard(uint64_t id, const std::string& peer_address);
  // The state machine's record as of the applied index (authoritative for
  // addresses and for which ids were removed).
  void SetApplied(const kv::Membership& membership);
  // A membership change in this node's log (committed or not): the member
  // an addition names becomes reachable.
  void NoteChange(const raft::Entry& entry);

  // The member's record (addresses, promote_when_caught_up), if known.
  const kv::MemberStatus* Find(uint64_t id) const;
  std::string PeerAddress(uint64_t id) const;
  std::string ClientAddress(uint64_t id) const;
  bool WasRemoved(uint64_t id) const;
  const kv::Membership& applied() const { return applied_; }

  // The members of `conf` with their addresses, roles and the leader
  // marked, by id.
  std::vector<kv::MemberStatus> List(const raft::ConfState& conf,
                                     uint64_t leader) const;

 private:
  kv::Membership applied_;
  // Every member this node has heard of, by id: the applied record's and
  // those that changes in the log add.
  std::map<uint64_t, kv::MemberStatus> known_;
  std::map<uint64_t, kv::MemberStatus> fallback_;
};

}  // namespace raftkv::server
