// Single-server membership changes (Raft dissertation §4.1-§4.2): a change
// is a log entry that takes effect on each node as soon as it is in that
// node's log, committed or not, and is undone if the entry is truncated.
// The leader appends a change only when the previous one is committed and
// it has committed an entry of its own term (the correction to §4.1
// published on raft-dev in 2015), so any two configurations in effect at
// once differ by one server and their majorities overlap. Learners receive
// the log but never vote or count. docs/membership.md has the argument.
// Never lets a node campaign, vote for itself or count in a quorum of a
// configuration it is not a voter of.
#include <glog/logging.h>

#include "raft/conf_change.h"
#include "raft/raft.h"

namespace raftkv::raft {

Status Raft::LoadConfHistory(ConfState base, uint64_t base_index) {
  conf_history_.clear();
  conf_history_.push_back({base_index, log_.TermOrZero(base_index), base});
  // The changes in the log since then, in order.
  const uint64_t last = log_.LastIndex();
  for (uint64_t lo = base_index + 1; lo <= last;) {
    std::vector<Entry> entries;
    RAFTKV_RETURN_IF_ERROR(log_.Slice(lo, last + 1, 4 << 20, &entries));
    for (const Entry& e : entries) {
      if (e.type() != ENTRY_CONF_CHANGE) continue;
      auto next = ApplyConfChangeEntry(conf_history_.back().conf, e);
      if (!next.ok()) {
        LOG(ERROR) << "raft " << id_ << ": " << next.status().message()
                   << "; it has no effect";
        continue;
      }
      conf_history_.push_back({e.index(), e.term(), std::move(next).value()});
    }
    lo = entries.back().index() + 1;
  }
  UseConf(conf_history_.back().conf);
  LOG(INFO) << "raft " << id_
            << " configuration: " << DescribeConfState(conf_state())
            << (conf_history_.size() > 1
                    ? " (changed at index " +
                          std::to_string(conf_history_.back().index) + ")"
                    : "");
  return Status::OK();
}

StatusOr<ConfState> Raft::ConfStateAt(uint64_t index) const {
  if (index < conf_history_.front().index) {
    return Status::NotFound("configuration at index " + std::to_string(index) +
                            " is no longer known");
  }
  for (auto it = conf_history_.rbegin(); it != conf_history_.rend(); ++it) {
    if (it->index <= index) return it->conf;
  }
  return conf_history_.front().conf;
}

void Raft::ReconcileConf(const std::vector<Entry>& appended) {
  bool changed = false;
  // Records of entries a new leader's log replaced are undone (§4.1: a
  // server always uses the latest configuration in its log).
  while (conf_history_.size() > 1) {
    const ConfRecord& r = conf_history_.back();
    if (r.index <= log_.LastIndex() && log_.TermOrZero(r.index) == r.term) {
      break;
    }
    LOG(INFO) << "raft " << id_ << ": the membership change at index "
              << r.index << " was truncated from the log";
    conf_history_.pop_back();
    changed = true;
  }
  for (const Entry& e : appended) {
    if (e.type() != ENTRY_CONF_CHANGE ||
        e.index() <= conf_history_.back().index ||
        log_.TermOrZero(e.index()) != e.term()) {
      continue;
    }
    auto next = ApplyConfChangeEntry(conf_history_.back().conf, e);
    if (!next.ok()) {
      // Every node derives the same result from the same log prefix, so
      // an invalid change is a no-op everywhere.
      LOG(ERROR) << "raft " << id_ << ": " << next.status().message()
                 << "; it has no effect";
      continue;
    }
    LOG(INFO) << "raft " << id_ << ": the membership change at index "
              << e.index() << " (term " << e.term()
              << ") takes effect: " << DescribeConfState(*next);
    conf_history_.push_back({e.index(), e.term(), std::move(next).value()});
    changed = true;
  }
  if (changed) UseConf(conf_history_.back().conf);
}

void Raft::UseConf(const ConfState& conf) {
  voters_ = Voters(conf);
  learners_ = Learners(conf);
  if (role_ != Role::kLeader) return;
  // New members start as a probe from our last index; they count as active
  // so that a snapshot is not held back from them. Removed ones are
  // forgotten (our own progress stays while we lead, removed or not).
  for (const std::set<uint64_t>* ids : {&voters_, &learners_}) {
    for (uint64_t id : *ids) {
      if (progress_.count(id)) continue;
      Progress pr(log_.LastIndex() + 1, config_.max_inflight_msgs,
                  config_.max_inflight_bytes);
      pr.set_recent_active(true);
      progress_.emplace(id, pr);
    }
  }
  for (auto it = progress_.begin(); it != progress_.end();) {
    if (it->first != id_ && !voters_.count(it->first) &&
        !learners_.count(it->first)) {
      it = progress_.erase(it);
    } else {
      ++it;
    }
  }
  if (lead_transferee_ != kNone && !voters_.count(lead_transferee_)) {
    AbortLeaderTransfer();
  }
  // Fewer voters may mean a smaller majority already holds more entries.
  if (MaybeCommit()) pending_broadcast_ = true;
}

void Raft::PruneConfHistory() {
  while (conf_history_.size() > 1 && conf_history_[1].index <= log_.applied()) {
    conf_history_.pop_front();
  }
}

StatusOr<uint64_t> Raft::ProposeConfChange(const ConfChange& change) {
  RAFTKV_RETURN_IF_ERROR(CheckCanPropose());
  const bool rule = !config_.disable_conf_change_rule;
  if (rule && last_conf_index() > log_.committed()) {
    return Status::ProposalDropped(
        "the membership change at index " + std::to_string(last_conf_index()) +
        " is not committed yet; one change at a time");
  }
  if (rule && !CommittedEntryInCurrentTerm()) {
    // Without this, a change of the previous term that never committed and
    // one of ours could both be in effect on different nodes (raft-dev,
    // "bug in single-server membership changes", 2015).
    return Status::ProposalDropped(
        "the new leader has not committed an entry of its term yet");
  }
  auto next = ApplyConfChange(conf_state(), change);
  if (!next.ok()) return next.status();
  if (rule && change.type() == CONF_PROMOTE_LEARNER) {
    const Progress& pr = progress_.at(change.node());
    const uint64_t committed = log_.committed();
    // (Not recent_active: check-quorum clears it every election timeout.)
    // Caught up means applied, not just stored: a new voter whose applier
    // is far behind holds appends back (raftkvd) and leaves the quorum to
    // the others for as long.
    if (pr.state() != ProgressState::kReplicate || pr.rejoining() ||
        pr.match() + config_.max_learner_lag < committed ||
        pr.applied() + config_.max_learner_lag < committed) {
      return Status::InvalidArgument(
          "learner " + std::to_string(change.node()) +
          " has not caught up (match " + std::to_string(pr.match()) +
          ", applied " + std::to_string(pr.applied()) + ", commit " +
          std::to_string(committed) + ", " + ProgressStateName(pr.state()) +
          (pr.rejoining() ? ", rejoining" : "") + "); try again once it has");
    }
  }
  Entry e;
  e.set_type(ENTRY_CONF_CHANGE);
  e.set_data(change.SerializeAsString());
  if (!AppendEntries({std::move(e)})) {
    return Status::ProposalDropped("too many uncommitted bytes");
  }
  LOG(INFO) << "raft " << id_ << " proposes " << DescribeConfChange(change)
            << " at index " << log_.LastIndex();
  return log_.LastIndex();
}

void Raft::MaybeStepDownAfterRemoval() {
  if (role_ != Role::kLeader || voters_.count(id_) ||
      last_conf_index() > log_.committed()) {
    return;
  }
  // Hand over to the voter that holds the most, if it holds everything:
  // it campaigns at once instead of after an election timeout.
  uint64_t successor = kNone;
  uint64_t best = 0;
  for (const auto& [peer, pr] : progress_) {
    if (!voters_.count(peer) || pr.rejoining() || pr.match() <= best) continue;
    successor = peer;
    best = pr.match();
  }
  LOG(WARNING) << "raft " << id_ << " steps down at term " << term_
               << ": its removal from the cluster is committed"
               << (successor != kNone && best == log_.LastIndex()
                       ? ", handing over to " + std::to_string(successor)
                       : "");
  if (successor != kNone && best == log_.LastIndex()) {
    SendTimeoutNow(successor);
  }
  BecomeFollower(term_, kNone);
}

}  // namespace raftkv::raft
