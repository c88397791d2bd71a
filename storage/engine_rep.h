// Engine::Rep: the RocksDB handles behind an Engine, shared by the .cc
// files of storage/ only. Must never be included outside storage/ (it pulls
// in the RocksDB headers).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "storage/engine.h"

namespace raftkv::storage {

// Converts a RocksDB status into ours: "<dir>: <what>: <cause>".
Status FromRocks(const rocksdb::Status& status, const std::string& dir,
                 std::string_view what);

struct Engine::Rep {
  ~Rep();

  // Writes `batch` atomically (fsync'd first when `sync`). After the first
  // failure, returns that failure without writing. `what` names the write
  // in error messages.
  Status Write(rocksdb::WriteBatch* batch, bool sync, std::string_view what);
  Status Error(const rocksdb::Status& status, std::string_view what) const {
    return FromRocks(status, dir, what);
  }

  std::string dir;
  EngineOptions options;
  std::shared_ptr<rocksdb::Cache> cache;  // blocks and charged memtables
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // owned; freed first
  rocksdb::ColumnFamilyHandle* default_cf = nullptr;
  rocksdb::ColumnFamilyHandle* raft_log = nullptr;
  rocksdb::ColumnFamilyHandle* raft_meta = nullptr;
  rocksdb::ColumnFamilyHandle* kv = nullptr;
  rocksdb::ColumnFamilyHandle* kv_sessions = nullptr;
  rocksdb::ColumnFamilyHandle* kv_meta = nullptr;
  rocksdb::ColumnFamilyHandle* kv_history = nullptr;
  rocksdb::ColumnFamilyHandle* kv_leases = nullptr;
  // The compacted revision of the history, published by the state machine
  // before the batch that compacts is written (storage/history.h).
  std::atomic<int64_t> compacted_revision{0};
  // The first failed write; guarded because the log writer and the applier
  // write from their own threads.
  mutable std::mutex write_error_mu;
  Status write_error;
};

// Options for SST files written outside the engine and ingested into the
// column family `name` later (a staged snapshot): the engine's own table
// format (partitioned index and bloom filters, checksums, compression), so
// an ingested file reads and caches like one the engine wrote itself.
rocksdb::Options SstFileOptions(const std::string& name);

// Every WriteBatch of storage/ carries 8 bytes of per-key protection, so a
// batch damaged in memory before it reaches the WAL is refused.
inline constexpr size_t kBatchProtectionBytes = 8;

inline rocksdb::WriteBatch NewWriteBatch() {
  return rocksdb::WriteBatch(0, 0, kBatchProtectionBytes, 0);
}

}  // namespace raftkv::storage
