// raftkvctl: the command-line client of a raftkv cluster.
//
//   raftkvctl --endpoints=127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003 CMD
//     put KEY [VALUE] [--lease=ID]
//                          write (prints the revision); without VALUE the
//                          value is stdin's bytes (binary-safe); with
//                          --lease attached to lease ID (hex)
//     get KEY              prints the value alone
//         [--prefix]       KEY<TAB>VALUE lines for every key with prefix KEY
//         [--rev=N]        as the store was at revision N
//         [--limit=N]      at most N keys
//         [--keys-only]    keys without values
//     del KEY              delete (prints how many keys were deleted)
//     cas KEY EXPECTED NEW set KEY to NEW if its value is EXPECTED
//     range PREFIX         KEY<TAB>VALUE lines for keys with PREFIX
//     compact REV          forget the history at and below revision REV
//     txn                  a transaction in etcdctl's txn syntax on stdin
//                          (compares, success and failure requests):
//                          prints SUCCESS or FAILURE and each result
//     watch KEY [--prefix] [--rev=N] [--prev-kv]
//                          print changes as they come, until SIGINT/SIGTERM
//     lease grant TTL | revoke ID | keep-alive ID | timetolive ID [--keys]
//         | list           leases as etcdctl lease handles them (ids in hex)
//     elect NAME [PROPOSAL]
//                          campaign with PROPOSAL on election NAME and hold
//                          leadership until SIGINT/SIGTERM; without
//                          PROPOSAL print every change of leader
//     lock NAME [COMMAND...]
//                          take lock NAME (prints its key and fencing
//                          revision), run COMMAND with RAFTKV_LOCK_KEY and
//                          RAFTKV_LOCK_REVISION set, then unlock (exit
//                          code: COMMAND's); without COMMAND hold it until
//                          SIGINT/SIGTERM
//     status               one row per node
//     leader               the leader's id and client address
//     transfer-leader ID   hand leadership to node ID
//     member list          the members: id, peer and client address, role
//                          (voter or learner), leader
//     member add ID PEER_ADDR CLIENT_ADDR [--learner]
//                          add a node (then start it with --join); without
//                          --learner it becomes a voter once caught up
//     member promote ID    make a learner that has caught up a voter
//     member remove ID     remove a node for good (the leader too)
//     snapshot save FILE   a consistent backup of one member's data, checked
//                          chunk by chunk (start a new cluster from it with
//                          raftkvd --restore_from=FILE)
//     auth enable|disable|status, user ..., role ...
//                          users, roles and permissions with etcdctl's
//                          syntax and output (tools/raftkvctl_auth.h);
//                          --user=NAME[:PASSWORD] authenticates any command
//     endpoint health      per node: knows a leader, takes part, has applied
//                          what is committed, and serves a linearizable read
//                          (timed), as etcdctl endpoint health does
//
// Flags may be written with dashes or underscores (--keys-only,
// --keys_only), before or after the command's words.
//
// Exit codes scripts can rely on: 0 success; 1 key not found, cas or txn
// comparison failed, or lease gone; 2 usage error (txn: bad syntax); 3
// cluster unavailable (deadline passed, no quorum) — a write's outcome is
// then unknown; 4 request refused (too large, invalid, a revision
// compacted or not reached yet, a watch whose start was compacted). The
// commands that run until stopped (watch, lease keep-alive, elect, lock
// without COMMAND) exit 0 on SIGINT or SIGTERM.
//
// --json prints one compact JSON value per command (a contract: field names
// and meanings do not change; watch and lease keep-alive print one per line
// as they come). Keys and values are bytes: one that is valid UTF-8 is
// "key"/"value", any other is "key_base64"/"value_base64" with its base64
// instead (util/json_bytes.h), as etcd's JSON does. The forms of each
// command are in tools/raftkvctl_*.h.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "client/client.h"
#include "tools/raftkvctl_auth.h"
#include "tools/raftkvctl_common.h"
#include "tools/raftkvctl_concurrency.h"
#include "tools/raftkvctl_kv.h"
#include "tools/raftkvctl_lease.h"
#include "tools/raftkvctl_snapshot.h"
#include "tools/raftkvctl_txn.h"
#include "tools/raftkvctl_wait.h"
#include "tools/raftkvctl_watch.h"
#include "util/flags_help.h"

DEFINE_string(endpoints, "127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003",
              "Comma-separated client addresses of the cluster's nodes.");
DEFINE_uint64(deadline_ms, 5000, "Give up after this many milliseconds.");
DEFINE_string(cacert, "",
              "TLS: verify the servers' certificates with this PEM CA bundle "
              "(turns TLS on, as an https:// endpoint does).");
DEFINE_string(cert, "", "TLS: the client certificate to present (PEM).");
DEFINE_string(key, "", "TLS: the client certificate's key (PEM).");
DEFINE_bool(insecure_skip_tls_verify, false,
            "TLS: accept any server certificate (turns TLS on).");
DEFINE_bool(json, false,
            "Print results as JSON; a key or value that is not UTF-8 is "
            "given as key_base64 or value_base64 (base64) instead.");
DEFINE_bool(serializable, false,
            "get/range: read any node's local state (may be stale).");
DEFINE_bool(prefix, false, "get, watch: every key with KEY as its prefix.");
DEFINE_int64(rev, 0,
             "get: read the store as it was at this revision; watch: deliver "
             "changes from this revision on (0: the current one / from now).");
DEFINE_int64(limit, 0, "get: at most this many keys (0: no limit).");
DEFINE_bool(keys_only, false, "get: keys without their values.");
DEFINE_bool(prev_kv, false,
            "watch: also print each key's value before the change.");
DEFINE_string(lease, "",
              "put: attach the key to this lease (its id in hex, as `lease "
              "grant` prints it); the key goes when the lease does.");
DEFINE_bool(keys, false, "lease timetolive: list the keys attached.");
DEFINE_int64(ttl, 60,
             "elect, lock: TTL in seconds of the session's lease (how long "
             "the leadership or lock outlives a process that died).");
DEFINE_string(user, "",
              "NAME[:PASSWORD] to authenticate as (the password is prompted "
              "for, or read from stdin, when not given), as etcdctl's --user.");
DEFINE_string(password, "", "The password of --user (etcdctl's --password).");
DEFINE_bool(no_password, false, "user add: a user without a password.");
DEFINE_bool(interactive, true,
            "user add, user passwd: prompt on the terminal for the password "
            "(false: read it from stdin).");
DEFINE_bool(from_key, false,
            "role grant-permission, role revoke-permission: every key >= KEY.");
DEFINE_bool(detail, false, "user get: each role's permissions too.");
DEFINE_bool(learner, false,
            "member add: add the node as a learner only (it receives the log "
            "but never votes) until `member promote`; without it the leader "
            "promotes the node once it has caught up.");

namespace {

using ::raftkv::ctl::Fail;
using ::raftkv::ctl::Json;
using ::raftkv::ctl::kOk;
using ::raftkv::ctl::kUnavailable;
using ::raftkv::ctl::kUsage;
using ::raftkv::ctl::PrintJson;

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

constexpr char kCommands[] =
    "put KEY [VALUE] [--lease=ID] | get KEY [--prefix] [--rev=N] "
    "[--limit=N] [--keys-only] | del KEY | cas KEY EXPECTED NEW | "
    "range PREFIX | compact REV | txn | watch KEY [--prefix] [--rev=N] "
    "[--prev-kv] | lease grant TTL | lease revoke ID | lease keep-alive ID | "
    "lease timetolive ID [--keys] | lease list | elect NAME [PROPOSAL] | "
    "lock NAME [COMMAND...] | status | endpoint health | leader | "
    "transfer-leader ID | member list | member add ID PEER_ADDR CLIENT_ADDR "
    "[--learner] | member promote ID | member remove ID | snapshot save FILE "
    "| auth enable|disable|status | user add|get|list|delete|passwd|"
    "grant-role|revoke-role ... | role add|get|list|delete|grant-permission|"
    "revoke-permission ... (etcdctl's syntax; --user=NAME[:PASSWORD])";

int Usage() {
  std::cerr << "usage: raftkvctl [--endpoints=H:P,...] [--json] " << kCommands
            << "\n";
  return kUsage;
}

// The members, one row each (or one JSON array of {id, peer, client, role,
// leader}: a contract).
int PrintMembers(const std::vector<raftkv::MemberInfo>& members) {
  if (FLAGS_json) {
    Json all = Json::array();
    for (const raftkv::MemberInfo& m : members) {
      all.push_back({{"id", m.id},
                     {"peer", m.peer_address},
                     {"client", m.client_address},
                     {"role", m.learner ? "learner" : "voter"},
                     {"leader", m.leader}});
    }
    PrintJson(all);
    return kOk;
  }
  std::printf("%-6s %-22s %-22s %-8s %s\n", "ID", "PEER", "CLIENT", "ROLE",
              "LEADER");
  for (const raftkv::MemberInfo& m : members) {
    std::printf("%-6llu %-22s %-22s %-8s %s\n", (unsigned long long)m.id,
                m.peer_address.c_str(), m.client_address.c_str(),
                m.learner ? "learner" : "voter", m.leader ? "*" : "");
  }
  return kOk;
}

// TLS as etcdctl's flags say (--cacert, --cert, --key,
// --insecure-skip-tls-verify).
raftkv::ClientTlsOptions TlsFromFlags() {
  raftkv::ClientTlsOptions tls;
  tls.enabled = !FLAGS_cacert.empty() || !FLAGS_cert.empty() ||
                FLAGS_insecure_skip_tls_verify;
  tls.ca_file = FLAGS_cacert;
  tls.cert_file = FLAGS_cert;
  tls.key_file = FLAGS_key;
  tls.insecure_skip_verify = FLAGS_insecure_skip_tls_verify;
  return tls;
}

// snapshot save FILE.
int RunSnapshotSave(const std::string& path, const std::string& user,
                    const std::string& password) {
  auto r = raftkv::SaveBackup(Split(FLAGS_endpoints, ','), path,
                              std::chrono::milliseconds(FLAGS_deadline_ms),
                              TlsFromFlags(), user, password);
  if (!r.ok()) return Fail(r.status());
  if (FLAGS_json) {
    PrintJson({{"file", path},
               {"member_id", r->member_id},
               {"cluster_id", r->cluster_id},
               {"index", r->index},
               {"term", r->term},
               {"records", r->records},
               {"bytes", r->bytes}});
  } else {
    std::printf(
        "Snapshot saved to %s: index %llu (term %llu) of node %llu at %s, "
        "%llu records, %.1f MB in %.1f s, every chunk checked\n",
        path.c_str(), (unsigned long long)r->index, (unsigned long long)r->term,
        (unsigned long long)r->member_id, r->endpoint.c_str(),
        (unsigned long long)r->records, r->bytes / 1e6, r->seconds);
  }
  return kOk;
}

// member list | add ID PEER CLIENT | promote ID | remove ID.
int RunMember(raftkv::Client& client, const std::vector<std::string>& args) {
  auto id_at = [&args](size_t i) -> uint64_t {
    char* end = nullptr;
    const uint64_t id = std::strtoull(args[i].c_str(), &end, 10);
    return *end == '\0' ? id : 0;
  };
  raftkv::StatusOr<std::vector<raftkv::MemberInfo>> r =
      raftkv::Status::InvalidArgument("");
  const std::string& sub = args[1];
  if (sub == "list" && args.size() == 2) {
    r = client.MemberList();
  } else if (sub == "add" && args.size() == 5 && id_at(2) != 0) {
    r = client.MemberAdd(id_at(2), args[3], args[4], FLAGS_learner);
  } else if (sub == "promote" && args.size() == 3 && id_at(2) != 0) {
    r = client.MemberPromote(id_at(2));
  } else if (sub == "remove" && args.size() == 3 && id_at(2) != 0) {
    r = client.MemberRemove(id_at(2));
  } else {
    return Usage();
  }
  if (!r.ok()) return Fail(r.status());
  if (!FLAGS_json && sub == "add") {
    std::cout << "Member " << args[2] << " added as a learner"
              << (FLAGS_learner ? ""
                                : "; it becomes a voter once it has caught up")
              << ". Start it with --id=" << args[2] << " --join.\n";
  } else if (!FLAGS_json && sub != "list") {
    std::cout << "Member " << args[2]
              << (sub == "promote" ? " is a voter.\n" : " removed.\n");
  }
  return PrintMembers(*r);
}

// "12/40" (worst of the last minute / since start, ms), with "(cpu N)" when
// the worst of the last minute was mostly the loop waiting for a CPU.
std::string StallText(const raftkv::NodeInfo& n) {
  std::string text = std::to_string(n.loop_stall_recent_ms) + "/" +
                     std::to_string(n.loop_stall_max_ms);
  if (n.loop_stall_recent_cpu_wait_ms > 0 &&
      2 * static_cast<uint64_t>(n.loop_stall_recent_cpu_wait_ms) >=
          n.loop_stall_recent_ms) {
    text += " (cpu " + std::to_string(n.loop_stall_recent_cpu_wait_ms) + ")";
  }
  return text;
}

// The fields of one node in `status --json`.
Json NodeJson(const raftkv::NodeInfo& n) {
  Json j = {{"address", n.address}};
  if (!n.error.ok()) {
    j["error"] = n.error.ToString();
    return j;
  }
  j["id"] = n.id;
  j["role"] = n.role;
  j["rejoin"] = n.rejoin;
  char cluster[17];
  std::snprintf(cluster, sizeof(cluster), "%016llx",
                static_cast<unsigned long long>(n.cluster_id));
  j["cluster_id"] = cluster;
  j["term"] = n.term;
  j["commit"] = n.commit_index;
  j["applied"] = n.applied_index;
  j["last"] = n.last_index;
  j["leader"] = n.leader_id;
  j["log_cache_bytes"] = n.log_cache_bytes;
  j["loop_stall_recent_ms"] = n.loop_stall_recent_ms;
  j["loop_stall_recent_cpu_wait_ms"] = n.loop_stall_recent_cpu_wait_ms;
  j["loop_stall_max_ms"] = n.loop_stall_max_ms;
  j["loop_stall_max_cpu_wait_ms"] = n.loop_stall_max_cpu_wait_ms;
  return j;
}

int RunStatus(raftkv::Client& client) {
  auto nodes = client.ClusterStatus();
  Json all = Json::array();
  if (!FLAGS_json) {
    std::printf("%-4s %-22s %-20s %-6s %-10s %-10s %-7s %-9s %s\n", "ID",
                "ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED", "LEADER",
                "LOG KiB", "STALL ms (last min/max)");
  }
  bool any = false;
  for (const raftkv::NodeInfo& n : nodes) {
    any = any || n.error.ok();
    if (FLAGS_json) {
      all.push_back(NodeJson(n));
    } else if (n.error.ok()) {
      const std::string role =
          n.rejoin.empty() ? n.role : n.role + " (" + n.rejoin + ")";
      std::printf(
          "%-4llu %-22s %-20s %-6llu %-10llu %-10llu %-7llu %-9llu %s\n",
          (unsigned long long)n.id, n.address.c_str(), role.c_str(),
          (unsigned long long)n.term, (unsigned long long)n.commit_index,
          (unsigned long long)n.applied_index, (unsigned long long)n.leader_id,
          (unsigned long long)(n.log_cache_bytes / 1024), StallText(n).c_str());
    } else {
      std::printf("%-4s %-22s %-20s %s\n", "?", n.address.c_str(),
                  "unreachable", n.error.message().c_str());
    }
  }
  if (FLAGS_json) PrintJson(all);
  return any ? kOk : kUnavailable;
}

// One line (or JSON object) per endpoint; exit 0 only if all are healthy.
int RunEndpointHealth(raftkv::Client& client) {
  const std::vector<raftkv::NodeInfo> nodes = client.ClusterStatus();
  Json all = Json::array();
  bool healthy_all = true;
  for (const raftkv::NodeInfo& n : nodes) {
    std::string problem;
    double took_ms = 0;
    if (!n.error.ok()) {
      problem = n.error.message();
    } else if (!n.rejoin.empty()) {
      problem = "rejoining after a lost disk (" + n.rejoin + ")";
    } else if (n.leader_id == 0) {
      problem = "no leader";
    } else if (n.commit_index > n.applied_index + 10000) {
      problem = "applied index " +
                std::to_string(n.commit_index - n.applied_index) +
                " entries behind the commit index";
    } else {
      // A linearizable read through this node (ReadIndex), timed.
      raftkv::ClientOptions options;
      options.endpoints = {n.address};
      options.tls = TlsFromFlags();
      options.deadline = std::chrono::milliseconds(FLAGS_deadline_ms);
      auto direct = raftkv::Client::Create(options);
      const auto start = std::chrono::steady_clock::now();
      auto r = direct.ok()
                   ? (*direct)->Get("health")
                   : raftkv::StatusOr<raftkv::KeyValue>(direct.status());
      took_ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
      if (!r.ok() && !r.status().IsNotFound()) {
        problem =
            "failed to serve a linearizable read: " + r.status().message();
      }
    }
    healthy_all = healthy_all && problem.empty();
    if (FLAGS_json) {
      // In the order it has always had (nlohmann::json's, alphabetical).
      all.push_back({{"endpoint", n.address},
                     {"error", problem},
                     {"health", problem.empty()},
                     {"took_ms", took_ms}});
    } else if (problem.empty()) {
      std::printf("%s is healthy: served a linearizable read: took = %.3fms\n",
                  n.address.c_str(), took_ms);
    } else {
      std::printf("%s is unhealthy: %s\n", n.address.c_str(), problem.c_str());
    }
  }
  if (FLAGS_json) PrintJson(all);
  if (!healthy_all) std::cerr << "raftkvctl: unhealthy cluster\n";
  return healthy_all ? kOk : kUnavailable;
}

// The options of the commands in tools/raftkvctl_*.cc, from the flags.
raftkv::ctl::Options OptionsFromFlags() {
  raftkv::ctl::Options o;
  o.json = FLAGS_json;
  o.deadline = std::chrono::milliseconds(FLAGS_deadline_ms);
  o.serializable = FLAGS_serializable;
  o.prefix = FLAGS_prefix;
  o.rev = FLAGS_rev;
  o.limit = FLAGS_limit;
  o.keys_only = FLAGS_keys_only;
  o.prev_kv = FLAGS_prev_kv;
  o.lease = FLAGS_lease;
  o.keys = FLAGS_keys;
  o.ttl = FLAGS_ttl;
  return o;
}

using Command = int (*)(raftkv::Client&, const std::vector<std::string>&,
                        const raftkv::ctl::Options&);

// The commands taking (client, words, options).
const std::map<std::string, Command>& Commands() {
  // clang-format off
  static const auto* commands = new std::map<std::string, Command>{
      {"put", raftkv::ctl::RunPut},
      {"get", raftkv::ctl::RunGet},
      {"del", raftkv::ctl::RunDel},
      {"cas", raftkv::ctl::RunCas},
      {"range", raftkv::ctl::RunRange},
      {"compact", raftkv::ctl::RunCompact},
      {"txn", raftkv::ctl::RunTxn},
      {"watch", raftkv::ctl::RunWatch},
      {"lease", raftkv::ctl::RunLease},
      {"elect", raftkv::ctl::RunElect},
      {"lock", raftkv::ctl::RunLock},
  };
  // clang-format on
  return *commands;
}

// Commands that run until SIGINT or SIGTERM: the signals are blocked (and
// taken synchronously, tools/raftkvctl_wait.h) before the client starts
// its threads.
bool RunsUntilStopped(const std::vector<std::string>& args) {
  return args[0] == "watch" || args[0] == "elect" || args[0] == "lock" ||
         (args[0] == "lease" && args.size() > 1 && args[1] == "keep-alive");
}

int Run(raftkv::Client& client, const std::vector<std::string>& args,
        const raftkv::ClientOptions& options) {
  const std::string& cmd = args[0];
  if (auto it = Commands().find(cmd); it != Commands().end()) {
    return it->second(client, args, OptionsFromFlags());
  }
  if (cmd == "status" && args.size() == 1) return RunStatus(client);
  if (cmd == "endpoint" && args.size() == 2 && args[1] == "health") {
    return RunEndpointHealth(client);
  }
  if (cmd == "leader" && args.size() == 1) {
    auto r = client.Leader();
    if (!r.ok()) return Fail(r.status());
    if (FLAGS_json)
      PrintJson({{"id", r->first}, {"address", r->second}});
    else
      std::cout << r->first << " " << r->second << "\n";
    return kOk;
  }
  if (cmd == "auth" || cmd == "user" || cmd == "role") {
    raftkv::ctl::AuthOptions o;
    o.no_password = FLAGS_no_password;
    o.interactive = FLAGS_interactive;
    o.prefix = FLAGS_prefix;
    o.from_key = FLAGS_from_key;
    o.detail = FLAGS_detail;
    if (cmd == "auth") return raftkv::ctl::RunAuth(client, args, o);
    if (cmd == "user") return raftkv::ctl::RunUser(client, args, o);
    return raftkv::ctl::RunRole(client, args, o);
  }
  if (cmd == "member" && args.size() >= 2) return RunMember(client, args);
  if (cmd == "snapshot" && args.size() == 3 && args[1] == "save") {
    return RunSnapshotSave(args[2], options.user, options.password);
  }
  if (cmd == "transfer-leader" && args.size() == 2) {
    char* end = nullptr;
    const uint64_t id = std::strtoull(args[1].c_str(), &end, 10);
    if (*end != '\0' || id == 0) return Usage();
    raftkv::Status s = client.TransferLeader(id);
    if (!s.ok()) return Fail(s);
    std::cout << "OK\n";
    return kOk;
  }
  return Usage();
}

// Whether flag `name` (as written, dashes or underscores) takes a value,
// so that `--name VALUE` is two words.
bool TakesValue(std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  gflags::CommandLineFlagInfo info;
  return gflags::GetCommandLineFlagInfo(name.c_str(), &info) &&
         info.type != "bool";
}

// `lock NAME COMMAND...`: COMMAND is another program's command line, with
// flags of its own. It is cut from argv (and returned) before gflags
// parses argv, which would otherwise take those flags as raftkvctl's, and
// would move whatever follows a "--" ahead of NAME.
std::vector<std::string> CutCommandTail(int* argc, char** argv) {
  int positional = 0;
  for (int i = 1; i < *argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--" && positional == 2) {
      std::vector<std::string> tail(argv + i + 1, argv + *argc);
      *argc = i;
      return tail;
    }
    if (arg.size() > 1 && arg[0] == '-' && arg != "--") {
      const std::string name = arg.substr(arg[1] == '-' ? 2 : 1);
      if (name.find('=') == std::string::npos && TakesValue(name)) ++i;
      continue;
    }
    ++positional;
    if (positional == 1 && arg != "lock") return {};
    if (positional == 3) {
      std::vector<std::string> tail(argv + i, argv + *argc);
      *argc = i;
      return tail;
    }
  }
  return {};
}
}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      std::string("raftkvctl [--endpoints=H:P,...] [--json] ") + kCommands +
      "\nExit codes: 0 ok, 1 not found / compare failed, 2 usage, "
      "3 unavailable (write outcome unknown), 4 refused.");
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 2;
  static char help_on[] = "--helpon=raftkvctl";
  raftkv::RestrictHelpToOwnFlags(argc, argv, help_on);
  std::vector<std::string> tail = CutCommandTail(&argc, argv);
  // gflags (2.2) reads a flag written with dashes (--prev-kv, --keys-only)
  // as the one with underscores (prev_kv, keys_only): argv needs no
  // rewriting.
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (argc < 2) return Usage();
  std::vector<std::string> args(argv + 1, argv + argc);
  args.insert(args.end(), tail.begin(), tail.end());
  if (RunsUntilStopped(args)) raftkv::ctl::BlockStopSignals();

  raftkv::ClientOptions options;
  options.endpoints = Split(FLAGS_endpoints, ',');
  options.tls = TlsFromFlags();
  options.deadline = std::chrono::milliseconds(FLAGS_deadline_ms);
  if (!FLAGS_user.empty() &&
      !raftkv::ctl::ParseUserFlag(FLAGS_user, FLAGS_password, &options.user,
                                  &options.password)) {
    std::cerr << "raftkvctl: --user: no password given\n";
    return kUsage;
  }
  auto client = raftkv::Client::Create(options);
  if (!client.ok()) {
    std::cerr << "raftkvctl: " << client.status().ToString() << "\n";
    return kUsage;
  }
  return Run(**client, args, options);
}
