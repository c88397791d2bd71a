// CampaignTurn: when the leader's connection breaks, which turn this node
// takes to campaign (fast failover, see docs/failover.md). The surviving
// voters campaign one after another in id order, so that two of them never
// start within one pre-vote round trip and split the vote.
//
// Pure: no clock, no randomness; every node computes the same order.
#pragma once

#include <cstdint>
#include <set>

namespace raftkv::server {

// 0 for the lowest-id voter other than `lost_leader`, 1 for the next, ...
// A node that is not a voter (or is the lost leader) gets the turn after
// every voter's.
int CampaignTurn(const std::set<uint64_t>& voters, uint64_t self,
                 uint64_t lost_leader);

}  // namespace raftkv::server
