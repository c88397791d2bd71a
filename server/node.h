// Node: one raftkvd replica. It owns the Raft core, the node's storage and
// state machine, the peer transport and the client service, and drives
// them from one event loop (Run()):
//
//   drain every ready event (client requests, peer messages, ticks)
//   → handle the resulting Ready: leader sends appends, persist (one fsync
//     for every proposal that arrived meanwhile: group commit), send the
//     rest, apply committed entries, answer clients, serve reads, Advance.
//
// Writes are answered only after their entry is committed (durable on a
// majority) and applied. Linearizable reads go through ReadIndex, batched:
// every read that arrives in one loop iteration shares one round.
//
// Thread-safety: not thread-safe; everything runs on the thread in Run().
// Never reads flags (see flags.cc) and never touches another node's files.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "client/kv.pb.h"
#include "raft/raw_node.h"
#include "server/client_service.h"
#include "server/peer_transport.h"
#include "server/server_config.h"

namespace raftkv::storage {
class Engine;
class RaftLog;
class KvStateMachine;
}  // namespace raftkv::storage

namespace raftkv::server {

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
  using Clock = std::chrono::steady_clock;
  struct PendingWrite {
    uint64_t term;
    Responder respond;
    Clock::time_point deadline;
  };
  struct PendingRead {
    kv::RangeRequest request;
    Responder respond;
    Clock::time_point deadline;
  };

  // Event sources.
  void OnTick();
  void OnSweep();
  void OnPeerMessage(raft::Message message);
  void OnPeerDown(uint64_t peer);
  void OnClientRequest(kv::ClientRequest request, Responder respond);

  // Client requests.
  void HandleWrite(kv::ClientRequest& request, Responder respond);
  void HandleRead(kv::ClientRequest& request, Responder respond);
  void HandleStatus(Responder respond);
  void HandleTransferLeader(const kv::ClientRequest& request,
                            Responder respond);
  Status CheckSizes(const kv::Command& command) const;
  void ServeRead(PendingRead& read);
  kv::ClientResponse NotLeaderResponse() const;
  Clock::time_point DeadlineOf(const kv::ClientRequest& request) const;

  // The Ready loop.
  void ProcessReady();
  bool HandleReady(raft::Ready& ready);
  void StartReadBatch();
  void ApplyEntries(const std::vector<raft::Entry>& entries);
  void ServeReadsUpTo(uint64_t applied);
  void FailPendingReads(kv::ErrorCode error, const std::string& why);
  void MaybeSnapshot();
  void FailStorage(const Status& status);

  ServerConfig config_;
  asio::io_context io_;
  asio::steady_timer tick_timer_;
  asio::steady_timer sweep_timer_;
  Clock::time_point next_tick_;
  std::mt19937_64 rng_;

  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::RaftLog> log_;
  std::unique_ptr<storage::KvStateMachine> state_machine_;
  std::unique_ptr<raft::RawNode> raft_;
  std::unique_ptr<PeerTransport> transport_;
  std::unique_ptr<ClientService> clients_;

  std::map<uint64_t, PendingWrite> pending_writes_;  // by log index
  std::vector<PendingRead> unbatched_reads_;
  std::map<std::string, std::vector<PendingRead>> read_batches_;  // by ctx
  std::multimap<uint64_t, PendingRead> reads_waiting_for_apply_;
  uint64_t next_read_ctx_ = 1;
  uint64_t last_snapshot_index_ = 0;
  raft::SoftState soft_state_;
  bool campaign_scheduled_ = false;
  asio::steady_timer campaign_timer_;
  Status storage_error_;  // once set, the node stops serving writes
  bool stopped_ = false;
};

}  // namespace raftkv::server
