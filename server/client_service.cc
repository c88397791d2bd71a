// Client connections: accept, parse, dispatch, answer. Never blocks and
// never lets one bad client affect another.
#include "server/client_service.h"

#include <glog/logging.h>

#include "client/tls.h"
#include "server/server_tls.h"

namespace raftkv::server {

kv::ClientResponse ErrorResponse(kv::ErrorCode error, std::string message) {
  kv::ClientResponse response;
  response.set_error(error);
  response.set_error_message(std::move(message));
  return response;
}

kv::ClientResponse NotLeaderResponse(uint64_t self, uint64_t lead,
                                     const std::string& leader_address) {
  kv::ClientResponse response;
  response.set_error(kv::NOT_LEADER);
  response.set_leader_id(lead);
  if (lead == 0) {
    response.set_error_message("node " + std::to_string(self) +
                               " is not the leader; leader unknown");
    return response;
  }
  response.set_leader_address(leader_address);
  response.set_error_message(
      "node " + std::to_string(self) + " is not the leader; leader is " +
      std::to_string(lead) +
      (leader_address.empty() ? "" : " at " + leader_address));
  return response;
}

void Responder::operator()(kv::ClientResponse response) const {
  if (metrics_ != nullptr) {
    (response.error() == kv::OK ? metrics_->ok : metrics_->failed)->Inc();
    metrics_->latency->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
            .count());
  }
  auto conn = connection_.lock();
  if (!conn || !conn->open()) return;
  response.set_request_id(request_id_);
  if (ResponseEncoder::IsLarge(response)) {
    if (auto encoder = encoder_.lock()) {
      encoder->Encode(std::move(response), connection_);
      return;
    }
  }
  if (!conn->Send(response.SerializeAsString())) {
    conn->Close(Status::Unavailable("client is not reading its responses"));
  }
}

ClientService::ClientService(asio::io_context& io, size_t max_frame_bytes)
    : io_(io),
      max_frame_bytes_(max_frame_bytes),
      acceptor_(io),
      encoder_(std::make_shared<ResponseEncoder>(io)) {}

ClientService::~ClientService() { Stop(); }

Status ClientService::Start(const asio::ip::tcp::endpoint& listen,
                            Handler handler) {
  handler_ = std::move(handler);
  if (tls_files_.enabled()) {
    auto tls = wire::ReloadingTlsContext::Create(ListenerTlsConfig(tls_files_),
                                                 "client listener");
    if (!tls.ok()) return tls.status();
    tls_ = *tls;
  }
  std::error_code ec;
  acceptor_.open(listen.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(listen, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError("cannot listen for clients on " +
                           listen.address().to_string() + ":" +
                           std::to_string(listen.port()) + ": " + ec.message());
  }
  Accept();
  return Status::OK();
}

void ClientService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  std::error_code ec;
  acceptor_.close(ec);
  auto connections = connections_;
  for (auto& c : connections) c->Close(Status::Aborted("server stopping"));
  connections_.clear();
  encoder_->Stop();
}

void ClientService::Accept() {
  acceptor_.async_accept(
      [this](const std::error_code& ec, asio::ip::tcp::socket socket) {
        if (stopped_) return;
        if (ec) {
          LOG(WARNING) << "client accept failed: " << ec.message();
        } else if (tls_) {
          std::weak_ptr<char> alive = alive_;
          wire::AsyncTlsHandshake(
              std::move(socket), tls_->Current(), "", kTlsHandshakeTimeout,
              [this, alive](Status s, asio::ip::tcp::socket socket,
                            std::unique_ptr<wire::TlsSession> session) {
                if (alive.expired() || stopped_) return;
                if (!s.ok()) {
                  LogRefusal(s);
                  return;
                }
                Serve(std::move(socket), std::move(session));
              });
        } else {
          Serve(std::move(socket), nullptr);
        }
        Accept();
      });
}

void ClientService::LogRefusal(const Status& why) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_refusal_logged_ < std::chrono::seconds(10)) {
    ++refusals_unlogged_;
    return;
  }
  LOG(WARNING) << "client connection refused: " << why.ToString()
               << (refusals_unlogged_ == 0
                       ? ""
                       : " (and " + std::to_string(refusals_unlogged_) +
                             " more since the last one logged)");
  last_refusal_logged_ = now;
  refusals_unlogged_ = 0;
}

void ClientService::Serve(asio::ip::tcp::socket socket,
                          std::unique_ptr<wire::TlsSession> tls) {
  wire::ConnectionLimits limits;
  limits.max_frame_bytes = max_frame_bytes_;
  auto conn = std::make_shared<wire::FramedConnection>(std::move(socket),
                                                       limits, std::move(tls));
  connections_.insert(conn);
  std::weak_ptr<wire::FramedConnection> weak = conn;
  conn->Start(
      [this, weak](std::string payload) {
        if (auto c = weak.lock()) OnFrame(c, payload);
      },
      [this, weak](const Status& reason) {
        auto c = weak.lock();
        if (!c) return;
        if (!reason.IsUnavailable() &&
            reason.code() != Status::Code::kAborted) {
          LOG(WARNING) << "client " << c->remote()
                       << " disconnected: " << reason.ToString();
        }
        if (close_handler_) close_handler_(c.get());
        connections_.erase(c);
      });
}

void ClientService::OnFrame(const std::shared_ptr<wire::FramedConnection>& conn,
                            const std::string& payload) {
  kv::ClientRequest request;
  if (!request.ParseFromString(payload)) {
    LOG(WARNING) << "malformed request frame from client " << conn->remote()
                 << " (" << payload.size() << " bytes); closing connection";
    conn->Close(Status::Corruption("malformed request"));
    return;
  }
  if (request.has_snapshot_save() && stream_handler_) {
    std::string buffered;  // a backup's request is alone on its connection
    const int fd = conn->Release(&buffered);
    connections_.erase(conn);
    if (fd >= 0) stream_handler_(std::move(request), fd);
    return;
  }
  const uint64_t id = request.request_id();
  handler_(std::move(request), Responder(conn, id, encoder_));
}

}  // namespace raftkv::server
