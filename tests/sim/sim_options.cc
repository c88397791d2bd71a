// Names of mutants and rendering of run statistics. No state.
#include "tests/sim/sim_options.h"

#include <algorithm>
#include <sstream>

namespace raftkv::sim {

const char* MutantName(Mutant mutant) {
  switch (mutant) {
    case Mutant::kNone:
      return "none";
    case Mutant::kForgetVote:
      return "forget_vote";
    case Mutant::kLoseTail:
      return "lose_tail";
    case Mutant::kWipedNodeVotes:
      return "wiped_node_votes";
    case Mutant::kStaleRead:
      return "stale_read";
    case Mutant::kSkipApply:
      return "skip_apply";
    case Mutant::kUnsafeConfChange:
      return "unsafe_conf_change";
  }
  return "unknown";
}

Status ParseMutant(const std::string& name, Mutant* mutant) {
  for (Mutant m : {Mutant::kNone, Mutant::kForgetVote, Mutant::kLoseTail,
                   Mutant::kWipedNodeVotes, Mutant::kStaleRead,
                   Mutant::kSkipApply, Mutant::kUnsafeConfChange}) {
    if (name == MutantName(m)) {
      *mutant = m;
      return Status::OK();
    }
  }
  if (name.empty()) {
    *mutant = Mutant::kNone;
    return Status::OK();
  }
  return Status::InvalidArgument(
      "unknown mutant '" + name +
      "' (none, forget_vote, lose_tail, wiped_node_votes, stale_read, "
      "skip_apply, unsafe_conf_change)");
}

void SimStats::Add(const SimStats& o) {
  steps += o.steps;
  sim_ms += o.sim_ms;
  terms_with_leader += o.terms_with_leader;
  committed += o.committed;
  proposals += o.proposals;
  messages += o.messages;
  dropped += o.dropped;
  duplicated += o.duplicated;
  partitions += o.partitions;
  crashes += o.crashes;
  crashes_before_send += o.crashes_before_send;
  restarts += o.restarts;
  disk_losses += o.disk_losses;
  rejoins += o.rejoins;
  async_disk_runs += o.async_disk_runs;
  snapshots_taken += o.snapshots_taken;
  snapshots_sent += o.snapshots_sent;
  snapshots_installed += o.snapshots_installed;
  transfers += o.transfers;
  campaigns += o.campaigns;
  reads_checked += o.reads_checked;
  learners_added += o.learners_added;
  promotions += o.promotions;
  removals += o.removals;
  leader_removals += o.leader_removals;
  conf_changes_refused += o.conf_changes_refused;
  removed_stopped += o.removed_stopped;
  heal_to_leader_ms = std::max(heal_to_leader_ms, o.heal_to_leader_ms);
  heal_to_applied_ms = std::max(heal_to_applied_ms, o.heal_to_applied_ms);
}

std::string SimStats::ToString() const {
  std::ostringstream os;
  os << "steps=" << steps << " sim_ms=" << sim_ms
     << " terms_with_leader=" << terms_with_leader << " committed=" << committed
     << " proposals=" << proposals << " messages=" << messages
     << " dropped=" << dropped << " duplicated=" << duplicated
     << " partitions=" << partitions << " crashes=" << crashes
     << " crashes_before_send=" << crashes_before_send
     << " restarts=" << restarts << " disk_losses=" << disk_losses
     << " rejoins=" << rejoins << " async_disk_runs=" << async_disk_runs
     << " snapshots_taken=" << snapshots_taken
     << " snapshots_sent=" << snapshots_sent
     << " snapshots_installed=" << snapshots_installed
     << " transfers=" << transfers << " campaigns=" << campaigns
     << " reads_checked=" << reads_checked
     << " learners_added=" << learners_added << " promotions=" << promotions
     << " removals=" << removals << " leader_removals=" << leader_removals
     << " conf_changes_refused=" << conf_changes_refused
     << " removed_stopped=" << removed_stopped
     << " heal_to_leader_ms=" << heal_to_leader_ms
     << " heal_to_applied_ms=" << heal_to_applied_ms;
  return os.str();
}

}  // namespace raftkv::sim
