// SessionTable: the in-memory index of the client sessions stored in the
// "kv_sessions" column family (Raft dissertation §6.3), and the writes that
// keep it there. Every change is written through a WriteView, in the same
// batch as the command it belongs to; the writes that only the batch's
// final state needs (a session's header, its acknowledged results) are
// made once per batch, by Flush: a client with many commands in one batch
// would otherwise rewrite its header and delete a result for every one of
// them (at 256 clients, 3 of every 4 records an apply wrote). Internal to
// storage/.
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
#include <vector>

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
  void Register(uint64_t client_id, uint64_t now_ms, uint64_t max_sessions);
  // Removes every session idle for longer than `expiry_ms` at `now_ms`.
  void ExpireIdle(uint64_t now_ms, uint64_t expiry_ms);
  // Records activity of an existing session and forgets its results below
  // `first_outstanding` (which never moves backwards). Written by Flush.
  void Touch(uint64_t client_id, uint64_t now_ms, uint64_t first_outstanding);
  // Reads the remembered result of (client_id, sequence).
  Status Lookup(uint64_t client_id, uint64_t sequence, WriteView* view,
                kv::CommandResult* result) const;
  void Remember(uint64_t client_id, uint64_t sequence,
                const kv::CommandResult& result, WriteView* view);
  // Writes what Touch and the removals changed since the last Flush: the
  // header of each session touched, one range deletion of the results each
  // has acknowledged (point deletions for a few), one of each removed
  // session's records. Call once, after
  // the batch's last read through `view` (the range deletions are not visible
  // to reads through it).
  void Flush(WriteView* view);

 private:
  void WriteHeader(uint64_t client_id, const Session& session,
                   WriteView* view) const;
  // Forgets the session; Flush deletes its records.
  void Remove(uint64_t client_id);

  std::string last_loaded_key_;  // Load(): the previous record's key
  std::map<uint64_t, Session> sessions_;
  std::set<std::pair<uint64_t, uint64_t>> by_activity_;  // (ms, client id)
  // Since the last Flush: sessions touched (their header is stale on
  // disk), those whose first_outstanding moved (results below it are still
  // on disk), and those removed (all their records are).
  std::set<uint64_t> touched_;
  std::map<uint64_t, std::vector<uint64_t>> acknowledged_;  // ascending
  std::set<uint64_t> removed_;
};

}  // namespace raftkv::storage
