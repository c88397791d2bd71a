// Applier: the stage of raftkvd that owns the key-value state machine. On
// its own thread, in the order they were handed over, it applies committed
// entries (one WriteBatch for the hand-offs queued together), hands reads,
// once it has applied their read index, to its read pool (read_pool.h) at a
// snapshot of that moment, and makes snapshot points (a consistent view at
// its applied index, for followers that need a snapshot). Results go back to
// the raft loop through the hooks, which must only post to the loop.
//
// Ordering rules it keeps (docs/server.md): it gets only entries that are
// committed and durable in the local log; a read waiting for index i is
// answered only after every entry up to i is applied; a snapshot point is
// made between two batches, never in the middle of one.
//
// Pause()/Resume() let the log writer install a snapshot underneath: Pause
// returns once everything handed over before it is done, and the applier
// waits until Resume (its state machine is reloaded by the install).
//
// Thread-safety: the public methods may be called from any thread; the
// state machine is touched only by the applier's thread (or, while paused,
// by the thread that paused it).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "server/handoff.h"
#include "server/mailbox.h"
#include "server/read_pool.h"

namespace raftkv::storage {
class KvStateMachine;
}  // namespace raftkv::storage

namespace raftkv::server {

class Applier {
 public:
  struct Hooks {
    std::function<void(Applied)> applied;
    std::function<void(ReadsServed)> reads_served;
    std::function<void(std::shared_ptr<const storage::SnapshotSource>)>
        snapshot_point;
    std::function<void(LeasesListed)> leases_listed;
    // The changes of each batch applied (maybe none), the store now at
    // `revision` (for the watch hub).
    std::function<void(int64_t revision, std::vector<kv::Event>)> published;
    // A snapshot was installed: the store jumped to `revision`.
    std::function<void(int64_t revision)> jumped;
    // Runs on the applier's thread when applying fails (raftkvd stops
    // there: storage_failure.h).
    std::function<void(const Status&)> failed;
  };

  // `testonly_delay` (zero in production) is slept per entry applied.
  Applier(
      storage::KvStateMachine* state_machine, Hooks hooks,
      std::chrono::microseconds testonly_delay = std::chrono::microseconds(0));
  ~Applier();
  Applier(const Applier&) = delete;
  Applier& operator=(const Applier&) = delete;

  void Start();
  // Finishes the work at hand and stops; later hand-offs are dropped.
  void Stop();

  void Apply(std::vector<raft::Entry> entries);
  void Read(uint64_t read_index, std::vector<ReadRequest> reads);
  void MakeSnapshotPoint();
  // Lists every lease (hooks.leases_listed), after the work handed over
  // before.
  void ListLeases(uint64_t term);
  void Pause();
  void Resume();

  // Entries handed over and not yet applied (for back-pressure and status).
  size_t queued_entries() const;

 private:
  struct ApplyWork {
    std::vector<raft::Entry> entries;
  };
  struct ReadWork {
    uint64_t read_index;
    std::vector<ReadRequest> reads;
  };
  struct PointWork {};
  struct PauseWork {};
  struct LeasesWork {
    uint64_t term;
  };
  using Work =
      std::variant<ApplyWork, ReadWork, PointWork, PauseWork, LeasesWork>;

  void Run();
  void Push(Work work);
  void DoApply(ApplyWork& work);
  void DoRead(ReadWork& work);
  void DoPoint();
  void DoPause();
  // Hands the reads whose index is applied to the read pool, at a snapshot
  // of the state machine as it is now.
  void ServeWaitingReads();

  static constexpr int kReadThreads = 2;

  storage::KvStateMachine* const state_machine_;
  const Hooks hooks_;
  const std::chrono::microseconds testonly_delay_;

  ReadPool read_pool_;
  Mailbox<Work> inbox_;
  std::atomic<size_t> queued_entries_{0};
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  // The pause handshake with the thread that called Pause().
  std::mutex pause_mu_;
  std::condition_variable pause_cv_;
  bool paused_ = false;  // guarded by pause_mu_
  bool resume_ = false;  // guarded by pause_mu_

  // Applier thread only: reads waiting for their index to be applied.
  std::multimap<uint64_t, std::vector<ReadRequest>> waiting_reads_;
  bool failed_ = false;
};

}  // namespace raftkv::server
