// ClientService: accepts client connections and turns their frames into
// ClientRequests for the node, and the node's answers back into frames.
//
// A frame that does not parse, or that exceeds the frame limit, closes that
// connection (logged); nothing else is affected. With TLS (set_tls) every
// connection first completes a handshake; one that fails (an untrusted or
// missing client certificate, a plain client) is logged with the remote
// address and closed. Many requests may be in
// flight per connection; responses carry the request id, in any order.
//
// Thread-safety: everything runs on the io_context's thread.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "client/framed_connection.h"
#include "client/kv.pb.h"
#include "server/node_metrics.h"
#include "server/response_encoder.h"
#include "server/server_config.h"
#include "util/status.h"

namespace raftkv::wire {
class ReloadingTlsContext;
class TlsSession;
}  // namespace raftkv::wire

namespace raftkv::server {

// A response carrying only an error.
kv::ClientResponse ErrorResponse(kv::ErrorCode error, std::string message);
// NOT_LEADER from node `self`, naming the leader it knows (0: none) and its
// client address (may be empty).
kv::ClientResponse NotLeaderResponse(uint64_t self, uint64_t lead,
                                     const std::string& leader_address);

// Sends the response to one request (no-op if the client has gone).
// Copyable; may be called once, at any later time, on the io thread.
class Responder {
 public:
  // Large answers are encoded by `encoder` (if it is still there).
  Responder(std::weak_ptr<wire::FramedConnection> connection,
            uint64_t request_id, std::weak_ptr<ResponseEncoder> encoder = {})
      : connection_(std::move(connection)),
        request_id_(request_id),
        encoder_(std::move(encoder)) {}
  void operator()(kv::ClientResponse response) const;
  uint64_t request_id() const { return request_id_; }
  // The connection the request came on (a watch lives there).
  const std::weak_ptr<wire::FramedConnection>& connection() const {
    return connection_;
  }
  // Counts the answer, and the time since `start`, in `metrics`.
  void set_metrics(NodeMetrics::Requests* metrics,
                   std::chrono::steady_clock::time_point start) {
    metrics_ = metrics;
    start_ = start;
  }

 private:
  std::weak_ptr<wire::FramedConnection> connection_;
  uint64_t request_id_;
  std::weak_ptr<ResponseEncoder> encoder_;
  NodeMetrics::Requests* metrics_ = nullptr;
  std::chrono::steady_clock::time_point start_;
};

class ClientService {
 public:
  using Handler =
      std::function<void(kv::ClientRequest request, Responder respond)>;

  ClientService(asio::io_context& io, size_t max_frame_bytes);
  ~ClientService();

  // A request that takes its connection over (a backup streams the image
  // on it after the response): the handler owns `fd` from then on.
  using StreamHandler = std::function<void(kv::ClientRequest request, int fd)>;

  // TLS on this listener (before Start; files.enabled(): on). The files are
  // loaded by Start (an error if they do not load) and again whenever they
  // change, for new connections.
  void set_tls(const TlsFiles& files) { tls_files_ = files; }
  Status Start(const asio::ip::tcp::endpoint& listen, Handler handler);
  void set_stream_handler(StreamHandler handler) {
    stream_handler_ = std::move(handler);
  }
  // Told when a connection closes (its watches end).
  using CloseHandler = std::function<void(const wire::FramedConnection*)>;
  void set_close_handler(CloseHandler handler) {
    close_handler_ = std::move(handler);
  }
  void Stop();
  size_t connection_count() const { return connections_.size(); }

 private:
  void Accept();
  void Serve(asio::ip::tcp::socket socket,
             std::unique_ptr<wire::TlsSession> tls);
  // A failed handshake, logged at most every 10 s (with how many more).
  void LogRefusal(const Status& why);
  void OnFrame(const std::shared_ptr<wire::FramedConnection>& conn,
               const std::string& payload);

  asio::io_context& io_;
  size_t max_frame_bytes_;
  asio::ip::tcp::acceptor acceptor_;
  std::set<std::shared_ptr<wire::FramedConnection>> connections_;
  Handler handler_;
  StreamHandler stream_handler_;
  CloseHandler close_handler_;
  bool stopped_ = false;
  TlsFiles tls_files_;
  std::shared_ptr<wire::ReloadingTlsContext> tls_;  // null: plain TCP
  std::shared_ptr<ResponseEncoder> encoder_;
  std::chrono::steady_clock::time_point last_refusal_logged_;
  uint64_t refusals_unlogged_ = 0;
  // Handshakes in progress hold a weak reference: gone once destroyed.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace raftkv::server
