// Node: one raftkvd replica, wired from its stages (docs/server.md):
//
//   raft loop (RaftLoop + ClientRequests + PeerTransport + ClientService),
//     on the thread that calls Run(): the Raft core, sockets, timers; never
//     touches the disk;
//   log writer (LogWriter), its own thread: group commit of the Raft log,
//     snapshot installs;
//   applier (Applier), its own thread: the state machine, reads, snapshot
//     points;
//   watch hub (WatchHub), its own thread: matches applied changes to
//     watches, replays history, frames events;
//   snapshot transfers (SnapshotTransfers), a thread per transfer.
//
// The stages hand work over as the values in handoff.h and report back
// through the loop's mailbox (ToLoop values, watched by the loop's epoll),
// so each stage's data has one owner and no thread but the loop's ever
// touches the io_context or waits on a lock the loop needs.
// Open() loads the durable state (finishing an interrupted snapshot install
// first), Run() runs the loop until Stop(); the other threads are stopped
// and joined on the way out.
//
// Never reads flags (see flags.cc) and never touches another node's files.
#pragma once

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <atomic>
#include <memory>

#include "server/handoff.h"
#include "server/mailbox.h"
#include "server/member_directory.h"
#include "server/metrics.h"
#include "server/node_metrics.h"
#include "server/server_config.h"
#include "util/status.h"

namespace raftkv::storage {
class Engine;
class RaftLog;
class KvStateMachine;
}  // namespace raftkv::storage

namespace raftkv::server {

class Applier;
class AutoCompactor;
class HttpEndpoint;
class ClientRequests;
class ClientService;
class LogCache;
class LogWriter;
class LoopBooster;
class PeerTransport;
class RaftLoop;
class SnapshotTransfers;
class WatchHub;
class WatchStreams;
namespace etcd {
class EtcdOps;
class GrpcServer;
class JsonGateway;
}  // namespace etcd

class Node {
 public:
  explicit Node(ServerConfig config);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Opens storage, restores Raft state, binds the listening sockets. A
  // corrupt or incompatible data dir, or a port in use, fails here with a
  // message naming the path or address.
  Status Open();
  // Runs the event loop until Stop() (or a signal handler calling it).
  void Run();
  // Safe to call from the loop thread or a signal-handling strand of the
  // same io_context.
  void Stop();
  asio::io_context& io() { return io_; }

 private:
  Status OpenStorage();
  // Sets config_.cluster_id from the data dir, recording the one the flags
  // describe first if it has none (cluster_identity.h).
  Status LoadClusterId();
  // A new cluster's state machine records its founding members (flags).
  Status LoadMembership();
  Status StartStages();
  // Watches the loop from a real-time thread (null if not wanted or not
  // permitted; logged).
  std::unique_ptr<LoopBooster> StartLoopBooster();
  // Runs what the other stages sent back, each time the mailbox signals.
  void WatchInbox();
  // etcd's v3 API (--listen_etcd), its own threads; null if not asked for.
  Status StartEtcdApi();
  // Stops the loop (Stop() stops etcd's API first, then this).
  void StopLoop();
  void Deliver(ToLoop& item);

  ServerConfig config_;
  MetricsRegistry registry_;
  NodeMetrics metrics_{&registry_, config_.id, config_.peer_addresses};
  // Run by one thread only: the loop's.
  asio::io_context io_{1};
  bool stopped_ = false;
  Mailbox<ToLoop> inbox_;
  std::unique_ptr<asio::posix::stream_descriptor> inbox_watch_;

  // Storage, used at start-up by this thread, then by the writer and the
  // applier threads only.
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::RaftLog> log_;
  std::unique_ptr<storage::KvStateMachine> state_machine_;

  // The loop's.
  MemberDirectory members_;
  std::unique_ptr<LogCache> cache_;
  std::unique_ptr<PeerTransport> transport_;
  std::unique_ptr<ClientService> clients_service_;
  std::unique_ptr<RaftLoop> loop_;
  std::unique_ptr<ClientRequests> requests_;
  std::unique_ptr<WatchStreams> watch_streams_;
  std::unique_ptr<AutoCompactor> compactor_;

  // The other stages (the watch hub outlives the applier that feeds it).
  std::unique_ptr<WatchHub> watch_hub_;
  std::unique_ptr<Applier> applier_;
  std::unique_ptr<LogWriter> writer_;
  std::unique_ptr<SnapshotTransfers> transfers_;
  std::unique_ptr<HttpEndpoint> http_;  // monitoring, its own thread
  std::unique_ptr<etcd::EtcdOps> etcd_ops_;
  std::unique_ptr<etcd::GrpcServer> etcd_grpc_;
  std::unique_ptr<etcd::JsonGateway> etcd_gateway_;  // --listen_etcd_gateway
  std::atomic<bool> etcd_stopping_{false};
};

}  // namespace raftkv::server
