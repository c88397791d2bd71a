// SessionTable: the in-memory index of the client sessions stored in the
// "kv_sessions" column family (Raft dissertation §6.3), and the writes that
// keep it there. Every change is written through a WriteView, in the same
// batch as the command it belongs to. Internal to storage/.
//
// Must never: decide anything from the wall clock (only from the log time
// it is given), iterate in an order that differs between nodes, or keep a
// result the client has acknowledged.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "client/kv.pb.h"
#include "storage/write_view.h"

namespace raftkv::storage {

class SessionTable {
 public:
  struct Session {
    uint64_t last_active_ms = 0;
    uint64_t first_outstanding = 0;
    std::set<uint64_t> sequences;  // remembered results
  };

  // Adds one stored record (header or result) while loading; records come
  // in key order, so a header precedes its results. Corruption for a record
  // that cannot have been stored: out of key order or repeated (possible
  // only in a snapshot image), or a client id above `applied_index` (a
  // client id is the index of its registration).
  Status Load(std::string_view key, std::string_view value,
              uint64_t applied_index, const std::string& dir);

  size_t size() const { return sessions_.size(); }
  const Session* Find(uint64_t client_id) const;

  // Opens session `client_id` at log time `now_ms`, first removing the
  // least recently active sessions so that at most `max_sessions` remain.
  void Register(uint64_t client_id, uint64_t now_ms, uint64_t max_sessions,
                WriteView* view);
  // Removes every session idle for longer than `expiry_ms` at `now_ms`.
  void ExpireIdle(uint64_t now_ms, uint64_t expiry_ms, WriteView* view);
  // Records activity of an existing session and forgets its results below
  // `first_outstanding` (which never moves backwards).
  void Touch(uint64_t client_id, uint64_t now_ms, uint64_t first_outstanding,
             WriteView* view);
  // Reads the remembered result of (client_id, sequence).
  Status Lookup(uint64_t client_id, uint64_t sequence, WriteView* view,
                kv::CommandResult* result) const;
  void Remember(uint64_t client_id, uint64_t sequence,
                const kv::CommandResult& result, WriteView* view);

 private:
  void WriteHeader(uint64_t client_id, const Session& session,
                   WriteView* view) const;
  void Remove(uint64_t client_id, WriteView* view);

  std::string last_loaded_key_;  // Load(): the previous record's key
  std::map<uint64_t, Session> sessions_;
  std::set<std::pair<uint64_t, uint64_t>> by_activity_;  // (ms, client id)
};

}  // namespace raftkv::storage
