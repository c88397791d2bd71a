// Engine: the node's one RocksDB instance and its data dir. Opens (or
// creates) the database, checks the format version and the column
// families, chooses the RocksDB options (see docs/storage.md), and funnels
// every write through one place so that the first failed write stops all
// later ones: after a failure the node stops serving writes instead of
// continuing from a state that is partly on disk.
//
// Column families (one WriteBatch can span them all, atomically):
//   default     format record ("raftkv_format_version")
//   raft_log    Raft entries, key = index (8 bytes big-endian)   [RaftLog]
//   raft_meta   hard state, log start, snapshot                  [RaftLog]
//   kv          current value of each user key           [KvStateMachine]
//   kv_sessions client sessions and remembered results   [KvStateMachine]
//   kv_meta     applied index, revision, log time        [KvStateMachine]
//   kv_history  every change above the compacted revision [KvStateMachine]
//   kv_leases   leases and the keys attached to them     [KvStateMachine]
//
// Must never: open a data dir of another format version (format 1, without
// history and leases, is upgraded in place at open: its two new families
// are created empty), or let a write pass after a failed one.
// Thread-safety: the Engine itself may be written from several threads
// (the server's log writer and applier write through it concurrently; the
// first failure stops them all); the classes built on it say who may use
// them. RocksDB headers stay out of this file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "util/status.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace raftkv::storage {

// Version of the on-disk layout written by this build. A data dir written
// with any other version is refused at open.
inline constexpr uint32_t kFormatVersion = 2;

struct EngineOptions {
  // Create a fresh data dir when `dir` does not exist (or is empty).
  bool create_if_missing = true;
  // RocksDB memory per node: the block cache size; memtables are charged
  // against the same budget (a WriteBufferManager capped at half of it).
  uint64_t memory_budget_bytes = 128ull << 20;
  // Memtable size of each column family before it is flushed.
  uint64_t write_buffer_bytes = 16ull << 20;
  // Once the WAL files hold this much, the oldest column families are
  // flushed so the WAL can be recycled.
  uint64_t max_total_wal_bytes = 128ull << 20;
  // Flush and compaction threads.
  int max_background_jobs = 2;
  // Added to the nice value of each thread that runs a compaction, so that
  // compactions yield the CPU to the threads that answer peers and
  // clients. Flushes keep their priority: a memtable that cannot be
  // flushed stops writes.
  int compaction_nice = 0;
  // File-system hook for fault-injection tests; nullptr = the default Env.
  // Must outlive the Engine.
  rocksdb::Env* env = nullptr;
};

class Engine {
 public:
  // Opens the data dir `dir`, creating it first if allowed. Fails with a
  // message naming `dir` and the cause: IOError (cannot read or lock it),
  // Corruption (damaged files, missing column family), FailedPrecondition
  // (another format version, not a raftkv data dir), NotFound (missing and
  // create_if_missing is false).
  static StatusOr<std::unique_ptr<Engine>> Open(
      const std::string& dir, const EngineOptions& options = EngineOptions());
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const std::string& dir() const;
  // OK while every write has succeeded; afterwards the first failure, which
  // every later write returns too. Reopen the data dir to recover.
  Status write_error() const;
  // Makes every write so far durable (fsync of the WAL), including those
  // written without sync.
  Status SyncWal();
  // Bytes RocksDB holds in its block cache, memtables included (they are
  // charged to it). Safe from any thread.
  uint64_t MemoryBytes() const;

  // Internal to storage/ (see storage/engine_rep.h).
  struct Rep;
  Rep* rep() const { return rep_.get(); }

 private:
  explicit Engine(std::unique_ptr<Rep> rep);

  std::unique_ptr<Rep> rep_;
};

}  // namespace raftkv::storage
