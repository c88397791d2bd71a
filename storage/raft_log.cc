// RaftLog: raft::Storage over RocksDB, with MemoryStorage's semantics.
// Every mutation is staged into one WriteBatch plus a copy of the cached
// state; the cache is replaced only after the batch is written, so a failed
// write leaves memory and disk agreeing. Must never read past the cached
// last index or serve a record it could not parse.
#include "storage/raft_log.h"

#include <rocksdb/iterator.h>

#include <limits>

#include "storage/coding.h"
#include "storage/engine_rep.h"

namespace raftkv::storage {
namespace {

constexpr char kHardStateKey[] = "hard_state";
constexpr char kLogStartKey[] = "log_start";
constexpr char kSnapshotMetaKey[] = "snapshot_meta";
constexpr char kSnapshotDataKey[] = "snapshot_data";
constexpr char kClusterIdKey[] = "cluster_id";  // 8 bytes, big-endian

// Upper bound of every 8-byte log key.
std::string LogKeyEnd() { return std::string(9, '\xff'); }

std::string Serialize(const google::protobuf::MessageLite& message) {
  std::string out;
  CHECK(message.SerializeToString(&out));
  return out;
}

// Reads an optional record of raft_meta into `message` (left empty when
// absent).
Status ReadMeta(Engine::Rep* rep, const char* key,
                google::protobuf::MessageLite* message) {
  std::string value;
  rocksdb::Status s =
      rep->db->Get(rocksdb::ReadOptions(), rep->raft_meta, key, &value);
  if (s.IsNotFound()) return Status::OK();
  if (!s.ok()) return rep->Error(s, std::string("read raft_meta/") + key);
  if (!message->ParseFromString(value)) {
    return Status::Corruption(rep->dir + ": raft_meta/" + key +
                              " record does not parse");
  }
  return Status::OK();
}

}  // namespace

struct RaftLog::State {
  raft::HardState hard_state;
  raft::SnapshotMetadata snapshot;
  // The entry just before FirstIndex(): compacted or covered by a snapshot.
  uint64_t start_index = 0;
  uint64_t start_term = 0;
  uint64_t last_index = 0;
  uint64_t last_term = 0;
  uint64_t cluster_id = 0;
};

StatusOr<std::unique_ptr<RaftLog>> RaftLog::Open(Engine* engine) {
  Engine::Rep* rep = engine->rep();
  auto state = std::make_unique<State>();
  raft::Entry start;
  RAFTKV_RETURN_IF_ERROR(ReadMeta(rep, kHardStateKey, &state->hard_state));
  RAFTKV_RETURN_IF_ERROR(ReadMeta(rep, kLogStartKey, &start));
  RAFTKV_RETURN_IF_ERROR(ReadMeta(rep, kSnapshotMetaKey, &state->snapshot));
  if (start.index() >= kIndexLimit || state->snapshot.index() >= kIndexLimit) {
    return Status::Corruption(rep->dir +
                              ": log start or snapshot index out of range");
  }
  state->start_index = state->last_index = start.index();
  state->start_term = state->last_term = start.term();
  std::string cluster_id;
  rocksdb::Status got = rep->db->Get(rocksdb::ReadOptions(), rep->raft_meta,
                                     kClusterIdKey, &cluster_id);
  if (got.ok() && cluster_id.size() == 8) {
    state->cluster_id = GetBigEndian64(cluster_id.data());
  } else if (got.ok()) {
    return Status::Corruption(rep->dir + ": raft_meta/" + kClusterIdKey +
                              " is not 8 bytes");
  } else if (!got.IsNotFound()) {
    return rep->Error(got, std::string("read raft_meta/") + kClusterIdKey);
  }

  // The stored keys must be exactly (start_index, last_index].
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;  // a one-off pass over the whole log
  std::unique_ptr<rocksdb::Iterator> it(
      rep->db->NewIterator(scan, rep->raft_log));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t index = 0;
    if (!ParseLogKey(it->key().ToStringView(), &index)) {
      return Status::Corruption(rep->dir + ": raft_log key of " +
                                std::to_string(it->key().size()) +
                                " bytes (expected 8)");
    }
    if (index != state->last_index + 1 || index >= kIndexLimit) {
      return Status::Corruption(
          rep->dir + ": raft log is not contiguous: entry " +
          std::to_string(index) + " follows " +
          std::to_string(state->last_index) + " (log start " +
          std::to_string(state->start_index) + ")");
    }
    state->last_index = index;
  }
  if (!it->status().ok()) return rep->Error(it->status(), "scan raft log");
  auto log = std::unique_ptr<RaftLog>(new RaftLog(engine, std::move(state)));
  State* st = log->state_.get();
  if (st->last_index > st->start_index) {
    raft::Entry last;
    RAFTKV_RETURN_IF_ERROR(log->ReadEntry(st->last_index, &last));
    st->last_term = last.term();
  }
  if (st->hard_state.commit() > st->last_index) {
    return Status::Corruption(rep->dir + ": hard state commit index " +
                              std::to_string(st->hard_state.commit()) +
                              " is beyond the last log index " +
                              std::to_string(st->last_index) +
                              ": committed entries are missing");
  }
  return log;
}

RaftLog::RaftLog(Engine* engine, std::unique_ptr<State> state)
    : engine_(engine), state_(std::move(state)) {}

RaftLog::~RaftLog() = default;

Status RaftLog::InitialState(raft::HardState* hard_state,
                             raft::ConfState* conf_state) const {
  *hard_state = state_->hard_state;
  *conf_state = state_->snapshot.conf_state();
  return Status::OK();
}

Status RaftLog::ReadEntry(uint64_t index, raft::Entry* entry) const {
  Engine::Rep* rep = engine_->rep();
  std::string value;
  rocksdb::Status s = rep->db->Get(rocksdb::ReadOptions(), rep->raft_log,
                                   LogKey(index), &value);
  if (s.IsNotFound()) {
    return Status::Corruption(rep->dir + ": raft log entry " +
                              std::to_string(index) + " is missing");
  }
  if (!s.ok()) {
    return rep->Error(s, "read raft log entry " + std::to_string(index));
  }
  if (!entry->ParseFromString(value) || entry->index() != index) {
    return Status::Corruption(rep->dir + ": raft log entry " +
                              std::to_string(index) +
                              " does not parse or has the wrong index");
  }
  return Status::OK();
}

Status RaftLog::Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes,
                        std::vector<raft::Entry>* out) const {
  if (lo <= state_->start_index) {
    return Status::Compacted("entries below first index");
  }
  CHECK_LE(hi, state_->last_index + 1) << "entries beyond the last index";
  if (lo >= hi) return Status::OK();
  Engine::Rep* rep = engine_->rep();
  const std::string upper = LogKey(hi);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(
      rep->db->NewIterator(ro, rep->raft_log));
  uint64_t expected = lo;
  uint64_t size = 0;
  for (it->Seek(LogKey(lo)); it->Valid(); it->Next(), ++expected) {
    uint64_t index = 0;
    raft::Entry entry;
    if (!ParseLogKey(it->key().ToStringView(), &index) || index != expected) {
      break;  // reported as missing below
    }
    if (!entry.ParseFromArray(it->value().data(),
                              static_cast<int>(it->value().size())) ||
        entry.index() != index) {
      return Status::Corruption(rep->dir + ": raft log entry " +
                                std::to_string(index) +
                                " does not parse or has the wrong index");
    }
    size += entry.ByteSizeLong();
    if (index > lo && size > max_bytes) return Status::OK();
    out->push_back(std::move(entry));
  }
  if (!it->status().ok()) return rep->Error(it->status(), "read raft log");
  if (expected < hi) {
    return Status::Corruption(rep->dir + ": raft log entry " +
                              std::to_string(expected) + " is missing");
  }
  return Status::OK();
}

Status RaftLog::Term(uint64_t index, uint64_t* term) const {
  if (index < state_->start_index) {
    return Status::Compacted("term below first index");
  }
  if (index > state_->last_index) {
    return Status::Unavailable("term beyond last index");
  }
  if (index == state_->start_index) {
    *term = state_->start_term;
    return Status::OK();
  }
  if (index == state_->last_index) {
    *term = state_->last_term;
    return Status::OK();
  }
  raft::Entry entry;
  RAFTKV_RETURN_IF_ERROR(ReadEntry(index, &entry));
  *term = entry.term();
  return Status::OK();
}

uint64_t RaftLog::FirstIndex() const { return state_->start_index + 1; }

uint64_t RaftLog::LastIndex() const { return state_->last_index; }

Status RaftLog::GetSnapshot(raft::Snapshot* snapshot) const {
  Engine::Rep* rep = engine_->rep();
  snapshot->Clear();
  *snapshot->mutable_metadata() = state_->snapshot;
  if (state_->snapshot.index() == 0) return Status::OK();
  rocksdb::Status s = rep->db->Get(rocksdb::ReadOptions(), rep->raft_meta,
                                   kSnapshotDataKey, snapshot->mutable_data());
  if (s.IsNotFound()) {
    return Status::Corruption(rep->dir + ": snapshot data at index " +
                              std::to_string(state_->snapshot.index()) +
                              " is missing");
  }
  if (!s.ok()) return rep->Error(s, "read snapshot data");
  return Status::OK();
}

bool RaftLog::StageSnapshot(const raft::Snapshot& snapshot,
                            rocksdb::WriteBatch* batch, State* next) const {
  const raft::SnapshotMetadata& meta = snapshot.metadata();
  if (meta.index() <= next->snapshot.index()) return false;
  Engine::Rep* rep = engine_->rep();
  CHECK(batch->DeleteRange(rep->raft_log, LogKey(0), LogKeyEnd()).ok());
  raft::Entry start;
  start.set_index(meta.index());
  start.set_term(meta.term());
  CHECK(batch->Put(rep->raft_meta, kLogStartKey, Serialize(start)).ok());
  CHECK(batch->Put(rep->raft_meta, kSnapshotMetaKey, Serialize(meta)).ok());
  CHECK(batch->Put(rep->raft_meta, kSnapshotDataKey, snapshot.data()).ok());
  next->snapshot = meta;
  next->start_index = next->last_index = meta.index();
  next->start_term = next->last_term = meta.term();
  // A snapshot holds only committed entries; the stored commit index must
  // not lag behind the new log start even if the process dies before the
  // core's next hard state is saved.
  if (next->hard_state.commit() < meta.index()) {
    next->hard_state.set_commit(meta.index());
    CHECK(batch->Put(rep->raft_meta, kHardStateKey, Serialize(next->hard_state))
              .ok());
  }
  return true;
}

void RaftLog::StageEntries(const std::vector<raft::Entry>& entries,
                           rocksdb::WriteBatch* batch, State* next) const {
  if (entries.empty()) return;
  const uint64_t first = next->start_index + 1;
  const uint64_t last_new = entries.back().index();
  if (last_new < first) return;  // all compacted already
  size_t skip = 0;
  if (entries.front().index() < first) skip = first - entries.front().index();
  const uint64_t start = entries[skip].index();
  CHECK_LE(start, next->last_index + 1) << "gap in appended entries";
  Engine::Rep* rep = engine_->rep();
  for (size_t i = skip; i < entries.size(); ++i) {
    CHECK_EQ(entries[i].index(), start + (i - skip))
        << "appended entries are not contiguous";
    CHECK(batch
              ->Put(rep->raft_log, LogKey(entries[i].index()),
                    Serialize(entries[i]))
              .ok());
  }
  if (next->last_index > last_new) {  // drop the conflicting suffix
    CHECK(batch
              ->DeleteRange(rep->raft_log, LogKey(last_new + 1),
                            LogKey(next->last_index + 1))
              .ok());
  }
  next->last_index = last_new;
  next->last_term = entries.back().term();
}

Status RaftLog::Commit(rocksdb::WriteBatch* batch, const State& next, bool sync,
                       const char* what) {
  if (batch->Count() == 0) return Status::OK();
  RAFTKV_RETURN_IF_ERROR(engine_->rep()->Write(batch, sync, what));
  *state_ = next;
  return Status::OK();
}

Status RaftLog::Save(const raft::HardState* hard_state,
                     const raft::Snapshot* snapshot,
                     const std::vector<raft::Entry>& entries, bool sync) {
  rocksdb::WriteBatch batch = NewWriteBatch();
  State next = *state_;
  if (snapshot != nullptr) StageSnapshot(*snapshot, &batch, &next);
  StageEntries(entries, &batch, &next);
  if (hard_state != nullptr) {
    CHECK(batch
              .Put(engine_->rep()->raft_meta, kHardStateKey,
                   Serialize(*hard_state))
              .ok());
    next.hard_state = *hard_state;
  }
  return Commit(&batch, next, sync, "save raft log and hard state");
}

Status RaftLog::SaveAll(const std::vector<Write>& writes, bool sync) {
  rocksdb::WriteBatch batch = NewWriteBatch();
  State next = *state_;
  for (const Write& w : writes) {
    if (w.entries != nullptr) StageEntries(*w.entries, &batch, &next);
    if (w.hard_state != nullptr) {
      CHECK(batch
                .Put(engine_->rep()->raft_meta, kHardStateKey,
                     Serialize(*w.hard_state))
                .ok());
      next.hard_state = *w.hard_state;
    }
  }
  return Commit(&batch, next, sync, "save raft log and hard state");
}

Status RaftLog::Save(const raft::Ready& ready) {
  const raft::HardState* hs = ready.hard_state ? &*ready.hard_state : nullptr;
  const raft::Snapshot* snap = ready.snapshot ? &*ready.snapshot : nullptr;
  return Save(hs, snap, ready.entries, ready.must_sync || snap != nullptr);
}

Status RaftLog::SetHardState(const raft::HardState& hard_state) {
  return Save(&hard_state, nullptr, {}, /*sync=*/true);
}

Status RaftLog::SetConfState(const raft::ConfState& conf_state) {
  rocksdb::WriteBatch batch = NewWriteBatch();
  State next = *state_;
  *next.snapshot.mutable_conf_state() = conf_state;
  CHECK(batch
            .Put(engine_->rep()->raft_meta, kSnapshotMetaKey,
                 Serialize(next.snapshot))
            .ok());
  return Commit(&batch, next, /*sync=*/true, "save membership");
}

uint64_t RaftLog::cluster_id() const { return state_->cluster_id; }

Status RaftLog::SetClusterId(uint64_t cluster_id) {
  if (state_->cluster_id == cluster_id) return Status::OK();
  if (state_->cluster_id != 0) {
    return Status::FailedPrecondition(dir() + " already belongs to cluster " +
                                      std::to_string(state_->cluster_id));
  }
  rocksdb::WriteBatch batch = NewWriteBatch();
  State next = *state_;
  next.cluster_id = cluster_id;
  std::string value;
  PutBigEndian64(&value, cluster_id);
  CHECK(batch.Put(engine_->rep()->raft_meta, kClusterIdKey, value).ok());
  return Commit(&batch, next, /*sync=*/true, "record the cluster id");
}

Status RaftLog::Append(const std::vector<raft::Entry>& entries) {
  return Save(nullptr, nullptr, entries, /*sync=*/true);
}

Status RaftLog::ApplySnapshot(const raft::Snapshot& snapshot, bool* applied) {
  rocksdb::WriteBatch batch = NewWriteBatch();
  State next = *state_;
  const bool newer = StageSnapshot(snapshot, &batch, &next);
  if (applied != nullptr) *applied = false;
  if (!newer) return Status::OK();
  RAFTKV_RETURN_IF_ERROR(
      Commit(&batch, next, /*sync=*/true, "install snapshot in raft log"));
  if (applied != nullptr) *applied = true;
  return Status::OK();
}

Status RaftLog::CreateSnapshot(uint64_t index,
                               const raft::ConfState& conf_state,
                               std::string data) {
  if (index <= state_->snapshot.index()) {
    return Status::FailedPrecondition("snapshot is out of date");
  }
  if (index > state_->last_index) {
    return Status::InvalidArgument("snapshot index beyond last index");
  }
  uint64_t term = 0;
  RAFTKV_RETURN_IF_ERROR(Term(index, &term));
  rocksdb::WriteBatch batch = NewWriteBatch();
  State next = *state_;
  next.snapshot.set_index(index);
  next.snapshot.set_term(term);
  *next.snapshot.mutable_conf_state() = conf_state;
  Engine::Rep* rep = engine_->rep();
  CHECK(batch.Put(rep->raft_meta, kSnapshotMetaKey, Serialize(next.snapshot))
            .ok());
  CHECK(batch.Put(rep->raft_meta, kSnapshotDataKey, data).ok());
  return Commit(&batch, next, /*sync=*/true, "save snapshot");
}

Status RaftLog::Compact(uint64_t compact_index) {
  if (compact_index <= state_->start_index) return Status::OK();
  if (compact_index > state_->last_index) {
    return Status::InvalidArgument("compact index beyond last index");
  }
  uint64_t term = 0;
  RAFTKV_RETURN_IF_ERROR(Term(compact_index, &term));
  rocksdb::WriteBatch batch = NewWriteBatch();
  State next = *state_;
  Engine::Rep* rep = engine_->rep();
  CHECK(batch.DeleteRange(rep->raft_log, LogKey(0), LogKey(compact_index + 1))
            .ok());
  raft::Entry start;
  start.set_index(compact_index);
  start.set_term(term);
  CHECK(batch.Put(rep->raft_meta, kLogStartKey, Serialize(start)).ok());
  next.start_index = compact_index;
  next.start_term = term;
  return Commit(&batch, next, /*sync=*/true, "compact raft log");
}

bool RaftLog::StageSnapshotInstall(const raft::Snapshot& snapshot,
                                   rocksdb::WriteBatch* batch) {
  auto next = std::make_unique<State>(*state_);
  if (!StageSnapshot(snapshot, batch, next.get())) return false;
  staged_ = std::move(next);
  return true;
}

void RaftLog::AdoptStaged() {
  CHECK(staged_ != nullptr);
  *state_ = *staged_;
  staged_.reset();
}

void RaftLog::DiscardStaged() { staged_.reset(); }

const raft::HardState& RaftLog::hard_state() const {
  return state_->hard_state;
}

uint64_t RaftLog::snapshot_index() const { return state_->snapshot.index(); }

uint64_t RaftLog::snapshot_term() const { return state_->snapshot.term(); }

const std::string& RaftLog::dir() const { return engine_->dir(); }

}  // namespace raftkv::storage
