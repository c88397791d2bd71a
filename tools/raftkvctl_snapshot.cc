// raftkvctl snapshot save: streams a backup from the first member that
// answers (see raftkvctl_snapshot.h). Blocking I/O: a command-line tool.
#include "tools/raftkvctl_snapshot.h"

#include <unistd.h>

#include "client/blocking_frames.h"
#include "client/kv.pb.h"
#include "client/tls.h"
#include "storage/backup_file.h"
#include "storage/storage.pb.h"

namespace raftkv {
namespace {

// A chunk is about 1 MB; one record can make it larger.
constexpr size_t kMaxFrameBytes = 256 << 20;

// The TLS session to talk through on `fd` (null: plain TCP).
StatusOr<std::unique_ptr<wire::TlsSession>> StartTls(
    int fd, const std::string& endpoint, const ClientTlsOptions& tls,
    const std::string& what) {
  if (!tls.enabled) return std::unique_ptr<wire::TlsSession>();
  wire::TlsConfig config;
  config.ca_file = tls.ca_file;
  config.cert_file = tls.cert_file;
  config.key_file = tls.key_file;
  config.verify_peer = !tls.insecure_skip_verify;
  auto context = wire::TlsContext::Load(config);
  if (!context.ok()) return context.status();
  auto session = wire::TlsSession::Create(
      **context, fd,
      tls.server_name.empty() ? endpoint.substr(0, endpoint.rfind(':'))
                              : tls.server_name);
  if (!session.ok()) return session.status();
  RAFTKV_RETURN_IF_ERROR((*session)->HandshakeBlocking(what));
  return session;
}

// A token for `user` from `endpoint`, on a connection of its own (the
// backup must be the only request on its connection).
StatusOr<std::string> AuthenticateOn(const std::string& endpoint,
                                     const std::string& user,
                                     const std::string& password,
                                     std::chrono::milliseconds io_timeout,
                                     const ClientTlsOptions& tls) {
  auto fd = wire::Dial(endpoint, "", io_timeout);
  if (!fd.ok()) return fd.status();
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{*fd};
  const std::string what = "authenticate at " + endpoint;
  auto session = StartTls(*fd, endpoint, tls, what);
  if (!session.ok()) return session.status();
  const wire::Channel channel(*fd, session->get());
  kv::ClientRequest request;
  request.set_request_id(1);
  request.mutable_authenticate()->set_name(user);
  request.mutable_authenticate()->set_password(password);
  RAFTKV_RETURN_IF_ERROR(
      wire::WriteFrame(channel, request.SerializeAsString(), what));
  std::string pending, frame;
  RAFTKV_RETURN_IF_ERROR(
      wire::ReadFrame(channel, &pending, kMaxFrameBytes, &frame, what));
  kv::ClientResponse response;
  if (!response.ParseFromString(frame)) {
    return Status::Unavailable(what + ": not a response");
  }
  if (response.error() == kv::AUTH_NOT_ENABLED) return std::string();
  if (response.error() != kv::OK) {
    return Status::Unauthenticated(response.error_message());
  }
  return response.authenticate().token();
}

StatusOr<BackupResult> SaveFrom(const std::string& endpoint,
                                const std::string& path,
                                std::chrono::milliseconds io_timeout,
                                const ClientTlsOptions& tls,
                                const std::string& user,
                                const std::string& password) {
  const auto start = std::chrono::steady_clock::now();
  std::string token;
  if (!user.empty()) {
    auto got = AuthenticateOn(endpoint, user, password, io_timeout, tls);
    if (!got.ok()) return got.status();
    token = std::move(got).value();
  }
  auto fd = wire::Dial(endpoint, "", io_timeout);
  if (!fd.ok()) return fd.status();
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{*fd};
  const std::string what = "backup from " + endpoint;
  auto session = StartTls(*fd, endpoint, tls, what);
  if (!session.ok()) return session.status();
  const wire::Channel channel(*fd, session->get());
  kv::ClientRequest request;
  request.set_request_id(1);
  request.set_auth_token(token);
  request.mutable_snapshot_save();
  RAFTKV_RETURN_IF_ERROR(
      wire::WriteFrame(channel, request.SerializeAsString(), what));
  std::string pending, frame;
  RAFTKV_RETURN_IF_ERROR(
      wire::ReadFrame(channel, &pending, kMaxFrameBytes, &frame, what));
  kv::ClientResponse response;
  if (!response.ParseFromString(frame) || !response.has_snapshot_save()) {
    return Status::Unavailable(what + ": " +
                               (response.error_message().empty()
                                    ? "not a backup response"
                                    : response.error_message()));
  }
  auto writer = storage::BackupWriter::Create(path);
  if (!writer.ok()) return writer.status();
  while (!(*writer)->complete()) {
    RAFTKV_RETURN_IF_ERROR(
        wire::ReadFrame(channel, &pending, kMaxFrameBytes, &frame, what));
    RAFTKV_RETURN_IF_ERROR((*writer)->Add(frame));
  }
  RAFTKV_RETURN_IF_ERROR((*writer)->Finish());
  BackupResult result;
  result.endpoint = endpoint;
  result.member_id = response.snapshot_save().header().member_id();
  result.cluster_id = response.snapshot_save().header().cluster_id();
  result.index = (*writer)->header()->index();
  result.term = (*writer)->header()->term();
  result.records = (*writer)->records();
  result.bytes = (*writer)->bytes();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return result;
}

}  // namespace

StatusOr<BackupResult> SaveBackup(const std::vector<std::string>& endpoints,
                                  const std::string& path,
                                  std::chrono::milliseconds io_timeout,
                                  const ClientTlsOptions& tls,
                                  const std::string& user,
                                  const std::string& password) {
  Status last = Status::InvalidArgument("no endpoints given");
  for (std::string endpoint : endpoints) {
    ClientTlsOptions endpoint_tls = tls;
    for (const std::string scheme : {"https://", "http://"}) {
      if (endpoint.rfind(scheme, 0) != 0) continue;
      endpoint.erase(0, scheme.size());
      endpoint_tls.enabled |= scheme == "https://";
    }
    auto result =
        SaveFrom(endpoint, path, io_timeout, endpoint_tls, user, password);
    if (result.ok()) return result;
    last = result.status();
    // A damaged stream or a file problem is not the member's being down.
    if (last.code() == Status::Code::kInvalidArgument ||
        last.code() == Status::Code::kUnauthenticated) {
      return last;
    }
  }
  return last;
}

}  // namespace raftkv
