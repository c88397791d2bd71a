// SimNode: disk, RawNode and state machine of one simulated server; crash
// and restart. Never keeps volatile state across a crash.
#include "tests/sim/sim_node.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>
#include <vector>

#include "raft/conf_change.h"

namespace raftkv::sim {
namespace {

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

uint64_t HashBytes(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

}  // namespace

uint64_t ChainHash(uint64_t hash, const raft::Entry& entry) {
  return Mix(Mix(Mix(hash, entry.index()), entry.term()),
             HashBytes(entry.data()));
}

std::string EncodeSnapshotData(const AppliedState& state) {
  return std::to_string(state.index) + " " + std::to_string(state.hash);
}

bool DecodeSnapshotData(const std::string& data, AppliedState* state) {
  return std::sscanf(data.c_str(), "%" SCNu64 " %" SCNu64, &state->index,
                     &state->hash) == 2;
}

SimNode::SimNode(uint64_t id, bool founding, raft::ConfState founding_conf)
    : id_(id),
      disk_(std::make_unique<raft::MemoryStorage>()),
      founding_(founding),
      founding_conf_(std::move(founding_conf)) {}

Status SimNode::Start(raft::Config config) {
  applied_ = AppliedState();
  raft::Snapshot snapshot;
  RAFTKV_RETURN_IF_ERROR(disk_->GetSnapshot(&snapshot));
  if (snapshot.metadata().index() > 0) {
    RAFTKV_RETURN_IF_ERROR(RestoreSnapshot(snapshot));
  }
  config.id = id_;
  config.applied = applied_.index;
  auto node = raft::RawNode::Create(config, disk_.get());
  if (!node.ok()) return node.status();
  raft_ = std::move(node).value();
  ++incarnation_;
  RescanConf();
  set_seen(raft_->role(), raft_->term());
  return Status::OK();
}

void SimNode::Crash() {
  raft_.reset();
  applied_ = AppliedState();
  seen_role_ = raft::Role::kFollower;
  pending_writes_.clear();
}

void SimNode::WipeDisk() {
  Crash();
  disk_ = std::make_unique<raft::MemoryStorage>();
  synced_commit_ = 0;
  lost_ = true;
}

void SimNode::WriteHardState(const raft::HardState& hard_state, bool synced) {
  disk_->SetHardState(hard_state);
  if (synced) synced_commit_ = hard_state.commit();
}

void SimNode::LoseUnsyncedCommit() {
  raft::HardState hs = disk_->hard_state();
  raft::Snapshot snapshot;
  disk_->GetSnapshot(&snapshot);
  hs.set_commit(std::max(
      {synced_commit_, snapshot.metadata().index(), disk_->FirstIndex() - 1}));
  if (hs.commit() < disk_->hard_state().commit()) disk_->SetHardState(hs);
}

void SimNode::LoseTail(uint64_t count) {
  raft::MemoryStorage& disk = *disk_;
  if (disk.LastIndex() < disk.FirstIndex() + count) return;
  const uint64_t last = disk.LastIndex() - count;
  raft::Snapshot snapshot;
  disk.GetSnapshot(&snapshot);
  std::vector<raft::Entry> kept;
  if (last >= disk.FirstIndex()) {
    disk.Entries(disk.FirstIndex(), last + 1, UINT64_MAX, &kept);
  }
  raft::HardState hs = disk.hard_state();
  hs.set_commit(std::min<uint64_t>(hs.commit(), last));
  auto fresh = std::make_unique<raft::MemoryStorage>();
  if (snapshot.metadata().index() > 0) fresh->ApplySnapshot(snapshot);
  fresh->Append(kept);
  fresh->SetHardState(hs);
  disk_ = std::move(fresh);
}

Status SimNode::Apply(const raft::Entry& entry, bool skip_effect) {
  if (entry.index() != applied_.index + 1) {
    return Status::Corruption(
        "node " + std::to_string(id_) + " is handed index " +
        std::to_string(entry.index()) + " to apply after " +
        std::to_string(applied_.index));
  }
  if (!skip_effect) applied_.hash = ChainHash(applied_.hash, entry);
  applied_.index = entry.index();
  return Status::OK();
}

Status SimNode::RestoreSnapshot(const raft::Snapshot& snapshot) {
  AppliedState state;
  if (!DecodeSnapshotData(snapshot.data(), &state) ||
      state.index != snapshot.metadata().index()) {
    return Status::Corruption(
        "node " + std::to_string(id_) + " got a snapshot at index " +
        std::to_string(snapshot.metadata().index()) +
        " with unreadable data '" + snapshot.data() + "'");
  }
  applied_ = state;
  return Status::OK();
}

bool SimNode::SnapshotAndCompact(const raft::ConfState& conf_state,
                                 uint64_t keep) {
  if (applied_.index <= disk_->FirstIndex() + keep) return false;
  if (!disk_
           ->CreateSnapshot(applied_.index, conf_state,
                            EncodeSnapshotData(applied_))
           .ok()) {
    return false;
  }
  return disk_->Compact(applied_.index - keep).ok();
}

void SimNode::RescanConf() {
  raft::Snapshot snapshot;
  disk_->GetSnapshot(&snapshot);
  const raft::SnapshotMetadata& meta = snapshot.metadata();
  // A joining node knows no configuration until a snapshot brings one.
  base_conf_ = founding_ ? founding_conf_ : raft::ConfState();
  base_index_ = 0;
  if (meta.index() > 0 && meta.conf_state().voters_size() > 0) {
    base_conf_ = meta.conf_state();
    base_index_ = meta.index();
  }
  conf_entries_.clear();
  log_conf_stale_ = true;
  const uint64_t first = std::max(disk_->FirstIndex(), base_index_ + 1);
  if (first > disk_->LastIndex()) return;
  std::vector<raft::Entry> entries;
  disk_->Entries(first, disk_->LastIndex() + 1, UINT64_MAX, &entries);
  TrackEntries(entries);
}

void SimNode::TrackEntries(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  // The entries replace the log's suffix from the first one on.
  conf_entries_.erase(conf_entries_.lower_bound(entries.front().index()),
                      conf_entries_.end());
  for (const raft::Entry& e : entries) {
    if (e.type() == raft::ENTRY_CONF_CHANGE) conf_entries_[e.index()] = e;
  }
  log_conf_stale_ = true;
}

void SimNode::TrackReady(const raft::Ready& rd) {
  if (rd.snapshot) {
    const raft::SnapshotMetadata& meta = rd.snapshot->metadata();
    // The snapshot replaces the whole log (a snapshot that records no
    // configuration leaves the one in effect, as the core does).
    if (meta.conf_state().voters_size() > 0) {
      base_conf_ = meta.conf_state();
    } else {
      base_conf_ = ConfFromLog();
    }
    base_index_ = meta.index();
    conf_entries_.clear();
    log_conf_stale_ = true;
  }
  TrackEntries(rd.entries);
}

const raft::ConfState& SimNode::ConfFromLog() {
  if (!log_conf_stale_) return log_conf_;
  raft::ConfState conf = base_conf_;
  for (const auto& [index, e] : conf_entries_) {
    if (index <= base_index_) continue;
    auto change = raft::DecodeConfChange(e);
    if (!change.ok()) continue;
    // An invalid change has no effect (the core logs and skips it).
    if (auto next = raft::ApplyConfChange(conf, *change); next.ok()) {
      conf = *next;
    }
  }
  log_conf_ = std::move(conf);
  log_conf_stale_ = false;
  return log_conf_;
}

std::vector<uint64_t> SimNode::ConfIndexes() const {
  std::vector<uint64_t> out;
  for (const auto& [index, e] : conf_entries_) {
    if (index > base_index_) out.push_back(index);
  }
  return out;
}

}  // namespace raftkv::sim
