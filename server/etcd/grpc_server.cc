// etcd's gRPC services on EtcdOps (see grpc_server.h).
#include "server/etcd/grpc_server.h"

#include <glog/logging.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "server/etcd/watch_stream.h"

namespace raftkv::server::etcd {
namespace {

namespace pb = etcdserverpb;

// Unsent answers one stream may hold before it is ended (a reader that
// does not keep up; etcd's clients then open a new stream and resume).
constexpr size_t kMaxQueuedBytes = 32 << 20;

Caller CallerOf(grpc::CallbackServerContext* context) {
  Caller caller;
  const auto& metadata = context->client_metadata();
  for (const char* key : {"token", "authorization"}) {
    auto it = metadata.find(key);
    if (it != metadata.end()) {
      caller.token.assign(it->second.data(), it->second.size());
      break;
    }
  }
  const auto deadline = context->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    caller.timeout =
        std::max(std::chrono::milliseconds(1),
                 std::chrono::duration_cast<std::chrono::milliseconds>(
                     deadline - std::chrono::system_clock::now()));
  }
  return caller;
}

template <class Request, class Response>
grpc::ServerUnaryReactor* Unary(
    EtcdOps* ops, grpc::CallbackServerContext* context, const Request* request,
    Response* response,
    void (EtcdOps::*method)(const Caller&, const Request&, Reply<Response>)) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  (ops->*method)(
      CallerOf(context), *request,
      [reactor, response](const grpc::Status& status, Response answer) {
        *response = std::move(answer);
        reactor->Finish(status);
      });
  return reactor;
}

#define RAFTKV_UNARY(Method, Request, Response)                          \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* context, \
                                   const pb::Request* request,           \
                                   pb::Response* response) override {    \
    return Unary(ops_, context, request, response, &EtcdOps::Method);    \
  }

// The sending half of a bidirectional stream: answers queue here and go
// out one write at a time; Finish waits for the write in flight.
template <class Request, class Response>
class Stream : public grpc::ServerBidiReactor<Request, Response> {
 public:
  void Send(Response response) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finishing_) return;
    queued_bytes_ += response.ByteSizeLong();
    if (queued_bytes_ > kMaxQueuedBytes) {
      LOG(WARNING) << "etcd API: ending a stream whose client reads too "
                      "slowly ("
                   << queued_bytes_ << " bytes unsent)";
      FinishLocked(grpc::Status(grpc::RESOURCE_EXHAUSTED,
                                "raftkv: the client reads too slowly"));
      return;
    }
    queue_.push_back(std::move(response));
    if (!writing_) {
      writing_ = true;
      this->StartWrite(&queue_.front());
    }
  }
  void End(const grpc::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(status);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    queued_bytes_ -= std::min(queued_bytes_, queue_.front().ByteSizeLong());
    queue_.pop_front();
    writing_ = false;
    if (!ok) {
      queue_.clear();
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    if (finishing_ && !finished_) {
      finished_ = true;
      this->Finish(status_);
      return;
    }
    if (!queue_.empty() && !finishing_) {
      writing_ = true;
      this->StartWrite(&queue_.front());
    }
  }

 private:
  void FinishLocked(const grpc::Status& status) {
    if (finishing_) return;
    finishing_ = true;
    status_ = status;
    if (!writing_) {
      finished_ = true;
      this->Finish(status_);
    }
  }

  std::mutex mu_;
  std::deque<Response> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool finishing_ = false;
  bool finished_ = false;
  grpc::Status status_;
};

class WatchReactor : public Stream<pb::WatchRequest, pb::WatchResponse> {
 public:
  WatchReactor(EtcdOps* ops, Caller caller) {
    stream_ = ops->OpenWatchStream(
        std::move(caller), [this](pb::WatchResponse r) { Send(std::move(r)); });
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side, or the call ended
      End(grpc::Status::OK);
      return;
    }
    stream_->Handle(request_);
    StartRead(&request_);
  }
  void OnDone() override {
    stream_.reset();  // cancels its watches; no callback runs after this
    delete this;
  }

 private:
  pb::WatchRequest request_;
  std::unique_ptr<WatchStream> stream_;
};

class KeepAliveReactor
    : public Stream<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse> {
 public:
  KeepAliveReactor(EtcdOps* ops, Caller caller)
      : ops_(ops), caller_(std::move(caller)) {
    StartRead(&request_);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      End(grpc::Status::OK);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++in_flight_;
    }
    ops_->LeaseKeepAlive(caller_, request_,
                         [this](const grpc::Status& status,
                                pb::LeaseKeepAliveResponse response) {
                           if (status.ok()) {
                             Send(std::move(response));
                           } else {
                             End(status);
                           }
                           std::lock_guard<std::mutex> lock(mu_);
                           --in_flight_;
                           idle_.notify_all();
                         });
    StartRead(&request_);
  }
  void OnDone() override {
    {
      // Answers still on their way reference this reactor.
      std::unique_lock<std::mutex> lock(mu_);
      idle_.wait(lock, [this] { return in_flight_ == 0; });
    }
    delete this;
  }

 private:
  EtcdOps* const ops_;
  const Caller caller_;
  pb::LeaseKeepAliveRequest request_;
  std::mutex mu_;
  std::condition_variable idle_;
  int in_flight_ = 0;
};

// Maintenance.Snapshot: EtcdOps::Snapshot blocks, so it runs on a thread
// of its own, each chunk handed to gRPC and waited for.
class SnapshotReactor : public grpc::ServerWriteReactor<pb::SnapshotResponse> {
 public:
  SnapshotReactor(EtcdOps* ops, Caller caller) {
    thread_ = std::thread([this, ops, caller = std::move(caller)] {
      grpc::Status status =
          ops->Snapshot(caller, [this](const pb::SnapshotResponse& chunk) {
            std::unique_lock<std::mutex> lock(mu_);
            if (failed_) return false;
            chunk_ = chunk;
            writing_ = true;
            StartWrite(&chunk_);
            written_.wait(lock, [this] { return !writing_; });
            return !failed_;
          });
      Finish(status);
    });
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) failed_ = true;
    written_.notify_all();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    failed_ = true;
    written_.notify_all();
  }
  void OnDone() override {
    thread_.join();
    delete this;
  }

 private:
  std::mutex mu_;
  std::condition_variable written_;
  pb::SnapshotResponse chunk_;
  bool writing_ = false;
  bool failed_ = false;
  std::thread thread_;
};

class KvService final : public pb::KV::CallbackService {
 public:
  explicit KvService(EtcdOps* ops) : ops_(ops) {}
  RAFTKV_UNARY(Range, RangeRequest, RangeResponse)
  RAFTKV_UNARY(Put, PutRequest, PutResponse)
  RAFTKV_UNARY(DeleteRange, DeleteRangeRequest, DeleteRangeResponse)
  RAFTKV_UNARY(Txn, TxnRequest, TxnResponse)
  RAFTKV_UNARY(Compact, CompactionRequest, CompactionResponse)

 private:
  EtcdOps* const ops_;
};

class WatchService final : public pb::Watch::CallbackService {
 public:
  explicit WatchService(EtcdOps* ops) : ops_(ops) {}
  grpc::ServerBidiReactor<pb::WatchRequest, pb::WatchResponse>* Watch(
      grpc::CallbackServerContext* context) override {
    return new WatchReactor(ops_, CallerOf(context));
  }

 private:
  EtcdOps* const ops_;
};

class LeaseService final : public pb::Lease::CallbackService {
 public:
  explicit LeaseService(EtcdOps* ops) : ops_(ops) {}
  RAFTKV_UNARY(LeaseGrant, LeaseGrantRequest, LeaseGrantResponse)
  RAFTKV_UNARY(LeaseRevoke, LeaseRevokeRequest, LeaseRevokeResponse)
  RAFTKV_UNARY(LeaseTimeToLive, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse)
  RAFTKV_UNARY(LeaseLeases, LeaseLeasesRequest, LeaseLeasesResponse)
  grpc::ServerBidiReactor<pb::LeaseKeepAliveRequest,
                          pb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* context) override {
    return new KeepAliveReactor(ops_, CallerOf(context));
  }

 private:
  EtcdOps* const ops_;
};

class ClusterService final : public pb::Cluster::CallbackService {
 public:
  explicit ClusterService(EtcdOps* ops) : ops_(ops) {}
  RAFTKV_UNARY(MemberAdd, MemberAddRequest, MemberAddResponse)
  RAFTKV_UNARY(MemberRemove, MemberRemoveRequest, MemberRemoveResponse)
  RAFTKV_UNARY(MemberUpdate, MemberUpdateRequest, MemberUpdateResponse)
  RAFTKV_UNARY(MemberList, MemberListRequest, MemberListResponse)
  RAFTKV_UNARY(MemberPromote, MemberPromoteRequest, MemberPromoteResponse)

 private:
  EtcdOps* const ops_;
};

class MaintenanceService final : public pb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(EtcdOps* ops) : ops_(ops) {}
  RAFTKV_UNARY(Alarm, AlarmRequest, AlarmResponse)
  RAFTKV_UNARY(Status, StatusRequest, StatusResponse)
  RAFTKV_UNARY(Defragment, DefragmentRequest, DefragmentResponse)
  RAFTKV_UNARY(Hash, HashRequest, HashResponse)
  RAFTKV_UNARY(HashKV, HashKVRequest, HashKVResponse)
  RAFTKV_UNARY(MoveLeader, MoveLeaderRequest, MoveLeaderResponse)
  grpc::ServerWriteReactor<pb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext* context,
      const pb::SnapshotRequest*) override {
    return new SnapshotReactor(ops_, CallerOf(context));
  }

 private:
  EtcdOps* const ops_;
};

class AuthService final : public pb::Auth::CallbackService {
 public:
  explicit AuthService(EtcdOps* ops) : ops_(ops) {}
  RAFTKV_UNARY(AuthEnable, AuthEnableRequest, AuthEnableResponse)
  RAFTKV_UNARY(AuthDisable, AuthDisableRequest, AuthDisableResponse)
  RAFTKV_UNARY(Authenticate, AuthenticateRequest, AuthenticateResponse)
  RAFTKV_UNARY(UserAdd, AuthUserAddRequest, AuthUserAddResponse)
  RAFTKV_UNARY(UserGet, AuthUserGetRequest, AuthUserGetResponse)
  RAFTKV_UNARY(UserList, AuthUserListRequest, AuthUserListResponse)
  RAFTKV_UNARY(UserDelete, AuthUserDeleteRequest, AuthUserDeleteResponse)
  RAFTKV_UNARY(UserChangePassword, AuthUserChangePasswordRequest,
               AuthUserChangePasswordResponse)
  RAFTKV_UNARY(UserGrantRole, AuthUserGrantRoleRequest,
               AuthUserGrantRoleResponse)
  RAFTKV_UNARY(UserRevokeRole, AuthUserRevokeRoleRequest,
               AuthUserRevokeRoleResponse)
  RAFTKV_UNARY(RoleAdd, AuthRoleAddRequest, AuthRoleAddResponse)
  RAFTKV_UNARY(RoleGet, AuthRoleGetRequest, AuthRoleGetResponse)
  RAFTKV_UNARY(RoleList, AuthRoleListRequest, AuthRoleListResponse)
  RAFTKV_UNARY(RoleDelete, AuthRoleDeleteRequest, AuthRoleDeleteResponse)
  RAFTKV_UNARY(RoleGrantPermission, AuthRoleGrantPermissionRequest,
               AuthRoleGrantPermissionResponse)
  RAFTKV_UNARY(RoleRevokePermission, AuthRoleRevokePermissionRequest,
               AuthRoleRevokePermissionResponse)

 private:
  EtcdOps* const ops_;
};

#undef RAFTKV_UNARY

std::shared_ptr<grpc::ServerCredentials> Credentials(const TlsFiles& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  // Re-reads the files every second: renewed certificates take effect for
  // new connections without a restart.
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          tls.key_file, tls.cert_file, tls.trusted_ca_file,
          /*refresh_interval_sec=*/1);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.trusted_ca_file.empty()) options.watch_root_certs();
  options.set_cert_request_type(
      tls.client_cert_auth
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

GrpcServer::GrpcServer(EtcdOps* ops) : ops_(ops) {}

GrpcServer::~GrpcServer() { Stop(); }

raftkv::Status GrpcServer::Start(const std::string& address,
                                 const TlsFiles& tls) {
  services_.push_back(std::make_unique<KvService>(ops_));
  services_.push_back(std::make_unique<WatchService>(ops_));
  services_.push_back(std::make_unique<LeaseService>(ops_));
  services_.push_back(std::make_unique<ClusterService>(ops_));
  services_.push_back(std::make_unique<MaintenanceService>(ops_));
  services_.push_back(std::make_unique<AuthService>(ops_));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, Credentials(tls), &port);
  for (auto& service : services_) builder.RegisterService(service.get());
  // etcd's clients ping idle connections (etcdctl every 10 s at least):
  // allow it rather than answer "too many pings" and drop them.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.SetMaxReceiveMessageSize(8 << 20);
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    return raftkv::Status::IOError("cannot serve etcd's API on " + address +
                                   " (address in use, or bad TLS files?)");
  }
  LOG(INFO) << "serving etcd's v3 API on " << address
            << (tls.enabled() ? " (TLS)" : "");
  return raftkv::Status::OK();
}

void GrpcServer::Stop() {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_.reset();
}

}  // namespace raftkv::server::etcd
