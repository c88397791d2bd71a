// raftkv::Client: the synchronous and asynchronous API, translating between
// the public types and the wire protocol. The retry engine is in
// client_impl.cc.
#include "client/client.h"

#include <future>

#include "client/client_impl.h"
#include "client/kv.pb.h"

namespace raftkv {
namespace {

// Runs an asynchronous operation and waits for its result.
template <typename T>
T Wait(const std::function<void(std::function<void(T)>)>& start) {
  std::promise<T> promise;
  std::future<T> future = promise.get_future();
  start([&promise](T value) { promise.set_value(std::move(value)); });
  return future.get();
}

using Response = StatusOr<kv::ClientResponse>;

kv::ClientRequest WriteRequest() {
  kv::ClientRequest request;
  request.mutable_command();
  return request;
}

// The CommandResult of a successful write, or the state machine's refusal.
StatusOr<kv::CommandResult> CommandResultOf(const Response& r) {
  if (!r.ok()) return r.status();
  const kv::CommandResult& result = r->command();
  switch (result.error()) {
    case kv::CommandResult::OK:
      return result;
    case kv::CommandResult::SESSION_EXPIRED:
      return Status::Aborted("client session expired: " +
                             result.error_message());
    case kv::CommandResult::LEASE_NOT_FOUND:
      return Status::NotFound(result.error_message());
    case kv::CommandResult::COMPACTED:
      return Status::Compacted(result.error_message());
    case kv::CommandResult::FUTURE_REVISION:
      return Status::FailedPrecondition(result.error_message());
    case kv::CommandResult::AUTH:
      if (result.auth_error() == kv::PERMISSION_DENIED) {
        return Status::PermissionDenied(result.error_message());
      }
      return Status::FailedPrecondition(result.error_message());
    default:
      return Status::InvalidArgument(result.error_message());
  }
}

}  // namespace

KeyValue FromProto(const kv::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

std::string PrefixRangeEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) != 0xff) {
      end.back() =
          static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

StatusOr<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  RAFTKV_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

void Client::set_deadline(std::chrono::milliseconds deadline) {
  impl_->set_deadline(deadline);
}

uint64_t Client::client_id() const { return impl_->client_id(); }

void Client::PutAsync(const std::string& key, const std::string& value,
                      std::function<void(StatusOr<int64_t>)> done) {
  PutWithOptions(key, value, PutOptions(), std::move(done));
}

void Client::PutWithOptions(const std::string& key, const std::string& value,
                            const PutOptions& options,
                            std::function<void(StatusOr<int64_t>)> done) {
  if (key.empty()) return done(Status::InvalidArgument("empty key"));
  if (key.size() > impl_->options().max_key_bytes) {
    return done(Status::TooLarge("key of " + std::to_string(key.size()) +
                                 " bytes exceeds the limit"));
  }
  if (value.size() > impl_->options().max_value_bytes) {
    return done(
        Status::TooLarge("value of " + std::to_string(value.size()) +
                         " bytes exceeds the limit of " +
                         std::to_string(impl_->options().max_value_bytes)));
  }
  kv::ClientRequest request = WriteRequest();
  kv::PutRequest* put = request.mutable_command()->mutable_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(options.lease);
  impl_->Submit(std::move(request), impl_->deadline(),
                [done = std::move(done)](Response r) {
                  auto result = CommandResultOf(r);
                  if (!result.ok()) return done(result.status());
                  done(result->put().header().revision());
                });
}

StatusOr<int64_t> Client::Put(const std::string& key,
                              const std::string& value) {
  return Wait<StatusOr<int64_t>>(
      [&](auto done) { PutAsync(key, value, std::move(done)); });
}

StatusOr<int64_t> Client::Put(const std::string& key, const std::string& value,
                              const PutOptions& options) {
  return Wait<StatusOr<int64_t>>(
      [&](auto done) { PutWithOptions(key, value, options, std::move(done)); });
}

StatusOr<kv::RangeResponse> Client::Range(const kv::RangeRequest& range) {
  kv::ClientRequest request;
  *request.mutable_range() = range;
  return Wait<StatusOr<kv::RangeResponse>>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(), [done](Response r) {
      if (!r.ok()) return done(r.status());
      done(r->range());
    });
  });
}

// A write whose result is one CommandResult (no session: compaction and
// lease commands are idempotent or harmless to repeat).
StatusOr<kv::CommandResult> Client::Command(kv::Command command) {
  kv::ClientRequest request;
  *request.mutable_command() = std::move(command);
  return Wait<StatusOr<kv::CommandResult>>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(),
                  [done](Response r) { done(CommandResultOf(r)); });
  });
}

Status Client::Compact(int64_t revision) {
  kv::Command command;
  command.mutable_compact()->set_revision(revision);
  return Command(std::move(command)).status();
}

StatusOr<LeaseGrantResult> Client::LeaseGrant(int64_t ttl_seconds, int64_t id) {
  kv::Command command;
  command.mutable_lease_grant()->set_ttl(ttl_seconds);
  command.mutable_lease_grant()->set_id(id);
  auto result = Command(std::move(command));
  if (!result.ok()) return result.status();
  return LeaseGrantResult{result->lease_grant().id(),
                          result->lease_grant().ttl()};
}

Status Client::LeaseRevoke(int64_t id) {
  kv::Command command;
  command.mutable_lease_revoke()->set_id(id);
  return Command(std::move(command)).status();
}

void Client::Send(kv::ClientRequest request, std::chrono::milliseconds deadline,
                  RawDone done) {
  impl_->Submit(std::move(request), deadline, std::move(done));
}

void Client::SendTo(size_t endpoint, kv::ClientRequest request,
                    std::chrono::milliseconds deadline, RawDone done) {
  impl_->SubmitTo(endpoint, std::move(request), deadline, std::move(done));
}

StatusOr<kv::ClientResponse> Client::Call(kv::ClientRequest request) {
  return Wait<StatusOr<kv::ClientResponse>>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(),
                  [done](Response r) { done(std::move(r)); });
  });
}

StatusOr<int64_t> Client::LeaseKeepAliveOnce(int64_t id) {
  kv::ClientRequest request;
  request.mutable_lease_keep_alive()->set_id(id);
  auto r = Call(std::move(request));
  if (!r.ok()) return r.status();
  return r->lease_keep_alive().ttl();
}

StatusOr<LeaseTimeToLiveResult> Client::LeaseTimeToLive(int64_t id, bool keys) {
  kv::ClientRequest request;
  request.mutable_lease_time_to_live()->set_id(id);
  request.mutable_lease_time_to_live()->set_keys(keys);
  auto r = Call(std::move(request));
  if (!r.ok()) return r.status();
  const kv::LeaseTimeToLiveResponse& t = r->lease_time_to_live();
  LeaseTimeToLiveResult out;
  out.id = t.id();
  out.ttl = t.ttl();
  out.granted_ttl = t.granted_ttl();
  out.keys.assign(t.keys().begin(), t.keys().end());
  return out;
}

StatusOr<std::vector<int64_t>> Client::LeaseList() {
  kv::ClientRequest request;
  request.mutable_lease_leases();
  auto r = Call(std::move(request));
  if (!r.ok()) return r.status();
  std::vector<int64_t> ids;
  for (const kv::LeaseStatus& l : r->lease_leases().leases()) {
    ids.push_back(l.id());
  }
  return ids;
}

namespace {

StatusOr<int64_t> DeleteResult(const Response& r) {
  auto result = CommandResultOf(r);
  if (!result.ok()) return result.status();
  return result->delete_range().deleted();
}

}  // namespace

StatusOr<int64_t> Client::Delete(const std::string& key) {
  kv::ClientRequest request = WriteRequest();
  request.mutable_command()->mutable_delete_range()->set_key(key);
  return Wait<StatusOr<int64_t>>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(),
                  [done](Response r) { done(DeleteResult(r)); });
  });
}

StatusOr<int64_t> Client::DeletePrefix(const std::string& prefix) {
  kv::ClientRequest request = WriteRequest();
  kv::DeleteRangeRequest* del =
      request.mutable_command()->mutable_delete_range();
  del->set_key(prefix.empty() ? std::string(1, '\0') : prefix);
  del->set_range_end(PrefixRangeEnd(prefix));
  return Wait<StatusOr<int64_t>>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(),
                  [done](Response r) { done(DeleteResult(r)); });
  });
}

void Client::TxnAsync(const kv::TxnRequest& txn,
                      std::function<void(StatusOr<kv::TxnResponse>)> done) {
  kv::ClientRequest request = WriteRequest();
  *request.mutable_command()->mutable_txn() = txn;
  impl_->Submit(std::move(request), impl_->deadline(),
                [done = std::move(done)](Response r) {
                  auto result = CommandResultOf(r);
                  if (!result.ok()) return done(result.status());
                  done(result->txn());
                });
}

StatusOr<kv::TxnResponse> Client::Txn(const kv::TxnRequest& txn) {
  return Wait<StatusOr<kv::TxnResponse>>(
      [&](auto done) { TxnAsync(txn, std::move(done)); });
}

namespace {

kv::TxnRequest SwapTxn(const std::string& key, const std::string& new_value) {
  kv::TxnRequest txn;
  kv::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(new_value);
  return txn;
}

}  // namespace

StatusOr<bool> Client::CompareAndSwap(const std::string& key,
                                      const std::string& expected,
                                      const std::string& new_value) {
  kv::TxnRequest txn = SwapTxn(key, new_value);
  kv::Compare* cmp = txn.add_compare();
  cmp->set_key(key);
  cmp->set_target(kv::Compare::VALUE);
  cmp->set_result(kv::Compare::EQUAL);
  cmp->set_value(expected);
  auto r = Txn(txn);
  if (!r.ok()) return r.status();
  return r->succeeded();
}

StatusOr<bool> Client::CompareVersionAndSwap(const std::string& key,
                                             int64_t expected_version,
                                             const std::string& new_value) {
  kv::TxnRequest txn = SwapTxn(key, new_value);
  kv::Compare* cmp = txn.add_compare();
  cmp->set_key(key);
  cmp->set_target(kv::Compare::VERSION);
  cmp->set_result(kv::Compare::EQUAL);
  cmp->set_version(expected_version);
  auto r = Txn(txn);
  if (!r.ok()) return r.status();
  return r->succeeded();
}

void Client::GetAsync(const std::string& key, ReadOptions options,
                      std::function<void(StatusOr<KeyValue>)> done) {
  kv::ClientRequest request;
  request.mutable_range()->set_key(key);
  request.mutable_range()->set_serializable(options.serializable);
  impl_->Submit(std::move(request), impl_->deadline(),
                [done = std::move(done), key](Response r) {
                  if (!r.ok()) return done(r.status());
                  if (r->range().kvs_size() == 0) {
                    return done(Status::NotFound("key '" + key + "'"));
                  }
                  done(FromProto(r->range().kvs(0)));
                });
}

StatusOr<KeyValue> Client::Get(const std::string& key, ReadOptions options) {
  return Wait<StatusOr<KeyValue>>(
      [&](auto done) { GetAsync(key, options, std::move(done)); });
}

StatusOr<RangeResult> Client::GetPrefix(const std::string& prefix,
                                        int64_t limit, ReadOptions options) {
  kv::ClientRequest request;
  kv::RangeRequest* range = request.mutable_range();
  range->set_key(prefix.empty() ? std::string(1, '\0') : prefix);
  range->set_range_end(PrefixRangeEnd(prefix));
  range->set_limit(limit);
  range->set_serializable(options.serializable);
  return Wait<StatusOr<RangeResult>>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(), [done](Response r) {
      if (!r.ok()) return done(r.status());
      RangeResult result;
      for (const auto& kv : r->range().kvs())
        result.kvs.push_back(FromProto(kv));
      result.more = r->range().more();
      result.revision = r->range().header().revision();
      done(std::move(result));
    });
  });
}

std::vector<NodeInfo> Client::ClusterStatus() {
  const size_t n = impl_->endpoint_count();
  std::vector<std::promise<NodeInfo>> promises(n);
  std::vector<std::future<NodeInfo>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  const auto deadline =
      std::min(impl_->deadline(), std::chrono::milliseconds(2000));
  for (size_t i = 0; i < n; ++i) {
    kv::ClientRequest request;
    request.mutable_status();
    std::string address = impl_->endpoint_address(i);
    impl_->SubmitTo(
        i, std::move(request), deadline, [&promises, i, address](Response r) {
          NodeInfo info;
          info.address = address;
          if (!r.ok()) {
            info.error = r.status();
          } else {
            const kv::StatusResponse& s = r->status();
            info.id = s.id();
            info.role = s.role();
            info.term = s.term();
            info.leader_id = s.leader_id();
            info.commit_index = s.commit_index();
            info.applied_index = s.applied_index();
            info.last_index = s.last_index();
            info.rejoin = s.rejoin();
            info.cluster_id = s.header().cluster_id();
            info.loop_stall_max_ms = s.loop_stall_max_ms();
            info.loop_stall_recent_ms = s.loop_stall_recent_ms();
            info.loop_stall_max_cpu_wait_ms = s.loop_stall_max_cpu_wait_ms();
            info.loop_stall_recent_cpu_wait_ms =
                s.loop_stall_recent_cpu_wait_ms();
            info.log_cache_bytes = s.log_cache_bytes();
            info.etcd_address = s.etcd_address();
          }
          promises[i].set_value(std::move(info));
        });
  }
  std::vector<NodeInfo> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

StatusOr<std::pair<uint64_t, std::string>> Client::Leader() {
  // Ask any node; the answer comes from the leader itself (status is routed
  // like a read), so the reported leader is current.
  kv::ClientRequest request;
  request.mutable_status();
  auto r = Wait<Response>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(), std::move(done));
  });
  if (!r.ok()) return r.status();
  for (const auto& m : r->status().members()) {
    if (m.id() == r->status().leader_id()) {
      return std::make_pair(m.id(), m.client_address());
    }
  }
  return Status::Unavailable("leader unknown");
}

Status Client::TransferLeader(uint64_t transferee) {
  kv::ClientRequest request;
  request.mutable_transfer_leader()->set_transferee(transferee);
  auto r = Wait<Response>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(), std::move(done));
  });
  return r.ok() ? Status::OK() : r.status();
}

namespace {

StatusOr<std::vector<MemberInfo>> ToMembers(
    const StatusOr<kv::ClientResponse>& r) {
  if (!r.ok()) return r.status();
  std::vector<MemberInfo> members;
  for (const kv::MemberStatus& m : r->members().members()) {
    members.push_back({m.id(), m.peer_address(), m.client_address(),
                       m.learner(), m.leader()});
  }
  return members;
}

}  // namespace

StatusOr<std::vector<MemberInfo>> Client::MemberList() {
  kv::ClientRequest request;
  request.mutable_member_list();
  return ToMembers(Wait<Response>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(), std::move(done));
  }));
}

StatusOr<std::vector<MemberInfo>> Client::MemberAdd(
    uint64_t id, const std::string& peer_address,
    const std::string& client_address, bool learner) {
  kv::ClientRequest request;
  kv::MemberStatus* m = request.mutable_member_add()->mutable_member();
  m->set_id(id);
  m->set_peer_address(peer_address);
  m->set_client_address(client_address);
  m->set_learner(learner);
  return ToMembers(Wait<Response>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(), std::move(done));
  }));
}

StatusOr<std::vector<MemberInfo>> Client::MemberPromote(uint64_t id) {
  kv::ClientRequest request;
  request.mutable_member_promote()->set_id(id);
  return ToMembers(Wait<Response>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(), std::move(done));
  }));
}

StatusOr<std::vector<MemberInfo>> Client::MemberRemove(uint64_t id) {
  kv::ClientRequest request;
  request.mutable_member_remove()->set_id(id);
  return ToMembers(Wait<Response>([&](auto done) {
    impl_->Submit(std::move(request), impl_->deadline(), std::move(done));
  }));
}

}  // namespace raftkv

// --- Authentication ---------------------------------------------------------

namespace raftkv {

Status Client::Authenticate(const std::string& user,
                            const std::string& password) {
  return Wait<Status>([&](auto done) {
    impl_->Authenticate(user, password, [done](Status s) { done(s); });
  });
}

Status Client::AuthEnable() {
  kv::ClientRequest request;
  request.mutable_auth_enable();
  return Call(std::move(request)).status();
}

Status Client::AuthDisable() {
  kv::ClientRequest request;
  request.mutable_auth_disable();
  return Call(std::move(request)).status();
}

StatusOr<AuthStatusResult> Client::AuthStatus() {
  kv::ClientRequest request;
  request.mutable_auth_status();
  auto r = Call(std::move(request));
  if (!r.ok()) return r.status();
  return AuthStatusResult{r->auth_status().enabled(),
                          r->auth_status().auth_revision()};
}

Status Client::UserAdd(const std::string& name, const std::string& password,
                       bool no_password) {
  kv::ClientRequest request;
  kv::AuthUserAddRequest* add = request.mutable_auth_user_add();
  add->set_name(name);
  add->set_password(password);
  add->mutable_options()->set_no_password(no_password);
  return Call(std::move(request)).status();
}

StatusOr<std::vector<std::string>> Client::UserGet(const std::string& name) {
  kv::ClientRequest request;
  request.mutable_auth_user_get()->set_name(name);
  auto r = Call(std::move(request));
  if (!r.ok()) return r.status();
  const auto& roles = r->auth_user_get().roles();
  return std::vector<std::string>(roles.begin(), roles.end());
}

StatusOr<std::vector<std::string>> Client::UserList() {
  kv::ClientRequest request;
  request.mutable_auth_user_list();
  auto r = Call(std::move(request));
  if (!r.ok()) return r.status();
  const auto& users = r->auth_user_list().users();
  return std::vector<std::string>(users.begin(), users.end());
}

Status Client::UserDelete(const std::string& name) {
  kv::ClientRequest request;
  request.mutable_auth_user_delete()->set_name(name);
  return Call(std::move(request)).status();
}

Status Client::UserChangePassword(const std::string& name,
                                  const std::string& password) {
  kv::ClientRequest request;
  request.mutable_auth_user_change_password()->set_name(name);
  request.mutable_auth_user_change_password()->set_password(password);
  return Call(std::move(request)).status();
}

Status Client::UserGrantRole(const std::string& user, const std::string& role) {
  kv::ClientRequest request;
  request.mutable_auth_user_grant_role()->set_user(user);
  request.mutable_auth_user_grant_role()->set_role(role);
  return Call(std::move(request)).status();
}

Status Client::UserRevokeRole(const std::string& user,
                              const std::string& role) {
  kv::ClientRequest request;
  request.mutable_auth_user_revoke_role()->set_name(user);
  request.mutable_auth_user_revoke_role()->set_role(role);
  return Call(std::move(request)).status();
}

Status Client::RoleAdd(const std::string& name) {
  kv::ClientRequest request;
  request.mutable_auth_role_add()->set_name(name);
  return Call(std::move(request)).status();
}

StatusOr<std::vector<Permission>> Client::RoleGet(const std::string& name) {
  kv::ClientRequest request;
  request.mutable_auth_role_get()->set_role(name);
  auto r = Call(std::move(request));
  if (!r.ok()) return r.status();
  std::vector<Permission> perms;
  for (const kv::Permission& p : r->auth_role_get().perm()) {
    perms.push_back(
        {static_cast<Permission::Type>(p.perm_type()), p.key(), p.range_end()});
  }
  return perms;
}

StatusOr<std::vector<std::string>> Client::RoleList() {
  kv::ClientRequest request;
  request.mutable_auth_role_list();
  auto r = Call(std::move(request));
  if (!r.ok()) return r.status();
  const auto& roles = r->auth_role_list().roles();
  return std::vector<std::string>(roles.begin(), roles.end());
}

Status Client::RoleDelete(const std::string& name) {
  kv::ClientRequest request;
  request.mutable_auth_role_delete()->set_role(name);
  return Call(std::move(request)).status();
}

Status Client::RoleGrantPermission(const std::string& name,
                                   const Permission& permission) {
  kv::ClientRequest request;
  kv::AuthRoleGrantPermissionRequest* grant =
      request.mutable_auth_role_grant_permission();
  grant->set_name(name);
  grant->mutable_perm()->set_perm_type(
      static_cast<kv::Permission::Type>(permission.type));
  grant->mutable_perm()->set_key(permission.key);
  grant->mutable_perm()->set_range_end(permission.range_end);
  return Call(std::move(request)).status();
}

Status Client::RoleRevokePermission(const std::string& name,
                                    const std::string& key,
                                    const std::string& range_end) {
  kv::ClientRequest request;
  kv::AuthRoleRevokePermissionRequest* revoke =
      request.mutable_auth_role_revoke_permission();
  revoke->set_role(name);
  revoke->set_key(key);
  revoke->set_range_end(range_end);
  return Call(std::move(request)).status();
}

}  // namespace raftkv
