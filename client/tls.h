// TLS for raftkv's connections (OpenSSL 3), as etcd does it: contexts built
// from PEM files and rebuilt when the files change on disk, and sessions on
// a socket descriptor.
//
// A TlsSession drives OpenSSL on the descriptor itself, so the same session
// works on an event loop (non-blocking: the caller waits for the readiness
// a call asks for, FramedConnection) and on a blocking thread with socket
// timeouts (blocking_frames.h): a connection the loop hands over to a
// thread (a snapshot transfer, a backup) keeps its session.
//
// Include only where connections are made; no OpenSSL header leaks out.
// Never accepts a peer the configuration does not trust, never lets a
// broken certificate file replace a working one.
#pragma once

#include <asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "util/status.h"

struct ssl_st;
struct ssl_ctx_st;

namespace raftkv::wire {

struct TlsConfig {
  enum class Role { kServer, kClient };
  Role role = Role::kClient;
  // PEM certificate chain and private key. Server: required. Client: the
  // certificate it presents when the server asks (optional; both or none).
  std::string cert_file;
  std::string key_file;
  // PEM trust anchors. Server: what a client's certificate must chain to
  // (with verify_peer). Client: what the server's must chain to; empty: the
  // system's default paths.
  std::string ca_file;
  // Server: require a client certificate chaining to ca_file (etcd's
  // --client-cert-auth). Client: check the server's certificate and its
  // name (false: etcdctl's --insecure-skip-tls-verify).
  bool verify_peer = true;

  bool operator==(const TlsConfig& o) const {
    return role == o.role && cert_file == o.cert_file &&
           key_file == o.key_file && ca_file == o.ca_file &&
           verify_peer == o.verify_peer;
  }
};

// One immutable OpenSSL context (TLS 1.2 or later). Thread-safe.
class TlsContext {
 public:
  static StatusOr<std::shared_ptr<const TlsContext>> Load(
      const TlsConfig& config);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  ssl_ctx_st* native() const { return ctx_; }
  const TlsConfig& config() const { return config_; }

 private:
  TlsContext(ssl_ctx_st* ctx, TlsConfig config)
      : ctx_(ctx), config_(std::move(config)) {}
  ssl_ctx_st* ctx_;
  TlsConfig config_;
};

// A TlsContext rebuilt when its files change (etcd reloads per handshake):
// Current() looks at the files' modification times and sizes at most once
// per `check_every` and loads them again if any changed. A file that does
// not load keeps the previous context (logged as an error, once per
// change). Connections made before a reload keep their session.
// Thread-safe.
class ReloadingTlsContext {
 public:
  // Loads the files now: an error if they do not load. `what` names the
  // context in logs ("client listener").
  static StatusOr<std::shared_ptr<ReloadingTlsContext>> Create(
      TlsConfig config, std::string what,
      std::chrono::milliseconds check_every = std::chrono::seconds(1));

  // The context for a new connection.
  std::shared_ptr<const TlsContext> Current();
  // How many times the files were loaded again since Create.
  uint64_t reloads() const;

 private:
  struct FileStamp {
    int64_t mtime_ns = -1;
    int64_t size = -1;
    bool operator==(const FileStamp& o) const {
      return mtime_ns == o.mtime_ns && size == o.size;
    }
  };
  struct Stamps {
    FileStamp cert, key, ca;
    bool operator==(const Stamps& o) const {
      return cert == o.cert && key == o.key && ca == o.ca;
    }
  };
  ReloadingTlsContext(TlsConfig config, std::string what,
                      std::chrono::milliseconds check_every);
  Stamps Stat() const;

  const TlsConfig config_;
  const std::string what_;
  const std::chrono::milliseconds check_every_;
  mutable std::mutex mu_;
  std::shared_ptr<const TlsContext> current_;
  Stamps loaded_;  // the files current_ was built from
  Stamps failed_;  // the files that last failed to load
  std::chrono::steady_clock::time_point next_check_;
  uint64_t reloads_ = 0;
};

// One TLS session on a connected socket descriptor (not owned: whoever
// owns the descriptor closes it after destroying the session).
class TlsSession {
 public:
  enum class Result { kOk, kWantRead, kWantWrite, kClosed, kError };

  // A client session checks the server's certificate for `peer_name` (an
  // IP address or a DNS name, also sent as SNI; empty: chain only) unless
  // the context's verify_peer is false. A server session ignores it.
  static StatusOr<std::unique_ptr<TlsSession>> Create(
      const TlsContext& context, int fd, const std::string& peer_name);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Non-blocking steps: kWantRead/kWantWrite ask to be called again once
  // the socket is readable/writable. On a blocking socket with timeouts
  // they mean the timeout passed.
  Result Handshake();
  Result Read(char* out, size_t size, size_t* n);
  Result Write(const char* data, size_t size, size_t* n);
  // Decrypted bytes are waiting inside the session (the socket may not be
  // readable although Read would return data).
  bool HasBufferedInput() const;
  // Sends a close_notify, best effort, without waiting for the reply.
  void Shutdown();
  // Why the last call returned kError or kClosed (OpenSSL's reasons and the
  // certificate verification result).
  const std::string& error() const { return error_; }

  // Blocking (on a blocking socket with timeouts): the handshake, and
  // reading/writing all of a buffer.
  Status HandshakeBlocking(const std::string& what);
  Status ReadBlocking(char* out, size_t size, const std::string& what);
  Status WriteBlocking(const char* data, size_t size, const std::string& what);

  // "CN=node1, serial 1A2B" of the peer's certificate; "none" without one.
  std::string PeerCertificate() const;

 private:
  explicit TlsSession(ssl_st* ssl) : ssl_(ssl) {}
  Result Outcome(int ret, size_t* n);
  ssl_st* ssl_;
  std::string error_;
  bool failed_ = false;  // a fatal error happened: no close_notify
};

// Connections taken over from an event loop by descriptor
// (FramedConnection::Release): the session waits here, beside the
// descriptor, for the thread that takes the descriptor (TakeTlsSession).
// A session parked for a descriptor that has since been closed and reused
// is never handed out (the socket's inode is checked).
void ParkTlsSession(int fd, std::unique_ptr<TlsSession> session);
std::unique_ptr<TlsSession> TakeTlsSession(int fd);

// On an event loop: handshakes on `socket` within `timeout`, then calls
// `done` with the outcome, the socket and (if OK) the session. Runs on the
// socket's executor; `done` runs there too. The function returned aborts
// the handshake (closes the socket; `done` then runs with an error); it may
// be called at any time on that executor, also after the end.
using TlsHandshakeDone =
    std::function<void(Status status, asio::ip::tcp::socket socket,
                       std::unique_ptr<TlsSession> session)>;
std::function<void()> AsyncTlsHandshake(
    asio::ip::tcp::socket socket, std::shared_ptr<const TlsContext> context,
    const std::string& peer_name, std::chrono::milliseconds timeout,
    TlsHandshakeDone done);

}  // namespace raftkv::wire
