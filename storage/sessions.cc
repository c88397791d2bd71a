// SessionTable: exactly-once bookkeeping, mirrored in the kv_sessions
// column family. Must never expire or evict by anything but log time and
// client id, so every replica removes the same sessions at the same entry.
#include "storage/sessions.h"

#include "storage/coding.h"
#include "storage/storage.pb.h"

namespace raftkv::storage {

namespace {
// Acknowledged results of one session deleted one by one, at most.
constexpr size_t kMaxPointDeletions = 4;
}  // namespace

Status SessionTable::Load(std::string_view key, std::string_view value,
                          uint64_t applied_index, const std::string& dir) {
  if (!last_loaded_key_.empty() && key <= last_loaded_key_) {
    return Status::Corruption(dir +
                              ": kv_sessions records out of key order or "
                              "repeated");
  }
  last_loaded_key_.assign(key.data(), key.size());
  if (key.size() == 8) {
    if (GetBigEndian64(key.data()) > applied_index) {
      return Status::Corruption(dir + ": session of client " +
                                std::to_string(GetBigEndian64(key.data())) +
                                " registered after the applied index " +
                                std::to_string(applied_index));
    }
    SessionHeader header;
    if (!header.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
      return Status::Corruption(dir + ": session header of client " +
                                std::to_string(GetBigEndian64(key.data())) +
                                " does not parse");
    }
    const uint64_t client_id = GetBigEndian64(key.data());
    Session& s = sessions_[client_id];
    s.last_active_ms = header.last_active_ms();
    s.first_outstanding = header.first_outstanding();
    by_activity_.emplace(s.last_active_ms, client_id);
    return Status::OK();
  }
  if (key.size() == 16) {
    const uint64_t client_id = GetBigEndian64(key.data());
    auto it = sessions_.find(client_id);
    if (it == sessions_.end()) {
      return Status::Corruption(dir + ": remembered result of client " +
                                std::to_string(client_id) +
                                " without a session header");
    }
    it->second.sequences.insert(GetBigEndian64(key.data() + 8));
    return Status::OK();
  }
  return Status::Corruption(dir + ": kv_sessions key of " +
                            std::to_string(key.size()) +
                            " bytes (expected 8 or 16)");
}

const SessionTable::Session* SessionTable::Find(uint64_t client_id) const {
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? nullptr : &it->second;
}

void SessionTable::WriteHeader(uint64_t client_id, const Session& session,
                               WriteView* view) const {
  SessionHeader header;
  header.set_last_active_ms(session.last_active_ms);
  header.set_first_outstanding(session.first_outstanding);
  std::string value;
  CHECK(header.SerializeToString(&value));
  view->Put(view->rep()->kv_sessions, SessionKey(client_id), value);
}

void SessionTable::Remove(uint64_t client_id) {
  auto it = sessions_.find(client_id);
  CHECK(it != sessions_.end());
  by_activity_.erase({it->second.last_active_ms, client_id});
  sessions_.erase(it);
  touched_.erase(client_id);
  acknowledged_.erase(client_id);
  removed_.insert(client_id);
}

void SessionTable::Register(uint64_t client_id, uint64_t now_ms,
                            uint64_t max_sessions) {
  CHECK(sessions_.count(client_id) == 0) << "client id reused";
  while (!sessions_.empty() && sessions_.size() >= max_sessions) {
    Remove(by_activity_.begin()->second);
  }
  Session& s = sessions_[client_id];
  s.last_active_ms = now_ms;
  by_activity_.emplace(now_ms, client_id);
  touched_.insert(client_id);  // its header: Flush
}

void SessionTable::ExpireIdle(uint64_t now_ms, uint64_t expiry_ms) {
  while (!by_activity_.empty()) {
    const auto [last_active_ms, client_id] = *by_activity_.begin();
    if (now_ms <= last_active_ms || now_ms - last_active_ms <= expiry_ms) {
      break;
    }
    Remove(client_id);
  }
}

void SessionTable::Touch(uint64_t client_id, uint64_t now_ms,
                         uint64_t first_outstanding) {
  auto it = sessions_.find(client_id);
  CHECK(it != sessions_.end());
  Session& s = it->second;
  if (now_ms > s.last_active_ms) {
    by_activity_.erase({s.last_active_ms, client_id});
    s.last_active_ms = now_ms;
    by_activity_.emplace(now_ms, client_id);
  }
  if (first_outstanding > s.first_outstanding) {
    s.first_outstanding = first_outstanding;
    auto end = s.sequences.lower_bound(first_outstanding);
    if (s.sequences.begin() != end) {
      std::vector<uint64_t>& acked = acknowledged_[client_id];
      acked.insert(acked.end(), s.sequences.begin(), end);
      s.sequences.erase(s.sequences.begin(), end);
    }
  }
  touched_.insert(client_id);
}

void SessionTable::Flush(WriteView* view) {
  // Straight into the batch, after everything the index has seen: the
  // index (WriteBatchWithIndex) cannot hold range deletions, and no read
  // follows.
  rocksdb::WriteBatch* batch = view->batch();
  rocksdb::ColumnFamilyHandle* cf = view->rep()->kv_sessions;
  for (uint64_t client_id : removed_) {
    // The header (8 bytes) and every result (16) of the client sort
    // between its id and its id followed by more than 8 bytes of 0xff.
    const std::string first = SessionKey(client_id);
    CHECK(batch->DeleteRange(cf, first, first + std::string(9, '\xff')).ok());
  }
  for (const auto& [client_id, sequences] : acknowledged_) {
    // A few results go as point deletions (as cheap to write, and nothing
    // for reads to step over); more as one range.
    if (sequences.size() <= kMaxPointDeletions) {
      for (uint64_t seq : sequences) {
        CHECK(batch->Delete(cf, SessionResultKey(client_id, seq)).ok());
      }
      continue;
    }
    CHECK(batch
              ->DeleteRange(cf, SessionResultKey(client_id, sequences.front()),
                            SessionResultKey(client_id, sequences.back() + 1))
              .ok());
  }
  for (uint64_t client_id : touched_) {
    WriteHeader(client_id, sessions_.at(client_id), view);
  }
  removed_.clear();
  acknowledged_.clear();
  touched_.clear();
}

Status SessionTable::Lookup(uint64_t client_id, uint64_t sequence,
                            WriteView* view, kv::CommandResult* result) const {
  std::string value;
  bool found = false;
  RAFTKV_RETURN_IF_ERROR(view->Get(view->rep()->kv_sessions,
                                   SessionResultKey(client_id, sequence),
                                   &value, &found));
  const std::string what = "remembered result of client " +
                           std::to_string(client_id) + " sequence " +
                           std::to_string(sequence);
  if (!found) {
    return Status::Corruption(view->rep()->dir + ": " + what + " is missing");
  }
  if (!result->ParseFromString(value)) {
    return Status::Corruption(view->rep()->dir + ": " + what +
                              " does not parse");
  }
  return Status::OK();
}

void SessionTable::Remember(uint64_t client_id, uint64_t sequence,
                            const kv::CommandResult& result, WriteView* view) {
  auto it = sessions_.find(client_id);
  CHECK(it != sessions_.end());
  it->second.sequences.insert(sequence);
  std::string value;
  CHECK(result.SerializeToString(&value));
  view->Put(view->rep()->kv_sessions, SessionResultKey(client_id, sequence),
            value);
}

}  // namespace raftkv::storage
