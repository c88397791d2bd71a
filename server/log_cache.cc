// LogCache: the in-memory mirror of the durable Raft log (see log_cache.h).
// Never touches the disk after Load().
#include "server/log_cache.h"

#include <glog/logging.h>

#include "storage/raft_log.h"
#include "storage/snapshot.h"

namespace raftkv::server {

StatusOr<std::unique_ptr<LogCache>> LogCache::Load(
    const storage::RaftLog& log, raft::ConfState conf_state,
    std::function<void()> want_snapshot) {
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
    cache->Append(batch);
  }
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
  uint64_t size = 0;
  for (uint64_t i = lo; i < hi; ++i) {
    const raft::Entry& e = entries_[i - start_index_ - 1];
    size += e.ByteSizeLong();
    if (i > lo && size > max_bytes) break;
    out->push_back(e);
  }
  return Status::OK();
}

Status LogCache::Term(uint64_t index, uint64_t* term) const {
  if (index < start_index_) return Status::Compacted("term below first index");
  if (index > LastIndex()) return Status::Unavailable("term beyond last index");
  *term = index == start_index_ ? start_term_
                                : entries_[index - start_index_ - 1].term();
  return Status::OK();
}

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
  *meta->mutable_conf_state() = conf_state_;
  return Status::OK();
}

uint64_t LogCache::bytes() const {
  return ends_.empty() ? 0 : ends_.back() - start_offset_;
}

uint64_t LogCache::BytesAfter(uint64_t index) const {
  if (index <= start_index_) return bytes();
  if (index >= LastIndex()) return 0;
  return ends_.back() - ends_[index - start_index_ - 1];
}

void LogCache::TruncateAfter(uint64_t index) {
  while (LastIndex() > index) {
    entries_.pop_back();
    ends_.pop_back();
  }
}

void LogCache::Append(const std::vector<raft::Entry>& entries) {
  for (const raft::Entry& e : entries) {
    if (e.index() <= start_index_) continue;  // compacted meanwhile
    CHECK_LE(e.index(), LastIndex() + 1) << "gap in appended entries";
    TruncateAfter(e.index() - 1);  // a conflicting suffix
    const uint64_t begin = ends_.empty() ? start_offset_ : ends_.back();
    ends_.push_back(begin + e.ByteSizeLong());
    entries_.push_back(e);
  }
}

void LogCache::SetHardState(const raft::HardState& hard_state) {
  hard_state_ = hard_state;
}

void LogCache::ResetToSnapshot(const raft::SnapshotMetadata& meta) {
  entries_.clear();
  ends_.clear();
  start_offset_ = 0;
  start_index_ = meta.index();
  start_term_ = meta.term();
  if (hard_state_.commit() < meta.index()) hard_state_.set_commit(meta.index());
}

void LogCache::Compact(uint64_t index) {
  if (index <= start_index_) return;
  CHECK_LE(index, LastIndex()) << "compacting beyond the last index";
  while (start_index_ < index) {
    const raft::Entry& e = entries_.front();
    start_index_ = e.index();
    start_term_ = e.term();
    start_offset_ = ends_.front();
    entries_.pop_front();
    ends_.pop_front();
  }
}

uint64_t LogCache::CompactionPoint(uint64_t upto, uint64_t keep_entries,
                                   uint64_t keep_bytes) const {
  uint64_t index = std::min(upto, LastIndex());
  uint64_t kept = 0, bytes = 0;
  while (index > start_index_ && kept < keep_entries) {
    bytes += entries_[index - start_index_ - 1].ByteSizeLong();
    if (bytes > keep_bytes) break;
    --index;
    ++kept;
  }
  return index;
}

void LogCache::set_snapshot_point(
    std::shared_ptr<const storage::SnapshotSource> point) {
  point_ = std::move(point);
}

}  // namespace raftkv::server
