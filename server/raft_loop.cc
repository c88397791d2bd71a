// RaftLoop: the Raft core's Ready pipeline on the loop's thread (see
// raft_loop.h). Never waits on the disk, and never sends an acknowledgement
// or a vote before the write it vouches for is durable.
#include "server/raft_loop.h"

#include <glog/logging.h>

#include <algorithm>

#include "raft/conf_change.h"
#include "raft/describe.h"
#include "server/applier.h"
#include "server/campaign_turn.h"
#include "server/client_requests.h"
#include "server/log_cache.h"
#include "server/log_writer.h"
#include "server/loop_booster.h"
#include "server/member_directory.h"
#include "server/peer_transport.h"
#include "server/snapshot_transfer.h"
#include "server/storage_failure.h"
#include "storage/snapshot.h"

namespace raftkv::server {

RaftLoop::RaftLoop(const ServerConfig& config, asio::io_context& io,
                   std::unique_ptr<raft::RawNode> raft, Stages stages,
                   uint64_t applied_index, int64_t revision)
    : config_(config),
      io_(io),
      raft_(std::move(raft)),
      stages_(stages),
      tick_timer_(io),
      campaign_timer_(io),
      monitor_(config.loop_stall_warning),
      applied_index_(applied_index),
      revision_(revision) {}

RaftLoop::~RaftLoop() = default;

void RaftLoop::Start() {
  next_tick_ = Clock::now() + config_.tick;
  ArmTickTimer();
}

void RaftLoop::ArmTickTimer() {
  // Re-arming cancels the previous wait; a wait that had already fired and
  // is queued still runs, finds the tick not due and does nothing.
  tick_timer_.expires_at(next_tick_);
  tick_timer_.async_wait([this](const std::error_code& ec) {
    if (!ec) TickIfDue(Clock::now());
  });
}

void RaftLoop::Stop() {
  stopped_ = true;
  tick_timer_.cancel();
  campaign_timer_.cancel();
}

uint64_t RaftLoop::log_cache_bytes() const { return stages_.cache->bytes(); }

// --- Events ----------------------------------------------------------------

bool RaftLoop::TickIfDue(Clock::time_point now) {
  if (stopped_ || now < next_tick_) return false;
  OnTick(now);
  return true;
}

void RaftLoop::OnTick(Clock::time_point now) {
  const int64_t late_us = monitor_.OnTimer(next_tick_, now);
  raft_->Tick();
  // Every election timeout's worth of ticks.
  if (++ticks_ % config_.election_ticks == 0) MaybePromoteLearners();
  if (metrics_) UpdateMetrics(now, late_us);
  // A snapshot point pins old versions in RocksDB: let it go once nobody
  // has needed it for a while.
  if (stages_.cache->snapshot_point() != nullptr &&
      now - point_made_at_ > config_.snapshot_point_idle &&
      stages_.transfers->active() == 0) {
    stages_.cache->set_snapshot_point(nullptr);
  }
  // Fixed-rate ticks: a late wake-up does not stretch every later tick.
  next_tick_ += config_.tick;
  if (next_tick_ < now) next_tick_ = now + config_.tick;
  if (booster_ != nullptr) booster_->OnTick(next_tick_);
  ArmTickTimer();
}

void RaftLoop::UpdateMetrics(Clock::time_point now, int64_t late_us) {
  NodeMetrics& m = *metrics_;
  m.loop_lateness->Observe(late_us / 1e6);
  m.last_tick_seconds->Set(
      std::chrono::duration<double>(now.time_since_epoch()).count());
  m.term->Set(raft_->term());
  m.is_leader->Set(raft_->role() == raft::Role::kLeader ? 1 : 0);
  m.leader_id->Set(raft_->lead());
  m.commit_index->Set(raft_->commit());
  m.applied_index->Set(applied_index_);
  m.log_cache_bytes->Set(stages_.cache->bytes());
  m.apply_backlog_full->Set(apply_backlog_full_ ? 1 : 0);
  m.rejoining->Set(raft_->taking_part() ? 0 : 1);
}

void RaftLoop::OnPeerMessage(raft::Message message) {
  if (stopped_) return;
  const auto now = Clock::now();
  last_heard_[message.from()] = now;
  if (message.type() == raft::MSG_HEARTBEAT_RESP && metrics_) {
    auto sent = heartbeat_sent_.find(message.from());
    auto rtt = metrics_->peer_round_trip.find(message.from());
    if (sent != heartbeat_sent_.end() && sent->second != Clock::time_point() &&
        rtt != metrics_->peer_round_trip.end()) {
      rtt->second->Observe(
          std::chrono::duration<double>(now - sent->second).count());
      sent->second = Clock::time_point();
    }
  }
  if (message.type() == raft::MSG_SNAP) {
    // Snapshots arrive with their image, on their own connections.
    LOG(WARNING) << "dropping a snapshot message without its image from "
                 << message.from();
    return;
  }
  if (apply_backlog_full_ && message.type() == raft::MSG_APP &&
      message.entries_size() > 0) {
    // Not acknowledged until the applier catches up: the leader's pipeline
    // to us fills and pauses, while heartbeats (stepped at once) keep
    // carrying the commit index. Reordered behind them, as a network may.
    // Bounded by the peer queue's bytes, which also cap what the leader
    // keeps in flight to us; beyond (a heartbeat lets the leader send one
    // more), dropped. A drop costs a resync, so the bound is not tighter.
    const size_t size = message.ByteSizeLong();
    if (deferred_bytes_ + size > config_.peer_queue_bytes) {
      ++backlog_.appends_dropped;  // as if lost: the leader retries
      return;
    }
    deferred_bytes_ += size;
    deferred_appends_.push_back(std::move(message));
    ++backlog_.appends_deferred;
    return;
  }
  StepPeerMessage(message);
}

void RaftLoop::StepPeerMessage(const raft::Message& message) {
  Status s = raft_->Step(message);
  if (!s.ok()) {
    LOG(WARNING) << "dropping peer message " << raft::DescribeMessage(message)
                 << ": " << s.ToString();
  }
}

void RaftLoop::OnUnreachable(uint64_t peer) {
  heartbeat_sent_.erase(peer);  // its answer may never come
  raft_->ReportUnreachable(peer);
}

void RaftLoop::OnPeerDown(uint64_t peer) {
  heartbeat_sent_.erase(peer);
  if (!config_.fast_failover || peer != raft_->lead() ||
      raft_->role() != raft::Role::kFollower || campaign_scheduled_) {
    return;
  }
  // The leader's connection broke: it has probably crashed. Forget it (so
  // our peers' pre-votes are granted) and campaign in our turn (see
  // campaign_turn.h); the election timeout stays the backstop. PreVote keeps
  // a live leader safe: a node still hearing from it refuses.
  const auto delay = CampaignTurn(raft_->GetStatus().voters, config_.id, peer) *
                     kCampaignTurnTicks * config_.tick;
  LOG(INFO) << "raftkvd " << config_.id << ": connection to leader " << peer
            << " lost; campaigning in " << delay.count() << " ms";
  raft_->ForgetLeader();
  campaign_scheduled_ = true;
  campaign_timer_.expires_after(delay);
  campaign_timer_.async_wait([this](const std::error_code& ec) {
    campaign_scheduled_ = false;
    if (ec) return;
    if (raft_->role() == raft::Role::kFollower &&
        raft_->lead() == raft::kNone) {
      raft_->Campaign();
    }
  });
}

// --- The Ready pipeline ------------------------------------------------------

void RaftLoop::ProcessReady(LoopMonitor::Pass* pass) {
  while (!stopped_ && raft_->HasReady()) {
    raft::Ready ready = raft_->GetReady();
    raft_->Accept(ready);
    if (pass) {
      ++pass->readys;
      pass->entries += ready.entries.size();
      pass->messages +=
          ready.messages.size() + ready.messages_after_persist.size();
    }
    HandleReady(ready);
  }
}

void RaftLoop::FinishPass(LoopMonitor::Pass pass) {
  const auto start = Clock::now();
  ProcessReady(&pass);
  pass.ready_us = std::chrono::duration_cast<std::chrono::microseconds>(
                      Clock::now() - start)
                      .count();
  monitor_.OnPass(pass);
}

void RaftLoop::HandleReady(raft::Ready& ready) {
  if (ready.soft_state) {
    const raft::SoftState& ss = *ready.soft_state;
    if (ss.lead != soft_state_.lead) {
      LOG(INFO) << "raftkvd " << config_.id << ": leader is now "
                << (ss.lead == raft::kNone ? std::string("unknown")
                                           : std::to_string(ss.lead))
                << " at term " << raft_->term() << " (was " << soft_state_.lead
                << "); this node is " << raft::RoleName(ss.role);
    }
    if (metrics_ && ss.lead != soft_state_.lead && ss.lead != raft::kNone) {
      metrics_->leader_changes->Inc();
    }
    if (ss.lead != soft_state_.lead || ss.role != soft_state_.role) {
      clients_->OnLeadershipChange();
    }
    soft_state_ = ss;
    UpdatePeers();  // the leader may be outside the configuration
  }
  for (const raft::Entry& e : ready.entries) {
    if (e.type() == raft::ENTRY_CONF_CHANGE) stages_.members->NoteChange(e);
  }
  if (ready.conf_state) {
    LOG(INFO) << "raftkvd " << config_.id << ": configuration "
              << raft::DescribeConfState(*ready.conf_state);
    UpdatePeers();
  }
  SendMessages(ready.messages);
  const bool commit_moved = ready.hard_state.has_value();
  // A hard state that needs no sync differs only in its commit index: it
  // is not written now but with the next hard state that must be (a saved
  // commit index may lag: a restarting core takes the larger of it and the
  // applied index, and learns the rest from the leader). Otherwise every
  // commit would cost a round trip through the log writer and a RocksDB
  // write, as many as the entries themselves at one client.
  if (!ready.must_sync) ready.hard_state.reset();
  const bool writes = !ready.entries.empty() || ready.hard_state.has_value() ||
                      ready.snapshot.has_value();
  if (writes ||
      (!ready.messages_after_persist.empty() && !in_flight_.empty())) {
    InFlight f;
    f.seq = next_seq_++;
    f.mark = ready.persist_mark();  // before the entries move
    f.entries = std::make_shared<const std::vector<raft::Entry>>(
        std::move(ready.entries));
    f.hard_state = ready.hard_state;
    f.after_persist = std::move(ready.messages_after_persist);
    PersistTask task;
    task.seq = f.seq;
    task.entries = f.entries;
    task.hard_state = ready.hard_state;
    task.sync = ready.must_sync;
    if (ready.snapshot) {
      const raft::SnapshotMetadata& meta = ready.snapshot->metadata();
      auto it = staged_.find({meta.term(), meta.index()});
      if (it == staged_.end()) {
        FailStorage(Status::Corruption(
            "the core took a snapshot at " + std::to_string(meta.term()) + "/" +
            std::to_string(meta.index()) + " whose image was never staged"));
        return;
      }
      f.snapshot = meta;
      task.snapshot = meta;
      task.staging_dir = it->second;
      staged_.erase(it);
    }
    in_flight_.push_back(std::move(f));
    stages_.writer->Submit(std::move(task));
  } else {
    // Nothing to write and nothing written before is pending: nothing for
    // the acknowledgements to wait for.
    InFlight now;
    now.after_persist = std::move(ready.messages_after_persist);
    FinishPersisted(now);
  }
  if (!ready.committed_entries.empty()) {
    stages_.applier->Apply(std::move(ready.committed_entries));
  }
  if (!ready.read_states.empty()) clients_->OnReadStates(ready.read_states);
  if (commit_moved) UpdateApplyBacklog();
}

void RaftLoop::SendMessages(std::vector<raft::Message>& messages) {
  for (raft::Message& m : messages) {
    if (m.type() == raft::MSG_HEARTBEAT && metrics_) {
      // Timed from the oldest heartbeat not answered yet.
      auto& sent = heartbeat_sent_[m.to()];
      if (sent == Clock::time_point()) sent = Clock::now();
    }
    if (m.type() == raft::MSG_SNAP) {
      SendSnapshot(m);
    } else {
      stages_.transport->Send(m);
    }
  }
}

void RaftLoop::SendSnapshot(const raft::Message& message) {
  const auto& point = stages_.cache->snapshot_point();
  const uint64_t to = message.to();
  const std::string address = stages_.members->PeerAddress(to);
  if (point == nullptr ||
      point->index() != message.snapshot().metadata().index() ||
      address.empty() || !stages_.transfers->Send(message, point, address)) {
    raft_->ReportSnapshot(to, /*failed=*/true);
    return;
  }
  point_made_at_ = Clock::now();  // in use: keep it
}

void RaftLoop::OnPersisted(Persisted persisted) {
  if (stopped_) return;
  if (!persisted.status.ok()) {
    FailStorage(persisted.status);
    return;
  }
  if (metrics_ && persisted.wrote) {
    metrics_->log_write->Observe(persisted.write_us / 1e6);
  }
  if (persisted.write_us > config_.slow_fsync_warning.count() * 1000) {
    LOG(WARNING) << "slow log write: " << persisted.tasks << " Readys took "
                 << persisted.write_us / 1000 << " ms";
  }
  while (!in_flight_.empty() &&
         in_flight_.front().seq <= persisted.through_seq) {
    InFlight done = std::move(in_flight_.front());
    in_flight_.pop_front();
    if (done.snapshot) done.membership = std::move(persisted.membership);
    FinishPersisted(done);
  }
  StepDeferredAppends();  // an installed snapshot empties the backlog
}

void RaftLoop::FinishPersisted(InFlight& done) {
  LogCache* cache = stages_.cache;
  if (done.snapshot) {
    stages_.writer->Release(cache->ResetToSnapshot(*done.snapshot));
    if (done.membership) OnMembership(*done.membership);
    applied_index_ = std::max(applied_index_, done.snapshot->index());
    if (metrics_) metrics_->snapshots_installed->Inc();
    LOG(INFO) << "raftkvd " << config_.id << ": installed snapshot at index "
              << done.snapshot->index();
  }
  if (done.snapshot || done.entries) {
    if (done.entries) cache->Append(std::move(done.entries));
    UpdateApplyBacklog();
  }
  if (done.hard_state) cache->SetHardState(*done.hard_state);
  if (done.seq != 0) raft_->OnPersisted(done.mark);
  for (const raft::Message& m : done.after_persist) {
    if (m.to() == config_.id) {
      raft_->Step(m);  // our own acknowledgement, now durable
    } else {
      stages_.transport->Send(m);
    }
  }
}

void RaftLoop::OnApplied(const Applied& applied) {
  if (stopped_) return;
  if (!applied.status.ok()) {
    FailStorage(applied.status);
    return;
  }
  applied_index_ = std::max(applied_index_, applied.index);
  revision_ = applied.revision;
  if (metrics_ && applied.apply_us > 0) {
    metrics_->apply->Observe(applied.apply_us / 1e6);
  }
  raft_->OnApplied(applied.index);
  if (applied.membership) OnMembership(*applied.membership);
  MaybeCompact();
  UpdateApplyBacklog();
  StepDeferredAppends();
}

// --- Membership
// ---------------------------------------------------------------

void RaftLoop::UpdatePeers() {
  const raft::ConfState& conf = raft_->conf_state();
  std::map<uint64_t, asio::ip::tcp::endpoint> peers;
  auto add = [&](uint64_t id) {
    if (id == config_.id) return;
    const std::string address = stages_.members->PeerAddress(id);
    auto endpoint = ParseEndpoint(address);
    if (!endpoint.ok()) {
      LOG(WARNING) << "raftkvd " << config_.id
                   << ": no usable address for member " << id << " yet ('"
                   << address << "')";
      return;
    }
    peers[id] = *endpoint;
  };
  for (uint64_t id : conf.voters()) add(id);
  for (uint64_t id : conf.learners()) add(id);
  // A leader that is removing itself leads until the change commits
  // (dissertation §4.2.2), and ours may be one our log does not name yet:
  // followers keep hearing and answering it.
  if (raft_->lead() != raft::kNone) add(raft_->lead());
  // A node that joins knows no configuration until its first snapshot:
  // the members its flags name, whoever of them leads.
  if (conf.voters_size() == 0) {
    for (const auto& [id, address] : config_.peer_addresses) add(id);
  }
  stages_.transport->SetPeers(peers);
}

bool RaftLoop::HeardRecently(uint64_t id) const {
  if (id == config_.id) return true;
  auto heard = last_heard_.find(id);
  return heard != last_heard_.end() &&
         Clock::now() - heard->second <= config_.tick * config_.election_ticks;
}

void RaftLoop::OnMembership(const kv::Membership& membership) {
  stages_.members->SetApplied(membership);
  UpdatePeers();
  if (stages_.members->WasRemoved(config_.id)) {
    OnRemoved("its removal was applied at index " +
              std::to_string(membership.changed_at()));
  }
}

void RaftLoop::OnRemoved(const std::string& how) {
  if (removed_reported_) return;
  removed_reported_ = true;
  LOG(WARNING) << "raftkvd " << config_.id << " was removed from the cluster ("
               << how << "): it takes no further part and stops";
  if (removed_) removed_();
}

void RaftLoop::MaybePromoteLearners() {
  if (raft_->role() != raft::Role::kLeader) return;
  for (uint64_t id : raft_->conf_state().learners()) {
    const kv::MemberStatus* m = stages_.members->Find(id);
    if (m == nullptr || !m->promote_when_caught_up()) continue;
    raft::ConfChange change;
    change.set_type(raft::CONF_PROMOTE_LEARNER);
    change.set_node(id);
    auto index = raft_->ProposeConfChange(change);
    if (index.ok()) {
      LOG(INFO) << "raftkvd " << config_.id << ": learner " << id
                << " has caught up: proposed its promotion at index " << *index;
      return;  // one change at a time
    }
    VLOG(1) << "learner " << id
            << " not promoted yet: " << index.status().ToString();
  }
}

void RaftLoop::StepDeferredAppends() {
  if (apply_backlog_full_ || deferred_appends_.empty()) return;
  std::deque<raft::Message> deferred = std::move(deferred_appends_);
  deferred_appends_.clear();
  deferred_bytes_ = 0;
  for (const raft::Message& m : deferred) StepPeerMessage(m);
}

void RaftLoop::UpdateApplyBacklog() {
  // The backlog is what is committed and durable here but not applied: it
  // always drains (an uncommitted tail may never commit, and is bounded by
  // the leader's own back-pressure and the core's uncommitted limit).
  const LogCache& cache = *stages_.cache;
  const uint64_t bytes_limit = config_.max_log_cache_bytes / 2;
  const uint64_t committed = std::min(raft_->commit(), cache.LastIndex());
  const uint64_t entries =
      committed > applied_index_ ? committed - applied_index_ : 0;
  const uint64_t bytes = entries == 0 ? 0
                                      : cache.BytesAfter(applied_index_) -
                                            cache.BytesAfter(committed);
  // Hysteresis: full above either limit, free again at three quarters.
  // Under a sustained load this may flip often: the log tells it at most
  // once per kBacklogReportEvery, with what happened meanwhile.
  const auto now = Clock::now();
  if (!apply_backlog_full_ &&
      (bytes > bytes_limit || entries > config_.max_unapplied_entries)) {
    apply_backlog_full_ = true;
    raft_->SetAppendsPaused(true);
    ++backlog_.episodes;
    if (metrics_) metrics_->apply_backlog_episodes->Inc();
    if (now - backlog_.warned_at >= kBacklogReportEvery) {
      backlog_.warned_at = now;
      LOG(WARNING) << "raftkvd " << config_.id << ": " << entries
                   << " entries (" << (bytes >> 10)
                   << " KiB) of the log not applied yet (limits "
                   << config_.max_unapplied_entries << ", "
                   << (bytes_limit >> 10)
                   << " KiB): holding back new entries until the applier "
                      "catches up (applied "
                   << applied_index_ << ", last " << cache.LastIndex() << ")";
    }
  } else if (apply_backlog_full_ && bytes <= bytes_limit / 4 * 3 &&
             entries <= config_.max_unapplied_entries / 4 * 3) {
    apply_backlog_full_ = false;
    raft_->SetAppendsPaused(false);
    if (clients_ != nullptr) {
      const size_t held = clients_->OnApplyBacklogFreed();
      backlog_.writes_held += held;
      if (metrics_) metrics_->writes_held_back->Inc(held);
    }
    if (now - backlog_.reported_at >= kBacklogReportEvery) {
      backlog_.reported_at = now;
      LOG(INFO) << "raftkvd " << config_.id << ": applier caught up ("
                << entries << " entries, " << (bytes >> 10)
                << " KiB behind, applied " << applied_index_
                << "); since the last report: held back " << backlog_.episodes
                << " times, " << backlog_.appends_deferred
                << " appends deferred, " << backlog_.appends_dropped
                << " dropped, " << backlog_.writes_held << " writes held back";
      backlog_ = BacklogReport{backlog_.warned_at, backlog_.reported_at};
    }
  }
}

void RaftLoop::MaybeCompact() {
  LogCache* cache = stages_.cache;
  const uint64_t first = cache->FirstIndex();
  const bool too_long =
      applied_index_ >= first + config_.snapshot_every_entries;
  const bool too_big = cache->bytes() > config_.max_log_cache_bytes;
  if (!too_long && !too_big) return;
  // Keep a tail below the applied index, so that a follower only a little
  // behind catches up from entries, within half the byte budget.
  const uint64_t upto = std::min(applied_index_, cache->LastIndex());
  uint64_t target = cache->CompactionPoint(upto, config_.log_entries_kept,
                                           config_.max_log_cache_bytes / 2);
  if (!too_big && raft_->role() == raft::Role::kLeader) {
    // While the log is within its bytes, keep what the followers in touch
    // still need: entries are far cheaper than a snapshot. Without this a
    // follower held back by its apply backlog fell out of the kept tail
    // under a saturating load and got a 279 MB snapshot every 12 s. One
    // being sent a snapshot needs what follows that snapshot: compacting
    // past it during the transfer (seconds, at a million keys) made the
    // node need a second snapshot as soon as the first was installed. One
    // that has been silent for an election timeout is not waited for.
    // (Silence is timed here: the core's recent_active is reset every
    // election timeout, and a compaction in that window would cut off a
    // follower that answers every heartbeat.)
    const auto now = Clock::now();
    const auto silent_after = config_.tick * config_.election_ticks;
    for (const auto& [id, peer] : raft_->GetStatus().progress) {
      auto heard = last_heard_.find(id);
      if (id == config_.id || heard == last_heard_.end() ||
          now - heard->second > silent_after) {
        continue;
      }
      if (peer.state != "snapshot") {
        target = std::min(target, peer.match);
      } else if (peer.pending_snapshot != 0) {
        target = std::min(target, peer.pending_snapshot);
      }
    }
  }
  // Compact in steps of a quarter of what is kept (or of what is held): each
  // compaction is a synced write and a range tombstone in the RocksDB log,
  // and RocksDB 7.8 re-sorts a memtable's range tombstones on every read of
  // it. While the applier lags, compacting after each applied batch dropped
  // a few entries at a time (the log writer at 36% of a core, most of it
  // in that sort).
  const uint64_t step = std::max<uint64_t>(
      1, std::min<uint64_t>(config_.log_entries_kept / 4, cache->size() / 4));
  if (target < first || target - first + 1 < step) return;
  stages_.writer->Release(cache->Compact(target));
  stages_.writer->CompactTo(target);
  VLOG(1) << "raftkvd " << config_.id << ": log compacted to " << target << " ("
          << cache->size() << " entries, " << cache->bytes() << " bytes kept)";
}

void RaftLoop::WantSnapshotPoint() {
  if (point_requested_) return;
  point_requested_ = true;
  stages_.applier->MakeSnapshotPoint();
}

void RaftLoop::OnSnapshotPoint(
    std::shared_ptr<const storage::SnapshotSource> point) {
  point_requested_ = false;
  if (stopped_) return;
  LOG(INFO) << "raftkvd " << config_.id << ": snapshot point at "
            << point->term() << "/" << point->index();
  auto waiters = std::move(point_waiters_);
  point_waiters_.clear();
  for (auto& ready : waiters) ready(point);
  stages_.cache->set_snapshot_point(std::move(point));
  point_made_at_ = Clock::now();
}

void RaftLoop::WithNextSnapshotPoint(
    std::function<void(std::shared_ptr<const storage::SnapshotSource>)> ready) {
  point_waiters_.push_back(std::move(ready));
  WantSnapshotPoint();
}

void RaftLoop::OnSnapshotSent(uint64_t peer, bool ok) {
  if (stopped_) return;
  if (metrics_)
    (ok ? metrics_->snapshots_sent_ok : metrics_->snapshots_sent_failed)->Inc();
  raft_->ReportSnapshot(peer, /*failed=*/!ok);
}

void RaftLoop::OnSnapshotStaged(raft::Message message,
                                std::string staging_dir) {
  if (stopped_) {
    stages_.writer->Discard(std::move(staging_dir));
    return;
  }
  const raft::SnapshotMetadata& meta = message.snapshot().metadata();
  const std::pair<uint64_t, uint64_t> key{meta.term(), meta.index()};
  if (!staged_.emplace(key, staging_dir).second) {
    stages_.writer->Discard(std::move(staging_dir));
    return;
  }
  Status s = raft_->Step(message);
  if (s.ok()) ProcessReady();
  // The core took it (the writer installs it) or refused it (stale).
  auto it = staged_.find(key);
  if (it != staged_.end()) {
    LOG(INFO) << "raftkvd " << config_.id << ": snapshot at " << meta.term()
              << "/" << meta.index() << " not needed; discarding it";
    stages_.writer->Discard(it->second);
    staged_.erase(it);
  }
}

void RaftLoop::FailStorage(const Status& status) {
  ExitOnStorageFailure(config_.id, config_.data_dir, status);
}

}  // namespace raftkv::server
