// RaftLog: stable entries (Storage) + unstable tail, commit and applied
// bookkeeping. Never writes to Storage and never sends anything.
#include "raft/log.h"

#include <glog/logging.h>

#include <algorithm>
#include <sstream>

namespace raftkv::raft {
namespace {

// Keeps a prefix of `entries` whose total size is within max_bytes, but
// always at least one entry.
void LimitSize(std::vector<Entry>* entries, uint64_t max_bytes) {
  uint64_t size = 0;
  for (size_t i = 0; i < entries->size(); ++i) {
    size += (*entries)[i].ByteSizeLong();
    if (i > 0 && size > max_bytes) {
      entries->resize(i);
      return;
    }
  }
}

}  // namespace

RaftLog::RaftLog(const Storage* storage, uint64_t max_committed_size_per_ready)
    : storage_(storage),
      max_committed_size_per_ready_(max_committed_size_per_ready) {
  CHECK(storage_ != nullptr);
  unstable_offset_ = storage_->LastIndex() + 1;
  in_progress_ = unstable_offset_ - 1;
  committed_ = storage_->FirstIndex() - 1;
  applying_ = applied_ = committed_;
}

uint64_t RaftLog::PersistedLastIndex() const {
  return std::min(storage_->LastIndex(), unstable_offset_ - 1);
}

uint64_t RaftLog::FirstIndex() const {
  if (unstable_snapshot_) return unstable_snapshot_->metadata().index() + 1;
  return storage_->FirstIndex();
}

uint64_t RaftLog::LastIndex() const {
  if (!unstable_.empty()) return unstable_offset_ + unstable_.size() - 1;
  if (unstable_snapshot_) return unstable_snapshot_->metadata().index();
  return storage_->LastIndex();
}

uint64_t RaftLog::LastTerm() const {
  uint64_t term = 0;
  Status s = Term(LastIndex(), &term);
  CHECK(s.ok()) << "term of the last entry is unavailable: " << s.ToString();
  return term;
}

Status RaftLog::Term(uint64_t index, uint64_t* term) const {
  const uint64_t dummy = FirstIndex() - 1;
  if (index < dummy) return Status::Compacted("index below first index");
  if (index > LastIndex()) return Status::Unavailable("index beyond log");
  if (unstable_snapshot_ && index == unstable_snapshot_->metadata().index()) {
    *term = unstable_snapshot_->metadata().term();
    return Status::OK();
  }
  if (index >= unstable_offset_ &&
      index - unstable_offset_ < unstable_.size()) {
    *term = unstable_[index - unstable_offset_].term();
    return Status::OK();
  }
  return storage_->Term(index, term);
}

uint64_t RaftLog::TermOrZero(uint64_t index) const {
  uint64_t term = 0;
  return Term(index, &term).ok() ? term : 0;
}

bool RaftLog::MatchTerm(uint64_t index, uint64_t term) const {
  uint64_t t = 0;
  return Term(index, &t).ok() && t == term;
}

bool RaftLog::IsUpToDate(uint64_t last_index, uint64_t last_term) const {
  const uint64_t our_term = LastTerm();
  return last_term > our_term ||
         (last_term == our_term && last_index >= LastIndex());
}

std::optional<uint64_t> RaftLog::MaybeAppend(
    uint64_t index, uint64_t log_term, uint64_t committed,
    const std::vector<Entry>& entries) {
  if (!MatchTerm(index, log_term)) return std::nullopt;
  const uint64_t last_new = index + entries.size();
  const uint64_t conflict = FindConflict(entries);
  if (conflict != 0) {
    CHECK_GT(conflict, committed_)
        << "entry " << conflict << " conflicts with a committed entry";
    std::vector<Entry> suffix(entries.begin() + (conflict - index - 1),
                              entries.end());
    Append(suffix);
  }
  CommitTo(std::min(committed, last_new));
  return last_new;
}

uint64_t RaftLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return LastIndex();
  CHECK_GE(entries.front().index() - 1, committed_)
      << "appending would overwrite committed entries";
  TruncateAndAppendUnstable(entries);
  return LastIndex();
}

void RaftLog::TruncateAndAppendUnstable(const std::vector<Entry>& entries) {
  const uint64_t after = entries.front().index();
  // Entries from `after` on that were handed out are replaced: hand out the
  // new ones (the application's FIFO writes put them after the old ones).
  in_progress_ = std::min(in_progress_, after - 1);
  if (after == unstable_offset_ + unstable_.size()) {
    unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  } else if (after <= unstable_offset_) {
    // Replaces the whole unstable tail (and the stable entries from `after`
    // on, which the application overwrites when it appends these).
    unstable_offset_ = after;
    unstable_ = entries;
  } else {
    unstable_.resize(after - unstable_offset_);
    unstable_.insert(unstable_.end(), entries.begin(), entries.end());
  }
}

uint64_t RaftLog::FindConflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!MatchTerm(e.index(), e.term())) return e.index();
  }
  return 0;
}

std::pair<uint64_t, uint64_t> RaftLog::FindConflictByTerm(uint64_t index,
                                                          uint64_t term) const {
  if (index > LastIndex()) return {index, 0};
  while (true) {
    uint64_t t = 0;
    if (!Term(index, &t).ok()) return {index, 0};
    if (t <= term || index == 0) return {index, t};
    --index;
  }
}

bool RaftLog::MaybeCommit(uint64_t index, uint64_t term) {
  // Only entries of the leader's current term are committed by counting
  // replicas (Raft paper §5.4.2, Figure 8).
  if (index > committed_ && TermOrZero(index) == term) {
    CommitTo(index);
    return true;
  }
  return false;
}

void RaftLog::CommitTo(uint64_t index) {
  if (index <= committed_) return;
  CHECK_LE(index, LastIndex()) << "commit index beyond the log; is the log "
                                  "corrupt, truncated or lost?";
  committed_ = index;
}

void RaftLog::AppliedTo(uint64_t index) {
  if (index <= applied_) return;  // a late report, or after a snapshot
  CHECK_LE(index, committed_) << "applied beyond the commit index";
  applied_ = index;
  applying_ = std::max(applying_, index);
  ReleaseApplyingTo(index);
}

void RaftLog::ReleaseApplyingTo(uint64_t index) {
  while (!applying_batches_.empty() &&
         applying_batches_.front().first <= index) {
    applying_bytes_ -= applying_batches_.front().second;
    applying_batches_.pop_front();
  }
}

Status RaftLog::Slice(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      std::vector<Entry>* out) const {
  CHECK_LE(lo, hi);
  if (lo == hi) return Status::OK();
  if (lo < FirstIndex()) return Status::Compacted("slice below first index");
  CHECK_LE(hi, LastIndex() + 1) << "slice beyond the log";
  std::vector<Entry> result;
  if (lo < unstable_offset_) {
    RAFTKV_RETURN_IF_ERROR(storage_->Entries(lo, std::min(hi, unstable_offset_),
                                             max_bytes, &result));
    // Storage stopped early because of the size limit.
    if (result.size() < std::min(hi, unstable_offset_) - lo) {
      out->insert(out->end(), result.begin(), result.end());
      return Status::OK();
    }
  }
  if (hi > unstable_offset_) {
    const uint64_t from = std::max(lo, unstable_offset_);
    result.insert(result.end(), unstable_.begin() + (from - unstable_offset_),
                  unstable_.begin() + (hi - unstable_offset_));
  }
  LimitSize(&result, max_bytes);
  out->insert(out->end(), result.begin(), result.end());
  return Status::OK();
}

Status RaftLog::EntriesFrom(uint64_t lo, uint64_t max_bytes,
                            std::vector<Entry>* out) const {
  if (lo > LastIndex()) return Status::OK();
  return Slice(lo, LastIndex() + 1, max_bytes, out);
}

bool RaftLog::HasEntriesToPersist() const {
  return !unstable_.empty() &&
         in_progress_ < unstable_offset_ + unstable_.size() - 1;
}

std::vector<Entry> RaftLog::EntriesToPersist() const {
  if (!HasEntriesToPersist()) return {};
  const uint64_t from = std::max(in_progress_ + 1, unstable_offset_);
  return std::vector<Entry>(unstable_.begin() + (from - unstable_offset_),
                            unstable_.end());
}

bool RaftLog::HasSnapshotToPersist() const {
  return unstable_snapshot_.has_value() && !snapshot_in_progress_;
}

uint64_t RaftLog::MaxAppliableIndex() const {
  // Only what is durable locally: until the snapshot is installed nothing
  // after it is, and unstable entries are not yet.
  if (unstable_snapshot_) return applying_;
  return std::min(committed_, unstable_offset_ - 1);
}

bool RaftLog::HasNextCommittedEntries() const {
  if (applying_bytes_ >= max_committed_size_per_ready_) return false;
  return MaxAppliableIndex() + 1 > std::max(applying_ + 1, FirstIndex());
}

std::vector<Entry> RaftLog::NextCommittedEntries() const {
  std::vector<Entry> entries;
  if (applying_bytes_ >= max_committed_size_per_ready_) return entries;
  const uint64_t from = std::max(applying_ + 1, FirstIndex());
  const uint64_t to = MaxAppliableIndex();
  if (to + 1 > from) {
    Status s = Slice(from, to + 1,
                     max_committed_size_per_ready_ - applying_bytes_, &entries);
    CHECK(s.ok()) << "committed entries unavailable: " << s.ToString();
  }
  return entries;
}

void RaftLog::AcceptEntriesTo(uint64_t index) {
  in_progress_ = std::max(in_progress_, index);
}

void RaftLog::AcceptSnapshot() {
  if (!unstable_snapshot_) return;
  snapshot_in_progress_ = true;
  // Installing the snapshot replaces the state machine: nothing at or below
  // its index is handed out for applying any more.
  applying_ = std::max(applying_, unstable_snapshot_->metadata().index());
}

void RaftLog::AcceptApplying(const std::vector<Entry>& entries) {
  if (entries.empty() || entries.back().index() <= applying_) return;
  uint64_t bytes = 0;
  for (const Entry& e : entries) bytes += e.ByteSizeLong();
  applying_ = entries.back().index();
  applying_batches_.emplace_back(applying_, bytes);
  applying_bytes_ += bytes;
}

void RaftLog::StableTo(uint64_t index, uint64_t term) {
  if (index < unstable_offset_ ||
      index - unstable_offset_ >= unstable_.size()) {
    return;
  }
  // Only if the entry persisted is still the one we hold (it may have been
  // replaced by a new leader's entry in the meantime).
  if (unstable_[index - unstable_offset_].term() != term) return;
  unstable_.erase(unstable_.begin(),
                  unstable_.begin() + (index + 1 - unstable_offset_));
  unstable_offset_ = index + 1;
  in_progress_ = std::max(in_progress_, index);
}

void RaftLog::StableSnapshotTo(uint64_t index) {
  if (unstable_snapshot_ && unstable_snapshot_->metadata().index() == index) {
    unstable_snapshot_.reset();
    snapshot_in_progress_ = false;
    applying_ = std::max(applying_, index);
    applied_ = std::max(applied_, index);
    ReleaseApplyingTo(index);
  }
}

void RaftLog::Restore(const Snapshot& snapshot) {
  LOG(INFO) << "log [" << Describe() << "] restores snapshot at index "
            << snapshot.metadata().index() << " term "
            << snapshot.metadata().term();
  committed_ = snapshot.metadata().index();
  unstable_.clear();
  unstable_offset_ = snapshot.metadata().index() + 1;
  in_progress_ = snapshot.metadata().index();
  unstable_snapshot_ = snapshot;
  snapshot_in_progress_ = false;
}

Status RaftLog::GetSnapshot(Snapshot* snapshot) const {
  if (unstable_snapshot_) {
    *snapshot = *unstable_snapshot_;
    return Status::OK();
  }
  return storage_->GetSnapshot(snapshot);
}

std::string RaftLog::Describe() const {
  std::ostringstream os;
  os << "first=" << FirstIndex() << " last=" << LastIndex()
     << " committed=" << committed_ << " applying=" << applying_
     << " applied=" << applied_ << " unstable_offset=" << unstable_offset_
     << " unstable=" << unstable_.size();
  return os.str();
}

}  // namespace raftkv::raft
