// The client's retry engine: leader discovery through redirects, capped
// exponential back-off with jitter within each call's deadline, and the
// exactly-once session (register once, number every write, re-send the same
// number on retry). Never blocks the I/O thread.
#include "client/client_impl.h"

#include <glog/logging.h>

#include <algorithm>
#include <asio/connect.hpp>
#include <asio/post.hpp>
#include <cstring>

namespace raftkv {
namespace {

// "https://" (TLS) or "http://" before host:port, as etcdctl's endpoints.
bool StripScheme(std::string* address) {
  for (const char* scheme : {"https://", "http://"}) {
    if (address->rfind(scheme, 0) == 0) {
      address->erase(0, std::strlen(scheme));
      return scheme[4] == 's';
    }
  }
  return false;
}

StatusOr<asio::ip::tcp::endpoint> ParseEndpoint(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("endpoint '" + address +
                                   "' is not host:port");
  }
  std::string host = address.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  std::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) {
    return Status::InvalidArgument("endpoint '" + address +
                                   "': host must be an IP address");
  }
  char* end = nullptr;
  const unsigned long port =
      std::strtoul(address.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port == 0 || port > 65535) {
    return Status::InvalidArgument("endpoint '" + address + "': bad port");
  }
  return asio::ip::tcp::endpoint(ip, static_cast<uint16_t>(port));
}

bool IsSessionWrite(const kv::ClientRequest& request) {
  return request.has_command() && !request.command().has_register_client();
}

}  // namespace

struct Client::Impl::Call {
  explicit Call(asio::io_context& io) : timer(io) {}
  kv::ClientRequest request;
  Done done;
  Clock::time_point deadline;
  asio::steady_timer timer;
  bool pinned = false;  // SubmitTo: one endpoint, no retries
  size_t endpoint = 0;
  uint64_t request_id = 0;    // of the attempt in flight (0: none)
  Clock::time_point sent_at;  // of the attempt in flight
  int attempts = 0;
  std::chrono::milliseconds backoff{0};
  Status last_error = Status::Unavailable("no attempt made");
  bool finished = false;
  bool reauthenticated = false;  // after an INVALID_AUTH_TOKEN (once)
  // The client's token goes with the request (false: the caller's own,
  // e.g. an adapter's, which the client neither replaces nor renews).
  bool client_token = true;
};

Client::Impl::Impl(ClientOptions options)
    : options_(std::move(options)),
      deadline_(options_.deadline),
      work_(asio::make_work_guard(io_)),
      probe_timer_(io_),
      rng_(options_.seed != 0 ? options_.seed
                              : static_cast<uint64_t>(
                                    Clock::now().time_since_epoch().count())) {}

Status Client::Impl::Init() {
  if (options_.endpoints.empty()) {
    return Status::InvalidArgument("no endpoints given");
  }
  for (std::string& address : options_.endpoints) {
    if (StripScheme(&address)) options_.tls.enabled = true;
  }
  if (options_.tls.enabled) {
    wire::TlsConfig config;
    config.role = wire::TlsConfig::Role::kClient;
    config.ca_file = options_.tls.ca_file;
    config.cert_file = options_.tls.cert_file;
    config.key_file = options_.tls.key_file;
    config.verify_peer = !options_.tls.insecure_skip_verify;
    auto context = wire::TlsContext::Load(config);
    if (!context.ok()) return context.status();
    tls_ = *context;
  }
  for (const std::string& address : options_.endpoints) {
    auto tcp = ParseEndpoint(address);
    if (!tcp.ok()) return tcp.status();
    Endpoint e;
    e.address = address;
    e.tcp = *tcp;
    endpoints_.push_back(std::move(e));
  }
  next_endpoint_ = rng_() % endpoints_.size();
  auth_user_ = options_.user;
  auth_password_ = options_.password;
  thread_ = std::thread([this] { io_.run(); });
  return Status::OK();
}

Client::Impl::~Impl() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    closing_ = true;
    probe_timer_.cancel();
    auto calls = live_calls_;
    for (const auto& call : calls) {
      Finish(call, Status::Aborted("client destroyed"));
    }
    for (Endpoint& e : endpoints_) {
      if (e.connection) e.connection->Close(Status::Aborted("client closed"));
      if (e.abort_handshake) e.abort_handshake();
      if (e.connecting_socket) {
        std::error_code ec;
        e.connecting_socket->close(ec);
      }
    }
    work_.reset();
  });
  thread_.join();
}

void Client::Impl::Submit(kv::ClientRequest request,
                          std::chrono::milliseconds deadline, Done done) {
  auto call = std::make_shared<Call>(io_);
  call->request = std::move(request);
  call->done = std::move(done);
  call->deadline = Clock::now() + deadline;
  asio::post(io_, [this, call] { Start(call); });
}

void Client::Impl::SubmitTo(size_t endpoint, kv::ClientRequest request,
                            std::chrono::milliseconds deadline, Done done) {
  auto call = std::make_shared<Call>(io_);
  call->request = std::move(request);
  call->done = std::move(done);
  call->deadline = Clock::now() + deadline;
  call->pinned = true;
  call->endpoint = endpoint;
  asio::post(io_, [this, call] { Start(call); });
}

void Client::Impl::Start(std::shared_ptr<Call> call) {
  live_calls_.insert(call);
  call->backoff = options_.backoff_initial;
  call->client_token = call->request.auth_token().empty();
  if (!auth_user_.empty() && !auth_settled_ && call->client_token &&
      !call->request.has_authenticate()) {
    // Credentials given: the first request waits for a token (etcd's
    // clientv3 authenticates when it connects).
    StartAuthentication([this, call](Status s) {
      if (call->finished) return;
      if (!s.ok()) {
        Finish(call, s);
        return;
      }
      StartAuthenticated(call);
    });
    return;
  }
  StartAuthenticated(call);
}

namespace {

bool IsAuthNotEnabled(const Status& s) {
  return s.message() == "etcdserver: authentication is not enabled";
}

}  // namespace

void Client::Impl::Authenticate(std::string user, std::string password,
                                std::function<void(Status)> done) {
  asio::post(io_, [this, user = std::move(user), password = std::move(password),
                   done = std::move(done)]() mutable {
    auth_user_ = std::move(user);
    auth_password_ = std::move(password);
    token_.clear();
    auth_settled_ = false;
    StartAuthentication(std::move(done));
  });
}

void Client::Impl::RefreshToken(std::function<void(Status)> done) {
  if (auth_user_.empty()) {
    done(Status::Unauthenticated("no credentials to authenticate with"));
    return;
  }
  auth_settled_ = false;
  StartAuthentication(std::move(done));
}

void Client::Impl::StartAuthentication(std::function<void(Status)> done) {
  auth_waiters_.push_back(std::move(done));
  if (authenticating_) return;
  authenticating_ = true;
  auto call = std::make_shared<Call>(io_);
  call->request.mutable_authenticate()->set_name(auth_user_);
  call->request.mutable_authenticate()->set_password(auth_password_);
  call->deadline = Clock::now() + deadline_.load();
  call->done = [this](StatusOr<kv::ClientResponse> r) {
    authenticating_ = false;
    Status s;
    if (r.ok()) {
      token_ = r->authenticate().token();
      auth_settled_ = true;
    } else if (IsAuthNotEnabled(r.status())) {
      token_.clear();  // nothing to authenticate against: no token
      auth_settled_ = true;
    } else {
      s = r.status();
    }
    auto waiters = std::move(auth_waiters_);
    auth_waiters_.clear();
    for (auto& w : waiters) w(s);
  };
  live_calls_.insert(call);
  call->backoff = options_.backoff_initial;
  Attempt(call);
}

void Client::Impl::StartAuthenticated(std::shared_ptr<Call> call) {
  if (!IsSessionWrite(call->request)) {
    Attempt(call);
    return;
  }
  if (client_id_ != 0) {
    StartWrite(call);
    return;
  }
  waiting_for_session_.push_back(call);
  if (registering_) return;
  registering_ = true;
  kv::ClientRequest reg;
  reg.mutable_command()->mutable_register_client();
  auto reg_call = std::make_shared<Call>(io_);
  reg_call->request = std::move(reg);
  reg_call->deadline = call->deadline;
  reg_call->done = [this](StatusOr<kv::ClientResponse> r) {
    OnSessionRegistered(std::move(r));
  };
  live_calls_.insert(reg_call);
  reg_call->backoff = options_.backoff_initial;
  Attempt(reg_call);
}

void Client::Impl::OnSessionRegistered(StatusOr<kv::ClientResponse> result) {
  registering_ = false;
  auto waiting = std::move(waiting_for_session_);
  waiting_for_session_.clear();
  if (!result.ok()) {
    for (auto& call : waiting) {
      Finish(call, Status::Unavailable("could not open a client session: " +
                                       result.status().message()));
    }
    return;
  }
  client_id_ = result->command().register_client().client_id();
  client_id_published_.store(client_id_);
  VLOG(1) << "client session " << client_id_ << " registered";
  for (auto& call : waiting) StartWrite(call);
}

void Client::Impl::StartWrite(std::shared_ptr<Call> call) {
  const uint64_t sequence = next_sequence_++;
  outstanding_.insert(sequence);
  kv::Command* command = call->request.mutable_command();
  command->set_client_id(client_id_);
  command->set_sequence(sequence);
  Attempt(call);
}

size_t Client::Impl::PickEndpoint() {
  if (leader_ != kNoLeader) return leader_;
  const size_t e = next_endpoint_;
  next_endpoint_ = (next_endpoint_ + 1) % endpoints_.size();
  return e;
}

void Client::Impl::Attempt(std::shared_ptr<Call> call) {
  if (call->finished) return;
  const auto now = Clock::now();
  if (now >= call->deadline) {
    Finish(call,
           Status::Unavailable(
               "deadline exceeded after " + std::to_string(call->attempts) +
               " attempts; last error: " + call->last_error.ToString()));
    return;
  }
  if (call->request.has_command() && call->request.command().sequence() != 0) {
    // Everything below the lowest unanswered sequence has been answered.
    call->request.mutable_command()->set_first_outstanding(
        *outstanding_.begin());
  }
  ++call->attempts;
  if (call->client_token && !call->request.has_authenticate()) {
    call->request.set_auth_token(token_);
  }
  if (!call->pinned) call->endpoint = PickEndpoint();
  const auto attempt_deadline =
      std::min(call->deadline, now + AttemptTimeout(*call));
  call->timer.expires_at(attempt_deadline);
  call->timer.async_wait([this, call](const std::error_code& ec) {
    if (ec || call->finished) return;
    Endpoint& e = endpoints_[call->endpoint];
    if (call->request_id != 0) e.in_flight.erase(call->request_id);
    call->request_id = 0;
    const size_t waiting = e.waiting.size();
    e.waiting.erase(std::remove(e.waiting.begin(), e.waiting.end(), call),
                    e.waiting.end());
    if (waiting != e.waiting.size() && e.connecting_socket) {
      // A connect that hangs (e.g. a partition dropping SYNs) is abandoned,
      // so the next call starts a fresh one.
      std::error_code ignored;
      e.connecting_socket->close(ignored);
    }
    call->last_error = Status::Timeout("no answer from " + e.address +
                                       " within the attempt "
                                       "timeout");
    ForgetLeaderAt(call->endpoint);
    RetryLater(call, /*immediately=*/true);
  });
  SendOn(call->endpoint, call);
}

std::chrono::milliseconds Client::Impl::AttemptTimeout(const Call& call) const {
  // A range that may cover many keys can take seconds to read (a million
  // keys); cutting it off after attempt_timeout would only start it again.
  // A leader that hangs is still left by the leader probe, a node that
  // dies by its connection closing.
  const kv::ClientRequest& r = call.request;
  if (r.has_range() && !r.range().range_end().empty() &&
      (r.range().limit() == 0 || r.range().limit() > kShortRangeLimit)) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(call.deadline -
                                                                 Clock::now());
  }
  return options_.attempt_timeout;
}

void Client::Impl::SendOn(size_t endpoint, std::shared_ptr<Call> call) {
  Endpoint& e = endpoints_[endpoint];
  if (!e.connection || !e.connection->open()) {
    e.waiting.push_back(call);
    if (!e.connecting) Connect(endpoint);
    return;
  }
  call->request_id = next_request_id_++;
  call->request.set_request_id(call->request_id);
  const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
      call->deadline - Clock::now());
  call->request.set_timeout_ms(
      std::max<int64_t>(1, std::min(remaining, AttemptTimeout(*call)).count()));
  e.in_flight[call->request_id] = call;
  call->sent_at = Clock::now();
  if (endpoint == leader_ && !call->pinned) ArmLeaderProbe();
  if (!e.connection->Send(call->request.SerializeAsString())) {
    e.in_flight.erase(call->request_id);
    call->request_id = 0;
    call->last_error =
        Status::Unavailable("send queue to " + e.address + " is full");
    RetryLater(call, /*immediately=*/false);
  }
}

void Client::Impl::Connect(size_t endpoint) {
  Endpoint& e = endpoints_[endpoint];
  e.connecting = true;
  e.connecting_socket = std::make_unique<asio::ip::tcp::socket>(io_);
  e.connecting_socket->async_connect(
      e.tcp, [this, endpoint](const std::error_code& ec) {
        OnConnected(endpoint, ec);
      });
}

void Client::Impl::OnConnected(size_t endpoint, const std::error_code& ec) {
  Endpoint& e = endpoints_[endpoint];
  std::unique_ptr<asio::ip::tcp::socket> socket =
      std::move(e.connecting_socket);
  if (ec) {
    Connected(
        endpoint,
        Status::Unavailable("connect to " + e.address + ": " + ec.message()),
        asio::ip::tcp::socket(io_), nullptr);
    return;
  }
  if (!tls_) {
    Connected(endpoint, Status::OK(), std::move(*socket), nullptr);
    return;
  }
  const std::string name = !options_.tls.server_name.empty()
                               ? options_.tls.server_name
                               : e.tcp.address().to_string();
  e.abort_handshake = wire::AsyncTlsHandshake(
      std::move(*socket), tls_, name, options_.attempt_timeout,
      [this, endpoint](Status s, asio::ip::tcp::socket socket,
                       std::unique_ptr<wire::TlsSession> session) {
        endpoints_[endpoint].abort_handshake = nullptr;
        Connected(endpoint, std::move(s), std::move(socket),
                  std::move(session));
      });
}

void Client::Impl::Connected(size_t endpoint, Status status,
                             asio::ip::tcp::socket socket,
                             std::unique_ptr<wire::TlsSession> tls) {
  Endpoint& e = endpoints_[endpoint];
  e.connecting = false;
  auto waiting = std::move(e.waiting);
  e.waiting.clear();
  if (!status.ok()) {
    const Status error =
        status.IsUnavailable() ? status : Status::Unavailable(status.message());
    ForgetLeaderAt(endpoint);
    for (auto& call : waiting) {
      if (call->finished) continue;
      call->last_error = error;
      call->timer.cancel();
      RetryLater(call, /*immediately=*/false);
    }
    FailStreams(endpoint, error);
    return;
  }
  wire::ConnectionLimits limits;
  limits.max_frame_bytes = options_.max_response_bytes;
  e.connection = std::make_shared<wire::FramedConnection>(
      std::move(socket), limits, std::move(tls));
  e.connection->Start(
      [this, endpoint](std::string payload) { OnFrame(endpoint, payload); },
      [this, endpoint](const Status& reason) { OnClosed(endpoint, reason); });
  for (auto& call : waiting) {
    if (!call->finished) SendOn(endpoint, call);
  }
  auto streams = std::move(e.waiting_streams);
  e.waiting_streams.clear();
  for (const kv::ClientRequest& request : streams) {
    if (e.streams.count(request.request_id()) == 0) continue;  // closed
    if (!e.connection->Send(request.SerializeAsString())) {
      e.connection->Close(
          Status::Unavailable("send queue to " + e.address + " is full"));
      return;
    }
  }
}

uint64_t Client::Impl::OpenStream(size_t endpoint, kv::ClientRequest request,
                                  StreamHandler handler) {
  if (request.auth_token().empty()) request.set_auth_token(token_);
  Endpoint& e = endpoints_[endpoint];
  const uint64_t id = next_request_id_++;
  request.set_request_id(id);
  e.streams[id] = std::move(handler);
  if (!e.connection || !e.connection->open()) {
    e.waiting_streams.push_back(std::move(request));
    if (!e.connecting) Connect(endpoint);
    return id;
  }
  if (!e.connection->Send(request.SerializeAsString())) {
    e.connection->Close(
        Status::Unavailable("send queue to " + e.address + " is full"));
  }
  return id;
}

void Client::Impl::CloseStream(size_t endpoint, uint64_t request_id,
                               const kv::ClientRequest* farewell) {
  Endpoint& e = endpoints_[endpoint];
  if (e.streams.erase(request_id) == 0) return;
  if (farewell != nullptr && e.connection && e.connection->open()) {
    kv::ClientRequest r = *farewell;
    r.set_request_id(next_request_id_++);
    e.connection->Send(r.SerializeAsString());
  }
}

void Client::Impl::FailStreams(size_t endpoint, const Status& reason) {
  Endpoint& e = endpoints_[endpoint];
  auto streams = std::move(e.streams);
  e.streams.clear();
  e.waiting_streams.clear();
  for (auto& [id, handler] : streams) handler(reason);
}

void Client::Impl::OnFrame(size_t endpoint, const std::string& payload) {
  kv::ClientResponse response;
  Endpoint& e = endpoints_[endpoint];
  if (!response.ParseFromString(payload)) {
    e.connection->Close(
        Status::Corruption("malformed response from " + e.address));
    return;
  }
  auto it = e.in_flight.find(response.request_id());
  if (it == e.in_flight.end()) {
    auto stream = e.streams.find(response.request_id());
    // Copied: the handler may close its stream.
    if (stream != e.streams.end()) {
      StreamHandler handler = stream->second;
      handler(std::move(response));
    }
    return;  // or a late answer to a timed-out try
  }
  auto call = it->second;
  e.in_flight.erase(it);
  call->request_id = 0;
  call->timer.cancel();
  OnResponse(call, std::move(response));
}

void Client::Impl::OnClosed(size_t endpoint, const Status& reason) {
  Endpoint& e = endpoints_[endpoint];
  auto in_flight = std::move(e.in_flight);
  e.in_flight.clear();
  ForgetLeaderAt(endpoint);
  for (auto& [id, call] : in_flight) {
    if (call->finished) continue;
    call->request_id = 0;
    call->last_error = reason;
    call->timer.cancel();
    if (reason.code() == Status::Code::kTooLarge && call->request.has_range()) {
      // An answer over max_response_bytes: asking again gets it again. (Any
      // range in flight here may have been the one; they all fail.)
      Finish(call, Status::TooLarge("the answer of a range is too large for "
                                    "this client (max_response_bytes): " +
                                    reason.message()));
      continue;
    }
    // The node died or restarted: another node is worth trying at once.
    RetryLater(call, /*immediately=*/true);
  }
  FailStreams(endpoint, closing_ ? Status::Aborted("client closed")
                                 : Status::Unavailable(e.address + ": " +
                                                       reason.ToString()));
}

void Client::Impl::OnResponse(std::shared_ptr<Call> call,
                              kv::ClientResponse response) {
  const std::string& from = endpoints_[call->endpoint].address;
  switch (response.error()) {
    case kv::OK:
      if (!call->pinned) leader_ = call->endpoint;
      Finish(call, std::move(response));
      return;
    case kv::NOT_LEADER: {
      call->last_error =
          Status::NotLeader(from + ": " + response.error_message());
      if (call->pinned) break;
      const size_t old_leader = leader_;
      leader_ = response.leader_address().empty()
                    ? kNoLeader
                    : EndpointFor(response.leader_address());
      // A fresh hint is worth following at once; otherwise back off while
      // the cluster elects.
      RetryLater(call, leader_ != kNoLeader && leader_ != old_leader &&
                           leader_ != call->endpoint);
      return;
    }
    case kv::UNAVAILABLE:
    case kv::TIMEOUT:
    case kv::STORAGE:
      call->last_error =
          Status::Unavailable(from + ": " + response.error_message());
      if (call->pinned) break;
      if (response.error() == kv::STORAGE) ForgetLeaderAt(call->endpoint);
      RetryLater(call, /*immediately=*/false);
      return;
    case kv::SESSION_EXPIRED:
      client_id_ = 0;
      client_id_published_.store(0);
      Finish(call,
             Status::Aborted("client session expired; the write's outcome is "
                             "unknown: " +
                             response.error_message()));
      return;
    case kv::TOO_LARGE:
      Finish(call, Status::TooLarge(response.error_message()));
      return;
    case kv::COMPACTED:
      Finish(call, Status::Compacted(response.error_message()));
      return;
    case kv::FUTURE_REVISION:
      Finish(call, Status::FailedPrecondition(response.error_message()));
      return;
    case kv::LEASE_NOT_FOUND:
      Finish(call, Status::NotFound(response.error_message()));
      return;
    case kv::INVALID_AUTH_TOKEN:
    case kv::USER_EMPTY:
      // An expired or outdated token, or none while the cluster has
      // enabled authentication since: authenticate again, once, and retry.
      if ((response.error() == kv::INVALID_AUTH_TOKEN ||
           call->request.auth_token().empty()) &&
          call->client_token && !call->reauthenticated && !auth_user_.empty() &&
          !call->request.has_authenticate()) {
        call->reauthenticated = true;
        call->timer.cancel();
        auth_settled_ = false;
        StartAuthentication([this, call](Status s) {
          if (call->finished) return;
          if (!s.ok()) {
            Finish(call, s);
            return;
          }
          Attempt(call);
        });
        return;
      }
      if (response.error() == kv::USER_EMPTY) {
        Finish(call, Status::InvalidArgument(response.error_message()));
      } else {
        Finish(call, Status::Unauthenticated(response.error_message()));
      }
      return;
    case kv::AUTH_FAILED:
      Finish(call, Status::Unauthenticated(response.error_message()));
      return;
    case kv::PERMISSION_DENIED:
      Finish(call, Status::PermissionDenied(response.error_message()));
      return;
    case kv::AUTH_NOT_ENABLED:
    case kv::USER_NOT_FOUND:
    case kv::USER_ALREADY_EXISTS:
    case kv::ROLE_NOT_FOUND:
    case kv::ROLE_ALREADY_EXISTS:
    case kv::ROOT_USER_NOT_EXIST:
    case kv::ROOT_ROLE_NOT_EXIST:
    case kv::PERMISSION_NOT_GRANTED:
    case kv::ROLE_NOT_GRANTED:
      // As etcd's gRPC codes; USER_EMPTY, ROLE_EMPTY, INVALID_AUTH_MGMT and
      // PERMISSION_NOT_GIVEN are InvalidArgument (below).
      Finish(call, Status::FailedPrecondition(response.error_message()));
      return;
    default:
      Finish(call, Status::InvalidArgument(response.error_message()));
      return;
  }
  Finish(call, call->last_error);  // pinned call: no retries
}

void Client::Impl::RetryLater(std::shared_ptr<Call> call, bool immediately) {
  if (call->finished) return;
  if (call->pinned) {
    Finish(call, call->last_error);
    return;
  }
  auto delay = immediately ? std::chrono::milliseconds(0) : NextBackoff(*call);
  const auto at = std::min(call->deadline, Clock::now() + delay);
  call->timer.expires_at(at);
  call->timer.async_wait([this, call](const std::error_code& ec) {
    if (!ec) Attempt(call);
  });
}

std::chrono::milliseconds Client::Impl::NextBackoff(Call& call) {
  // Full jitter in [backoff/2, backoff], then double up to the cap.
  const int64_t ms = std::max<int64_t>(1, call.backoff.count());
  std::uniform_int_distribution<int64_t> dist(ms / 2, ms);
  const auto delay = std::chrono::milliseconds(dist(rng_));
  call.backoff = std::min(call.backoff * 2, options_.backoff_max);
  return delay;
}

void Client::Impl::Finish(std::shared_ptr<Call> call,
                          StatusOr<kv::ClientResponse> result) {
  if (call->finished) return;
  call->finished = true;
  call->timer.cancel();
  if (call->request_id != 0) {
    endpoints_[call->endpoint].in_flight.erase(call->request_id);
  }
  if (IsSessionWrite(call->request) && call->request.command().sequence()) {
    outstanding_.erase(call->request.command().sequence());
  }
  live_calls_.erase(call);
  if (call->done) call->done(std::move(result));
}

size_t Client::Impl::EndpointFor(const std::string& address) {
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i].address == address) return i;
  }
  // A node we were not told about (or named differently): add it.
  auto tcp = ParseEndpoint(address);
  if (!tcp.ok()) return kNoLeader;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i].tcp == *tcp) return i;
  }
  Endpoint e;
  e.address = address;
  e.tcp = *tcp;
  endpoints_.push_back(std::move(e));
  return endpoints_.size() - 1;
}

void Client::Impl::ArmLeaderProbe() {
  if (probe_armed_ || options_.leader_probe_after.count() <= 0 ||
      endpoints_.size() < 2) {
    return;
  }
  probe_armed_ = true;
  probe_timer_.expires_after(options_.leader_probe_after);
  probe_timer_.async_wait([this](const std::error_code& ec) {
    probe_armed_ = false;
    if (!ec) OnLeaderProbeTimer();
  });
}

void Client::Impl::OnLeaderProbeTimer() {
  if (leader_ == kNoLeader) return;
  // Is a request to the leader older than the probe threshold?
  const auto now = Clock::now();
  bool overdue = false, waiting = false;
  for (const auto& [id, call] : endpoints_[leader_].in_flight) {
    if (call->pinned) continue;
    waiting = true;
    if (now - call->sent_at >= options_.leader_probe_after) overdue = true;
  }
  if (!waiting) return;  // re-armed by the next request sent
  if (!overdue || probes_in_flight_ > 0) {
    ArmLeaderProbe();
    return;
  }
  // Ask every other node (a status request each, answered locally).
  kv::ClientRequest status;
  status.mutable_status();
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (i == leader_) continue;
    ++probes_in_flight_;
    auto call = std::make_shared<Call>(io_);
    call->request = status;
    call->deadline = now + options_.leader_probe_after;
    call->pinned = true;
    call->endpoint = i;
    call->done = [this, i](StatusOr<kv::ClientResponse> answer) {
      --probes_in_flight_;
      OnProbeAnswer(i, std::move(answer));
    };
    Start(call);
  }
  ArmLeaderProbe();
}

void Client::Impl::OnProbeAnswer(size_t endpoint,
                                 StatusOr<kv::ClientResponse> answer) {
  if (!answer.ok() || !answer->has_status() || leader_ == kNoLeader) return;
  const kv::StatusResponse& st = answer->status();
  if (st.leader_id() == 0) return;  // electing: ask again next round
  std::string address;
  for (const kv::MemberStatus& m : st.members()) {
    if (m.id() == st.leader_id()) address = m.client_address();
  }
  if (address.empty()) return;
  const size_t named = EndpointFor(address);
  if (named == kNoLeader) return;
  if (named == leader_) {
    leader_term_ = std::max(leader_term_, st.term());
    return;
  }
  // Another leader in a newer term than ours was seen in: ours lost it.
  if (st.term() <= leader_term_) return;
  VLOG(1) << endpoints_[endpoint].address << " names "
          << endpoints_[named].address << " leader at term " << st.term()
          << "; leaving " << endpoints_[leader_].address;
  const size_t old = leader_;
  leader_ = named;
  leader_term_ = st.term();
  Redirect(old);
}

void Client::Impl::Redirect(size_t from) {
  Endpoint& e = endpoints_[from];
  auto in_flight = std::move(e.in_flight);
  e.in_flight.clear();
  for (auto& [id, call] : in_flight) {
    if (call->pinned) {
      e.in_flight.emplace(id, call);
      continue;
    }
    if (call->finished) continue;
    call->request_id = 0;
    call->last_error = Status::Unavailable(
        e.address + " stopped answering; its peers follow another leader");
    call->timer.cancel();
    RetryLater(call, /*immediately=*/true);
  }
}

void Client::Impl::ForgetLeaderAt(size_t endpoint) {
  if (leader_ == endpoint) leader_ = kNoLeader;
  // Continue round robin after the failed node rather than retrying it.
  next_endpoint_ = (endpoint + 1) % endpoints_.size();
}

}  // namespace raftkv
