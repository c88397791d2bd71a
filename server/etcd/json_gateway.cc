// etcd's JSON gateway on cpp-httplib, over EtcdOps (see json_gateway.h).
#include "server/etcd/json_gateway.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <glog/logging.h>
#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdlib>
#include <deque>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "client/tls.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/etcd/etcd_ops.h"
#include "server/etcd/watch_stream.h"
#include "server/server_tls.h"
#include "server/stage_thread.h"

namespace raftkv::server::etcd {
namespace {

using google::protobuf::Message;
using Clock = std::chrono::steady_clock;
using Handler =
    std::function<void(const httplib::Request&, httplib::Response&)>;

// etcd 3.4 serves /v3/ and /v3beta/; etcd 3.3 (and python3-etcd3gw's
// default) /v3alpha/.
constexpr const char* kPrefixes[] = {"/v3", "/v3beta", "/v3alpha"};
// How often an idle watch stream looks whether its client went away.
constexpr std::chrono::milliseconds kPeerCheckEvery{500};
// How long a stream waits for its first answer (the snapshot's first
// chunk) before the HTTP status is committed.
constexpr std::chrono::milliseconds kWaitSlice{100};

// grpc-gateway v1's runtime.HTTPStatusFromCode, which etcd 3.4's gateway
// uses (FailedPrecondition is 412 there, not 400).
int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 408;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return 412;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:
      return 500;  // Unknown, Internal, DataLoss
  }
}

// Go's http.StatusText for the statuses above.
const char* StatusText(int http) {
  switch (http) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 412:
      return "Precondition Failed";
    case 429:
      return "Too Many Requests";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Internal Server Error";
  }
}

std::string JsonString(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false,
                                   nlohmann::json::error_handler_t::replace);
}

// A unary error: {"error": msg, "message": msg, "code": n}, in etcd's order.
void WriteError(httplib::Response& res, const grpc::Status& status) {
  const std::string msg = JsonString(status.error_message());
  res.status = HttpStatusOf(status.error_code());
  res.set_content("{\"error\":" + msg + ",\"message\":" + msg +
                      ",\"code\":" + std::to_string(status.error_code()) + "}",
                  "application/json");
}

// An error ending a stream, as grpc-gateway v1 writes it.
std::string StreamErrorLine(const grpc::Status& status) {
  const int http = HttpStatusOf(status.error_code());
  return "{\"error\":{\"grpc_code\":" + std::to_string(status.error_code()) +
         ",\"http_code\":" + std::to_string(http) +
         ",\"message\":" + JsonString(status.error_message()) +
         ",\"http_status\":" + JsonString(StatusText(http)) + "}}\n";
}

std::string ToJson(const Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;  // etcd's OrigName: true
  std::string out;
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return "{}";  // cannot happen for our messages
  return out;
}

std::string ResultLine(const Message& message) {
  return "{\"result\":" + ToJson(message) + "}\n";
}

// The top-level JSON values of `body`, in order (Go's json.Decoder reads a
// stream body this way: values one after another, whitespace between). A
// value that does not end is returned as the rest of the body, for the
// parser to report.
std::vector<std::string> SplitJsonValues(const std::string& body) {
  std::vector<std::string> values;
  size_t i = 0;
  const size_t n = body.size();
  auto space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  };
  while (true) {
    while (i < n && space(body[i])) ++i;
    if (i == n) break;
    const size_t start = i;
    if (body[i] != '{' && body[i] != '[') {
      // Not an object: hand the rest to the parser, which refuses it.
      values.push_back(body.substr(start));
      break;
    }
    int depth = 0;
    bool in_string = false;
    for (; i < n; ++i) {
      const char c = body[i];
      if (in_string) {
        if (c == '\\') {
          ++i;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) {
          ++i;
          break;
        }
      }
    }
    values.push_back(body.substr(start, std::min(i, n) - start));
  }
  return values;
}

bool ParseJson(const std::string& json, Message* message, std::string* error) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // as etcd's gateway
  const auto status =
      google::protobuf::util::JsonStringToMessage(json, message, options);
  if (status.ok()) return true;
  *error = "invalid JSON body for " + message->GetTypeName() + ": " +
           std::string(status.message());
  return false;
}

// A unary body: its first JSON value (an empty body is {}; etcd's gateway
// ignores what follows the first value, and so do we).
bool ParseBody(const std::string& body, Message* message, std::string* error) {
  const std::vector<std::string> values = SplitJsonValues(body);
  if (values.empty()) return true;
  return ParseJson(values.front(), message, error);
}

// A stream body: every JSON value in it.
template <class Req>
bool ParseStreamBody(const std::string& body, std::vector<Req>* out,
                     std::string* error) {
  for (const std::string& value : SplitJsonValues(body)) {
    Req request;
    if (!ParseJson(value, &request, error)) return false;
    out->push_back(std::move(request));
  }
  return true;
}

Caller CallerOf(const httplib::Request& http) {
  return Caller{http.get_header_value("Authorization")};
}

void BadBody(httplib::Response& res, const std::string& error) {
  WriteError(res, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, error));
}

grpc::Status Stopping() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "etcdserver: server stopped");
}

// One EtcdOps answer, handed from its callback to the waiting HTTP thread.
template <class Resp>
struct Pending {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  Resp response;
};

// Waits for `pending` until `timeout` or `stopping`; false if it did not
// come.
template <class Resp>
bool Await(Pending<Resp>& pending, std::chrono::milliseconds timeout,
           const std::atomic<bool>& stopping) {
  const auto until = Clock::now() + timeout;
  std::unique_lock<std::mutex> lock(pending.mu);
  while (!pending.done && !stopping && Clock::now() < until) {
    pending.cv.wait_for(lock, kWaitSlice);
  }
  return pending.done;
}

template <class Resp>
Reply<Resp> ReplyTo(std::shared_ptr<Pending<Resp>> pending) {
  return [pending](const grpc::Status& status, Resp response) {
    std::lock_guard<std::mutex> lock(pending->mu);
    pending->status = status;
    pending->response = std::move(response);
    pending->done = true;
    pending->cv.notify_all();
  };
}

grpc::Status NoAnswer(const std::atomic<bool>& stopping) {
  return stopping ? Stopping()
                  : grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                 "etcdserver: request timed out");
}

template <class Req, class Resp>
Handler MakeUnary(EtcdOps* ops,
                  void (EtcdOps::*method)(const Caller&, const Req&,
                                          Reply<Resp>),
                  std::chrono::milliseconds timeout,
                  const std::atomic<bool>* stopping) {
  return [=](const httplib::Request& http, httplib::Response& res) {
    Req request;
    std::string error;
    if (!ParseBody(http.body, &request, &error)) return BadBody(res, error);
    auto pending = std::make_shared<Pending<Resp>>();
    (ops->*method)(CallerOf(http), request, ReplyTo(pending));
    if (!Await(*pending, timeout, *stopping)) {
      return WriteError(res, NoAnswer(*stopping));
    }
    std::lock_guard<std::mutex> lock(pending->mu);
    if (!pending->status.ok()) return WriteError(res, pending->status);
    res.set_content(ToJson(pending->response), "application/json");
  };
}

// The descriptor of the connection `http` came on (found by its two ports
// and the client's address among our sockets), or -1. cpp-httplib 0.11
// does not hand it to handlers; an idle stream needs it to see the client
// leave.
int FindConnectionFd(const httplib::Request& http) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
      continue;
    }
    auto port_and_host = [](const sockaddr_storage& a, std::string* host) {
      char text[INET6_ADDRSTRLEN] = {0};
      if (a.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
        *host = text;
        return static_cast<int>(ntohs(in->sin_port));
      }
      if (a.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&a);
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
        *host = text;
        return static_cast<int>(ntohs(in6->sin6_port));
      }
      return -1;
    };
    std::string local_host, peer_host;
    if (port_and_host(local, &local_host) == http.local_port &&
        port_and_host(peer, &peer_host) == http.remote_port &&
        peer_host == http.remote_addr) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

// Whether the client has closed or reset connection `fd`.
bool PeerGone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

// Every TLS handshake switches to the reloading context's current
// OpenSSL context (certificate, key, trusted CAs), so new connections see
// new files; httplib's own context only holds the protocol floor.
int SwitchToCurrentContext(SSL* ssl, int* /*alert*/, void* arg) {
  auto* tls = static_cast<wire::ReloadingTlsContext*>(arg);
  const std::shared_ptr<const wire::TlsContext> current = tls->Current();
  SSL_CTX* ctx = current->native();
  if (SSL_set_SSL_CTX(ssl, ctx) == nullptr) return SSL_CLIENT_HELLO_ERROR;
  // SSL_set_SSL_CTX keeps the verification mode the SSL was made with.
  SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx),
                 SSL_CTX_get_verify_callback(ctx));
  return SSL_CLIENT_HELLO_SUCCESS;
}

bool UseReloadingContext(wire::ReloadingTlsContext* tls, SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_client_hello_cb(ctx, SwitchToCurrentContext, tls);
  return true;
}

}  // namespace

// What a stream's producer (a WatchStream's callback, the snapshot thread,
// Stop) hands to the HTTP thread writing the stream: messages in order,
// bounded in bytes, then how the stream ended. Thread-safe.
class JsonGateway::StreamQueue {
 public:
  enum class Next { kMessage, kEnd, kTimeout };

  explicit StreamQueue(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Never blocks: over the limit the stream ends with `overflow` (what was
  // queued is dropped: the client is not reading it). False if ended.
  bool TryPush(std::unique_ptr<Message> message, const grpc::Status& overflow) {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return false;
    bytes_ += message->ByteSizeLong();
    messages_.push_back(std::move(message));
    if (bytes_ > max_bytes_) {
      messages_.clear();
      EndLocked(overflow);
      return false;
    }
    cv_.notify_all();
    return true;
  }

  // Blocks while over the limit; false if the stream ended meanwhile.
  bool PushWait(std::unique_ptr<Message> message) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return ended_ || bytes_ <= max_bytes_; });
    if (ended_) return false;
    bytes_ += message->ByteSizeLong();
    messages_.push_back(std::move(message));
    cv_.notify_all();
    return true;
  }

  // Ends the stream after what is queued (the first end wins).
  void Finish(const grpc::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_) {
      finished_ = true;
      finish_status_ = status;
    }
    cv_.notify_all();
  }

  // Ends the stream now, dropping what is queued (the first end wins).
  void End(const grpc::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    EndLocked(status);
  }

  // The next message, or the end, within `wait`.
  Next Pop(std::chrono::milliseconds wait, std::unique_ptr<Message>* out,
           grpc::Status* end) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, wait, [&] { return ReadyLocked(); });
    if (ended_ || (finished_ && messages_.empty())) {
      *end = ended_ ? end_status_ : finish_status_;
      ended_ = true;
      cv_.notify_all();
      return Next::kEnd;
    }
    if (messages_.empty()) return Next::kTimeout;
    *out = std::move(messages_.front());
    messages_.pop_front();
    bytes_ -= (*out)->ByteSizeLong();
    cv_.notify_all();
    return Next::kMessage;
  }

  // Waits up to `wait` until a message or the end is there.
  bool WaitReady(std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, wait, [&] { return ReadyLocked(); });
  }

  // The end if the stream ended with nothing sent (for an HTTP error
  // status instead of a 200 stream).
  bool EndedEmpty(grpc::Status* status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!messages_.empty()) return false;
    if (ended_) {
      *status = end_status_;
      return true;
    }
    if (finished_) {
      *status = finish_status_;
      return true;
    }
    return false;
  }

 private:
  bool ReadyLocked() const { return ended_ || finished_ || !messages_.empty(); }
  void EndLocked(const grpc::Status& status) {
    if (!ended_) {
      ended_ = true;
      end_status_ = status;
      messages_.clear();
      bytes_ = 0;
    }
    cv_.notify_all();
  }

  const size_t max_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Message>> messages_;
  size_t bytes_ = 0;  // ByteSizeLong of messages_
  bool finished_ = false;
  grpc::Status finish_status_;
  bool ended_ = false;
  grpc::Status end_status_;
};

namespace {

// Writes `queue` to `sink` until it ends or the client goes (true: the
// stream ended properly; false: the connection is to be dropped).
bool DrainQueue(JsonGateway::StreamQueue& queue, int fd,
                httplib::DataSink& sink) {
  using Next = JsonGateway::StreamQueue::Next;
  while (true) {
    std::unique_ptr<Message> message;
    grpc::Status end;
    switch (queue.Pop(kPeerCheckEvery, &message, &end)) {
      case Next::kMessage: {
        // One chunk per line: python3-etcd3gw parses each chunk alone.
        const std::string line = ResultLine(*message);
        if (!sink.write(line.data(), line.size())) return false;
        break;
      }
      case Next::kEnd:
        if (!end.ok()) {
          const std::string line = StreamErrorLine(end);
          if (!sink.write(line.data(), line.size())) return false;
        }
        sink.done();
        return true;
      case Next::kTimeout:
        if (PeerGone(fd)) return false;
        break;
    }
  }
}

}  // namespace

JsonGateway::JsonGateway(EtcdOps* ops, Options options)
    : ops_(ops), options_(std::move(options)) {}

JsonGateway::~JsonGateway() { Stop(); }

void JsonGateway::Route(const std::string& path, Handler handler) {
  for (const char* prefix : kPrefixes) {
    routes_[std::string(prefix) + path] = handler;
  }
}

void JsonGateway::AddRoutes() {
  const auto t = options_.reply_timeout;
  const std::atomic<bool>* s = &stopping_;
  EtcdOps* o = ops_;
  Route("/kv/range", MakeUnary(o, &EtcdOps::Range, t, s));
  Route("/kv/put", MakeUnary(o, &EtcdOps::Put, t, s));
  Route("/kv/deleterange", MakeUnary(o, &EtcdOps::DeleteRange, t, s));
  Route("/kv/txn", MakeUnary(o, &EtcdOps::Txn, t, s));
  Route("/kv/compaction", MakeUnary(o, &EtcdOps::Compact, t, s));
  Route("/watch", [this](const httplib::Request& http, httplib::Response& res) {
    Watch(http, res);
  });
  Route("/lease/grant", MakeUnary(o, &EtcdOps::LeaseGrant, t, s));
  Route("/lease/revoke", MakeUnary(o, &EtcdOps::LeaseRevoke, t, s));
  Route("/kv/lease/revoke", MakeUnary(o, &EtcdOps::LeaseRevoke, t, s));
  Route("/lease/keepalive",
        [this](const httplib::Request& http, httplib::Response& res) {
          KeepAlive(http, res);
        });
  Route("/lease/timetolive", MakeUnary(o, &EtcdOps::LeaseTimeToLive, t, s));
  Route("/kv/lease/timetolive", MakeUnary(o, &EtcdOps::LeaseTimeToLive, t, s));
  Route("/lease/leases", MakeUnary(o, &EtcdOps::LeaseLeases, t, s));
  Route("/kv/lease/leases", MakeUnary(o, &EtcdOps::LeaseLeases, t, s));
  Route("/cluster/member/add", MakeUnary(o, &EtcdOps::MemberAdd, t, s));
  Route("/cluster/member/remove", MakeUnary(o, &EtcdOps::MemberRemove, t, s));
  Route("/cluster/member/update", MakeUnary(o, &EtcdOps::MemberUpdate, t, s));
  Route("/cluster/member/list", MakeUnary(o, &EtcdOps::MemberList, t, s));
  Route("/cluster/member/promote", MakeUnary(o, &EtcdOps::MemberPromote, t, s));
  Route("/maintenance/alarm", MakeUnary(o, &EtcdOps::Alarm, t, s));
  Route("/maintenance/status", MakeUnary(o, &EtcdOps::Status, t, s));
  Route("/maintenance/defragment", MakeUnary(o, &EtcdOps::Defragment, t, s));
  // etcd maps Hash and HashKV to this one path; its gateway serves HashKV.
  Route("/maintenance/hash", MakeUnary(o, &EtcdOps::HashKV, t, s));
  Route("/maintenance/snapshot",
        [this](const httplib::Request& http, httplib::Response& res) {
          Snapshot(http, res);
        });
  Route("/maintenance/transfer-leadership",
        MakeUnary(o, &EtcdOps::MoveLeader, t, s));
  Route("/auth/enable", MakeUnary(o, &EtcdOps::AuthEnable, t, s));
  Route("/auth/disable", MakeUnary(o, &EtcdOps::AuthDisable, t, s));
  Route("/auth/authenticate", MakeUnary(o, &EtcdOps::Authenticate, t, s));
  Route("/auth/user/add", MakeUnary(o, &EtcdOps::UserAdd, t, s));
  Route("/auth/user/get", MakeUnary(o, &EtcdOps::UserGet, t, s));
  Route("/auth/user/list", MakeUnary(o, &EtcdOps::UserList, t, s));
  Route("/auth/user/delete", MakeUnary(o, &EtcdOps::UserDelete, t, s));
  Route("/auth/user/changepw",
        MakeUnary(o, &EtcdOps::UserChangePassword, t, s));
  Route("/auth/user/grant", MakeUnary(o, &EtcdOps::UserGrantRole, t, s));
  Route("/auth/user/revoke", MakeUnary(o, &EtcdOps::UserRevokeRole, t, s));
  Route("/auth/role/add", MakeUnary(o, &EtcdOps::RoleAdd, t, s));
  Route("/auth/role/get", MakeUnary(o, &EtcdOps::RoleGet, t, s));
  Route("/auth/role/list", MakeUnary(o, &EtcdOps::RoleList, t, s));
  Route("/auth/role/delete", MakeUnary(o, &EtcdOps::RoleDelete, t, s));
  Route("/auth/role/grant", MakeUnary(o, &EtcdOps::RoleGrantPermission, t, s));
  Route("/auth/role/revoke",
        MakeUnary(o, &EtcdOps::RoleRevokePermission, t, s));
}

bool JsonGateway::OpenStream(const std::shared_ptr<StreamQueue>& queue,
                             httplib::Response& res) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    WriteError(res, Stopping());
    return false;
  }
  if (static_cast<int>(streams_.size()) >= options_.max_streams) {
    WriteError(res,
               grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "etcdserver: too many open streams on the "
                            "JSON gateway (" +
                                std::to_string(options_.max_streams) + ")"));
    return false;
  }
  streams_.insert(queue);
  return true;
}

void JsonGateway::CloseStream(const std::shared_ptr<StreamQueue>& queue) {
  queue->End(grpc::Status::CANCELLED);
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(queue);
}

// The body holds WatchRequests (usually one create_request); the answer
// streams every WatchResponse until the client goes, the gateway stops or
// the client falls max_unsent_bytes behind.
void JsonGateway::Watch(const httplib::Request& http, httplib::Response& res) {
  std::vector<etcdserverpb::WatchRequest> requests;
  std::string error;
  if (!ParseStreamBody(http.body, &requests, &error)) {
    return BadBody(res, error);
  }
  auto queue = std::make_shared<StreamQueue>(options_.max_unsent_bytes);
  if (!OpenStream(queue, res)) return;
  const grpc::Status overflow(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      "etcdserver: watch stream ended: the client fell more than " +
          std::to_string(options_.max_unsent_bytes >> 20) + " MiB behind");
  std::unique_ptr<WatchStream> watch = ops_->OpenWatchStream(
      CallerOf(http), [queue, overflow](etcdserverpb::WatchResponse response) {
        queue->TryPush(
            std::make_unique<etcdserverpb::WatchResponse>(std::move(response)),
            overflow);
      });
  if (watch == nullptr) {
    CloseStream(queue);
    return WriteError(res, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                        "etcdserver: cannot open a watch"));
  }
  for (const auto& request : requests) watch->Handle(request);
  // The watch and the slot live as long as the response's provider: the
  // releaser runs when httplib is done with the response, however it ends.
  struct State {
    std::unique_ptr<WatchStream> watch;
    int fd = -1;
  };
  auto state = std::make_shared<State>();
  state->watch = std::move(watch);
  state->fd = FindConnectionFd(http);
  res.set_chunked_content_provider(
      "application/json",
      [queue, state](size_t, httplib::DataSink& sink) {
        return DrainQueue(*queue, state->fd, sink);
      },
      [this, queue, state](bool) {
        state->watch.reset();  // cancels its watches
        CloseStream(queue);
      });
}

// The body holds LeaseKeepAliveRequests (usually one); each is answered by
// one line, as etcd's gateway answers the one a client sends.
void JsonGateway::KeepAlive(const httplib::Request& http,
                            httplib::Response& res) {
  std::vector<etcdserverpb::LeaseKeepAliveRequest> requests;
  std::string error;
  if (!ParseStreamBody(http.body, &requests, &error)) {
    return BadBody(res, error);
  }
  std::vector<std::string> lines;  // each its own chunk
  for (const auto& request : requests) {
    auto pending =
        std::make_shared<Pending<etcdserverpb::LeaseKeepAliveResponse>>();
    ops_->LeaseKeepAlive(CallerOf(http), request, ReplyTo(pending));
    grpc::Status status;
    if (!Await(*pending, options_.reply_timeout, stopping_)) {
      status = NoAnswer(stopping_);
    } else {
      std::lock_guard<std::mutex> lock(pending->mu);
      status = pending->status;
      if (status.ok()) lines.push_back(ResultLine(pending->response));
    }
    if (!status.ok()) {
      if (lines.empty()) res.status = HttpStatusOf(status.error_code());
      lines.push_back(StreamErrorLine(status));
      break;
    }
  }
  auto shared = std::make_shared<std::vector<std::string>>(std::move(lines));
  res.set_chunked_content_provider(
      "application/json", [shared](size_t, httplib::DataSink& sink) {
        for (const std::string& line : *shared) {
          if (!sink.write(line.data(), line.size())) return false;
        }
        sink.done();
        return true;
      });
}

// EtcdOps::Snapshot blocks: it runs on a thread of its own, feeding a
// queue that waits for the client (no limit on how long a backup takes).
void JsonGateway::Snapshot(const httplib::Request& http,
                           httplib::Response& res) {
  etcdserverpb::SnapshotRequest request;
  std::string error;
  if (!ParseBody(http.body, &request, &error)) return BadBody(res, error);
  auto queue = std::make_shared<StreamQueue>(options_.max_unsent_bytes);
  if (!OpenStream(queue, res)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++snapshot_threads_;
  }
  std::thread([this, queue, caller = CallerOf(http)] {
    NameCurrentThread("rkv-gw-snap");
    const grpc::Status status = ops_->Snapshot(
        caller, [&queue](const etcdserverpb::SnapshotResponse& chunk) {
          return queue->PushWait(
              std::make_unique<etcdserverpb::SnapshotResponse>(chunk));
        });
    queue->Finish(status);
    std::lock_guard<std::mutex> lock(mu_);
    --snapshot_threads_;
    threads_done_.notify_all();
  }).detach();
  // The HTTP status waits for the first chunk: an error before it is an
  // error status, as etcd's gateway answers.
  while (!queue->WaitReady(kWaitSlice)) {
  }
  grpc::Status end;
  if (queue->EndedEmpty(&end) && !end.ok()) {
    CloseStream(queue);
    res.status = HttpStatusOf(end.error_code());
    res.set_content(StreamErrorLine(end), "application/json");
    return;
  }
  res.set_chunked_content_provider(
      "application/json",
      [queue](size_t, httplib::DataSink& sink) {
        return DrainQueue(*queue, -1, sink);
      },
      [this, queue](bool) { CloseStream(queue); });
}

Status JsonGateway::Start(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument(
        "--listen_etcd_gateway: expected host:port, got " + host_port);
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const int port = std::atoi(host_port.c_str() + colon + 1);
  if (options_.tls.enabled()) {
    auto tls = wire::ReloadingTlsContext::Create(
        ListenerTlsConfig(options_.tls), "etcd JSON gateway");
    if (!tls.ok()) return tls.status();
    tls_ = *tls;
    server_ =
        std::make_unique<httplib::SSLServer>([tls = tls_.get()](SSL_CTX& ctx) {
          return UseReloadingContext(tls, &ctx);
        });
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  AddRoutes();
  const int threads = options_.threads;
  server_->new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  server_->set_payload_max_length(options_.max_request_bytes);
  // No compression, as etcd's gateway: cpp-httplib would gzip JSON for a
  // client that accepts it, holding a stream's lines in the compressor. The
  // request is httplib's own object, handed to us const; dropping the
  // header is the one way 0.11 offers to turn compression off.
  server_->set_pre_routing_handler(
      [](const httplib::Request& http, httplib::Response&) {
        const_cast<httplib::Request&>(http).headers.erase("Accept-Encoding");
        return httplib::Server::HandlerResponse::Unhandled;
      });
  // etcd's gateway answers with these (its CORS handler).
  server_->set_default_headers(
      {{"Access-Control-Allow-Origin", "*"},
       {"Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE"},
       {"Access-Control-Allow-Headers",
        "accept, content-type, authorization"}});
  server_->Post(".*",
                [this](const httplib::Request& http, httplib::Response& res) {
                  const auto route = routes_.find(http.path);
                  if (route == routes_.end()) {
                    res.status = 404;
                    res.set_content("Not Found\n", "text/plain; charset=utf-8");
                    return;
                  }
                  route->second(http, res);
                });
  // Other methods: 405 on a gateway path, 404 elsewhere (as etcd).
  auto other = [this](const httplib::Request& http, httplib::Response& res) {
    const bool known = routes_.count(http.path) > 0;
    res.status = known ? 405 : 404;
    res.set_content(known ? "Method Not Allowed\n" : "Not Found\n",
                    "text/plain; charset=utf-8");
  };
  server_->Get(".*", other);
  server_->Put(".*", other);
  server_->Delete(".*", other);
  server_->Patch(".*", other);
  server_->Options(".*", [](const httplib::Request&, httplib::Response& res) {
    res.status = 200;  // a CORS preflight: the default headers say it all
  });
  port_ = port == 0 ? server_->bind_to_any_port(host)
                    : (server_->bind_to_port(host, port) ? port : -1);
  if (port_ < 0) {
    return Status::Unavailable("--listen_etcd_gateway: cannot listen on " +
                               host_port);
  }
  thread_ = std::thread([this] {
    NameCurrentThread("rkv-etcd-gw");
    server_->listen_after_bind();
    listen_returned_ = true;
  });
  // As HttpEndpoint: stop() only works once the accept loop runs.
  while (!server_->is_running() && !listen_returned_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  LOG(INFO) << "serves etcd's JSON gateway on " << host << ":" << port_
            << (options_.tls.enabled() ? " (HTTPS)" : " (HTTP)");
  return Status::OK();
}

void JsonGateway::Stop() {
  if (!server_) return;
  stopping_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& queue : streams_) queue->End(Stopping());
  }
  server_->stop();
  if (thread_.joinable()) thread_.join();
  std::unique_lock<std::mutex> lock(mu_);
  threads_done_.wait(lock, [&] { return snapshot_threads_ == 0; });
}

}  // namespace raftkv::server::etcd
