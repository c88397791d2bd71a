// Client::Impl: the client's I/O thread, its connections to the cluster's
// endpoints, leader tracking, the retry policy and the exactly-once session.
// Internal to client/: applications include client/client.h only.
//
// Everything below runs on the single I/O thread, except Submit(), which
// posts to it; so no state here needs a lock.
#pragma once

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/framed_connection.h"
#include "client/kv.pb.h"
#include "client/tls.h"

namespace raftkv {

class Client::Impl {
 public:
  using Clock = std::chrono::steady_clock;
  using Done = std::function<void(StatusOr<kv::ClientResponse>)>;

  explicit Impl(ClientOptions options);
  ~Impl();
  Status Init();

  // Sends `request` to the leader, retrying until `deadline`. Writes
  // (request.command with an op other than register_client) get the
  // session's id and a fresh sequence number first. `done` runs once, on
  // the I/O thread. A response with error OK is the only success.
  void Submit(kv::ClientRequest request, std::chrono::milliseconds deadline,
              Done done);
  // Authenticates as `user` (remembered: a request refused for an invalid
  // token re-authenticates once and is retried), and sends the token with
  // every later request. `done` runs once, on the I/O thread.
  void Authenticate(std::string user, std::string password,
                    std::function<void(Status)> done);
  // I/O thread: a new token for the credentials the client has (for a
  // stream refused for its token); Unauthenticated if it has none.
  void RefreshToken(std::function<void(Status)> done);
  // Sends once to one endpoint, without retries (status of that node).
  void SubmitTo(size_t endpoint, kv::ClientRequest request,
                std::chrono::milliseconds deadline, Done done);

  // Streams: a request answered by many frames (a watch). On the I/O
  // thread only. Sends `request` to `endpoint` (connecting first if
  // needed); every frame answering it goes to `handler` until CloseStream,
  // or until the connection fails or closes: then `handler` gets the
  // error, once, and the stream is gone. Returns the request id.
  using StreamHandler = std::function<void(StatusOr<kv::ClientResponse>)>;
  uint64_t OpenStream(size_t endpoint, kv::ClientRequest request,
                      StreamHandler handler);
  // Forgets the stream; `farewell` (if set) is sent on its connection.
  void CloseStream(size_t endpoint, uint64_t request_id,
                   const kv::ClientRequest* farewell);
  // The endpoint a new stream should use: the leader if known, otherwise
  // the next in turn (I/O thread).
  size_t NextEndpoint() { return PickEndpoint(); }
  // The next endpoint after `endpoint` (a stream moving elsewhere).
  size_t EndpointAfter(size_t endpoint) const {
    return (endpoint + 1) % endpoints_.size();
  }
  asio::io_context& io() { return io_; }

  const ClientOptions& options() const { return options_; }
  std::chrono::milliseconds deadline() const { return deadline_.load(); }
  void set_deadline(std::chrono::milliseconds d) { deadline_.store(d); }
  uint64_t client_id() const { return client_id_published_.load(); }
  size_t endpoint_count() const { return endpoints_.size(); }
  const std::string& endpoint_address(size_t i) const {
    return endpoints_[i].address;
  }

 private:
  struct Call;
  struct Endpoint {
    std::string address;
    asio::ip::tcp::endpoint tcp;
    std::shared_ptr<wire::FramedConnection> connection;
    bool connecting = false;
    std::unique_ptr<asio::ip::tcp::socket> connecting_socket;
    std::function<void()> abort_handshake;       // TLS: while it is under way
    std::vector<std::shared_ptr<Call>> waiting;  // for the connection
    std::map<uint64_t, std::shared_ptr<Call>> in_flight;  // by request id
    std::map<uint64_t, StreamHandler> streams;            // by request id
    // Streams opened before the connection was up: sent once it is.
    std::vector<kv::ClientRequest> waiting_streams;
  };

  // Ends every stream of `endpoint` with `reason`.
  void FailStreams(size_t endpoint, const Status& reason);

  void Start(std::shared_ptr<Call> call);
  void StartAuthenticated(std::shared_ptr<Call> call);
  // One authenticate request for every waiter (ClientOptions::user).
  void StartAuthentication(std::function<void(Status)> done);
  void StartWrite(std::shared_ptr<Call> call);
  void Attempt(std::shared_ptr<Call> call);
  // How long one attempt of `call` may take: attempt_timeout, or for a
  // range of more than kShortRangeLimit keys the whole time left.
  static constexpr int64_t kShortRangeLimit = 1000;
  std::chrono::milliseconds AttemptTimeout(const Call& call) const;
  void SendOn(size_t endpoint, std::shared_ptr<Call> call);
  void Connect(size_t endpoint);
  void OnConnected(size_t endpoint, const std::error_code& ec);
  // The connection attempt ended: `socket` is ready (and its `tls`
  // session, if any) if `status` is OK.
  void Connected(size_t endpoint, Status status, asio::ip::tcp::socket socket,
                 std::unique_ptr<wire::TlsSession> tls);
  void OnFrame(size_t endpoint, const std::string& payload);
  void OnClosed(size_t endpoint, const Status& reason);
  void OnResponse(std::shared_ptr<Call> call, kv::ClientResponse response);
  void RetryLater(std::shared_ptr<Call> call, bool immediately);
  void Finish(std::shared_ptr<Call> call, StatusOr<kv::ClientResponse> result);
  void OnSessionRegistered(StatusOr<kv::ClientResponse> result);
  size_t PickEndpoint();
  size_t EndpointFor(const std::string& address);
  void ForgetLeaderAt(size_t endpoint);
  // The leader probe (ClientOptions::leader_probe_after).
  void ArmLeaderProbe();
  void OnLeaderProbeTimer();
  void OnProbeAnswer(size_t endpoint, StatusOr<kv::ClientResponse> answer);
  // Sends every call waiting on endpoint `from` to the leader now.
  void Redirect(size_t from);
  std::chrono::milliseconds NextBackoff(Call& call);

  ClientOptions options_;
  std::shared_ptr<const wire::TlsContext> tls_;  // null: plain TCP
  std::atomic<std::chrono::milliseconds> deadline_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;

  std::deque<Endpoint> endpoints_;  // deque: references stay valid
  static constexpr size_t kNoLeader = SIZE_MAX;
  size_t leader_ = kNoLeader;  // endpoint index of the believed leader
  size_t next_endpoint_ = 0;   // round robin when no leader is known
  uint64_t next_request_id_ = 1;
  asio::steady_timer probe_timer_;
  bool probe_armed_ = false;
  size_t probes_in_flight_ = 0;
  // The newest term in which a probe saw the believed leader leading.
  uint64_t leader_term_ = 0;
  std::mt19937_64 rng_;

  // Authentication (ClientOptions::user or Authenticate()).
  std::string auth_user_;
  std::string auth_password_;
  std::string token_;          // sent with every request ("": none)
  bool auth_settled_ = false;  // authenticated once, or auth not enabled
  bool authenticating_ = false;
  std::vector<std::function<void(Status)>> auth_waiters_;

  // Exactly-once session.
  uint64_t client_id_ = 0;
  std::atomic<uint64_t> client_id_published_{0};
  bool registering_ = false;
  std::vector<std::shared_ptr<Call>> waiting_for_session_;
  uint64_t next_sequence_ = 1;
  std::set<uint64_t> outstanding_;  // sequences without a final answer
  std::set<std::shared_ptr<Call>> live_calls_;
  bool closing_ = false;  // the Client is being destroyed
};

}  // namespace raftkv
