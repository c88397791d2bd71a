// TCP transport between Raft peers: dialing with back-off, bounded queues,
// half-dead connection detection. Never blocks the event loop.
#include "server/peer_transport.h"

#include <glog/logging.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "client/tls.h"
#include "server/cluster_identity.h"
#include "server/server_tls.h"
#include "server/snapshot_transfer.h"

namespace raftkv::server {

StatusOr<asio::ip::tcp::endpoint> ParseEndpoint(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("'" + address + "' is not host:port");
  }
  std::string host = address.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  std::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  const int port = std::atoi(address.c_str() + colon + 1);
  if (ec || port <= 0 || port > 65535) {
    return Status::InvalidArgument("'" + address +
                                   "' is not a numeric IP address and port");
  }
  return asio::ip::tcp::endpoint(ip, static_cast<uint16_t>(port));
}

namespace {

// The sender of an inbound connection that was refused: any further frame
// closes it.
constexpr uint64_t kRefusedSender = UINT64_MAX;

}  // namespace

PeerTransport::PeerTransport(asio::io_context& io, uint64_t self,
                             std::map<uint64_t, asio::ip::tcp::endpoint> peers,
                             PeerTransportOptions options)
    : io_(io), self_(self), options_(options), acceptor_(io) {
  for (auto& [id, address] : peers) {
    if (id != self_) AddPeer(id, address);
  }
  auto it = peers.find(self_);
  CHECK(it != peers.end()) << "own id " << self_ << " missing from peers";
  listen_address_ = it->second;
  self_address_ = listen_address_.address().to_string() + ":" +
                  std::to_string(listen_address_.port());
}

PeerTransport::~PeerTransport() { Stop(); }

Status PeerTransport::Start(MessageHandler on_message, PeerHandler on_peer_down,
                            PeerHandler on_unreachable,
                            SnapshotStreamHandler on_snapshot_stream) {
  on_message_ = std::move(on_message);
  on_peer_down_ = std::move(on_peer_down);
  on_unreachable_ = std::move(on_unreachable);
  on_snapshot_stream_ = std::move(on_snapshot_stream);
  if (options_.tls.enabled()) {
    auto listen = wire::ReloadingTlsContext::Create(
        ListenerTlsConfig(options_.tls), "peer listener");
    if (!listen.ok()) return listen.status();
    auto dial = wire::ReloadingTlsContext::Create(DialerTlsConfig(options_.tls),
                                                  "peer dialer");
    if (!dial.ok()) return dial.status();
    tls_listen_ = *listen;
    tls_dial_ = *dial;
  }
  std::error_code ec;
  acceptor_.open(listen_address_.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(listen_address_, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError(
        "cannot listen for peers on " + listen_address_.address().to_string() +
        ":" + std::to_string(listen_address_.port()) + ": " + ec.message());
  }
  Accept();
  for (auto& [peer, out] : outbound_) Dial(peer);
  return Status::OK();
}

void PeerTransport::AddPeer(uint64_t peer,
                            const asio::ip::tcp::endpoint& address) {
  Outbound out;
  out.address = address;
  out.backoff = options_.reconnect_initial;
  out.retry_timer = std::make_unique<asio::steady_timer>(io_);
  outbound_.emplace(peer, std::move(out));
}

void PeerTransport::DropPeer(uint64_t peer) {
  auto it = outbound_.find(peer);
  if (it == outbound_.end()) return;
  // Erased first: the handlers the closing runs find no peer and stop.
  Outbound out = std::move(it->second);
  outbound_.erase(it);
  std::error_code ec;
  out.retry_timer->cancel();
  if (out.dialing) out.dialing->close(ec);
  if (out.connection) out.connection->Close(Status::Aborted("not a peer"));
  std::vector<std::shared_ptr<wire::FramedConnection>> from_peer;
  for (auto& [conn, sender] : inbound_) {
    if (*sender == peer) from_peer.push_back(conn);
  }
  for (auto& conn : from_peer) conn->Close(Status::Aborted("not a peer"));
  LOG(INFO) << "peer " << peer << " is no longer a member: disconnected";
}

void PeerTransport::SetPeers(
    const std::map<uint64_t, asio::ip::tcp::endpoint>& peers) {
  std::vector<uint64_t> gone;
  for (const auto& [id, out] : outbound_) {
    auto it = peers.find(id);
    if (it == peers.end() || it->second != out.address) gone.push_back(id);
  }
  for (uint64_t id : gone) DropPeer(id);
  for (const auto& [id, address] : peers) {
    if (id == self_ || outbound_.count(id)) continue;
    AddPeer(id, address);
    LOG(INFO) << "peer " << id << " at " << address.address().to_string() << ":"
              << address.port() << " is a member: dialing";
    if (acceptor_.is_open()) Dial(id);
  }
}

void PeerTransport::Stop() {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ec;
  acceptor_.close(ec);
  for (auto& [peer, out] : outbound_) {
    out.retry_timer->cancel();
    if (out.dialing) out.dialing->close(ec);
    if (out.connection) out.connection->Close(Status::Aborted("stopping"));
  }
  auto inbound = inbound_;
  for (auto& [conn, sender] : inbound) {
    conn->Close(Status::Aborted("stopping"));
  }
  inbound_.clear();
}

void PeerTransport::ConfigureSocket(asio::ip::tcp::socket& socket) {
  std::error_code ec;
  socket.set_option(asio::socket_base::keep_alive(true), ec);
  const unsigned int timeout_ms =
      static_cast<unsigned int>(options_.user_timeout.count());
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT,
               &timeout_ms, sizeof(timeout_ms));
}

void PeerTransport::Accept() {
  acceptor_.async_accept([this](const std::error_code& ec,
                                asio::ip::tcp::socket socket) {
    if (stopped_) return;
    if (ec) {
      LOG(WARNING) << "peer accept failed: " << ec.message();
    } else if (tls_listen_) {
      ConfigureSocket(socket);
      std::weak_ptr<char> alive = alive_;
      wire::AsyncTlsHandshake(
          std::move(socket), tls_listen_->Current(), "", kTlsHandshakeTimeout,
          [this, alive](Status s, asio::ip::tcp::socket socket,
                        std::unique_ptr<wire::TlsSession> session) {
            if (alive.expired() || stopped_) return;
            if (!s.ok()) {
              const auto now = std::chrono::steady_clock::now();
              if (now - last_handshake_failure_logged_ >=
                  std::chrono::seconds(10)) {
                last_handshake_failure_logged_ = now;
                LOG(WARNING) << "refusing a peer connection: " << s.ToString();
              }
              return;
            }
            ServeInbound(std::move(socket), std::move(session));
          });
    } else {
      ConfigureSocket(socket);
      ServeInbound(std::move(socket), nullptr);
    }
    Accept();
  });
}

void PeerTransport::ServeInbound(asio::ip::tcp::socket socket,
                                 std::unique_ptr<wire::TlsSession> tls) {
  wire::ConnectionLimits limits{options_.max_frame_bytes,
                                options_.max_queued_bytes};
  auto conn = std::make_shared<wire::FramedConnection>(std::move(socket),
                                                       limits, std::move(tls));
  // The sender's id is learned from its first message.
  auto sender = std::make_shared<uint64_t>(raft::kNone);
  inbound_.emplace(conn, sender);
  std::weak_ptr<wire::FramedConnection> weak = conn;
  conn->Start(
      [this, weak, sender](std::string payload) {
        if (auto c = weak.lock()) OnInboundFrame(c, sender.get(), payload);
      },
      [this, weak, sender](const Status& reason) {
        if (auto c = weak.lock()) inbound_.erase(c);
        if (*sender != raft::kNone && *sender != kRefusedSender && !stopped_) {
          PeerDown(*sender, "inbound connection: " + reason.ToString());
        }
      });
}

void PeerTransport::OnInboundFrame(
    const std::shared_ptr<wire::FramedConnection>& conn, uint64_t* sender,
    const std::string& payload) {
  if (*sender == raft::kNone &&
      IsSnapshotPreamble(payload.data(), payload.size())) {
    std::string buffered;
    const std::string remote = conn->remote();
    const int fd = conn->Release(&buffered);
    inbound_.erase(conn);
    if (fd >= 0 && on_snapshot_stream_) {
      on_snapshot_stream_(fd, payload, std::move(buffered), remote);
    }
    return;
  }
  if (*sender == kRefusedSender) {
    conn->Close(Status::FailedPrecondition("not a peer of this cluster"));
    return;
  }
  if (*sender == raft::kNone) {
    uint64_t cluster_id = 0, from = raft::kNone;
    std::string address;
    if (!DecodePeerHello(payload, &cluster_id, &from, &address)) {
      Refuse(conn,
             "its first frame is not a peer hello (not a raftkvd of "
             "this version)");
      return;
    }
    if (from == raft::kNone || from == self_) {
      Refuse(conn, "its hello names node " + std::to_string(from));
      return;
    }
    auto known = outbound_.find(from);
    auto declared = ParseEndpoint(address);
    if (options_.cluster_id == 0 && cluster_id != 0 &&
        known != outbound_.end() && declared.ok() &&
        *declared == known->second.address) {
      // Joining: the cluster is the one of a configured peer that is where
      // our flags say it is.
      options_.cluster_id = cluster_id;
      LOG(INFO) << "joining cluster " << ClusterIdText(cluster_id)
                << " (named by node " << from << " at " << address << ")";
      if (hooks_.cluster_id_learned) hooks_.cluster_id_learned(cluster_id);
      // Our hellos so far named no cluster: say it again.
      for (auto& [peer, out] : outbound_) {
        if (out.connection) out.connection->Close(Status::Aborted("rejoin"));
      }
    }
    // A node joining with no cluster id yet: a member we added.
    const bool joining = cluster_id == 0 && known != outbound_.end();
    if (cluster_id != options_.cluster_id && !joining) {
      Refuse(conn, "node " + std::to_string(from) + " belongs to cluster " +
                       ClusterIdText(cluster_id) + ", this node to cluster " +
                       ClusterIdText(options_.cluster_id) +
                       " (a data dir of another cluster, or --cluster "
                       "pointing at another cluster's nodes)");
      return;
    }
    if (hooks_.was_removed && hooks_.was_removed(from)) {
      conn->Send(EncodePeerRemoved(options_.cluster_id, from));
      *sender = kRefusedSender;
      Refuse(conn,
             "node " + std::to_string(from) +
                 " was removed from the cluster (told so)",
             /*close=*/false);
      return;
    }
    if (known == outbound_.end()) {
      // Not in our configuration yet (added by a change we have not
      // received, or our leader while we lag): heard all the same
      // (dissertation §4.1), and answered at the address it names.
      if (!declared.ok()) {
        Refuse(conn, "its hello names node " + std::to_string(from) +
                         ", not a member as this node knows the cluster, "
                         "and no address to answer it at");
        return;
      }
      LOG(INFO) << "peer " << from << " at " << address
                << " is not in this node's configuration yet: heard";
      AddPeer(from, *declared);
      if (hooks_.peer_heard) hooks_.peer_heard(from, address);
    }
    *sender = from;
    // The peer is (back) up: redial at once rather than after back-off.
    auto it = outbound_.find(*sender);
    if (!it->second.connection && !it->second.dialing) {
      it->second.retry_timer->cancel();
      it->second.backoff = options_.reconnect_initial;
      Dial(*sender);
    }
    return;
  }
  raft::Message message;
  if (!message.ParseFromString(payload)) {
    LOG(WARNING) << "malformed peer frame from " << conn->remote()
                 << "; closing the connection";
    conn->Close(Status::Corruption("malformed peer frame"));
    return;
  }
  if (message.from() != *sender) {
    LOG(WARNING) << "peer connection from " << conn->remote()
                 << " changed sender id; closing";
    conn->Close(Status::Corruption("sender id changed"));
    return;
  }
  on_message_(std::move(message));
}

void PeerTransport::Dial(uint64_t peer) {
  if (stopped_) return;
  auto found = outbound_.find(peer);
  if (found == outbound_.end()) return;
  Outbound& out = found->second;
  if (out.connection || out.dialing || out.handshaking != 0) return;
  out.dialing = std::make_unique<asio::ip::tcp::socket>(io_);
  // Dial from our own peer address, so that every packet between two nodes
  // names both of them (logs, firewall rules). IP_BIND_ADDRESS_NO_PORT
  // leaves the port to connect(), which may share it across destinations;
  // a bind-time port would be exclusive and come from the range that other
  // programs' listening sockets take their free ports from. Unbound if
  // anything fails.
  std::error_code ec;
  out.dialing->open(out.address.protocol(), ec);
  if (!ec && !listen_address_.address().is_unspecified()) {
    const int one = 1;
    ::setsockopt(out.dialing->native_handle(), IPPROTO_IP,
                 IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    out.dialing->bind({listen_address_.address(), 0}, ec);
  }
  if (ec) {
    LOG_FIRST_N(WARNING, 1)
        << "cannot dial peers from " << listen_address_.address().to_string()
        << ": " << ec.message();
  }
  out.dialing->async_connect(
      out.address,
      [this, peer](const std::error_code& ec) { OnDialed(peer, ec); });
}

void PeerTransport::OnDialed(uint64_t peer, const std::error_code& ec) {
  if (stopped_) return;
  auto found = outbound_.find(peer);
  if (found == outbound_.end()) return;  // no longer a peer
  Outbound& out = found->second;
  std::unique_ptr<asio::ip::tcp::socket> socket = std::move(out.dialing);
  if (ec) {
    ScheduleDial(peer);
    return;
  }
  ConfigureSocket(*socket);
  if (!tls_dial_) {
    Connected(peer, std::move(*socket), nullptr);
    return;
  }
  const uint64_t dial = next_dial_++;
  out.handshaking = dial;
  std::weak_ptr<char> alive = alive_;
  wire::AsyncTlsHandshake(
      std::move(*socket), tls_dial_->Current(),
      out.address.address().to_string(), kTlsHandshakeTimeout,
      [this, alive, peer, dial](Status s, asio::ip::tcp::socket socket,
                                std::unique_ptr<wire::TlsSession> session) {
        if (alive.expired() || stopped_) return;
        auto found = outbound_.find(peer);
        if (found == outbound_.end() || found->second.handshaking != dial) {
          return;  // no longer a peer (or dropped and added again)
        }
        Outbound& out = found->second;
        out.handshaking = 0;
        if (s.ok()) {
          out.tls_error.clear();
          Connected(peer, std::move(socket), std::move(session));
          return;
        }
        const auto now = std::chrono::steady_clock::now();
        if (s.message() != out.tls_error ||
            now - out.tls_error_logged >= std::chrono::seconds(10)) {
          out.tls_error = s.message();
          out.tls_error_logged = now;
          LOG(WARNING) << "cannot connect to peer " << peer << ": "
                       << s.ToString();
        }
        ScheduleDial(peer);
      });
}

void PeerTransport::Connected(uint64_t peer, asio::ip::tcp::socket socket,
                              std::unique_ptr<wire::TlsSession> tls) {
  Outbound& out = outbound_.at(peer);
  wire::ConnectionLimits limits{options_.max_frame_bytes,
                                options_.max_queued_bytes};
  out.connection = std::make_shared<wire::FramedConnection>(
      std::move(socket), limits, std::move(tls));
  out.backoff = options_.reconnect_initial;
  if (out.down_reported) {
    LOG(INFO) << "connected to peer " << peer << " at "
              << out.connection->remote();
  }
  out.down_reported = false;
  out.connection->Send(
      EncodePeerHello(options_.cluster_id, self_, self_address_));
  out.connection->Start(
      [this](std::string payload) { OnOutboundFrame(payload); },
      [this, peer](const Status& reason) {
        auto it = outbound_.find(peer);
        if (it == outbound_.end()) return;  // dropped: no longer a peer
        it->second.connection.reset();
        if (stopped_) return;
        PeerDown(peer, "outbound connection: " + reason.ToString());
        ScheduleDial(peer);
      });
}

void PeerTransport::OnOutboundFrame(const std::string& payload) {
  uint64_t cluster_id = 0, node = raft::kNone;
  if (!DecodePeerRemoved(payload, &cluster_id, &node) ||
      cluster_id != options_.cluster_id || node != self_ || removal_reported_) {
    return;
  }
  removal_reported_ = true;
  LOG(WARNING) << "a peer says this node (" << self_
               << ") was removed from cluster " << ClusterIdText(cluster_id);
  if (hooks_.removed) hooks_.removed();
}

void PeerTransport::ScheduleDial(uint64_t peer) {
  auto found = outbound_.find(peer);
  if (found == outbound_.end()) return;
  Outbound& out = found->second;
  const auto delay = out.backoff;
  out.backoff = std::min(out.backoff * 2, options_.reconnect_max);
  out.retry_timer->expires_after(delay);
  out.retry_timer->async_wait([this, peer](const std::error_code& ec) {
    if (!ec) Dial(peer);
  });
}

void PeerTransport::Refuse(const std::shared_ptr<wire::FramedConnection>& conn,
                           const std::string& why, bool close) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_refusal_logged_ >= std::chrono::seconds(10)) {
    last_refusal_logged_ = now;
    LOG(WARNING) << "refusing the peer connection from " << conn->remote()
                 << ": " << why;
  }
  if (close) {
    conn->Close(Status::FailedPrecondition("not a peer of this cluster"));
  }
}

void PeerTransport::PeerDown(uint64_t peer, const std::string& why) {
  auto found = outbound_.find(peer);
  if (found == outbound_.end()) return;
  Outbound& out = found->second;
  if (!out.down_reported) {
    LOG(INFO) << "lost connection to peer " << peer << " (" << why << ")";
  }
  out.down_reported = true;
  if (on_peer_down_) on_peer_down_(peer);
}

void PeerTransport::Send(const raft::Message& message) {
  auto it = outbound_.find(message.to());
  if (it == outbound_.end()) return;
  Outbound& out = it->second;
  if (!out.connection || !out.connection->Send(message.SerializeAsString())) {
    if (on_unreachable_) on_unreachable_(message.to());
  }
}

bool PeerTransport::connected(uint64_t peer) const {
  auto it = outbound_.find(peer);
  return it != outbound_.end() && it->second.connection != nullptr;
}

}  // namespace raftkv::server
