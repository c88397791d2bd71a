// MemoryStorage: in-memory raft::Storage for tests and the simulator.
#include "raft/memory_storage.h"

#include <glog/logging.h>

namespace raftkv::raft {

MemoryStorage::MemoryStorage() { entries_.emplace_back(); }

Status MemoryStorage::InitialState(HardState* hard_state,
                                   ConfState* conf_state) const {
  *hard_state = hard_state_;
  *conf_state = snapshot_.metadata().conf_state();
  return Status::OK();
}

Status MemoryStorage::Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                              std::vector<Entry>* out) const {
  const uint64_t offset = OffsetIndex();
  if (lo <= offset) return Status::Compacted("entries below first index");
  CHECK_LE(hi, LastIndex() + 1) << "entries beyond the last index";
  uint64_t size = 0;
  for (uint64_t i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - offset];
    size += e.ByteSizeLong();
    if (i > lo && size > max_bytes) break;
    out->push_back(e);
  }
  return Status::OK();
}

Status MemoryStorage::Term(uint64_t index, uint64_t* term) const {
  const uint64_t offset = OffsetIndex();
  if (index < offset) return Status::Compacted("term below first index");
  if (index - offset >= entries_.size()) {
    return Status::Unavailable("term beyond last index");
  }
  *term = entries_[index - offset].term();
  return Status::OK();
}

uint64_t MemoryStorage::FirstIndex() const { return OffsetIndex() + 1; }

uint64_t MemoryStorage::LastIndex() const {
  return OffsetIndex() + entries_.size() - 1;
}

Status MemoryStorage::GetSnapshot(Snapshot* snapshot) const {
  *snapshot = snapshot_;
  return Status::OK();
}

void MemoryStorage::SetHardState(const HardState& hard_state) {
  hard_state_ = hard_state;
}

void MemoryStorage::SetConfState(const ConfState& conf_state) {
  *snapshot_.mutable_metadata()->mutable_conf_state() = conf_state;
}

void MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const uint64_t first = FirstIndex();
  const uint64_t last_new = entries.back().index();
  if (last_new < first) return;  // all compacted already
  size_t skip = 0;
  if (entries.front().index() < first) skip = first - entries.front().index();
  const uint64_t start = entries[skip].index();
  CHECK_LE(start, LastIndex() + 1) << "gap in appended entries";
  entries_.resize(start - OffsetIndex());  // drop the conflicting suffix
  entries_.insert(entries_.end(), entries.begin() + skip, entries.end());
}

bool MemoryStorage::ApplySnapshot(const Snapshot& snapshot) {
  if (snapshot.metadata().index() <= snapshot_.metadata().index()) {
    return false;
  }
  snapshot_ = snapshot;
  entries_.assign(1, Entry());
  entries_[0].set_index(snapshot.metadata().index());
  entries_[0].set_term(snapshot.metadata().term());
  return true;
}

Status MemoryStorage::CreateSnapshot(uint64_t index,
                                     const ConfState& conf_state,
                                     std::string data) {
  if (index <= snapshot_.metadata().index()) {
    return Status::FailedPrecondition("snapshot is out of date");
  }
  if (index > LastIndex()) {
    return Status::InvalidArgument("snapshot index beyond last index");
  }
  if (index < OffsetIndex()) {
    return Status::Compacted("snapshot index below the compacted prefix");
  }
  SnapshotMetadata* meta = snapshot_.mutable_metadata();
  meta->set_index(index);
  meta->set_term(entries_[index - OffsetIndex()].term());
  *meta->mutable_conf_state() = conf_state;
  snapshot_.set_data(std::move(data));
  return Status::OK();
}

Status MemoryStorage::Compact(uint64_t compact_index) {
  const uint64_t offset = OffsetIndex();
  if (compact_index <= offset) return Status::OK();
  if (compact_index > LastIndex()) {
    return Status::InvalidArgument("compact index beyond last index");
  }
  const size_t keep_from = compact_index - offset;
  Entry dummy;
  dummy.set_index(entries_[keep_from].index());
  dummy.set_term(entries_[keep_from].term());
  std::vector<Entry> rest;
  rest.reserve(entries_.size() - keep_from);
  rest.push_back(std::move(dummy));
  rest.insert(rest.end(), entries_.begin() + keep_from + 1, entries_.end());
  entries_.swap(rest);
  return Status::OK();
}

}  // namespace raftkv::raft
