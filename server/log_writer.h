// LogWriter: the stage of raftkvd that makes the Raft log durable. On its
// own thread it takes every PersistTask queued since its last write and
// writes them as ONE RocksDB WriteBatch with at most one fsync (group
// commit: the more the loop hands over while a write is in progress, the
// more the next one carries), then reports them durable, in submission
// order. A task carrying a snapshot is installed on its own: the applier is
// paused first (everything handed to it before is applied), the staged
// image replaces the state machine and the log (storage/snapshot_install.h),
// and the applier resumes.
//
// It also compacts the RocksDB log on request, after syncing the WAL so
// that the state machine's writes up to the compaction point are durable
// first (they are written without sync), frees the entries the loop no
// longer holds, and removes abandoned staging directories.
//
// Must never: report a task durable before its fsync returned, reorder
// tasks, or write after a failed write (the failure is reported once and
// the writer stops). Thread-safety: the public methods may be called from
// any thread; the RaftLog is touched only by the writer's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "server/handoff.h"
#include "server/mailbox.h"

namespace raftkv::storage {
class Engine;
class KvStateMachine;
class RaftLog;
}  // namespace raftkv::storage

namespace raftkv::server {

class Applier;

class LogWriter {
 public:
  // `persisted` runs on the writer's thread; it must only post to the loop.
  // `failed` runs on the writer's thread when a write fails (raftkvd stops
  // there: storage_failure.h); Persisted then reports the failure.
  LogWriter(storage::Engine* engine, storage::RaftLog* log,
            storage::KvStateMachine* state_machine, Applier* applier,
            std::function<void(Persisted)> persisted,
            std::function<void(const Status&)> failed);
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  void Start();
  // Finishes the write at hand and stops; queued tasks are dropped (they
  // were never reported durable).
  void Stop();

  void Submit(PersistTask task);
  // Drops log entries up to and including `index` from disk.
  void CompactTo(uint64_t index);
  // Frees entries the loop let go of (its LogCache compacted or replaced),
  // on the writer's thread: tens of thousands at a time would cost the
  // loop milliseconds.
  void Release(std::vector<EntryBatch> batches);
  // Removes a staging directory that will not be installed.
  void Discard(std::string staging_dir);
  // Records the cluster a joining node learned it belongs to (synced).
  void RecordClusterId(uint64_t cluster_id);

 private:
  struct Compact {
    uint64_t index;
  };
  struct Released {
    std::vector<EntryBatch> batches;
  };
  struct Discarded {
    std::string dir;
  };
  struct ClusterId {
    uint64_t id;
  };
  using Job =
      std::variant<PersistTask, Compact, Released, Discarded, ClusterId>;

  void Run();
  void Push(Job job);
  // Writes a group of plain tasks; false once a write failed.
  bool WriteGroup(std::deque<Job>* jobs);
  bool Install(const PersistTask& task);
  void DoCompact(uint64_t index);

  storage::Engine* const engine_;
  storage::RaftLog* const log_;
  storage::KvStateMachine* const state_machine_;
  Applier* const applier_;
  const std::function<void(Persisted)> persisted_;
  const std::function<void(const Status&)> failed_hook_;

  Mailbox<Job> inbox_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  bool failed_ = false;  // writer thread only
};

}  // namespace raftkv::server
