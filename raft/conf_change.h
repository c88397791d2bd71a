// Membership changes as pure functions: applying one single-server change
// (ConfChange) to a configuration (ConfState). The core uses them for the
// configuration in effect (the latest one in its log); an application's
// state machine uses the same ones for the configuration as of what it has
// applied, so both always agree. The rule that makes single-server changes
// safe (one at a time, only once the leader committed an entry of its term)
// is the leader's, in raft_membership.cc; docs/membership.md has the
// argument.
//
// Pure values and functions; no I/O.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "raft/raft.pb.h"
#include "util/status.h"

namespace raftkv::raft {

// The configuration `change` leads to from `conf`, or InvalidArgument when
// it makes no sense there: adding a node that is a member already, promoting
// one that is not a learner, removing a non-member or the last voter.
StatusOr<ConfState> ApplyConfChange(const ConfState& conf,
                                    const ConfChange& change);

// A configuration of `voters` and no learners.
ConfState MakeConfState(const std::set<uint64_t>& voters);

std::set<uint64_t> Voters(const ConfState& conf);
std::set<uint64_t> Learners(const ConfState& conf);
bool IsVoter(const ConfState& conf, uint64_t id);
bool IsLearner(const ConfState& conf, uint64_t id);
inline bool IsMember(const ConfState& conf, uint64_t id) {
  return IsVoter(conf, id) || IsLearner(conf, id);
}
bool SameConfState(const ConfState& a, const ConfState& b);

// "voters {1,2,3} learners {4}".
std::string DescribeConfState(const ConfState& conf);
// "add learner 4", "promote 4", "remove 2".
std::string DescribeConfChange(const ConfChange& change);

// The ConfChange an ENTRY_CONF_CHANGE entry carries; InvalidArgument if the
// data does not parse.
StatusOr<ConfChange> DecodeConfChange(const Entry& entry);

// The configuration after the ENTRY_CONF_CHANGE `entry` from `conf` (its
// change decoded and applied); InvalidArgument naming the index if either
// fails: the entry then has no effect, on every node alike.
StatusOr<ConfState> ApplyConfChangeEntry(const ConfState& conf,
                                         const Entry& entry);

}  // namespace raftkv::raft
