// Log replication (Raft paper §5.3): the leader's AppendEntries with
// pipelining and flow control, heartbeats, commitment of current-term
// entries (§5.4.2), fast back-off on conflicts, and snapshot installation
// for followers whose next entry was compacted (§7).
#include <glog/logging.h>

#include <cstdlib>

#include "raft/conf_change.h"
#include "raft/quorum.h"
#include "raft/raft.h"

namespace raftkv::raft {

bool Raft::AppendEntries(std::vector<Entry> entries) {
  uint64_t payload = 0;
  for (const Entry& e : entries) payload += PayloadSize(e);
  // Limit uncommitted growth, but always accept an empty entry or a first
  // entry so a large proposal can make progress.
  if (config_.max_uncommitted_entries_size > 0 && payload > 0 &&
      uncommitted_size_ > 0 &&
      uncommitted_size_ + payload > config_.max_uncommitted_entries_size) {
    return false;
  }
  uncommitted_size_ += payload;
  uint64_t index = log_.LastIndex();
  for (Entry& e : entries) {
    e.set_term(term_);
    e.set_index(++index);
  }
  log_.Append(entries);
  ReconcileConf(entries);
  // Our own progress moves when the entries are durable (SelfAppendAck).
  pending_broadcast_ = true;
  return true;
}

Status Raft::CheckCanPropose() const {
  if (role_ != Role::kLeader) {
    return Status::NotLeader(lead_ == kNone
                                 ? "leader unknown"
                                 : "leader is " + std::to_string(lead_));
  }
  if (lead_transferee_ != kNone) {
    return Status::ProposalDropped("leadership is being transferred to " +
                                   std::to_string(lead_transferee_));
  }
  return Status::OK();
}

StatusOr<uint64_t> Raft::Propose(std::string data) {
  RAFTKV_RETURN_IF_ERROR(CheckCanPropose());
  Entry e;
  e.set_type(ENTRY_NORMAL);
  e.set_data(std::move(data));
  if (!AppendEntries({std::move(e)})) {
    return Status::ProposalDropped("too many uncommitted bytes");
  }
  return log_.LastIndex();
}

bool Raft::MaybeSendAppend(uint64_t to, bool send_if_empty) {
  Progress& pr = progress_.at(to);
  if (pr.IsPaused()) return false;
  uint64_t prev_term = 0;
  Status term_status = log_.Term(pr.next() - 1, &prev_term);
  std::vector<Entry> entries;
  Status entries_status =
      log_.EntriesFrom(pr.next(), config_.max_size_per_msg, &entries);
  if (entries.empty() && !send_if_empty && entries_status.ok()) return false;
  if (!term_status.ok() || !entries_status.ok()) {
    // What the follower needs was compacted away.
    return SendSnapshot(to, pr);
  }
  Message m;
  m.set_to(to);
  m.set_type(MSG_APP);
  m.set_index(pr.next() - 1);
  m.set_log_term(prev_term);
  m.set_commit(log_.committed());
  if (!entries.empty()) {
    uint64_t bytes = 0;
    for (const Entry& e : entries) bytes += e.data().size();
    pr.SentEntries(entries.back().index(), bytes);
  }
  for (Entry& e : entries) *m.add_entries() = std::move(e);
  Send(std::move(m));
  return true;
}

bool Raft::SendSnapshot(uint64_t to, Progress& pr) {
  if (!pr.recent_active()) {
    VLOG(1) << "raft " << id_ << " holds back a snapshot for inactive " << to;
    return false;
  }
  Message m;
  m.set_to(to);
  m.set_type(MSG_SNAP);
  Status s = log_.GetSnapshot(m.mutable_snapshot());
  if (!s.ok()) {
    VLOG(1) << "raft " << id_ << " snapshot for " << to
            << " not ready: " << s.ToString();
    return false;
  }
  if (m.snapshot().metadata().index() == 0) {
    // Nothing was snapshotted yet, so nothing was compacted either: only a
    // node joining the cluster, which needs a snapshot to learn the
    // configuration, asks now. It asks again until the application has
    // taken one.
    CHECK_EQ(log_.FirstIndex(), 1u) << "compacted log without a snapshot";
    VLOG(1) << "raft " << id_ << " has no snapshot yet for joining node " << to;
    return false;
  }
  if (pr.rejoining() && m.snapshot().metadata().index() >= pr.rejoin_index()) {
    // The snapshot covers our RejoinRecord, which the node will then never
    // see as an entry: it gets a new record once the snapshot is in.
    pr.set_rejoin_index(0);
  }
  LOG(INFO) << "raft " << id_ << " sends snapshot at index "
            << m.snapshot().metadata().index() << " to " << to
            << " (its next index " << pr.next()
            << " is compacted, or it joins with an empty log)";
  pr.BecomeSnapshot(m.snapshot().metadata().index());
  Send(std::move(m));
  return true;
}

void Raft::BroadcastAppend() {
  for (auto& [peer, pr] : progress_) {
    if (peer == id_) continue;
    // Sends once even with nothing new (to carry the commit index), then
    // keeps streaming while the pipeline has room.
    if (MaybeSendAppend(peer, /*send_if_empty=*/true)) {
      while (MaybeSendAppend(peer, /*send_if_empty=*/false)) {
      }
    }
  }
}

void Raft::SendHeartbeat(uint64_t to, const std::string& context) {
  // Never tell a follower to commit beyond what it is known to hold: it
  // might not have those entries yet.
  const uint64_t commit = std::min(progress_.at(to).match(), log_.committed());
  Message m;
  m.set_to(to);
  m.set_type(MSG_HEARTBEAT);
  m.set_commit(commit);
  m.set_context(context);
  Send(std::move(m));
}

void Raft::BroadcastHeartbeat() {
  const uint64_t round = read_only_.LastPendingRound();
  const std::string context = round == 0 ? "" : std::to_string(round);
  for (const auto& [peer, pr] : progress_) {
    if (peer != id_) SendHeartbeat(peer, context);
  }
}

bool Raft::MaybeCommit() {
  bool advanced = false;
  while (true) {
    std::map<uint64_t, uint64_t> match;
    for (const auto& [peer, pr] : progress_) {
      // A rejoining node's acknowledgements do not count (rejoin.h).
      match[peer] = pr.rejoining() ? 0 : pr.match();
    }
    if (!log_.MaybeCommit(CommittedIndex(voters_, match), term_)) break;
    advanced = true;
    ReleasePendingReadsAfterCommit();
    // A committed rejoin record may let a node count again, and so commit
    // more.
    if (!AdmitRejoinedPeers()) break;
  }
  return advanced;
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.TermOrZero(log_.committed()) == term_;
}

// --- Follower side ---------------------------------------------------------

void Raft::HandleAppendEntries(const Message& m) {
  Message resp;
  resp.set_to(m.from());
  resp.set_type(MSG_APP_RESP);
  if (voters_.empty()) {
    // A node joining a running cluster knows no configuration until a
    // snapshot brings one (Config::join_existing_cluster).
    resp.set_index(m.index());
    resp.set_reject(true);
    resp.set_wants_snapshot(true);
    Send(std::move(resp));
    return;
  }
  if (m.index() < log_.committed()) {
    // Everything up to our commit index matches any leader's log.
    resp.set_index(log_.committed());
    Send(std::move(resp));
    return;
  }
  std::vector<Entry> entries(m.entries().begin(), m.entries().end());
  if (auto last =
          log_.MaybeAppend(m.index(), m.log_term(), m.commit(), entries)) {
    ReconcileConf(entries);
    resp.set_index(*last);
    Send(std::move(resp));
    return;
  }
  // Consistency check failed. Hint the leader where our log could match:
  // the last index <= its probe whose term is <= its term there (§5.3).
  const uint64_t hint_index = std::min(m.index(), log_.LastIndex());
  auto [index, term] = log_.FindConflictByTerm(hint_index, m.log_term());
  VLOG(1) << "raft " << id_ << " rejects append at " << m.index()
          << " (log term " << m.log_term() << "), hint " << index << "/"
          << term;
  resp.set_index(m.index());
  resp.set_reject(true);
  resp.set_reject_hint(index);
  resp.set_log_term(term);
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  // A rejoining node's leader may still believe it holds what the lost
  // disk held: never commit beyond our own log then.
  log_.CommitTo(rejoin_phase_ == RejoinPhase::kRejoining
                    ? std::min(m.commit(), log_.LastIndex())
                    : m.commit());
  Message resp;
  resp.set_to(m.from());
  resp.set_type(MSG_HEARTBEAT_RESP);
  resp.set_context(m.context());
  resp.set_reject(appends_paused_);  // "send me no appends for now"
  Send(std::move(resp));
}

void Raft::HandleSnapshot(const Message& m) {
  Message resp;
  resp.set_to(m.from());
  resp.set_type(MSG_APP_RESP);
  if (Restore(m.snapshot())) {
    LOG(INFO) << "raft " << id_ << " restored snapshot at index "
              << m.snapshot().metadata().index() << " from " << m.from();
    resp.set_index(log_.LastIndex());
  } else {
    resp.set_index(log_.committed());
  }
  Send(std::move(resp));
}

bool Raft::Restore(const Snapshot& snapshot) {
  const SnapshotMetadata& meta = snapshot.metadata();
  if (meta.index() <= log_.committed()) return false;
  if (role_ != Role::kFollower) {
    // Only a leader of this term sends snapshots; never install from others.
    LOG(WARNING) << "raft " << id_ << " got a snapshot as " << RoleName(role_)
                 << "; ignoring";
    return false;
  }
  if (log_.MatchTerm(meta.index(), meta.term())) {
    // We already hold the snapshot's last entry: just fast-forward commit.
    log_.CommitTo(meta.index());
    return false;
  }
  log_.Restore(snapshot);
  if (meta.conf_state().voters_size() > 0) {
    conf_history_.clear();
    conf_history_.push_back({meta.index(), meta.term(), meta.conf_state()});
    UseConf(meta.conf_state());
  } else {
    LOG(WARNING) << "raft " << id_ << ": the snapshot at index " << meta.index()
                 << " records no configuration; keeping "
                 << DescribeConfState(conf_state());
  }
  return true;
}

// --- Leader side -------------------------------------------------------------

void Raft::HandleAppendResponse(const Message& m, Progress& pr) {
  if (m.from() == id_) {
    // Our own entries are durable up to m.index().
    if (pr.MaybeUpdate(m.index()) && MaybeCommit()) pending_broadcast_ = true;
    return;
  }
  if (!TrackIncarnation(m, pr)) return;
  pr.set_recent_active(true);
  pr.set_applied(m.applied());
  if (m.reject() && m.wants_snapshot()) {
    // As for any rejection, only an answer to the latest probe (or above
    // what is known to match) counts: an append sent before the snapshot
    // is answered after it was delivered, and must not send another.
    const bool stale = pr.state() == ProgressState::kProbe
                           ? pr.next() - 1 != m.index()
                           : m.index() <= pr.match();
    if (pr.state() != ProgressState::kSnapshot && !stale) {
      if (pr.state() == ProgressState::kReplicate) pr.BecomeProbe();
      SendSnapshot(m.from(), pr);
    }
    return;
  }
  if (m.reject()) {
    uint64_t next_probe = m.reject_hint();
    if (m.log_term() > 0) {
      // Skip every entry of ours that cannot match the follower's term.
      next_probe = log_.FindConflictByTerm(m.reject_hint(), m.log_term()).first;
    }
    if (pr.MaybeDecrTo(m.index(), next_probe)) {
      if (pr.state() == ProgressState::kReplicate) pr.BecomeProbe();
      MaybeSendAppend(m.from(), /*send_if_empty=*/true);
    }
    return;
  }
  const bool was_paused = pr.IsPaused();
  if (!pr.MaybeUpdate(m.index())) return;
  switch (pr.state()) {
    case ProgressState::kProbe:
      pr.BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      if (pr.match() >= pr.pending_snapshot()) {
        pr.BecomeProbe();
        pr.BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr.inflights().FreeLE(m.index());
      break;
  }
  if (pr.rejoining()) AdmitRejoinedPeers();
  if (MaybeCommit()) {
    pending_broadcast_ = true;  // carry the new commit index (batched)
  } else if (was_paused) {
    MaybeSendAppend(m.from(), /*send_if_empty=*/true);
  }
  while (MaybeSendAppend(m.from(), /*send_if_empty=*/false)) {
  }
  if (m.from() == lead_transferee_ && pr.match() == log_.LastIndex()) {
    LOG(INFO) << "raft " << id_ << " sends timeout-now to " << m.from()
              << " after it caught up";
    SendTimeoutNow(m.from());
  }
}

void Raft::HandleHeartbeatResponse(const Message& m, Progress& pr) {
  if (!TrackIncarnation(m, pr)) return;
  pr.set_recent_active(true);
  pr.set_applied(m.applied());
  // A rejected answer: the follower paused its appends (its applier is
  // behind); leave the pipeline as it is until a plain answer.
  if (!m.reject()) {
    pr.OnHeartbeatResponse();
    if (pr.match() < log_.LastIndex()) {
      MaybeSendAppend(m.from(), /*send_if_empty=*/true);
    }
  }
  // A rejoining node does not confirm leadership for reads either.
  if (m.context().empty() || pr.rejoining()) return;
  const uint64_t round = std::strtoull(m.context().c_str(), nullptr, 10);
  if (round == 0) return;
  auto confirmed = read_only_.Ack(
      round, m.from(),
      [this](const std::set<uint64_t>& acks) { return HasQuorum(acks); });
  for (const ReadRequest& r : confirmed) AnswerRead(r);
}

void Raft::HandleSnapshotStatus(const Message& m, Progress& pr) {
  if (pr.state() != ProgressState::kSnapshot) return;
  if (m.reject()) {
    LOG(WARNING) << "raft " << id_ << " snapshot to " << m.from()
                 << " failed; probing again";
    pr.BecomeSnapshot(0);  // forget the pending snapshot
  }
  // Wait for a heartbeat response before probing, as the snapshot (or its
  // failure) may still be in flight.
  pr.BecomeProbe();
  pr.PauseProbe();
}

}  // namespace raftkv::raft
