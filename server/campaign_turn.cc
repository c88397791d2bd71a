// CampaignTurn: see campaign_turn.h.
#include "server/campaign_turn.h"

namespace raftkv::server {

int CampaignTurn(const std::set<uint64_t>& voters, uint64_t self,
                 uint64_t lost_leader) {
  int turn = 0;
  for (uint64_t voter : voters) {
    if (voter == self && self != lost_leader) return turn;
    turn += voter != lost_leader;
  }
  return turn;
}

}  // namespace raftkv::server
