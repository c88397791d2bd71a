// Per-follower replication state machine (probe / replicate / snapshot) and
// in-flight accounting. Pure bookkeeping: never sends anything itself.
#include "raft/progress.h"

#include <glog/logging.h>

#include <algorithm>

namespace raftkv::raft {

void Inflights::Add(uint64_t last_index, uint64_t bytes) {
  CHECK(in_flight_.empty() || in_flight_.back().first < last_index)
      << "inflights must be added in increasing index order";
  in_flight_.emplace_back(last_index, bytes);
  bytes_ += bytes;
}

void Inflights::FreeLE(uint64_t index) {
  while (!in_flight_.empty() && in_flight_.front().first <= index) {
    FreeFirstOne();
  }
}

void Inflights::FreeFirstOne() {
  if (in_flight_.empty()) return;
  bytes_ -= in_flight_.front().second;
  in_flight_.pop_front();
}

bool Inflights::Full() const {
  return in_flight_.size() >= max_count_ ||
         (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

void Inflights::Reset() {
  in_flight_.clear();
  bytes_ = 0;
}

const char* ProgressStateName(ProgressState state) {
  switch (state) {
    case ProgressState::kProbe:
      return "probe";
    case ProgressState::kReplicate:
      return "replicate";
    case ProgressState::kSnapshot:
      return "snapshot";
  }
  return "unknown";
}

void Progress::ResetState(ProgressState state) {
  probe_sent_ = false;
  pending_snapshot_ = 0;
  state_ = state;
  inflights_.Reset();
}

void Progress::BecomeProbe() {
  if (state_ == ProgressState::kSnapshot) {
    // The snapshot may have been applied: probe just past it.
    uint64_t pending = pending_snapshot_;
    ResetState(ProgressState::kProbe);
    next_ = std::max(match_ + 1, pending + 1);
  } else {
    ResetState(ProgressState::kProbe);
    next_ = match_ + 1;
  }
}

void Progress::BecomeReplicate() {
  ResetState(ProgressState::kReplicate);
  next_ = match_ + 1;
}

bool Progress::IsRetired(uint64_t incarnation) const {
  return std::find(retired_.begin(), retired_.end(), incarnation) !=
         retired_.end();
}

void Progress::SwitchIncarnation(uint64_t incarnation, uint64_t next) {
  retired_.push_back(incarnation_);
  incarnation_ = incarnation;
  ResetState(ProgressState::kProbe);
  match_ = 0;
  next_ = next;
  rejoining_ = true;
  rejoin_index_ = 0;
  reported_rejoined_ = false;
}

void Progress::AdoptRejoinedIncarnation(uint64_t incarnation) {
  retired_.push_back(incarnation_);
  incarnation_ = incarnation;
}

void Progress::BecomeSnapshot(uint64_t snapshot_index) {
  ResetState(ProgressState::kSnapshot);
  pending_snapshot_ = snapshot_index;
}

bool Progress::MaybeUpdate(uint64_t index) {
  bool updated = false;
  if (match_ < index) {
    match_ = index;
    updated = true;
    probe_sent_ = false;
  }
  next_ = std::max(next_, index + 1);
  return updated;
}

void Progress::SentEntries(uint64_t last_index, uint64_t bytes) {
  switch (state_) {
    case ProgressState::kReplicate:
      next_ = last_index + 1;
      inflights_.Add(last_index, bytes);
      break;
    case ProgressState::kProbe:
      probe_sent_ = true;
      break;
    case ProgressState::kSnapshot:
      LOG(FATAL) << "sending entries to a follower in snapshot state";
  }
}

bool Progress::MaybeDecrTo(uint64_t rejected, uint64_t match_hint) {
  if (state_ == ProgressState::kReplicate) {
    // Rejections at or below match are stale (reordered messages).
    if (rejected <= match_) return false;
    next_ = match_ + 1;
    return true;
  }
  // In probe state only the answer to the last probe counts.
  if (next_ - 1 != rejected) return false;
  next_ = std::max(std::min(rejected, match_hint + 1), match_ + 1);
  probe_sent_ = false;
  return true;
}

void Progress::OnHeartbeatResponse() {
  probe_sent_ = false;
  // A full pipeline may have lost a message: make room for one retry.
  if (state_ == ProgressState::kReplicate && inflights_.Full()) {
    inflights_.FreeFirstOne();
  }
}

bool Progress::IsPaused() const {
  switch (state_) {
    case ProgressState::kProbe:
      return probe_sent_;
    case ProgressState::kReplicate:
      return inflights_.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

}  // namespace raftkv::raft
