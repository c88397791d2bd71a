// LogCache: the in-memory mirror of the durable Raft log (see log_cache.h).
// Never touches the disk after Load().
#include "server/log_cache.h"

#include <glog/logging.h>

#include <algorithm>
#include <utility>

#include "storage/raft_log.h"
#include "storage/snapshot.h"

namespace raftkv::server {

StatusOr<std::unique_ptr<LogCache>> LogCache::Load(
    const storage::RaftLog& log, raft::ConfState conf_state,
    uint64_t conf_index, std::function<void()> want_snapshot) {
  std::unique_ptr<LogCache> cache(
      new LogCache(std::move(conf_state), std::move(want_snapshot)));
  cache->hard_state_ = log.hard_state();
  cache->start_index_ = log.FirstIndex() - 1;
  RAFTKV_RETURN_IF_ERROR(log.Term(cache->start_index_, &cache->start_term_));
  for (uint64_t next = log.FirstIndex(); next <= log.LastIndex();) {
    std::vector<raft::Entry> batch;
    RAFTKV_RETURN_IF_ERROR(
        log.Entries(next, log.LastIndex() + 1, 16 << 20, &batch));
    CHECK(!batch.empty());
    next = batch.back().index() + 1;
    cache->Append(
        std::make_shared<const std::vector<raft::Entry>>(std::move(batch)));
  }
  if (conf_index < cache->start_index_ || conf_index > cache->LastIndex()) {
    return Status::Corruption(
        log.dir() + ": the membership is recorded as of index " +
        std::to_string(conf_index) + ", outside the log (" +
        std::to_string(cache->start_index_) + ", " +
        std::to_string(cache->LastIndex()) + "]");
  }
  cache->conf_index_ = conf_index;
  return cache;
}

LogCache::LogCache(raft::ConfState conf_state,
                   std::function<void()> want_snapshot)
    : conf_state_(std::move(conf_state)),
      want_snapshot_(std::move(want_snapshot)) {}

Status LogCache::InitialState(raft::HardState* hard_state,
                              raft::ConfState* conf_state) const {
  *hard_state = hard_state_;
  *conf_state = conf_state_;
  return Status::OK();
}

Status LogCache::Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                         std::vector<raft::Entry>* out) const {
  if (lo <= start_index_) return Status::Compacted("entries below first index");
  CHECK_LE(hi, LastIndex() + 1) << "entries beyond the last index";
  const uint64_t begin = EndOf(lo - 1);
  for (uint64_t i = lo; i < hi; ++i) {
    if (i > lo && EndOf(i) - begin > max_bytes) break;
    out->push_back(At(i));
  }
  return Status::OK();
}

Status LogCache::Term(uint64_t index, uint64_t* term) const {
  if (index < start_index_) return Status::Compacted("term below first index");
  if (index > LastIndex()) return Status::Unavailable("term beyond last index");
  *term = index == start_index_ ? start_term_ : At(index).term();
  return Status::OK();
}

uint64_t LogCache::ConfStateIndex() const { return conf_index_; }

uint64_t LogCache::FirstIndex() const { return start_index_ + 1; }

uint64_t LogCache::LastIndex() const { return start_index_ + entries_.size(); }

Status LogCache::GetSnapshot(raft::Snapshot* snapshot) const {
  // The point must cover everything the log no longer holds.
  if (point_ == nullptr || point_->index() + 1 < FirstIndex()) {
    if (want_snapshot_) want_snapshot_();
    return Status::Unavailable("a snapshot point is being made");
  }
  snapshot->Clear();
  raft::SnapshotMetadata* meta = snapshot->mutable_metadata();
  meta->set_index(point_->index());
  meta->set_term(point_->term());
  *meta->mutable_conf_state() = point_->conf_state();
  return Status::OK();
}

uint64_t LogCache::bytes() const {
  return ends_.empty() ? 0 : ends_.back() - start_offset_;
}

uint64_t LogCache::BytesAfter(uint64_t index) const {
  if (index <= start_index_) return bytes();
  if (index >= LastIndex()) return 0;
  return ends_.back() - EndOf(index);
}

void LogCache::TruncateAfter(uint64_t index) {
  if (LastIndex() <= index) return;
  const size_t keep = index - start_index_;
  entries_.resize(keep);
  ends_.resize(keep);
  while (!batches_.empty() && batches_.back().first > index) {
    batches_.pop_back();
  }
  if (!batches_.empty()) {
    batches_.back().last = std::min(batches_.back().last, index);
  }
}

void LogCache::Append(EntryBatch entries) {
  if (entries == nullptr || entries->empty()) return;
  uint64_t first = 0;
  for (const raft::Entry& e : *entries) {
    if (e.index() <= start_index_) continue;  // compacted meanwhile
    CHECK_LE(e.index(), LastIndex() + 1) << "gap in appended entries";
    if (first == 0) {
      first = e.index();
      TruncateAfter(first - 1);  // a conflicting suffix
    }
    const uint64_t begin = ends_.empty() ? start_offset_ : ends_.back();
    ends_.push_back(begin + e.ByteSizeLong());
    entries_.push_back(&e);
  }
  if (first == 0) return;
  batches_.push_back(HeldBatch{std::move(entries), first, LastIndex()});
}

void LogCache::SetHardState(const raft::HardState& hard_state) {
  hard_state_ = hard_state;
}

std::vector<EntryBatch> LogCache::ResetToSnapshot(
    const raft::SnapshotMetadata& meta) {
  std::vector<EntryBatch> released;
  released.reserve(batches_.size());
  for (HeldBatch& held : batches_) released.push_back(std::move(held.batch));
  batches_.clear();
  entries_.clear();
  ends_.clear();
  start_offset_ = 0;
  start_index_ = meta.index();
  start_term_ = meta.term();
  if (hard_state_.commit() < meta.index()) hard_state_.set_commit(meta.index());
  return released;
}

std::vector<EntryBatch> LogCache::Compact(uint64_t index) {
  std::vector<EntryBatch> released;
  if (index <= start_index_) return released;
  CHECK_LE(index, LastIndex()) << "compacting beyond the last index";
  const size_t dropped = index - start_index_;
  start_term_ = At(index).term();
  start_offset_ = EndOf(index);
  start_index_ = index;
  entries_.erase(entries_.begin(), entries_.begin() + dropped);
  ends_.erase(ends_.begin(), ends_.begin() + dropped);
  while (!batches_.empty() && batches_.front().last <= index) {
    released.push_back(std::move(batches_.front().batch));
    batches_.pop_front();
  }
  return released;
}

uint64_t LogCache::CompactionPoint(uint64_t upto, uint64_t keep_entries,
                                   uint64_t keep_bytes) const {
  upto = std::min(upto, LastIndex());
  if (upto <= start_index_) return upto;
  // Keep at most keep_entries entries at or below `upto`...
  uint64_t index = upto - std::min(keep_entries, upto - start_index_);
  // ...and, of those, only what fits in keep_bytes: the first index whose
  // following entries through `upto` fit (ends_ only grows).
  const uint64_t end = EndOf(upto);
  if (end - EndOf(index) <= keep_bytes) return index;
  uint64_t lo = index, hi = upto;  // end - EndOf(hi) == 0 fits
  while (hi - lo > 1) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (end - EndOf(mid) <= keep_bytes) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return hi;
}

void LogCache::set_snapshot_point(
    std::shared_ptr<const storage::SnapshotSource> point) {
  point_ = std::move(point);
}

}  // namespace raftkv::server
