// EtcdOps: etcd's v3 API (etcdserverpb) carried out through raftkv's
// native client library: each etcd request becomes the native request of
// the same meaning (etcdapi/convert.h), sent to the leader with the
// library's retries and redirects (or, for what concerns this member only,
// such as Status and serializable reads, to this member), and the native
// answer becomes etcd's, with etcd's gRPC codes and messages (errors.h).
// The front doors, gRPC (grpc_services.h) and the JSON gateway
// (json_gateway.h), are thin shells around it.
//
// Writes through it are at-most-once from the etcd client's point of view,
// as etcd's are: a retry by the etcd client is a new write. Within the
// gateway, a write retried after a lost connection is exactly-once (the
// native session).
//
// Must never answer a write before the native answer says it applied, or
// block the caller's thread: every operation completes through its
// callback, on the native client's I/O thread (Snapshot excepted: it
// blocks, see there).
// Thread-safety: every method may be called from any thread.
#pragma once

#include <grpcpp/support/status.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "client/client.h"
#include "client/kv.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "util/status.h"

namespace raftkv::server::etcd {

// Who is asking: the auth token the call carried (gRPC metadata "token",
// or the HTTP "Authorization" header; empty: none).
struct Caller {
  std::string token;
  // The time the caller gives the call (its gRPC deadline); 0: none.
  std::chrono::milliseconds timeout{0};
};

template <class Response>
using Reply = std::function<void(const grpc::Status&, Response)>;

class WatchStream;

class EtcdOps {
 public:
  struct Options {
    uint64_t member_id = 0;
    uint64_t cluster_id = 0;
    // This member's native client address (HOST:PORT, a wildcard host
    // replaced by 127.0.0.1): requests go there first and follow redirects.
    std::string native_address;
    // This member's etcd API address as clients should use it, and whether
    // it is served with TLS (for the URLs of Cluster and Status answers).
    std::string etcd_address;
    bool etcd_tls = false;
    bool peer_tls = false;
    // Where a Snapshot's image is received before it is sent (the data
    // dir); removed once sent.
    std::string scratch_dir = "/tmp";
    // The longest any call but a range may take (a range takes as long as
    // its caller waits, up to kLongestRead).
    std::chrono::milliseconds deadline{10000};
    // How to reach the native listener when it serves TLS.
    ClientTlsOptions native_tls;
  };

  static StatusOr<std::unique_ptr<EtcdOps>> Create(Options options);
  ~EtcdOps();

  // KV.
  void Range(const Caller& caller, const etcdserverpb::RangeRequest& request,
             Reply<etcdserverpb::RangeResponse> reply);
  void Put(const Caller& caller, const etcdserverpb::PutRequest& request,
           Reply<etcdserverpb::PutResponse> reply);
  void DeleteRange(const Caller& caller,
                   const etcdserverpb::DeleteRangeRequest& request,
                   Reply<etcdserverpb::DeleteRangeResponse> reply);
  void Txn(const Caller& caller, const etcdserverpb::TxnRequest& request,
           Reply<etcdserverpb::TxnResponse> reply);
  void Compact(const Caller& caller,
               const etcdserverpb::CompactionRequest& request,
               Reply<etcdserverpb::CompactionResponse> reply);

  // Lease (a keep-alive stream sends each request here).
  void LeaseGrant(const Caller& caller,
                  const etcdserverpb::LeaseGrantRequest& request,
                  Reply<etcdserverpb::LeaseGrantResponse> reply);
  void LeaseRevoke(const Caller& caller,
                   const etcdserverpb::LeaseRevokeRequest& request,
                   Reply<etcdserverpb::LeaseRevokeResponse> reply);
  void LeaseKeepAlive(const Caller& caller,
                      const etcdserverpb::LeaseKeepAliveRequest& request,
                      Reply<etcdserverpb::LeaseKeepAliveResponse> reply);
  void LeaseTimeToLive(const Caller& caller,
                       const etcdserverpb::LeaseTimeToLiveRequest& request,
                       Reply<etcdserverpb::LeaseTimeToLiveResponse> reply);
  void LeaseLeases(const Caller& caller,
                   const etcdserverpb::LeaseLeasesRequest& request,
                   Reply<etcdserverpb::LeaseLeasesResponse> reply);

  // Cluster.
  void MemberAdd(const Caller& caller,
                 const etcdserverpb::MemberAddRequest& request,
                 Reply<etcdserverpb::MemberAddResponse> reply);
  void MemberRemove(const Caller& caller,
                    const etcdserverpb::MemberRemoveRequest& request,
                    Reply<etcdserverpb::MemberRemoveResponse> reply);
  void MemberUpdate(const Caller& caller,
                    const etcdserverpb::MemberUpdateRequest& request,
                    Reply<etcdserverpb::MemberUpdateResponse> reply);
  void MemberList(const Caller& caller,
                  const etcdserverpb::MemberListRequest& request,
                  Reply<etcdserverpb::MemberListResponse> reply);
  void MemberPromote(const Caller& caller,
                     const etcdserverpb::MemberPromoteRequest& request,
                     Reply<etcdserverpb::MemberPromoteResponse> reply);

  // Maintenance (Snapshot below).
  void Alarm(const Caller& caller, const etcdserverpb::AlarmRequest& request,
             Reply<etcdserverpb::AlarmResponse> reply);
  void Status(const Caller& caller, const etcdserverpb::StatusRequest& request,
              Reply<etcdserverpb::StatusResponse> reply);
  void Defragment(const Caller& caller,
                  const etcdserverpb::DefragmentRequest& request,
                  Reply<etcdserverpb::DefragmentResponse> reply);
  void Hash(const Caller& caller, const etcdserverpb::HashRequest& request,
            Reply<etcdserverpb::HashResponse> reply);
  void HashKV(const Caller& caller, const etcdserverpb::HashKVRequest& request,
              Reply<etcdserverpb::HashKVResponse> reply);
  void MoveLeader(const Caller& caller,
                  const etcdserverpb::MoveLeaderRequest& request,
                  Reply<etcdserverpb::MoveLeaderResponse> reply);
  // Streams this member's backup image (native snapshot_save) in chunks to
  // `write`, which returns false if the receiver is gone. Blocks the
  // calling thread until done: call it on a thread of your own.
  grpc::Status Snapshot(
      const Caller& caller,
      const std::function<bool(const etcdserverpb::SnapshotResponse&)>& write);

  // Auth.
  void AuthEnable(const Caller& caller,
                  const etcdserverpb::AuthEnableRequest& request,
                  Reply<etcdserverpb::AuthEnableResponse> reply);
  void AuthDisable(const Caller& caller,
                   const etcdserverpb::AuthDisableRequest& request,
                   Reply<etcdserverpb::AuthDisableResponse> reply);
  void Authenticate(const Caller& caller,
                    const etcdserverpb::AuthenticateRequest& request,
                    Reply<etcdserverpb::AuthenticateResponse> reply);
  void UserAdd(const Caller& caller,
               const etcdserverpb::AuthUserAddRequest& request,
               Reply<etcdserverpb::AuthUserAddResponse> reply);
  void UserGet(const Caller& caller,
               const etcdserverpb::AuthUserGetRequest& request,
               Reply<etcdserverpb::AuthUserGetResponse> reply);
  void UserList(const Caller& caller,
                const etcdserverpb::AuthUserListRequest& request,
                Reply<etcdserverpb::AuthUserListResponse> reply);
  void UserDelete(const Caller& caller,
                  const etcdserverpb::AuthUserDeleteRequest& request,
                  Reply<etcdserverpb::AuthUserDeleteResponse> reply);
  void UserChangePassword(
      const Caller& caller,
      const etcdserverpb::AuthUserChangePasswordRequest& request,
      Reply<etcdserverpb::AuthUserChangePasswordResponse> reply);
  void UserGrantRole(const Caller& caller,
                     const etcdserverpb::AuthUserGrantRoleRequest& request,
                     Reply<etcdserverpb::AuthUserGrantRoleResponse> reply);
  void UserRevokeRole(const Caller& caller,
                      const etcdserverpb::AuthUserRevokeRoleRequest& request,
                      Reply<etcdserverpb::AuthUserRevokeRoleResponse> reply);
  void RoleAdd(const Caller& caller,
               const etcdserverpb::AuthRoleAddRequest& request,
               Reply<etcdserverpb::AuthRoleAddResponse> reply);
  void RoleGet(const Caller& caller,
               const etcdserverpb::AuthRoleGetRequest& request,
               Reply<etcdserverpb::AuthRoleGetResponse> reply);
  void RoleList(const Caller& caller,
                const etcdserverpb::AuthRoleListRequest& request,
                Reply<etcdserverpb::AuthRoleListResponse> reply);
  void RoleDelete(const Caller& caller,
                  const etcdserverpb::AuthRoleDeleteRequest& request,
                  Reply<etcdserverpb::AuthRoleDeleteResponse> reply);
  void RoleGrantPermission(
      const Caller& caller,
      const etcdserverpb::AuthRoleGrantPermissionRequest& request,
      Reply<etcdserverpb::AuthRoleGrantPermissionResponse> reply);
  void RoleRevokePermission(
      const Caller& caller,
      const etcdserverpb::AuthRoleRevokePermissionRequest& request,
      Reply<etcdserverpb::AuthRoleRevokePermissionResponse> reply);

  // Watch: one etcd watch stream (many watches). `send` gets every
  // response, in order, on the native client's I/O thread; it must not
  // block (queue and return).
  std::unique_ptr<WatchStream> OpenWatchStream(
      const Caller& caller,
      std::function<void(etcdserverpb::WatchResponse)> send);

  uint64_t member_id() const { return options_.member_id; }
  // A header for answers that carry none natively.
  etcdserverpb::ResponseHeader Header() const;

 private:
  friend class WatchStream;
  explicit EtcdOps(Options options);

  // Sends `request` (with the caller's token) to the leader (or, if
  // `local`, to this member only) and hands the answer to `done`.
  void Send(const Caller& caller, kv::ClientRequest request, bool local,
            std::function<void(StatusOr<kv::ClientResponse>)> done);
  // A write: the Command's result, its error mapped.
  void SendCommand(
      const Caller& caller, kv::Command command,
      std::function<void(const grpc::Status&, kv::CommandResult)> done);
  // Remembers the newest header seen (revision, term) for Header().
  void Observe(const kv::ResponseHeader& header);
  // Fills `out` from a native header, this member answering.
  void FillHeader(const kv::ResponseHeader& in,
                  etcdserverpb::ResponseHeader* out);
  // etcd members from native ones (URLs with schemes, etcd addresses).
  void ToEtcdMembers(
      const kv::MemberListResponse& in,
      google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out);
  // Asks the members whose etcd address is not known yet for it (their
  // status answers), then runs `then`.
  void LearnEtcdAddresses(const kv::MemberListResponse& members,
                          std::function<void()> then);
  // A membership request answered with the members (then `finish`).
  template <class Out>
  void Membership(const Caller& caller, kv::ClientRequest request,
                  Reply<Out> reply, std::function<void(Out*)> finish);
  // HashKV reads the store a page at a time, at one revision.
  struct HashState {
    int64_t revision = 0;
    std::string next_key;
    uint32_t hash = 0;
    int64_t compacted_revision = 0;
    kv::ResponseHeader header;
  };
  void HashPage(const Caller& caller, std::shared_ptr<HashState> state,
                std::function<void(const grpc::Status&)> done);
  // An auth request: the native message is etcd's, field for field.
  template <class NativeRequest, class EtcdResponse, class NativeResponse>
  void Auth(const Caller& caller, const google::protobuf::Message& request,
            NativeRequest* (kv::ClientRequest::*field)(),
            const NativeResponse& (kv::ClientResponse::*answer)() const,
            Reply<EtcdResponse> reply);

  // The longest a range may run when its caller sets no deadline.
  static constexpr std::chrono::milliseconds kLongestRead{300000};

  Options options_;
  std::unique_ptr<Client> client_;
  std::atomic<int64_t> revision_{0};
  std::atomic<uint64_t> term_{0};
  // Members' etcd API addresses, learnt from their status answers.
  std::mutex mu_;
  std::map<uint64_t, std::string> etcd_addresses_;
  std::atomic<uint64_t> snapshots_{0};
};

}  // namespace raftkv::server::etcd
