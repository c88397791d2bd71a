// JsonGateway: etcd's JSON gateway (grpc-gateway, as etcd 3.4 serves it on
// its client port) on a listener of its own (--listen_etcd_gateway):
// POST /v3/kv/range, /v3/kv/put, /v3/watch, /v3/lease/grant, ... (also
// under /v3beta/ and /v3alpha/) with a JSON body, answered in JSON with
// etcd's proto field names ("create_revision", "ID", "TTL"), 64-bit
// integers as strings and bytes as base64. Every call is carried out by
// EtcdOps; this class only translates HTTP and JSON.
//
// Errors as grpc-gateway v1 writes them: the HTTP status from the gRPC
// code and {"error": msg, "message": msg, "code": grpc_code}. Streaming
// endpoints (/v3/watch, /v3/lease/keepalive, /v3/maintenance/snapshot)
// answer with chunked transfer, one {"result": {...}} object per line and
// per chunk; an error in the middle of a stream is a last line
// {"error": {"grpc_code", "http_code", "message", "http_status"}}.
// The auth token is the "Authorization" header, as etcd's gateway takes it.
//
// Threads: cpp-httplib's, a pool of Options::threads. Each open stream holds
// one of them (at most Options::max_streams at once; more are refused with
// 429), so unary calls always have threads left. A watch whose client does
// not read is ended once Options::max_unsent_bytes wait for it.
//
// Must never: touch the Raft loop or storage (only EtcdOps), block an
// EtcdOps callback (they only queue), or stop serving because of a request.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "server/server_config.h"
#include "util/status.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace raftkv::wire {
class ReloadingTlsContext;
}  // namespace raftkv::wire

namespace raftkv::server::etcd {

class EtcdOps;

class JsonGateway {
 public:
  struct Options {
    // cpp-httplib's worker threads; a connection holds one while open
    // (keep-alive included), a stream for as long as it lasts.
    int threads = 64;
    // Streams (watch, keep-alive, snapshot) open at once.
    int max_streams = 48;
    // The largest request body (413 beyond it).
    size_t max_request_bytes = 8 << 20;
    // A watch stream with more than this waiting for a slow client is
    // ended (with an error line); a snapshot waits for the client instead.
    size_t max_unsent_bytes = 16 << 20;
    // How long a unary call waits for EtcdOps' answer (which has its own,
    // shorter deadline) before answering 504.
    std::chrono::milliseconds reply_timeout{60000};
    // HTTPS when set (etcd's --cert-file, --key-file, --trusted-ca-file,
    // --client-cert-auth); the files are reloaded when they change.
    TlsFiles tls;
  };

  // `ops` must outlive this gateway.
  JsonGateway(EtcdOps* ops, Options options);
  ~JsonGateway();  // Stop()
  JsonGateway(const JsonGateway&) = delete;
  JsonGateway& operator=(const JsonGateway&) = delete;

  // Binds "host:port" (port 0: any) and serves on its own threads until
  // Stop().
  Status Start(const std::string& host_port);
  // Ends every open stream, stops accepting and waits for the threads.
  void Stop();
  int port() const { return port_; }

  class StreamQueue;  // json_gateway.cc

 private:
  using Handler =
      std::function<void(const httplib::Request&, httplib::Response&)>;
  void AddRoutes();
  void Route(const std::string& path, Handler handler);
  void Watch(const httplib::Request& http, httplib::Response& res);
  void KeepAlive(const httplib::Request& http, httplib::Response& res);
  void Snapshot(const httplib::Request& http, httplib::Response& res);
  // Claims a stream slot and registers `queue` for Stop(); false (and a
  // 429 in `res`) if max_streams are open or the gateway is stopping.
  bool OpenStream(const std::shared_ptr<StreamQueue>& queue,
                  httplib::Response& res);
  void CloseStream(const std::shared_ptr<StreamQueue>& queue);

  EtcdOps* const ops_;
  const Options options_;
  std::map<std::string, Handler> routes_;           // exact paths, all prefixes
  std::shared_ptr<wire::ReloadingTlsContext> tls_;  // HTTPS only
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  std::atomic<bool> stopping_{false};
  int port_ = 0;

  std::mutex mu_;
  std::condition_variable threads_done_;
  std::set<std::shared_ptr<StreamQueue>> streams_;  // open streams
  int snapshot_threads_ = 0;                        // running Snapshot()s
};

}  // namespace raftkv::server::etcd
