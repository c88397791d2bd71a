// RaftLoop: the stage of raftkvd that runs the Raft core, on the thread of
// the node's io_context, together with the peer transport and the timers.
// It never touches the disk: it reads the log from the LogCache, hands
// writes to the LogWriter, committed entries to the Applier and snapshots to
// SnapshotTransfers, and takes their results back as posted events.
//
// The Ready pipeline (raft/raw_node.h, asynchronous use; docs/server.md):
//   GetReady -> Accept -> send Ready::messages now (a leader's appends go
//   out while its own write is in progress, §10.2.1) -> PersistTask to the
//   writer -> committed entries to the applier -> read states to the client
//   side. When the writer reports tasks durable, in order: the LogCache
//   mirrors them, the core hears OnPersisted, and the messages that waited
//   for the disk go out (acknowledgements and votes; the node's own are
//   stepped back into the core).
//
// Thread-safety: everything runs on the io_context's thread; the On*()
// handlers are posted there by the other stages.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "raft/raw_node.h"
#include "server/handoff.h"
#include "server/loop_monitor.h"
#include "server/node_metrics.h"
#include "server/server_config.h"

namespace raftkv::storage {
class SnapshotSource;
}  // namespace raftkv::storage

namespace raftkv::server {

class Applier;
class ClientRequests;
class LogCache;
class LogWriter;
class LoopBooster;
class MemberDirectory;
class PeerTransport;
class SnapshotTransfers;

class RaftLoop {
 public:
  struct Stages {
    LogCache* cache;
    LogWriter* writer;
    Applier* applier;
    SnapshotTransfers* transfers;
    PeerTransport* transport;
    MemberDirectory* members;
  };

  RaftLoop(const ServerConfig& config, asio::io_context& io,
           std::unique_ptr<raft::RawNode> raft, Stages stages,
           uint64_t applied_index, int64_t revision);
  ~RaftLoop();

  void set_clients(ClientRequests* clients) { clients_ = clients; }
  // Where to export figures (may stay null).
  void set_metrics(NodeMetrics* metrics) { metrics_ = metrics; }
  void Start();
  void Stop();
  // Runs the core's Ready pipeline until it has nothing more to do.
  void ProcessReady() { ProcessReady(nullptr); }
  // The same at the end of one pass of the loop, whose handlers `pass`
  // describes: the pass, with its Readys, goes to the loop monitor.
  void FinishPass(LoopMonitor::Pass pass);
  // Runs the tick if it is due at `now`; returns whether it ran. The tick
  // timer calls it, and so does the loop between handlers: when a flood of
  // work is queued, a pass can take tens of milliseconds, and the tick
  // (heartbeats, election timeouts) must not wait behind it.
  bool TickIfDue(std::chrono::steady_clock::time_point now);

  // Events from the transport.
  void OnPeerMessage(raft::Message message);
  void OnPeerDown(uint64_t peer);
  void OnUnreachable(uint64_t peer);
  // Events from the other stages (posted to the loop).
  void OnPersisted(Persisted persisted);
  void OnApplied(const Applied& applied);
  void OnSnapshotPoint(std::shared_ptr<const storage::SnapshotSource> point);
  void OnSnapshotSent(uint64_t peer, bool ok);
  void OnSnapshotStaged(raft::Message message, std::string staging_dir);

  // For the client side.
  raft::RawNode& raft() { return *raft_; }
  uint64_t applied_index() const { return applied_index_; }
  int64_t revision() const { return revision_; }
  const LoopMonitor& monitor() const { return monitor_; }
  // Told when each tick ran (null: none). Set by the node around Run().
  void set_booster(LoopBooster* booster) { booster_ = booster; }
  uint64_t log_cache_bytes() const;
  // Whether the committed log entries this node holds but has not applied
  // fill their share of the memory budget (half the log's) or outnumber
  // max_unapplied_entries. While they do, a follower defers appends (does
  // not acknowledge them: the leader's pipeline to it pauses) and a
  // leader's client side holds new writes back, so that an applier that
  // cannot keep up slows the cluster's writes instead of growing memory.
  bool apply_backlog_full() const { return apply_backlog_full_; }
  size_t writes_in_flight() const { return in_flight_.size(); }
  // Asks for a snapshot point now (the core wants one for a follower).
  void WantSnapshotPoint();
  // Calls `ready` (on the loop's thread) with the next snapshot point the
  // applier makes, asking for one now (a backup).
  void WithNextSnapshotPoint(
      std::function<void(std::shared_ptr<const storage::SnapshotSource>)>
          ready);
  // Called once this node learns the cluster removed it (it applied its
  // own removal, or a member told it): the node stops.
  void set_removed_handler(std::function<void()> removed) {
    removed_ = std::move(removed);
  }
  // A member told this node it was removed (PeerTransport).
  void OnRemoved(const std::string& how);
  // The peers to dial: the configuration in effect, at the addresses the
  // member directory knows.
  void UpdatePeers();
  // Whether node `id` is this node, or was heard from within an election
  // timeout.
  bool HeardRecently(uint64_t id) const;

 private:
  using Clock = std::chrono::steady_clock;
  // An accepted Ready waiting for its writes to be durable.
  struct InFlight {
    uint64_t seq = 0;
    EntryBatch entries;
    std::optional<raft::HardState> hard_state;
    std::optional<raft::SnapshotMetadata> snapshot;
    raft::PersistMark mark;
    std::vector<raft::Message> after_persist;
    // An installed snapshot's membership (from the writer).
    std::optional<kv::Membership> membership;
  };

  void ArmTickTimer();
  void OnTick(Clock::time_point now);
  void ProcessReady(LoopMonitor::Pass* pass);
  void UpdateMetrics(Clock::time_point now, int64_t late_us);
  void StepPeerMessage(const raft::Message& message);
  // Steps the appends deferred while the apply backlog was full, if it no
  // longer is.
  void StepDeferredAppends();
  void HandleReady(raft::Ready& ready);
  void SendMessages(std::vector<raft::Message>& messages);
  void SendSnapshot(const raft::Message& message);
  void FinishPersisted(InFlight& done);
  void MaybeCompact();
  // Leader: proposes the promotion of learners added to become voters
  // (promote_when_caught_up) once the core finds them caught up.
  void MaybePromoteLearners();
  // The applied membership changed (applied, or brought by a snapshot).
  void OnMembership(const kv::Membership& membership);
  // Re-evaluates apply_backlog_full() (with hysteresis) and logs changes.
  void UpdateApplyBacklog();
  // Stops the process (storage_failure.h).
  [[noreturn]] void FailStorage(const Status& status);

  const ServerConfig& config_;
  asio::io_context& io_;
  std::unique_ptr<raft::RawNode> raft_;
  Stages stages_;
  ClientRequests* clients_ = nullptr;
  NodeMetrics* metrics_ = nullptr;

  asio::steady_timer tick_timer_;
  Clock::time_point next_tick_;
  asio::steady_timer campaign_timer_;
  bool campaign_scheduled_ = false;
  LoopMonitor monitor_;
  LoopBooster* booster_ = nullptr;

  uint64_t next_seq_ = 1;
  std::deque<InFlight> in_flight_;
  uint64_t applied_index_ = 0;
  int64_t revision_ = 0;
  raft::SoftState soft_state_;
  bool point_requested_ = false;
  Clock::time_point point_made_at_;
  bool apply_backlog_full_ = false;
  // When each peer was last heard from (any message).
  std::map<uint64_t, Clock::time_point> last_heard_;
  // Per peer, when the oldest heartbeat it has not answered was sent (for
  // the round-trip metric; cleared when it answers or its connection drops).
  std::map<uint64_t, Clock::time_point> heartbeat_sent_;
  // What the apply backlog held back since it was last reported.
  struct BacklogReport {
    Clock::time_point warned_at;
    Clock::time_point reported_at;
    uint64_t episodes = 0;
    uint64_t appends_deferred = 0;
    uint64_t appends_dropped = 0;
    uint64_t writes_held = 0;
  };
  static constexpr std::chrono::seconds kBacklogReportEvery{10};
  BacklogReport backlog_;
  // Appends received while the backlog was full, stepped once it is not;
  // bounded by the peer queue's bytes (beyond, dropped as if lost).
  std::deque<raft::Message> deferred_appends_;
  uint64_t deferred_bytes_ = 0;
  // Staged snapshots by (term, index): directory, until installed or
  // dropped.
  std::map<std::pair<uint64_t, uint64_t>, std::string> staged_;
  std::vector<
      std::function<void(std::shared_ptr<const storage::SnapshotSource>)>>
      point_waiters_;
  std::function<void()> removed_;
  bool removed_reported_ = false;
  uint64_t ticks_ = 0;
  bool stopped_ = false;
};

}  // namespace raftkv::server
