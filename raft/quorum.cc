// Majority arithmetic (Raft paper §5.2 elections, §5.3/§5.4.2 commitment).
#include "raft/quorum.h"

#include <algorithm>
#include <functional>
#include <vector>

namespace raftkv::raft {

uint64_t CommittedIndex(const std::set<uint64_t>& voters,
                        const std::map<uint64_t, uint64_t>& match) {
  if (voters.empty()) return UINT64_MAX;  // no constraint (no voters)
  std::vector<uint64_t> indexes;
  indexes.reserve(voters.size());
  for (uint64_t id : voters) {
    auto it = match.find(id);
    indexes.push_back(it == match.end() ? 0 : it->second);
  }
  std::sort(indexes.begin(), indexes.end(), std::greater<uint64_t>());
  return indexes[MajoritySize(voters.size()) - 1];
}

VoteResult TallyVotes(const std::set<uint64_t>& voters,
                      const std::map<uint64_t, bool>& votes) {
  size_t granted = 0, rejected = 0;
  for (uint64_t id : voters) {
    auto it = votes.find(id);
    if (it == votes.end()) continue;
    (it->second ? granted : rejected)++;
  }
  const size_t majority = MajoritySize(voters.size());
  if (granted >= majority) return VoteResult::kWon;
  if (voters.size() - rejected < majority) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace raftkv::raft
