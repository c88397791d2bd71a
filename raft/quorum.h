// Quorum arithmetic for a single majority configuration: plain functions of
// the voter set, so they can be checked exhaustively and reused by the
// simulator's invariant checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>

namespace raftkv::raft {

enum class VoteResult { kPending, kLost, kWon };

// Number of voters that forms a majority of `voters`.
inline size_t MajoritySize(size_t voters) { return voters / 2 + 1; }

// The highest index replicated on a majority of `voters`, given each voter's
// match index (voters missing from `match` count as 0).
uint64_t CommittedIndex(const std::set<uint64_t>& voters,
                        const std::map<uint64_t, uint64_t>& match);

// Outcome of an election given the votes received so far (true = granted).
VoteResult TallyVotes(const std::set<uint64_t>& voters,
                      const std::map<uint64_t, bool>& votes);

}  // namespace raftkv::raft
