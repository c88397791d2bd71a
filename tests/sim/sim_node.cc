// SimNode: disk, RawNode and state machine of one simulated server; crash
// and restart. Never keeps volatile state across a crash.
#include "tests/sim/sim_node.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <vector>

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

SimNode::SimNode(uint64_t id)
    : id_(id), disk_(std::make_unique<raft::MemoryStorage>()) {}

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

}  // namespace raftkv::sim
