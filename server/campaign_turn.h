// CampaignTurn: when the leader's connection breaks, which turn this node
// takes to campaign (fast failover, see docs/failover.md). The surviving
// voters campaign one after another in id order, kCampaignTurnTicks apart,
// the first at once. Random delays let two candidates start within one
// pre-vote round trip now and then: both win their pre-votes, split the
// real vote and wait out an election timeout. A turn is many round trips
// long; if the first candidate cannot win (its log is behind, or it is cut
// off), the next tries a turn later.
//
// Pure: no clock, no randomness; every node computes the same order.
#pragma once

#include <cstdint>
#include <set>

namespace raftkv::server {

constexpr int kCampaignTurnTicks = 3;

// 0 for the lowest-id voter other than `lost_leader`, 1 for the next, ...
// A node that is not a voter (or is the lost leader) gets the turn after
// every voter's.
int CampaignTurn(const std::set<uint64_t>& voters, uint64_t self,
                 uint64_t lost_leader);

}  // namespace raftkv::server
