// PeerTransport: carries raft::Messages between the nodes of a cluster over
// TCP, one outbound connection per peer (we dial every peer from our own
// peer address; peers dial us) with length-prefixed protobuf frames.
//
// - Outbound connections reconnect with capped exponential back-off; while a
//   peer is down its messages are dropped (Raft retransmits) and reported
//   unreachable, so nothing queues without bound.
// - Each send queue is bounded in bytes; a slow peer never blocks another.
// - TCP_USER_TIMEOUT and keepalive abort half-dead connections (e.g. during
//   a partition), which then reconnect.
// - When a peer's connection breaks, `on_peer_down` fires: a follower that
//   loses its leader this way can stop waiting for the election timeout.
// - Every outbound connection opens with a hello naming our cluster id and
//   node id (cluster_identity.h); an inbound connection whose hello names
//   another cluster, or that sends anything else first, is refused and the
//   refusal logged with both ids.
// - The peers change with the membership (SetPeers). A node outside them
//   that says hello with our cluster id is heard and answered at the
//   address its hello names (a member added by a change we have not
//   received yet); a node the cluster removed is told so when it dials
//   (cluster_identity.h); a node that joins with no cluster id adopts the
//   one a configured peer names from where the flags say it is, and is
//   heard by the members that know it meanwhile.
// - An inbound connection whose first frame is a snapshot preamble
//   (snapshot_transfer.h) is handed over whole to `on_snapshot_stream`.
//
// Thread-safety: everything runs on the io_context's thread.
// Never interprets messages beyond their sender id.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "client/framed_connection.h"
#include "raft/config.h"
#include "raft/raft.pb.h"
#include "server/server_config.h"
#include "util/status.h"

namespace raftkv::wire {
class ReloadingTlsContext;
class TlsSession;
}  // namespace raftkv::wire

namespace raftkv::server {

// "127.0.0.1:7001" (or "localhost:7001") as an endpoint; InvalidArgument
// for anything that is not a numeric IP address and port.
StatusOr<asio::ip::tcp::endpoint> ParseEndpoint(const std::string& address);

struct PeerTransportOptions {
  // This node's cluster (cluster_identity.h): peers of another are refused.
  uint64_t cluster_id = 0;
  // Raft messages carry at most max_size_per_msg of entries (1 MB) plus one
  // entry over it; snapshots travel on their own connections.
  size_t max_frame_bytes = 16 << 20;
  size_t max_queued_bytes = 32 << 20;
  std::chrono::milliseconds reconnect_initial{20};
  std::chrono::milliseconds reconnect_max{500};
  // Unacknowledged data for this long aborts a connection (TCP_USER_TIMEOUT).
  std::chrono::milliseconds user_timeout{3000};
  // TLS between peers (files.enabled(): on); loaded by Start.
  TlsFiles tls;
};

class PeerTransport {
 public:
  using MessageHandler = std::function<void(raft::Message message)>;
  using PeerHandler = std::function<void(uint64_t peer)>;
  // A snapshot transfer's connection: its descriptor (now the handler's),
  // its first frame, the bytes read beyond it, and the remote address.
  using SnapshotStreamHandler = std::function<void(
      int fd, std::string preamble, std::string buffered, std::string remote)>;

  // `peers` maps every node id (including self) to its peer address.
  PeerTransport(asio::io_context& io, uint64_t self,
                std::map<uint64_t, asio::ip::tcp::endpoint> peers,
                PeerTransportOptions options);
  ~PeerTransport();

  // Binds the listening socket (fails with a clear error if the port is in
  // use) and starts dialing peers.
  Status Start(MessageHandler on_message, PeerHandler on_peer_down,
               PeerHandler on_unreachable,
               SnapshotStreamHandler on_snapshot_stream);
  // Queues `message` for message.to(). Dropped (and the peer reported
  // unreachable) if not connected or its queue is full.
  void Send(const raft::Message& message);

  // Membership (all optional; called on the io_context's thread).
  struct MembershipHooks {
    // Whether the cluster removed node `id`: its hello is answered with a
    // removal notice instead of a silent refusal.
    std::function<bool(uint64_t id)> was_removed;
    // A peer told this node it was removed from the cluster.
    std::function<void()> removed;
    // A node joining with no cluster id yet (options.cluster_id == 0)
    // adopted the one a configured peer's hello named.
    std::function<void(uint64_t cluster_id)> cluster_id_learned;
    // A node outside our peers said hello from `address` (host:port).
    std::function<void(uint64_t id, const std::string& address)> peer_heard;
  };
  void set_membership_hooks(MembershipHooks hooks) {
    hooks_ = std::move(hooks);
  }
  // The peers from now on (self ignored): new ones are dialed, and the
  // connections of those no longer listed are closed; their hellos are
  // refused from then on.
  void SetPeers(const std::map<uint64_t, asio::ip::tcp::endpoint>& peers);
  void Stop();

  bool connected(uint64_t peer) const;

 private:
  struct Outbound {
    asio::ip::tcp::endpoint address;
    std::shared_ptr<wire::FramedConnection> connection;
    std::unique_ptr<asio::ip::tcp::socket> dialing;
    std::unique_ptr<asio::steady_timer> retry_timer;
    std::chrono::milliseconds backoff{0};
    bool down_reported = true;
    // TLS: the dial whose handshake is under way (0: none), and the last
    // handshake failure logged (repeated only every few seconds).
    uint64_t handshaking = 0;
    std::string tls_error;
    std::chrono::steady_clock::time_point tls_error_logged;
  };

  void Accept();
  void AddPeer(uint64_t peer, const asio::ip::tcp::endpoint& address);
  void DropPeer(uint64_t peer);
  // A frame on one of our outbound connections: peers send nothing there
  // but a removal notice.
  void OnOutboundFrame(const std::string& payload);
  void Dial(uint64_t peer);
  void ScheduleDial(uint64_t peer);
  void OnDialed(uint64_t peer, const std::error_code& ec);
  // A dialed connection is ready (its TLS handshake done, if any).
  void Connected(uint64_t peer, asio::ip::tcp::socket socket,
                 std::unique_ptr<wire::TlsSession> tls);
  void ServeInbound(asio::ip::tcp::socket socket,
                    std::unique_ptr<wire::TlsSession> tls);
  void OnInboundFrame(const std::shared_ptr<wire::FramedConnection>& conn,
                      uint64_t* sender, const std::string& payload);
  void PeerDown(uint64_t peer, const std::string& why);
  // Closes (unless `close` is false: it was sent a notice to read first)
  // an inbound connection that is not a peer of this cluster, logging why
  // (at most every few seconds).
  void Refuse(const std::shared_ptr<wire::FramedConnection>& conn,
              const std::string& why, bool close = true);
  void ConfigureSocket(asio::ip::tcp::socket& socket);

  asio::io_context& io_;
  const uint64_t self_;
  PeerTransportOptions options_;
  asio::ip::tcp::endpoint listen_address_;
  std::string self_address_;  // listen_address_ as host:port, for hellos
  asio::ip::tcp::acceptor acceptor_;
  std::map<uint64_t, Outbound> outbound_;
  // Inbound connections and the sender each one's hello named (kNone
  // before the hello, kRefusedSender once refused).
  std::map<std::shared_ptr<wire::FramedConnection>, std::shared_ptr<uint64_t>>
      inbound_;
  MembershipHooks hooks_;
  bool removal_reported_ = false;
  MessageHandler on_message_;
  PeerHandler on_peer_down_;
  PeerHandler on_unreachable_;
  SnapshotStreamHandler on_snapshot_stream_;
  bool stopped_ = false;
  std::chrono::steady_clock::time_point last_refusal_logged_;
  std::chrono::steady_clock::time_point last_handshake_failure_logged_;
  std::shared_ptr<wire::ReloadingTlsContext> tls_listen_;  // null: plain
  std::shared_ptr<wire::ReloadingTlsContext> tls_dial_;
  uint64_t next_dial_ = 1;  // numbers TLS dials (Outbound::handshaking)
  // Handshakes in progress hold a weak reference: gone once destroyed.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace raftkv::server
