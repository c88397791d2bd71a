// etcd's v3 API through the native client library (see etcd_ops.h).
#include "server/etcd/etcd_ops.h"

#include <glog/logging.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "client/blocking_frames.h"
#include "etcdapi/convert.h"
#include "server/etcd/errors.h"
#include "server/etcd/watch_stream.h"
#include "storage/backup_file.h"
#include "storage/checksum.h"

namespace raftkv::server::etcd {
namespace {

namespace pb = etcdserverpb;
using Response = StatusOr<kv::ClientResponse>;

// The version Status reports: the etcd API level served (clients gate
// features on it), marked as raftkv's.
constexpr char kVersion[] = "3.4.0+raftkv";
// Keys per page when HashKV reads the whole store.
constexpr int64_t kHashPage = 10000;

std::string Url(bool tls, const std::string& address) {
  return (tls ? "https://" : "http://") + address;
}

// "http://h:p/" -> "h:p".
std::string HostPort(std::string url) {
  for (const char* scheme : {"http://", "https://", "unix://", "unixs://"}) {
    if (url.rfind(scheme, 0) == 0) {
      url = url.substr(std::string(scheme).size());
      break;
    }
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

grpc::Status EmptyKey() {
  return grpc::Status(grpc::INVALID_ARGUMENT,
                      "etcdserver: key is not provided");
}

}  // namespace

StatusOr<std::unique_ptr<EtcdOps>> EtcdOps::Create(Options options) {
  std::unique_ptr<EtcdOps> ops(new EtcdOps(std::move(options)));
  ClientOptions client;
  client.endpoints = {ops->options_.native_address};
  client.deadline = ops->options_.deadline;
  client.tls = ops->options_.native_tls;
  // The servers' own limits apply (and answer as etcd does).
  client.max_key_bytes = SIZE_MAX;
  client.max_value_bytes = SIZE_MAX;
  auto created = Client::Create(std::move(client));
  if (!created.ok()) return created.status();
  ops->client_ = std::move(created).value();
  return ops;
}

EtcdOps::EtcdOps(Options options) : options_(std::move(options)) {}
EtcdOps::~EtcdOps() = default;

void EtcdOps::Send(const Caller& caller, kv::ClientRequest request, bool local,
                   std::function<void(Response)> done) {
  if (!caller.token.empty()) {
    request.set_auth_token(caller.token);
  } else {
    // With authentication on, etcd refuses a call that names no user so.
    done = [done = std::move(done)](Response r) {
      if (!r.ok() &&
          r.status().message().find("etcdserver: invalid auth token") !=
              std::string::npos) {
        r = raftkv::Status::InvalidArgument("etcdserver: user name is empty");
      }
      done(std::move(r));
    };
  }
  // As etcd: a range runs as long as its caller waits (a million keys take
  // seconds); anything else gets at most the member's request timeout.
  std::chrono::milliseconds deadline =
      request.has_range() ? kLongestRead : options_.deadline;
  if (caller.timeout.count() > 0) deadline = std::min(deadline, caller.timeout);
  if (local) {
    client_->SendTo(0, std::move(request), deadline, std::move(done));
  } else {
    client_->Send(std::move(request), deadline, std::move(done));
  }
}

void EtcdOps::SendCommand(
    const Caller& caller, kv::Command command,
    std::function<void(const grpc::Status&, kv::CommandResult)> done) {
  kv::ClientRequest request;
  *request.mutable_command() = std::move(command);
  Send(caller, std::move(request), /*local=*/false,
       [done = std::move(done)](Response r) {
         if (!r.ok()) {
           done(ToGrpc(r.status()), kv::CommandResult());
           return;
         }
         kv::CommandResult result = std::move(*r.value().mutable_command());
         const grpc::Status status = ToGrpc(result);
         done(status, std::move(result));
       });
}

void EtcdOps::Observe(const kv::ResponseHeader& header) {
  int64_t seen = revision_.load();
  while (header.revision() > seen &&
         !revision_.compare_exchange_weak(seen, header.revision())) {
  }
  uint64_t term = term_.load();
  while (header.raft_term() > term &&
         !term_.compare_exchange_weak(term, header.raft_term())) {
  }
}

void EtcdOps::FillHeader(const kv::ResponseHeader& in,
                         pb::ResponseHeader* out) {
  Observe(in);
  etcdapi::ToEtcd(in, out);
  // The member the client talks to answers (as etcd's headers say).
  out->set_member_id(options_.member_id);
  if (out->cluster_id() == 0) out->set_cluster_id(options_.cluster_id);
  if (out->revision() == 0) out->set_revision(revision_.load());
  if (out->raft_term() == 0) out->set_raft_term(term_.load());
}

pb::ResponseHeader EtcdOps::Header() const {
  pb::ResponseHeader header;
  header.set_cluster_id(options_.cluster_id);
  header.set_member_id(options_.member_id);
  header.set_revision(revision_.load());
  header.set_raft_term(term_.load());
  return header;
}

// ---- KV ----

void EtcdOps::Range(const Caller& caller, const pb::RangeRequest& request,
                    Reply<pb::RangeResponse> reply) {
  if (request.key().empty()) return reply(EmptyKey(), {});
  kv::ClientRequest native;
  *native.mutable_range() = etcdapi::ToNative(request);
  Send(caller, std::move(native), request.serializable(),
       [this, request, reply = std::move(reply)](Response r) {
         pb::RangeResponse out;
         if (!r.ok()) return reply(ToGrpc(r.status()), std::move(out));
         etcdapi::FinishRange(request, r->range(), &out);
         FillHeader(r->range().header(), out.mutable_header());
         reply(grpc::Status::OK, std::move(out));
       });
}

void EtcdOps::Put(const Caller& caller, const pb::PutRequest& request,
                  Reply<pb::PutResponse> reply) {
  if (request.key().empty()) return reply(EmptyKey(), {});
  kv::Command command;
  *command.mutable_put() = etcdapi::ToNative(request);
  SendCommand(caller, std::move(command),
              [this, reply = std::move(reply)](const grpc::Status& status,
                                               kv::CommandResult result) {
                pb::PutResponse out;
                if (status.ok()) {
                  etcdapi::ToEtcd(result.put(), &out);
                  FillHeader(result.put().header(), out.mutable_header());
                }
                reply(status, std::move(out));
              });
}

void EtcdOps::DeleteRange(const Caller& caller,
                          const pb::DeleteRangeRequest& request,
                          Reply<pb::DeleteRangeResponse> reply) {
  if (request.key().empty()) return reply(EmptyKey(), {});
  kv::Command command;
  *command.mutable_delete_range() = etcdapi::ToNative(request);
  SendCommand(caller, std::move(command),
              [this, reply = std::move(reply)](const grpc::Status& status,
                                               kv::CommandResult result) {
                pb::DeleteRangeResponse out;
                if (status.ok()) {
                  etcdapi::ToEtcd(result.delete_range(), &out);
                  FillHeader(result.delete_range().header(),
                             out.mutable_header());
                }
                reply(status, std::move(out));
              });
}

void EtcdOps::Txn(const Caller& caller, const pb::TxnRequest& request,
                  Reply<pb::TxnResponse> reply) {
  kv::Command command;
  raftkv::Status converted = etcdapi::ToNative(request, command.mutable_txn());
  if (!converted.ok()) {
    return reply(
        grpc::Status(grpc::INVALID_ARGUMENT, std::string(converted.message())),
        {});
  }
  SendCommand(caller, std::move(command),
              [this, request, reply = std::move(reply)](
                  const grpc::Status& status, kv::CommandResult result) {
                pb::TxnResponse out;
                if (status.ok()) {
                  etcdapi::FinishTxn(request, result.txn(), &out);
                  FillHeader(result.txn().header(), out.mutable_header());
                }
                reply(status, std::move(out));
              });
}

void EtcdOps::Compact(const Caller& caller,
                      const pb::CompactionRequest& request,
                      Reply<pb::CompactionResponse> reply) {
  kv::Command command;
  command.mutable_compact()->set_revision(request.revision());
  // Answered once applied on the leader, so `physical` holds as well.
  SendCommand(caller, std::move(command),
              [this, reply = std::move(reply)](const grpc::Status& status,
                                               kv::CommandResult result) {
                pb::CompactionResponse out;
                if (status.ok()) {
                  FillHeader(result.compact().header(), out.mutable_header());
                }
                reply(status, std::move(out));
              });
}

// ---- Lease ----

void EtcdOps::LeaseGrant(const Caller& caller,
                         const pb::LeaseGrantRequest& request,
                         Reply<pb::LeaseGrantResponse> reply) {
  kv::Command command;
  command.mutable_lease_grant()->set_ttl(request.ttl());
  command.mutable_lease_grant()->set_id(request.id());
  SendCommand(caller, std::move(command),
              [this, reply = std::move(reply)](const grpc::Status& status,
                                               kv::CommandResult result) {
                pb::LeaseGrantResponse out;
                if (status.ok()) {
                  FillHeader(result.lease_grant().header(),
                             out.mutable_header());
                  out.set_id(result.lease_grant().id());
                  out.set_ttl(result.lease_grant().ttl());
                }
                reply(status, std::move(out));
              });
}

void EtcdOps::LeaseRevoke(const Caller& caller,
                          const pb::LeaseRevokeRequest& request,
                          Reply<pb::LeaseRevokeResponse> reply) {
  kv::Command command;
  command.mutable_lease_revoke()->set_id(request.id());
  SendCommand(caller, std::move(command),
              [this, reply = std::move(reply)](const grpc::Status& status,
                                               kv::CommandResult result) {
                pb::LeaseRevokeResponse out;
                if (status.ok()) {
                  FillHeader(result.lease_revoke().header(),
                             out.mutable_header());
                }
                reply(status, std::move(out));
              });
}

void EtcdOps::LeaseKeepAlive(const Caller& caller,
                             const pb::LeaseKeepAliveRequest& request,
                             Reply<pb::LeaseKeepAliveResponse> reply) {
  kv::ClientRequest native;
  native.mutable_lease_keep_alive()->set_id(request.id());
  Send(caller, std::move(native), /*local=*/false,
       [this, id = request.id(), reply = std::move(reply)](Response r) {
         pb::LeaseKeepAliveResponse out;
         out.set_id(id);
         if (!r.ok()) {
           // etcd answers a keep-alive of an unknown lease with TTL 0.
           if (r.status().code() == raftkv::Status::Code::kNotFound) {
             *out.mutable_header() = Header();
             return reply(grpc::Status::OK, std::move(out));
           }
           return reply(ToGrpc(r.status()), std::move(out));
         }
         FillHeader(r->lease_keep_alive().header(), out.mutable_header());
         out.set_ttl(r->lease_keep_alive().ttl());
         reply(grpc::Status::OK, std::move(out));
       });
}

void EtcdOps::LeaseTimeToLive(const Caller& caller,
                              const pb::LeaseTimeToLiveRequest& request,
                              Reply<pb::LeaseTimeToLiveResponse> reply) {
  kv::ClientRequest native;
  native.mutable_lease_time_to_live()->set_id(request.id());
  native.mutable_lease_time_to_live()->set_keys(request.keys());
  Send(caller, std::move(native), /*local=*/false,
       [this, id = request.id(), reply = std::move(reply)](Response r) {
         pb::LeaseTimeToLiveResponse out;
         out.set_id(id);
         if (!r.ok()) {
           // etcd answers for an unknown lease with TTL -1.
           if (r.status().code() == raftkv::Status::Code::kNotFound) {
             *out.mutable_header() = Header();
             out.set_ttl(-1);
             return reply(grpc::Status::OK, std::move(out));
           }
           return reply(ToGrpc(r.status()), std::move(out));
         }
         const kv::LeaseTimeToLiveResponse& t = r->lease_time_to_live();
         FillHeader(t.header(), out.mutable_header());
         out.set_ttl(t.ttl());
         out.set_grantedttl(t.granted_ttl());
         for (const std::string& key : t.keys()) out.add_keys(key);
         reply(grpc::Status::OK, std::move(out));
       });
}

void EtcdOps::LeaseLeases(const Caller& caller,
                          const pb::LeaseLeasesRequest& request,
                          Reply<pb::LeaseLeasesResponse> reply) {
  kv::ClientRequest native;
  native.mutable_lease_leases();
  Send(caller, std::move(native), /*local=*/false,
       [this, reply = std::move(reply)](Response r) {
         pb::LeaseLeasesResponse out;
         if (!r.ok()) return reply(ToGrpc(r.status()), std::move(out));
         FillHeader(r->lease_leases().header(), out.mutable_header());
         for (const kv::LeaseStatus& l : r->lease_leases().leases()) {
           out.add_leases()->set_id(l.id());
         }
         reply(grpc::Status::OK, std::move(out));
       });
}

// ---- Cluster ----

void EtcdOps::ToEtcdMembers(
    const kv::MemberListResponse& in,
    google::protobuf::RepeatedPtrField<pb::Member>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const kv::MemberStatus& m : in.members()) {
    pb::Member* member = out->Add();
    member->set_id(m.id());
    member->set_name("node" + std::to_string(m.id()));
    member->add_peerurls(Url(options_.peer_tls, m.peer_address()));
    const std::string etcd_address = m.id() == options_.member_id
                                         ? options_.etcd_address
                                         : etcd_addresses_[m.id()];
    if (!etcd_address.empty()) {
      member->add_clienturls(Url(options_.etcd_tls, etcd_address));
    }
    member->set_islearner(m.learner() && !m.promote_when_caught_up());
  }
}

void EtcdOps::LearnEtcdAddresses(const kv::MemberListResponse& members,
                                 std::function<void()> then) {
  std::vector<std::string> unknown;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const kv::MemberStatus& m : members.members()) {
      if (m.id() == options_.member_id || m.client_address().empty()) continue;
      auto it = etcd_addresses_.find(m.id());
      if (it == etcd_addresses_.end() || it->second.empty()) {
        unknown.push_back(m.client_address());
      }
    }
  }
  if (unknown.empty()) return then();
  // Each member says its etcd address in its status answer. Asked from a
  // thread of its own: a blocking client call must not run on the I/O
  // thread that answers it.
  std::thread([this, unknown, then = std::move(then)] {
    ClientOptions options;
    options.endpoints = unknown;
    options.deadline = std::chrono::milliseconds(1000);
    options.attempt_timeout = std::chrono::milliseconds(1000);
    auto client = Client::Create(std::move(options));
    if (client.ok()) {
      for (const NodeInfo& node : (*client)->ClusterStatus()) {
        if (!node.error.ok() || node.etcd_address.empty()) continue;
        std::lock_guard<std::mutex> lock(mu_);
        etcd_addresses_[node.id] = node.etcd_address;
      }
    }
    then();
  }).detach();
}

template <class Out>
void EtcdOps::Membership(const Caller& caller, kv::ClientRequest request,
                         Reply<Out> reply, std::function<void(Out*)> finish) {
  Send(caller, std::move(request), /*local=*/false,
       [this, reply = std::move(reply),
        finish = std::move(finish)](Response r) mutable {
         if (!r.ok()) return reply(ToGrpc(r.status()), Out());
         auto members = std::make_shared<kv::MemberListResponse>(r->members());
         LearnEtcdAddresses(*members, [this, members, reply = std::move(reply),
                                       finish = std::move(finish)] {
           Out out;
           FillHeader(members->header(), out.mutable_header());
           ToEtcdMembers(*members, out.mutable_members());
           if (finish) finish(&out);
           reply(grpc::Status::OK, std::move(out));
         });
       });
}

void EtcdOps::MemberList(const Caller& caller, const pb::MemberListRequest&,
                         Reply<pb::MemberListResponse> reply) {
  kv::ClientRequest native;
  native.mutable_member_list();
  Membership<pb::MemberListResponse>(caller, std::move(native),
                                     std::move(reply), nullptr);
}

void EtcdOps::MemberAdd(const Caller& caller,
                        const pb::MemberAddRequest& request,
                        Reply<pb::MemberAddResponse> reply) {
  if (request.peerurls_size() != 1) {
    return reply(grpc::Status(grpc::INVALID_ARGUMENT,
                              "etcdserver: given member URLs are invalid"),
                 {});
  }
  const std::string peer = HostPort(request.peerurls(0));
  const bool learner = request.islearner();
  // raftkv's ids are chosen by the operator (--id): the next unused one.
  kv::ClientRequest list;
  list.mutable_member_list();
  Send(caller, std::move(list), /*local=*/false,
       [this, caller, peer, learner, url = request.peerurls(0),
        reply = std::move(reply)](Response r) mutable {
         if (!r.ok()) return reply(ToGrpc(r.status()), {});
         uint64_t id = 0;
         for (const kv::MemberStatus& m : r->members().members()) {
           if (m.peer_address() == peer) {
             return reply(grpc::Status(grpc::FAILED_PRECONDITION,
                                       "etcdserver: Peer URLs already exists"),
                          {});
           }
           id = std::max(id, m.id());
         }
         ++id;
         kv::ClientRequest add;
         kv::MemberStatus* m = add.mutable_member_add()->mutable_member();
         m->set_id(id);
         m->set_peer_address(peer);
         m->set_learner(learner);
         Membership<pb::MemberAddResponse>(
             caller, std::move(add), std::move(reply),
             [id, url, learner](pb::MemberAddResponse* out) {
               pb::Member* added = out->mutable_member();
               added->set_id(id);
               added->add_peerurls(url);
               added->set_islearner(learner);
               // Not started yet: no name, no client URLs (as etcd).
               for (pb::Member& member : *out->mutable_members()) {
                 if (member.id() == id) {
                   member.clear_name();
                   member.clear_clienturls();
                 }
               }
             });
       });
}

void EtcdOps::MemberRemove(const Caller& caller,
                           const pb::MemberRemoveRequest& request,
                           Reply<pb::MemberRemoveResponse> reply) {
  // The native removal of a member that is not there succeeds (a retry);
  // etcd's says it is not found.
  kv::ClientRequest list;
  list.mutable_member_list();
  Send(caller, std::move(list), /*local=*/false,
       [this, caller, id = request.id(),
        reply = std::move(reply)](Response r) mutable {
         if (!r.ok()) return reply(ToGrpc(r.status()), {});
         bool known = false;
         for (const kv::MemberStatus& m : r->members().members()) {
           known = known || m.id() == id;
         }
         if (!known) {
           return reply(
               grpc::Status(grpc::NOT_FOUND, "etcdserver: member not found"),
               {});
         }
         kv::ClientRequest remove;
         remove.mutable_member_remove()->set_id(id);
         Membership<pb::MemberRemoveResponse>(caller, std::move(remove),
                                              std::move(reply), nullptr);
       });
}

void EtcdOps::MemberUpdate(const Caller&, const pb::MemberUpdateRequest&,
                           Reply<pb::MemberUpdateResponse> reply) {
  reply(grpc::Status(grpc::UNIMPLEMENTED,
                     "raftkv: a member's peer address cannot change; remove "
                     "the member and add it again under a new id"),
        {});
}

void EtcdOps::MemberPromote(const Caller& caller,
                            const pb::MemberPromoteRequest& request,
                            Reply<pb::MemberPromoteResponse> reply) {
  kv::ClientRequest native;
  native.mutable_member_promote()->set_id(request.id());
  Membership<pb::MemberPromoteResponse>(caller, std::move(native),
                                        std::move(reply), nullptr);
}

// ---- Maintenance ----

void EtcdOps::Alarm(const Caller& caller, const pb::AlarmRequest&,
                    Reply<pb::AlarmResponse> reply) {
  // raftkv raises no alarms: a member that cannot write refuses writes
  // itself (STORAGE) and clients go elsewhere; nothing to list or clear.
  pb::AlarmResponse out;
  *out.mutable_header() = Header();
  reply(grpc::Status::OK, std::move(out));
}

void EtcdOps::Status(const Caller& caller, const pb::StatusRequest&,
                     Reply<pb::StatusResponse> reply) {
  kv::ClientRequest native;
  native.mutable_status();
  Send(caller, std::move(native), /*local=*/true,
       [this, reply = std::move(reply)](Response r) {
         pb::StatusResponse out;
         if (!r.ok()) return reply(ToGrpc(r.status()), std::move(out));
         const kv::StatusResponse& s = r->status();
         FillHeader(s.header(), out.mutable_header());
         out.set_version(kVersion);
         out.set_leader(s.leader_id());
         out.set_raftindex(s.commit_index());
         out.set_raftterm(s.term());
         out.set_raftappliedindex(s.applied_index());
         if (s.leader_id() == 0) out.add_errors("etcdserver: no leader");
         for (const kv::MemberStatus& m : s.members()) {
           if (m.id() == options_.member_id) {
             out.set_islearner(m.learner() && !m.promote_when_caught_up());
           }
         }
         reply(grpc::Status::OK, std::move(out));
       });
}

void EtcdOps::Defragment(const Caller& caller, const pb::DefragmentRequest&,
                         Reply<pb::DefragmentResponse> reply) {
  // RocksDB compacts its files in the background; there is nothing to
  // defragment.
  pb::DefragmentResponse out;
  *out.mutable_header() = Header();
  reply(grpc::Status::OK, std::move(out));
}

void EtcdOps::HashPage(const Caller& caller, std::shared_ptr<HashState> state,
                       std::function<void(const grpc::Status&)> done) {
  kv::ClientRequest native;
  kv::RangeRequest* range = native.mutable_range();
  range->set_key(state->next_key);
  range->set_range_end(std::string(1, '\0'));
  range->set_limit(kHashPage);
  range->set_serializable(true);  // this member's own state, as etcd's
  range->set_revision(state->revision);
  Send(caller, std::move(native), /*local=*/true,
       [this, caller, state, done = std::move(done)](Response r) mutable {
         if (!r.ok()) return done(ToGrpc(r.status()));
         const kv::RangeResponse& page = r->range();
         if (state->revision == 0) {
           state->revision = page.header().revision();
           state->header = page.header();
         }
         for (const kv::KeyValue& kv : page.kvs()) {
           state->hash = storage::Crc32c(kv.key(), state->hash);
           state->hash = storage::Crc32c(kv.value(), state->hash);
           char meta[32];
           std::snprintf(meta, sizeof(meta), "%lld/%lld/%lld",
                         static_cast<long long>(kv.create_revision()),
                         static_cast<long long>(kv.mod_revision()),
                         static_cast<long long>(kv.version()));
           state->hash = storage::Crc32c(meta, state->hash);
         }
         if (!page.more() || page.kvs().empty()) return done(grpc::Status::OK);
         state->next_key = page.kvs().rbegin()->key() + std::string(1, '\0');
         HashPage(caller, state, std::move(done));
       });
}

void EtcdOps::HashKV(const Caller& caller, const pb::HashKVRequest& request,
                     Reply<pb::HashKVResponse> reply) {
  auto state = std::make_shared<HashState>();
  state->revision = request.revision();
  state->next_key = std::string(1, '\0');
  HashPage(caller, state,
           [this, state, reply = std::move(reply)](const grpc::Status& s) {
             pb::HashKVResponse out;
             if (!s.ok()) return reply(s, std::move(out));
             FillHeader(state->header, out.mutable_header());
             out.set_hash(state->hash);
             out.set_compact_revision(
                 state->header.revision() > 0 ? state->compacted_revision : 0);
             reply(grpc::Status::OK, std::move(out));
           });
}

void EtcdOps::Hash(const Caller& caller, const pb::HashRequest&,
                   Reply<pb::HashResponse> reply) {
  // raftkv hashes the key-value state (as HashKV), not a database file.
  HashKV(
      caller, pb::HashKVRequest(),
      [reply = std::move(reply)](const grpc::Status& s, pb::HashKVResponse kv) {
        pb::HashResponse out;
        *out.mutable_header() = kv.header();
        out.set_hash(kv.hash());
        reply(s, std::move(out));
      });
}

void EtcdOps::MoveLeader(const Caller& caller,
                         const pb::MoveLeaderRequest& request,
                         Reply<pb::MoveLeaderResponse> reply) {
  kv::ClientRequest native;
  native.mutable_transfer_leader()->set_transferee(request.targetid());
  Send(caller, std::move(native), /*local=*/false,
       [this, reply = std::move(reply)](Response r) {
         pb::MoveLeaderResponse out;
         if (!r.ok()) return reply(ToGrpc(r.status()), std::move(out));
         *out.mutable_header() = Header();
         reply(grpc::Status::OK, std::move(out));
       });
}

grpc::Status EtcdOps::Snapshot(
    const Caller& caller,
    const std::function<bool(const pb::SnapshotResponse&)>& write) {
  // The member's backup image (the native backup format, which raftkvd
  // --restore_from reads), received whole into a file first, then sent:
  // etcd's clients expect the size up front (remaining_bytes).
  const std::string what = "backup from " + options_.native_address;
  const auto timeout = std::chrono::seconds(30);
  auto fd = wire::Dial(options_.native_address, "", timeout);
  if (!fd.ok()) return ToGrpc(fd.status());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{*fd};
  kv::ClientRequest request;
  request.set_request_id(1);
  if (!caller.token.empty()) request.set_auth_token(caller.token);
  request.mutable_snapshot_save();
  raftkv::Status s = wire::WriteFrame(*fd, request.SerializeAsString(), what);
  std::string pending, frame;
  constexpr size_t kMaxFrameBytes = 256 << 20;
  if (s.ok()) s = wire::ReadFrame(*fd, &pending, kMaxFrameBytes, &frame, what);
  if (!s.ok()) return ToGrpc(s);
  kv::ClientResponse response;
  if (!response.ParseFromString(frame) || !response.has_snapshot_save()) {
    return ToGrpc(raftkv::Status::InvalidArgument(
        response.error_message().empty() ? what + ": not a backup response"
                                         : response.error_message()));
  }
  const std::string path = options_.scratch_dir + "/etcd-snapshot-" +
                           std::to_string(::getpid()) + "-" +
                           std::to_string(++snapshots_) + ".part";
  {
    auto writer = storage::BackupWriter::Create(path);
    if (!writer.ok()) return ToGrpc(writer.status());
    while (!(*writer)->complete()) {
      s = wire::ReadFrame(*fd, &pending, kMaxFrameBytes, &frame, what);
      if (s.ok()) s = (*writer)->Add(frame);
      if (!s.ok()) return ToGrpc(s);
    }
    s = (*writer)->Finish();
    if (!s.ok()) return ToGrpc(s);
  }
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return grpc::Status(grpc::INTERNAL, "cannot read " + path);
  }
  std::fseek(file, 0, SEEK_END);
  const uint64_t size = static_cast<uint64_t>(std::ftell(file));
  std::fseek(file, 0, SEEK_SET);
  // etcd's framing, which etcdctl checks: the image padded with zeros to
  // a multiple of 512 bytes, then the SHA-256 of all that
  // (storage::ReadBackup accepts and checks it too).
  const uint64_t padding = (512 - size % 512) % 512;
  uint64_t remaining = size + padding + SHA256_DIGEST_LENGTH;
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> sha(EVP_MD_CTX_new(),
                                                         &EVP_MD_CTX_free);
  EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
  std::string chunk(1 << 20, '\0');
  grpc::Status result = grpc::Status::OK;
  bool first = true;
  uint64_t unread = size;
  while (remaining > 0) {
    size_t n = 0;
    if (unread > 0) {
      n = std::fread(chunk.data(), 1, std::min<uint64_t>(chunk.size(), unread),
                     file);
      if (n == 0) {
        result = grpc::Status(grpc::INTERNAL, "short read of " + path);
        break;
      }
      unread -= n;
      EVP_DigestUpdate(sha.get(), chunk.data(), n);
    } else {
      std::string tail(padding, '\0');
      EVP_DigestUpdate(sha.get(), tail.data(), tail.size());
      unsigned char digest[SHA256_DIGEST_LENGTH];
      EVP_DigestFinal_ex(sha.get(), digest, nullptr);
      tail.append(reinterpret_cast<const char*>(digest), sizeof(digest));
      chunk = std::move(tail);
      n = chunk.size();
    }
    remaining -= n;
    pb::SnapshotResponse out;
    if (first) {
      FillHeader(response.snapshot_save().header(), out.mutable_header());
    }
    first = false;
    out.set_remaining_bytes(remaining);
    out.set_blob(chunk.data(), n);
    if (!write(out)) {
      result = grpc::Status(grpc::CANCELLED, "the receiver went away");
      break;
    }
  }
  std::fclose(file);
  std::remove(path.c_str());
  return result;
}

// ---- Auth ----
// The native auth messages are etcd's, field for field (client/kv.proto),
// so a request and its answer cross by their encoding.

template <class NativeRequest, class EtcdResponse, class NativeResponse>
void EtcdOps::Auth(const Caller& caller,
                   const google::protobuf::Message& request,
                   NativeRequest* (kv::ClientRequest::*field)(),
                   const NativeResponse& (kv::ClientResponse::*answer)() const,
                   Reply<EtcdResponse> reply) {
  kv::ClientRequest native;
  if (!(native.*field)()->ParseFromString(request.SerializeAsString())) {
    return reply(grpc::Status(grpc::INVALID_ARGUMENT, "malformed request"),
                 EtcdResponse());
  }
  Send(caller, std::move(native), /*local=*/false,
       [this, answer, reply = std::move(reply)](Response r) {
         EtcdResponse out;
         if (!r.ok()) return reply(ToGrpc(r.status()), std::move(out));
         const NativeResponse& native = ((*r).*answer)();
         out.ParseFromString(native.SerializeAsString());
         FillHeader(native.header(), out.mutable_header());
         reply(grpc::Status::OK, std::move(out));
       });
}

#define RAFTKV_ETCD_AUTH(Method, Etcd, native)                  \
  void EtcdOps::Method(const Caller& caller,                    \
                       const pb::Auth##Etcd##Request& request,  \
                       Reply<pb::Auth##Etcd##Response> reply) { \
    Auth<kv::Auth##Etcd##Request, pb::Auth##Etcd##Response>(    \
        caller, request, &kv::ClientRequest::mutable_##native,  \
        &kv::ClientResponse::native, std::move(reply));         \
  }

RAFTKV_ETCD_AUTH(AuthEnable, Enable, auth_enable)
RAFTKV_ETCD_AUTH(AuthDisable, Disable, auth_disable)
RAFTKV_ETCD_AUTH(UserAdd, UserAdd, auth_user_add)
RAFTKV_ETCD_AUTH(UserGet, UserGet, auth_user_get)
RAFTKV_ETCD_AUTH(UserList, UserList, auth_user_list)
RAFTKV_ETCD_AUTH(UserDelete, UserDelete, auth_user_delete)
RAFTKV_ETCD_AUTH(UserChangePassword, UserChangePassword,
                 auth_user_change_password)
RAFTKV_ETCD_AUTH(UserGrantRole, UserGrantRole, auth_user_grant_role)
RAFTKV_ETCD_AUTH(UserRevokeRole, UserRevokeRole, auth_user_revoke_role)
RAFTKV_ETCD_AUTH(RoleAdd, RoleAdd, auth_role_add)
RAFTKV_ETCD_AUTH(RoleGet, RoleGet, auth_role_get)
RAFTKV_ETCD_AUTH(RoleList, RoleList, auth_role_list)
RAFTKV_ETCD_AUTH(RoleDelete, RoleDelete, auth_role_delete)
RAFTKV_ETCD_AUTH(RoleGrantPermission, RoleGrantPermission,
                 auth_role_grant_permission)
RAFTKV_ETCD_AUTH(RoleRevokePermission, RoleRevokePermission,
                 auth_role_revoke_permission)
#undef RAFTKV_ETCD_AUTH

void EtcdOps::Authenticate(const Caller& caller,
                           const pb::AuthenticateRequest& request,
                           Reply<pb::AuthenticateResponse> reply) {
  Auth<kv::AuthenticateRequest, pb::AuthenticateResponse>(
      caller, request, &kv::ClientRequest::mutable_authenticate,
      &kv::ClientResponse::authenticate, std::move(reply));
}

// ---- Watch ----

std::unique_ptr<WatchStream> EtcdOps::OpenWatchStream(
    const Caller& caller, std::function<void(pb::WatchResponse)> send) {
  return std::make_unique<WatchStream>(this, client_.get(), caller,
                                       std::move(send));
}

}  // namespace raftkv::server::etcd
