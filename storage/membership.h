// The state machine's membership record (kv::Membership): who the members
// are as of the applied index, with the addresses they publish, and which
// ids were removed. Kept in the state machine (so it is in every snapshot
// and survives restarts) and changed only by applying committed
// ENTRY_CONF_CHANGE entries, with the same verdict as the Raft core's
// (raft/conf_change.h), so the record and the core never disagree.
//
// Pure functions; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "client/kv.pb.h"
#include "raft/raft.pb.h"
#include "util/status.h"

namespace raftkv::storage {

// The founding members of a new cluster, all voters.
kv::Membership BootstrapMembership(
    const std::map<uint64_t, std::string>& peer_addresses,
    const std::map<uint64_t, std::string>& client_addresses);

// Voters and learners of `membership`.
raft::ConfState ConfStateOf(const kv::Membership& membership);

// The member `id`, or null.
const kv::MemberStatus* FindMember(const kv::Membership& membership,
                                   uint64_t id);
bool WasRemoved(const kv::Membership& membership, uint64_t id);

// Applies the membership change committed at `entry` (ENTRY_CONF_CHANGE).
// A change the core found invalid is invalid here too: InvalidArgument and
// `membership` unchanged.
Status ApplyMembershipChange(const raft::Entry& entry,
                             kv::Membership* membership);

// The context a membership change carries: the member's record.
std::string ConfChangeContext(const kv::MemberStatus& member);

}  // namespace raftkv::storage
