// OpenSSL behind raftkv's TLS types (see tls.h). Never blocks an event loop
// (sessions made there are on non-blocking sockets) and never frees a
// session while another thread uses it.
#include "client/tls.h"

#include <glog/logging.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <utility>

namespace raftkv::wire {
namespace {

// OpenSSL's queued errors as one line ("" if none), emptying the queue.
std::string TakeOpenSslErrors() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text;
}

Status LoadError(const std::string& what) {
  std::string errors = TakeOpenSslErrors();
  return Status::InvalidArgument(what + (errors.empty() ? "" : ": " + errors));
}

// The socket BIO, but writing with MSG_NOSIGNAL: a peer that went away is
// an error to report, not a SIGPIPE that kills a client program.
int SendNoSignal(BIO* bio, const char* data, int size) {
  int fd = -1;
  BIO_get_fd(bio, &fd);
  errno = 0;
  const int n = static_cast<int>(::send(fd, data, size, MSG_NOSIGNAL));
  BIO_clear_retry_flags(bio);
  if (n <= 0 && BIO_sock_should_retry(n)) BIO_set_retry_write(bio);
  return n;
}

const BIO_METHOD* SocketMethod() {
  static const BIO_METHOD* method = [] {
    const BIO_METHOD* socket = BIO_s_socket();
    BIO_METHOD* m = BIO_meth_new(BIO_TYPE_SOCKET, "raftkv socket");
    CHECK(m != nullptr) << "BIO_meth_new";
    BIO_meth_set_write(m, SendNoSignal);
    BIO_meth_set_read(m, BIO_meth_get_read(socket));
    BIO_meth_set_puts(m, BIO_meth_get_puts(socket));
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(socket));
    BIO_meth_set_create(m, BIO_meth_get_create(socket));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(socket));
    return m;
  }();
  return method;
}

bool IsIpAddress(const std::string& name) {
  std::error_code ec;
  asio::ip::make_address(name, ec);
  return !ec;
}

}  // namespace

// ---------------------------------------------------------------------------
// TlsContext

StatusOr<std::shared_ptr<const TlsContext>> TlsContext::Load(
    const TlsConfig& config) {
  const bool server = config.role == TlsConfig::Role::kServer;
  ERR_clear_error();
  SSL_CTX* ctx =
      SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return LoadError("SSL_CTX_new");
  // Owned from here: freed with the TlsContext, or on any error below.
  std::shared_ptr<const TlsContext> result(new TlsContext(ctx, config));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A peer that just closes is an end of stream, not an error; nobody
  // renegotiates; a session is never resumed, so no tickets.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF |
                               SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_mode(
      ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (server) {
    SSL_CTX_set_num_tickets(ctx, 0);
    static const unsigned char kSessionContext[] = "raftkv";
    SSL_CTX_set_session_id_context(ctx, kSessionContext,
                                   sizeof(kSessionContext) - 1);
  }
  if (server && (config.cert_file.empty() || config.key_file.empty())) {
    return Status::InvalidArgument(
        "a TLS listener needs a certificate and a key file");
  }
  if (config.cert_file.empty() != config.key_file.empty()) {
    return Status::InvalidArgument(
        "a TLS certificate needs its key file, and a key its certificate");
  }
  if (!config.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, config.cert_file.c_str()) !=
        1) {
      return LoadError("cannot load the certificate " + config.cert_file);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, config.key_file.c_str(),
                                    SSL_FILETYPE_PEM) != 1) {
      return LoadError("cannot load the key " + config.key_file);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return LoadError("the key " + config.key_file +
                       " does not match the certificate " + config.cert_file);
    }
  }
  if (!config.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, config.ca_file.c_str(), nullptr) !=
        1) {
      return LoadError("cannot load the CA file " + config.ca_file);
    }
  } else if (!server) {
    SSL_CTX_set_default_verify_paths(ctx);
  }
  if (server && config.verify_peer) {
    if (config.ca_file.empty()) {
      return Status::InvalidArgument(
          "client certificate authentication needs a trusted CA file");
    }
    STACK_OF(X509_NAME)* names =
        SSL_load_client_CA_file(config.ca_file.c_str());
    if (names == nullptr) {
      return LoadError("cannot read the CA names of " + config.ca_file);
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       nullptr);
  } else {
    SSL_CTX_set_verify(
        ctx, !server && config.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
        nullptr);
  }
  return result;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

// ---------------------------------------------------------------------------
// ReloadingTlsContext

ReloadingTlsContext::ReloadingTlsContext(TlsConfig config, std::string what,
                                         std::chrono::milliseconds check_every)
    : config_(std::move(config)),
      what_(std::move(what)),
      check_every_(check_every) {}

StatusOr<std::shared_ptr<ReloadingTlsContext>> ReloadingTlsContext::Create(
    TlsConfig config, std::string what, std::chrono::milliseconds check_every) {
  std::shared_ptr<ReloadingTlsContext> r(
      new ReloadingTlsContext(std::move(config), std::move(what), check_every));
  r->loaded_ = r->Stat();
  auto context = TlsContext::Load(r->config_);
  if (!context.ok()) {
    return Status::InvalidArgument(r->what_ + ": " +
                                   context.status().message());
  }
  r->current_ = *context;
  r->next_check_ = std::chrono::steady_clock::now() + check_every;
  return r;
}

ReloadingTlsContext::Stamps ReloadingTlsContext::Stat() const {
  auto stamp = [](const std::string& path) {
    FileStamp s;
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return s;
    s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                 st.st_mtim.tv_nsec;
    s.size = st.st_size;
    return s;
  };
  return Stamps{stamp(config_.cert_file), stamp(config_.key_file),
                stamp(config_.ca_file)};
}

std::shared_ptr<const TlsContext> ReloadingTlsContext::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return current_;
  next_check_ = now + check_every_;
  const Stamps stamps = Stat();
  if (stamps == loaded_ || stamps == failed_) return current_;
  auto context = TlsContext::Load(config_);
  if (!context.ok()) {
    failed_ = stamps;
    LOG(ERROR) << "TLS files of the " << what_
               << " changed but do not load; still using the previous "
                  "certificate: "
               << context.status().ToString();
    return current_;
  }
  current_ = *context;
  loaded_ = stamps;
  failed_ = Stamps{};
  ++reloads_;
  LOG(INFO) << "TLS files of the " << what_ << " changed: reloaded ("
            << config_.cert_file << ")";
  return current_;
}

uint64_t ReloadingTlsContext::reloads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reloads_;
}

// ---------------------------------------------------------------------------
// TlsSession

StatusOr<std::unique_ptr<TlsSession>> TlsSession::Create(
    const TlsContext& context, int fd, const std::string& peer_name) {
  ERR_clear_error();
  SSL* ssl = SSL_new(context.native());
  if (ssl == nullptr) return LoadError("SSL_new");
  std::unique_ptr<TlsSession> session(new TlsSession(ssl));
  BIO* bio = BIO_new(SocketMethod());
  if (bio == nullptr) return LoadError("BIO_new");
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(ssl, bio, bio);  // the session owns it
  const TlsConfig& config = context.config();
  if (config.role == TlsConfig::Role::kServer) {
    SSL_set_accept_state(ssl);
    return session;
  }
  SSL_set_connect_state(ssl);
  if (!peer_name.empty() && IsIpAddress(peer_name)) {
    if (config.verify_peer &&
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), peer_name.c_str()) !=
            1) {
      return LoadError("cannot check the server's address " + peer_name);
    }
  } else if (!peer_name.empty()) {
    SSL_set_tlsext_host_name(ssl, peer_name.c_str());
    if (config.verify_peer && SSL_set1_host(ssl, peer_name.c_str()) != 1) {
      return LoadError("cannot check the server's name " + peer_name);
    }
  }
  return session;
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

TlsSession::Result TlsSession::Outcome(int ret, size_t* n) {
  if (ret > 0) {
    if (n != nullptr) *n = static_cast<size_t>(ret);
    return Result::kOk;
  }
  const int saved_errno = errno;
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      return Result::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Result::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      error_ = "connection closed";
      return Result::kClosed;
    case SSL_ERROR_SYSCALL: {
      failed_ = true;
      std::string errors = TakeOpenSslErrors();
      if (errors.empty() && saved_errno == 0) {
        error_ = "connection closed";
        return Result::kClosed;
      }
      error_ = errors.empty() ? std::strerror(saved_errno) : errors;
      return Result::kError;
    }
    default: {
      failed_ = true;
      error_ = TakeOpenSslErrors();
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        error_ += std::string(error_.empty() ? "" : " (") +
                  "certificate: " + X509_verify_cert_error_string(verify) +
                  (error_.empty() ? "" : ")");
      }
      if (error_.empty()) error_ = "TLS error";
      return Result::kError;
    }
  }
}

TlsSession::Result TlsSession::Handshake() {
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_do_handshake(ssl_);
  return ret == 1 ? Result::kOk : Outcome(ret <= 0 ? ret : -1, nullptr);
}

TlsSession::Result TlsSession::Read(char* out, size_t size, size_t* n) {
  ERR_clear_error();
  errno = 0;
  const int want = static_cast<int>(std::min<size_t>(size, INT_MAX));
  return Outcome(SSL_read(ssl_, out, want), n);
}

TlsSession::Result TlsSession::Write(const char* data, size_t size, size_t* n) {
  ERR_clear_error();
  errno = 0;
  const int want = static_cast<int>(std::min<size_t>(size, INT_MAX));
  return Outcome(SSL_write(ssl_, data, want), n);
}

bool TlsSession::HasBufferedInput() const { return SSL_pending(ssl_) > 0; }

void TlsSession::Shutdown() {
  if (failed_) return;  // OpenSSL forbids it after a fatal error
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

Status TlsSession::HandshakeBlocking(const std::string& what) {
  for (;;) {
    switch (Handshake()) {
      case Result::kOk:
        return Status::OK();
      case Result::kWantRead:
      case Result::kWantWrite:
        if (errno == EINTR) continue;
        return Status::Timeout(what + ": TLS handshake timed out");
      default:
        return Status::Unavailable(what + ": TLS handshake failed: " + error_);
    }
  }
}

Status TlsSession::ReadBlocking(char* out, size_t size,
                                const std::string& what) {
  size_t done = 0;
  while (done < size) {
    size_t n = 0;
    switch (Read(out + done, size - done, &n)) {
      case Result::kOk:
        done += n;
        continue;
      case Result::kWantRead:
      case Result::kWantWrite:
        if (errno == EINTR) continue;
        return Status::Timeout(what + ": no progress (receive timed out)");
      case Result::kClosed:
        return Status::Unavailable(what + ": connection closed");
      case Result::kError:
        return Status::IOError(what + ": TLS read: " + error_);
    }
  }
  return Status::OK();
}

Status TlsSession::WriteBlocking(const char* data, size_t size,
                                 const std::string& what) {
  size_t done = 0;
  while (done < size) {
    size_t n = 0;
    switch (Write(data + done, size - done, &n)) {
      case Result::kOk:
        done += n;
        continue;
      case Result::kWantRead:
      case Result::kWantWrite:
        if (errno == EINTR) continue;
        return Status::Timeout(what + ": no progress (send timed out)");
      case Result::kClosed:
        return Status::Unavailable(what + ": connection closed");
      case Result::kError:
        return Status::IOError(what + ": TLS write: " + error_);
    }
  }
  return Status::OK();
}

std::string TlsSession::PeerCertificate() const {
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return "none";
  char cn[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                            sizeof(cn));
  std::string serial = "?";
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  X509_free(cert);
  return std::string("CN=") + cn + ", serial " + serial;
}

// ---------------------------------------------------------------------------
// Sessions handed over with their descriptor

namespace {

struct Parked {
  ino_t inode;
  std::unique_ptr<TlsSession> session;
};

std::mutex& ParkedMutex() {
  static std::mutex mu;
  return mu;
}

std::map<int, Parked>& ParkedSessions() {
  static auto* parked = new std::map<int, Parked>();
  return *parked;
}

ino_t InodeOf(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

}  // namespace

void ParkTlsSession(int fd, std::unique_ptr<TlsSession> session) {
  const ino_t inode = InodeOf(fd);
  std::lock_guard<std::mutex> lock(ParkedMutex());
  ParkedSessions()[fd] = Parked{inode, std::move(session)};
}

std::unique_ptr<TlsSession> TakeTlsSession(int fd) {
  const ino_t inode = InodeOf(fd);
  std::lock_guard<std::mutex> lock(ParkedMutex());
  auto it = ParkedSessions().find(fd);
  if (it == ParkedSessions().end()) return nullptr;
  Parked parked = std::move(it->second);
  ParkedSessions().erase(it);
  if (parked.inode != inode || inode == 0) return nullptr;  // a stale one
  return std::move(parked.session);
}

// ---------------------------------------------------------------------------
// Handshakes on an event loop

namespace {

class Handshaker : public std::enable_shared_from_this<Handshaker> {
 public:
  Handshaker(asio::ip::tcp::socket socket,
             std::shared_ptr<const TlsContext> context, TlsHandshakeDone done)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        context_(std::move(context)),
        done_(std::move(done)) {
    std::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    remote_ = ec ? std::string("?")
                 : ep.address().to_string() + ":" + std::to_string(ep.port());
  }

  void Start(const std::string& peer_name, std::chrono::milliseconds timeout) {
    std::error_code ec;
    socket_.non_blocking(true, ec);  // SSL calls must never block the loop
    if (ec) return Finish(Status::IOError(Describe(ec.message())));
    auto session =
        TlsSession::Create(*context_, socket_.native_handle(), peer_name);
    if (!session.ok()) {
      return Finish(
          Status::InvalidArgument(Describe(session.status().message())));
    }
    session_ = std::move(session).value();
    timer_.expires_after(timeout);
    timer_.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (ec || self->finished_) return;
      self->Finish(Status::Timeout(self->Describe("timed out")));
    });
    Step();
  }

  void Abort() {
    if (finished_) return;
    std::error_code ec;
    socket_.close(ec);  // the pending wait ends, and Finish with it
  }

 private:
  std::string Describe(const std::string& why) const {
    return "TLS handshake with " + remote_ + " failed: " + why;
  }

  void Step() {
    if (finished_) return;
    switch (session_->Handshake()) {
      case TlsSession::Result::kOk:
        return Finish(Status::OK());
      case TlsSession::Result::kWantRead:
        return Wait(asio::ip::tcp::socket::wait_read);
      case TlsSession::Result::kWantWrite:
        return Wait(asio::ip::tcp::socket::wait_write);
      default:
        return Finish(Status::Unavailable(Describe(session_->error())));
    }
  }

  void Wait(asio::ip::tcp::socket::wait_type type) {
    socket_.async_wait(
        type, [self = shared_from_this()](const std::error_code& ec) {
          if (self->finished_) return;
          if (ec) {
            return self->Finish(Status::IOError(self->Describe(ec.message())));
          }
          self->Step();
        });
  }

  void Finish(Status status) {
    finished_ = true;
    timer_.cancel();
    if (!status.ok()) {
      // Pending waits end (aborted) before the socket leaves this object.
      std::error_code ec;
      socket_.cancel(ec);
      session_.reset();
    }
    TlsHandshakeDone done = std::move(done_);
    done(std::move(status), std::move(socket_), std::move(session_));
  }

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<const TlsContext> context_;
  TlsHandshakeDone done_;
  std::unique_ptr<TlsSession> session_;
  std::string remote_;
  bool finished_ = false;
};

}  // namespace

std::function<void()> AsyncTlsHandshake(
    asio::ip::tcp::socket socket, std::shared_ptr<const TlsContext> context,
    const std::string& peer_name, std::chrono::milliseconds timeout,
    TlsHandshakeDone done) {
  auto handshaker = std::make_shared<Handshaker>(
      std::move(socket), std::move(context), std::move(done));
  handshaker->Start(peer_name, timeout);
  return [weak = std::weak_ptr<Handshaker>(handshaker)] {
    if (auto h = weak.lock()) h->Abort();
  };
}

}  // namespace raftkv::wire
