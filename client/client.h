// raftkv::Client: the application's handle on a raftkv cluster.
//
// It finds the leader (following "not leader, leader is N at ADDR"
// redirects), retries with capped exponential back-off and jitter within a
// per-call deadline, and makes writes exactly-once: every write carries the
// client's session id and a sequence number, and a retried write re-sends
// the same pair, so the state machine applies it once and answers retries
// from its session table (dissertation §6.3).
//
// A call fails only when its deadline passes without an answer from a
// leader (Unavailable; for a write the outcome is then unknown), or when the
// request itself is refused (InvalidArgument, TooLarge).
//
// Thread-safety: one Client may be shared by any number of threads, with
// many calls in flight. Completion callbacks of the async API run on the
// client's I/O thread: they must not block or call the synchronous API.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "util/status.h"

namespace raftkv {

namespace kv {
class ClientRequest;
class KeyValue;
class ClientResponse;
class Command;
class CommandResult;
class RangeRequest;
class RangeResponse;
class TxnRequest;
class TxnResponse;
class StatusResponse;
}  // namespace kv

// TLS to the cluster's client listeners (raftkvd --cert-file ...).
struct ClientTlsOptions {
  bool enabled = false;  // also on with an "https://" endpoint
  // PEM CAs the servers' certificates must chain to ("": the system's).
  std::string ca_file;
  // A client certificate and its key, for servers that require one
  // (raftkvd --client-cert-auth).
  std::string cert_file;
  std::string key_file;
  // The name the servers' certificates must carry ("": each endpoint's
  // host, an IP address or a DNS name).
  std::string server_name;
  // Accept any server certificate (etcdctl's --insecure-skip-tls-verify).
  bool insecure_skip_verify = false;
};

struct ClientOptions {
  // "host:port" client addresses of the cluster's nodes (any subset works,
  // but writes need the leader among them); "https://host:port" turns TLS
  // on.
  std::vector<std::string> endpoints;
  ClientTlsOptions tls;
  // Default deadline of a call.
  std::chrono::milliseconds deadline{5000};
  // One attempt on one node is abandoned after this long (then retried,
  // possibly elsewhere, with the same sequence number). Not for a range
  // that may cover many keys (no limit, or over 1,000): it may take its
  // whole deadline (the leader probe still moves it off a leader that
  // hangs).
  std::chrono::milliseconds attempt_timeout{1000};
  // When the leader has not answered a request for this long, ask the
  // other nodes who leads (a status request, answered locally): if they
  // name another leader in a newer term, requests waiting on the old one
  // go to the new one at once instead of after attempt_timeout (a leader
  // that hangs or is cut off). A slow leader they still follow is left
  // alone. 0 disables.
  std::chrono::milliseconds leader_probe_after{100};
  std::chrono::milliseconds backoff_initial{5};
  std::chrono::milliseconds backoff_max{200};
  // Refused locally, before sending, above these sizes (the server has its
  // own limits, which win).
  size_t max_key_bytes = 4096;
  size_t max_value_bytes = 1 << 20;
  // The largest answer accepted (a range of many keys; as etcd's clients,
  // up to protobuf's 2 GiB). A larger frame closes the connection.
  size_t max_response_bytes = size_t{1} << 31;
  // Seed of the back-off jitter (0: from the clock).
  uint64_t seed = 0;
  // Credentials, while the cluster has authentication enabled: the client
  // authenticates before its first request and sends the token with
  // every request; a request refused for an invalid (e.g. expired) token
  // authenticates again, once, and is retried. Ignored while
  // authentication is disabled.
  std::string user;
  std::string password;
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // the lease it is attached to (0: none)
};

struct PutOptions {
  int64_t lease = 0;  // attach the key to this lease (0: none)
};

// One change, as a watch delivers it (etcd's mvccpb.Event).
struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // kPut: the key as written; kDelete: the key, and the deletion's revision
  // as mod_revision.
  KeyValue kv;
  bool has_prev_kv = false;  // with WatchOptions::prev_kv, if it existed
  KeyValue prev_kv;
};

struct WatchOptions {
  // Empty: just the key; PrefixRangeEnd(key): every key with the prefix;
  // otherwise the keys in [key, range_end).
  std::string range_end;
  // The first revision to deliver (0: changes after the watch starts).
  int64_t start_revision = 0;
  bool prev_kv = false;
  // Ask the member for an empty update carrying its revision when idle.
  bool progress_notify = false;
  bool no_put = false;     // deliver no puts
  bool no_delete = false;  // deliver no deletes
  // Also deliver an update with `created` once the watch is first
  // registered on a member, and, when the revision to resume from was
  // compacted, one with `compact_revision` before the Compacted error (for
  // adapters that report a watch's life as etcd does).
  bool report_lifecycle = false;
  // Sent with the watch's requests instead of the client's own token (an
  // adapter watching for its callers).
  std::string auth_token;
};

// What one callback of a watch gets: whole revisions, in order; none twice.
struct WatchUpdate {
  std::vector<WatchEvent> events;  // empty: a progress notification
  // Every change the watch matches up to this revision has been delivered.
  int64_t revision = 0;
  // With WatchOptions::report_lifecycle: the first registration, and the
  // oldest revision left when the watch ends because it was compacted.
  bool created = false;
  int64_t compact_revision = 0;
};

// A watch started by Client::Watch (destroy it before its Client). It
// follows its range across
// reconnects and leader changes: after a lost connection, or when a member
// cancels it for reading too slowly, it resumes on a member (maybe
// another) from the revision after the last one delivered, so nothing is
// lost or delivered twice while that revision is retained. It ends only
// when cancelled, or when the revision to resume from has been compacted
// (the callback then gets Compacted, naming the oldest revision left).
class Watcher {
 public:
  ~Watcher();  // cancels
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;
  // Stops delivering (no callback runs after this returns, unless called
  // from the callback itself) and cancels the watch on its member.
  void Cancel();
  // The revision through which updates were delivered (0: none yet).
  int64_t revision() const;

  class Impl;
  explicit Watcher(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
  bool cancelled_ = false;
};

struct LeaseGrantResult {
  int64_t id = 0;
  int64_t ttl = 0;  // seconds, as granted (the cluster's minimum applies)
};

struct LeaseTimeToLiveResult {
  int64_t id = 0;
  int64_t ttl = 0;  // seconds left
  int64_t granted_ttl = 0;
  std::vector<std::string> keys;
};

// Keeps a lease alive from the background until destroyed (before its
// Client): a keep-alive
// every third of its TTL, retried within what is left of it. If the lease
// is gone (expired or revoked) or could not be kept alive before it would
// expire, `on_lost` runs once (on the client's I/O thread) and the keeper
// stops.
class LeaseKeeper {
 public:
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;
  int64_t id() const;
  // Whether the lease is believed alive (false once lost).
  bool alive() const;

  class Impl;
  explicit LeaseKeeper(std::shared_ptr<Impl> impl);

 private:
  std::shared_ptr<Impl> impl_;
};

// A key-range permission of a role (etcd's authpb.Permission).
struct Permission {
  enum class Type { kRead = 0, kWrite = 1, kReadWrite = 2 };
  Type type = Type::kRead;
  std::string key;
  // "": the key alone; PrefixRangeEnd(key): the prefix; "\0": every key
  // >= key; otherwise [key, range_end).
  std::string range_end;
};

struct AuthStatusResult {
  bool enabled = false;
  uint64_t auth_revision = 0;
};

struct ReadOptions {
  // Local read on whichever node answers, without confirming leadership.
  bool serializable = false;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  bool more = false;  // more keys matched than the limit
  int64_t revision = 0;
};

// Status of one node, as reported by `status`.
struct NodeInfo {
  uint64_t id = 0;
  std::string address;  // client address it was reached at
  std::string role;
  uint64_t term = 0;
  uint64_t leader_id = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t last_index = 0;
  std::string rejoin;       // "", "polling" or "rejoining" (after a lost disk)
  uint64_t cluster_id = 0;  // the cluster its data belongs to
  uint64_t loop_stall_max_ms = 0;
  uint64_t loop_stall_recent_ms = 0;
  // Of those stalls, the time the loop waited for a CPU (-1: unknown).
  int64_t loop_stall_max_cpu_wait_ms = -1;
  int64_t loop_stall_recent_cpu_wait_ms = -1;
  uint64_t log_cache_bytes = 0;
  std::string etcd_address;  // where it serves etcd's API ("": nowhere)
  Status error;              // set when the node did not answer
};

// A member of the cluster, as `member list` reports it.
struct MemberInfo {
  uint64_t id = 0;
  std::string peer_address;
  std::string client_address;
  bool learner = false;  // receives the log, never votes
  bool leader = false;   // as the answering node knows it
};

class Client {
 public:
  static StatusOr<std::unique_ptr<Client>> Create(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Writes; each returns the store revision of the write.
  StatusOr<int64_t> Put(const std::string& key, const std::string& value);
  // NotFound if options.lease does not exist.
  StatusOr<int64_t> Put(const std::string& key, const std::string& value,
                        const PutOptions& options);
  // Number of keys deleted (0 or 1).
  StatusOr<int64_t> Delete(const std::string& key);
  StatusOr<int64_t> DeletePrefix(const std::string& prefix);
  // Sets key to new_value if its value equals `expected`. Returns whether
  // the swap happened (false: the comparison failed, nothing was written).
  StatusOr<bool> CompareAndSwap(const std::string& key,
                                const std::string& expected,
                                const std::string& new_value);
  // As above, comparing the key's version (0 = the key must not exist).
  StatusOr<bool> CompareVersionAndSwap(const std::string& key,
                                       int64_t expected_version,
                                       const std::string& new_value);
  // A general multi-key transaction (etcd semantics).
  StatusOr<kv::TxnResponse> Txn(const kv::TxnRequest& txn);

  // Reads: linearizable unless options.serializable. NotFound if absent.
  StatusOr<KeyValue> Get(const std::string& key, ReadOptions options = {});
  // Keys with `prefix` in order; limit 0 = all.
  StatusOr<RangeResult> GetPrefix(const std::string& prefix, int64_t limit = 0,
                                  ReadOptions options = {});
  // Any range read (etcd's Range): at a revision, counted, keys only...
  // Compacted / FailedPrecondition for a revision compacted / not reached.
  StatusOr<kv::RangeResponse> Range(const kv::RangeRequest& request);

  // Forgets the history at and below `revision` on every member (reads
  // and watches from there get Compacted).
  Status Compact(int64_t revision);

  // Watches (see Watcher). `on_update` runs on the client's I/O thread, in
  // revision order; it must not block or call the synchronous API.
  std::unique_ptr<Watcher> Watch(
      const std::string& key, const WatchOptions& options,
      std::function<void(StatusOr<WatchUpdate>)> on_update);

  // Leases (TTL in seconds). Keys put with a lease are deleted, in one
  // revision, when it expires or is revoked. NotFound: no such lease.
  StatusOr<LeaseGrantResult> LeaseGrant(int64_t ttl_seconds, int64_t id = 0);
  Status LeaseRevoke(int64_t id);
  // One keep-alive: the TTL it was renewed for.
  StatusOr<int64_t> LeaseKeepAliveOnce(int64_t id);
  StatusOr<LeaseTimeToLiveResult> LeaseTimeToLive(int64_t id,
                                                  bool keys = false);
  StatusOr<std::vector<int64_t>> LeaseList();
  // Keeps lease `id` alive until the keeper is destroyed. `ttl_seconds`
  // must be what the lease has left now (start the keeper right after the
  // grant, with the granted TTL): the keeper believes the lease alive for
  // that long before its first renewal.
  std::unique_ptr<LeaseKeeper> KeepAlive(
      int64_t id, int64_t ttl_seconds,
      std::function<void(Status)> on_lost = nullptr);

  // Leader id and its client address.
  StatusOr<std::pair<uint64_t, std::string>> Leader();
  // One entry per endpoint, in endpoint order.
  std::vector<NodeInfo> ClusterStatus();
  Status TransferLeader(uint64_t transferee);

  // Authentication and authorisation (etcd's Auth service; docs/api.md,
  // "Authentication"). Errors carry etcd's messages: PermissionDenied
  // (not allowed), Unauthenticated (wrong user or password, invalid
  // token), FailedPrecondition (e.g. "etcdserver: user name not found"),
  // InvalidArgument (e.g. "etcdserver: user name is empty").
  // Authenticates as `user` from now on (see ClientOptions::user).
  Status Authenticate(const std::string& user, const std::string& password);
  // Needs user root with role root.
  Status AuthEnable();
  Status AuthDisable();
  StatusOr<AuthStatusResult> AuthStatus();
  Status UserAdd(const std::string& name, const std::string& password,
                 bool no_password = false);
  StatusOr<std::vector<std::string>> UserGet(const std::string& name);  // roles
  StatusOr<std::vector<std::string>> UserList();
  Status UserDelete(const std::string& name);
  Status UserChangePassword(const std::string& name,
                            const std::string& password);
  Status UserGrantRole(const std::string& user, const std::string& role);
  Status UserRevokeRole(const std::string& user, const std::string& role);
  Status RoleAdd(const std::string& name);
  StatusOr<std::vector<Permission>> RoleGet(const std::string& name);
  StatusOr<std::vector<std::string>> RoleList();
  Status RoleDelete(const std::string& name);
  Status RoleGrantPermission(const std::string& name,
                             const Permission& permission);
  Status RoleRevokePermission(const std::string& name, const std::string& key,
                              const std::string& range_end);

  // Membership (single-server changes through the Raft log; see
  // docs/membership.md). List asks whichever node answers, so a client
  // given one endpoint learns every member's client address (to build a
  // client with all of them); the changes go to the leader and return the
  // membership once the change is applied.
  // Add without `learner` adds a learner that the leader promotes to a
  // voter once it has caught up.
  StatusOr<std::vector<MemberInfo>> MemberList();
  StatusOr<std::vector<MemberInfo>> MemberAdd(uint64_t id,
                                              const std::string& peer_address,
                                              const std::string& client_address,
                                              bool learner);
  StatusOr<std::vector<MemberInfo>> MemberPromote(uint64_t id);
  StatusOr<std::vector<MemberInfo>> MemberRemove(uint64_t id);

  // Asynchronous forms (callbacks run on the client's I/O thread).
  void PutAsync(const std::string& key, const std::string& value,
                std::function<void(StatusOr<int64_t>)> done);
  void GetAsync(const std::string& key, ReadOptions options,
                std::function<void(StatusOr<KeyValue>)> done);
  void TxnAsync(const kv::TxnRequest& txn,
                std::function<void(StatusOr<kv::TxnResponse>)> done);

  // Requests of the wire protocol as they are, for adapters that put
  // another API onto this one (raftkvd's etcd gateway). Send: to the
  // leader, with the retries, redirects and exactly-once session of every
  // call, until `deadline`; SendTo: once, to endpoint `endpoint` (an index
  // into ClientOptions::endpoints) only. `done` runs on the client's I/O
  // thread and must not block. An answer with an error comes as a Status
  // carrying the server's message.
  using RawDone = std::function<void(StatusOr<kv::ClientResponse>)>;
  void Send(kv::ClientRequest request, std::chrono::milliseconds deadline,
            RawDone done);
  void SendTo(size_t endpoint, kv::ClientRequest request,
              std::chrono::milliseconds deadline, RawDone done);

  // Overrides the deadline of calls made by this Client from now on.
  void set_deadline(std::chrono::milliseconds deadline);
  // The session id, once the first write registered it (0 before).
  uint64_t client_id() const;

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  void PutWithOptions(const std::string& key, const std::string& value,
                      const PutOptions& options,
                      std::function<void(StatusOr<int64_t>)> done);
  StatusOr<kv::CommandResult> Command(kv::Command command);
  StatusOr<kv::ClientResponse> Call(kv::ClientRequest request);
  std::unique_ptr<Impl> impl_;
};

// A KeyValue of the wire protocol (kv.proto) in its public form.
KeyValue FromProto(const kv::KeyValue& kv);

// "p" -> the smallest key greater than every key with prefix p (etcd's
// prefix range end); "\0" (= no upper bound) for the empty prefix or one of
// all 0xff bytes.
std::string PrefixRangeEnd(const std::string& prefix);

}  // namespace raftkv
