// raftkv-bench: measures a raftkv cluster, in the terms of etcd's benchmark
// tool so that figures line up with the references people know:
//
//   raftkv-bench [--endpoints=A,B,C] --conns=N --clients=M put
//       --total=T --val-size=256 --key-space-size=100000 [--sequential-keys]
//   raftkv-bench ... range KEY [--consistency=l|s] --total=T
//   raftkv-bench ... txn-put --total=T --val-size=256 [--txn-ops=1]
//   raftkv-bench --api=etcd [--etcd-endpoints=H:P,...] [--target-leader]
//       [--pids=P,...] --conns=N --clients=M put|range KEY ...
//   raftkv-bench failover --fault=kill|pause|partition [--faults=20]
//   raftkv-bench writer --endpoints=... --duration-s=S [--ack-log=F]
//   raftkv-bench watch --streams=10 --watchers-per-stream=100 --puts=2000
//       --put-rate=500 [--key-size=32] [--val-size=8]
//       [--watch-on=any|leader|follower]
//   raftkv-bench watch-capacity [--watch-on=follower] [--step=10000]
//       [--max-watchers=500000] [--rss-limit-mb=100]
//   raftkv-bench lease-keepalive --conns=1 --clients=16 --total=N
//   raftkv-bench lease-keepers [--leases=10000] [--lease-ttl=30]
//       [--idle-s=20] [--keep-s=60]
//
// M clients share N connections, one request each in flight (closed loop).
// Without --endpoints it starts its own cluster of --nodes raftkvd
// processes on loopback, and then also reports each node's CPU-seconds per
// 1,000 requests and peak RSS (from /proc). A progress bar on a terminal,
// then etcd's summary; --json prints one JSON object instead.
//
// failover (tools/bench_failover.h), always on a cluster it starts itself:
// a client writes in a loop while the leader is killed (SIGKILL), paused
// (SIGSTOP) or partitioned (cut off from its peers and the clients by
// iptables rules in a private network namespace; root only), --faults
// times (refused with --endpoints), each fault undone once a write issued
// after it was acknowledged (restart, resume, heal; after a partition
// every node must follow one leader again before the next fault);
// per fault, the time to the first acknowledged write, then median and
// max, the client's errors, the faults no write recovered from within 30
// s, and whether every acknowledged write is readable; for partitions also
// the leader after each (--json: new_leaders, leader_changes: the
// partitions after which the nodes agreed on a leader other than the one
// cut off). writer: one client writes for --duration-s and checks every
// acknowledged write (scripts/demo).
//
// watch, watch-capacity (tools/bench_watch.h): etcd's `benchmark watch`
// (a stream is one Client; etcd's --watch-per-stream and --put-total are
// accepted for --watchers-per-stream and --puts); events timed from each
// put's send and from its acknowledgement; --watch-on pins the streams to
// the leader or to a follower (by default each stream's Client has every
// member and spreads its watches over them). watch-capacity adds watches
// to one member in --step steps until its RSS has grown by --rss-limit-mb
// (a cluster it starts itself only: it reads the member's /proc).
// --api=etcd (tools/bench_etcd.h): put and range through etcd's v3 API
// over gRPC instead of the native protocol, the same keys, values and
// report: against the --etcd-endpoints of raftkvd's --listen_etcd or of a
// real etcd, or without them a cluster started here with --listen_etcd on
// every node. Connection i goes to endpoint i mod the endpoints, as etcd's
// tool does (--target-leader: every one to the leader). --pids names the
// server processes of a cluster not started here, for CPU-seconds per
// 1,000 requests and peak RSS. The JSON adds distinct_revisions for puts
// (every acknowledged put made a revision of its own).
// lease-keepalive, lease-keepers (tools/bench_lease.h): etcd's `benchmark
// lease-keepalive`, and --leases leases kept alive by one client's
// LeaseKeepers, with each node's CPU-seconds per minute against an idle
// stretch before.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "client/client.h"
#include "tools/bench_etcd.h"
#include "tools/bench_failover.h"
#include "tools/bench_lease.h"
#include "tools/bench_load.h"
#include "tools/bench_report.h"
#include "tools/bench_watch.h"
#include "tools/local_cluster.h"
#include "tools/proc_stats.h"
#include "util/flags_help.h"
#include "util/json_bytes.h"

DEFINE_string(endpoints, "",
              "Client addresses of an existing cluster; empty: start one.");
DEFINE_uint32(conns, 1, "Connections (Client objects) the clients share.");
DEFINE_uint32(clients, 1, "Concurrent clients, one request in flight each.");
DEFINE_bool(json, false, "Print one JSON object instead of the summary.");
DEFINE_uint32(nodes, 3, "Nodes of the cluster the benchmark starts.");
DEFINE_string(server_flags, "",
              "Extra flags for the raftkvd processes it starts, "
              "space-separated.");
DEFINE_string(cacert, "",
              "TLS to the cluster's client listeners: the CA of their "
              "certificates (with --server_flags='--cert-file=... "
              "--key-file=...' for the cluster it starts).");
DEFINE_string(cert, "", "TLS: the client certificate, if required.");
DEFINE_string(key, "", "TLS: the client certificate's key.");
DEFINE_uint64(total, 10000, "Requests (put, range, txn-put).");
DEFINE_uint32(val_size, 8, "Value size in bytes (put, txn-put).");
DEFINE_uint32(key_size, 8,
              "Key size in bytes (put, txn-put; watch: 32 unless given, as "
              "etcd's).");
DEFINE_uint64(key_space_size, 1, "Distinct keys written (put, txn-put).");
DEFINE_bool(sequential_keys, false,
            "Write keys in order instead of at random (put, txn-put).");
DEFINE_uint32(txn_ops, 1, "Puts per transaction (txn-put).");
DEFINE_string(consistency, "l", "range: l (linearizable) or s (serializable).");
DEFINE_string(api, "native",
              "put, range: the front door: native (raftkv's protocol) or "
              "etcd (etcd's v3 API over gRPC).");
DEFINE_string(etcd_endpoints, "",
              "--api=etcd: etcd-API addresses (raftkvd's --listen_etcd, or a "
              "real etcd's client URLs as HOST:PORT), comma-separated; "
              "empty: start a cluster with --listen_etcd on every node.");
DEFINE_bool(target_leader, false,
            "--api=etcd: every connection to the leader (etcd's "
            "--target-leader); otherwise connection i to endpoint i mod N.");
DEFINE_string(pids, "",
              "Process ids of the servers of --endpoints or "
              "--etcd-endpoints, comma-separated: reported (CPU-seconds per "
              "1,000 requests, peak RSS) as for a cluster started here.");
DEFINE_string(fault, "kill",
              "failover: kill (SIGKILL), pause (SIGSTOP) or partition (the "
              "leader cut off from its peers and clients; needs root).");
DEFINE_uint32(faults, 20, "failover: faults injected into the leader.");
DEFINE_uint32(fault_interval_ms, 1500,
              "failover: time between a recovery and the next fault.");
DEFINE_uint32(duration_s, 10, "writer: seconds of writing.");
DEFINE_uint32(streams, 10, "watch, watch-capacity: Clients the watches share.");
DEFINE_uint32(watchers_per_stream, 100, "watch: watches per stream.");
DEFINE_uint64(puts, 2000, "watch: puts to the watched key.");
DEFINE_double(put_rate, 500,
              "watch: puts per second (0: one in flight at a time).");
DEFINE_string(watch_on, "any",
              "watch, watch-capacity: the member the watches are on: any "
              "(every stream's Client given every member: a new Client "
              "spreads its first watches over them in turn until it knows "
              "the leader), leader or follower (watch-capacity: leader "
              "unless follower).");
DEFINE_uint32(watch_timeout_s, 30,
              "watch: give up after this long without an event.");
DEFINE_uint64(step, 10000, "watch-capacity: watches added per step.");
DEFINE_uint64(max_watchers, 500000, "watch-capacity: stop at this many.");
DEFINE_double(rss_limit_mb, 100,
              "watch-capacity: stop once the member's RSS grew this much.");
DEFINE_int64(lease_ttl, 0,
             "lease-keepalive, lease-keepers: TTL in seconds (0: 100 and 30).");
DEFINE_uint64(leases, 10000, "lease-keepers: leases kept alive.");
DEFINE_uint32(idle_s, 20, "lease-keepers: seconds of the idle baseline.");
DEFINE_uint32(keep_s, 60, "lease-keepers: seconds the leases are kept.");
DEFINE_string(ack_log, "",
              "writer: file for \"INVOKE_MS ACK_MS\" (wall clock) of every "
              "acknowledged write.");

namespace raftkv {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

std::vector<std::string> SplitOn(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// TLS as --cacert, --cert and --key say (off without --cacert).
ClientTlsOptions BenchTls() {
  ClientTlsOptions tls;
  tls.enabled = !FLAGS_cacert.empty();
  tls.ca_file = FLAGS_cacert;
  tls.cert_file = FLAGS_cert;
  tls.key_file = FLAGS_key;
  return tls;
}

// The cluster under test: the one given by --endpoints, or one started
// here (whose processes /proc can tell about).
class Target {
 public:
  // With etcd_api: the etcd-API endpoints are --etcd-endpoints (a cluster
  // that may not be raftkv: then no native endpoints), or those of a
  // cluster started here with --listen_etcd.
  Status Open(bool etcd_api = false) {
    endpoints_ = SplitOn(FLAGS_endpoints, ',');
    etcd_endpoints_ = SplitOn(FLAGS_etcd_endpoints, ',');
    for (const std::string& p : SplitOn(FLAGS_pids, ',')) {
      pids_.push_back(static_cast<pid_t>(std::stol(p)));
    }
    const bool given =
        etcd_api ? !etcd_endpoints_.empty() : !endpoints_.empty();
    if (!given) {
      LocalClusterOptions options;
      options.nodes = static_cast<int>(FLAGS_nodes);
      options.extra_flags = SplitOn(FLAGS_server_flags, ' ');
      options.etcd_api = etcd_api;
      options.client_tls = BenchTls();
      cluster_ = std::make_unique<LocalCluster>(std::move(options));
      if (cluster_->WaitForLeader() == 0) {
        return Status::Unavailable("no leader elected");
      }
      endpoints_ = cluster_->endpoints();
      if (etcd_api) etcd_endpoints_ = cluster_->etcd_endpoints();
      pids_.clear();
      for (int id = 1; id <= cluster_->size(); ++id) {
        pids_.push_back(cluster_->pid(id));
      }
    }
    return Status::OK();
  }
  const std::vector<std::string>& etcd_endpoints() const {
    return etcd_endpoints_;
  }
  StatusOr<std::unique_ptr<Client>> NewClient(milliseconds deadline) const {
    ClientOptions options;
    options.endpoints = endpoints_;
    options.deadline = deadline;
    options.tls = BenchTls();
    return Client::Create(options);
  }
  LocalCluster* cluster() const { return cluster_.get(); }
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  bench::CpuSampler CpuSampler() const {
    if (!cluster_) return nullptr;
    return [this] { return CpuSeconds(); };
  }
  // Seconds each node's threads waited for a CPU (a cluster started here).
  bench::CpuSampler CpuWaitSampler() const {
    if (!cluster_) return nullptr;
    return [this] {
      std::vector<double> out;
      for (int id = 1; id <= cluster_->size(); ++id) {
        out.push_back(bench::ProcCpuWaitSeconds(cluster_->pid(id)));
      }
      return out;
    };
  }
  // The client address of the leader or of a follower, by --watch-on
  // ("any": empty).
  StatusOr<std::string> Member(const std::string& which) const {
    if (which == "any") return std::string();
    if (which != "leader" && which != "follower") {
      return Status::InvalidArgument(
          "--watch-on must be any, leader or follower");
    }
    auto client = NewClient(std::chrono::seconds(10));
    if (!client.ok()) return client.status();
    auto leader = (*client)->Leader();
    if (!leader.ok()) return leader.status();
    if (which == "leader") return leader->second;
    for (const std::string& e : endpoints_) {
      if (e != leader->second) return e;
    }
    return Status::InvalidArgument("no follower among the endpoints");
  }
  // The leader's id (0: unknown).
  uint64_t LeaderId() const {
    auto client = NewClient(std::chrono::seconds(10));
    if (!client.ok()) return 0;
    auto leader = (*client)->Leader();
    return leader.ok() ? leader->first : 0;
  }
  // The id of the node started here at client address `address` (0: none).
  int NodeAt(const std::string& address) const {
    if (!cluster_) return 0;
    for (int id = 1; id <= cluster_->size(); ++id) {
      if (cluster_->client_address(id) == address) return id;
    }
    return 0;
  }
  // CPU seconds of each node started here, or of each process of --pids
  // (empty otherwise).
  std::vector<double> CpuSeconds() const {
    std::vector<double> out;
    for (pid_t pid : pids_) out.push_back(ProcCpuSeconds(pid));
    return out;
  }
  std::vector<double> PeakRssMb() const {
    std::vector<double> out;
    for (pid_t pid : pids_) out.push_back(ProcStatusKb(pid, "VmHWM") / 1024.0);
    return out;
  }

 private:
  std::vector<std::string> endpoints_;
  std::vector<std::string> etcd_endpoints_;
  std::vector<pid_t> pids_;  // the servers' processes, if known
  std::unique_ptr<LocalCluster> cluster_;
};

uint64_t MaxTerm(Client& client) {
  uint64_t term = 0;
  for (const NodeInfo& n : client.ClusterStatus()) {
    if (n.error.ok()) term = std::max(term, n.term);
  }
  return term;
}

// "[#####     ]  45%  4,500/10,000  1,234 req/s" on stderr, redrawn.
void DrawProgress(const char* op, uint64_t answered, uint64_t total,
                  double elapsed_s) {
  constexpr int kWidth = 40;
  const int filled =
      static_cast<int>(kWidth * answered / std::max<uint64_t>(1, total));
  std::fprintf(stderr, "\r%-8s [%s%s] %3d%%  %llu/%llu  %.0f req/s ", op,
               std::string(filled, '#').c_str(),
               std::string(kWidth - filled, ' ').c_str(),
               static_cast<int>(100 * answered / std::max<uint64_t>(1, total)),
               static_cast<unsigned long long>(answered),
               static_cast<unsigned long long>(total),
               elapsed_s > 0 ? answered / elapsed_s : 0.0);
  std::fflush(stderr);
}

int RunLoad(const std::string& command, const std::vector<std::string>& args) {
  bench::LoadOptions options;
  options.total = FLAGS_total;
  options.clients = std::max<uint32_t>(1, FLAGS_clients);
  options.key_size = FLAGS_key_size;
  options.val_size = FLAGS_val_size;
  options.key_space_size = FLAGS_key_space_size;
  options.sequential_keys = FLAGS_sequential_keys;
  options.txn_ops = FLAGS_txn_ops;
  if (command == "put") {
    options.op = bench::Op::kPut;
  } else if (command == "txn-put") {
    options.op = bench::Op::kTxnPut;
  } else {
    options.op = bench::Op::kRange;
    if (args.empty()) {
      std::fprintf(stderr, "raftkv-bench: range needs a KEY\n");
      return 2;
    }
    options.range_key = args[0];
    if (FLAGS_consistency != "l" && FLAGS_consistency != "s") {
      std::fprintf(stderr, "raftkv-bench: --consistency must be l or s\n");
      return 2;
    }
    options.serializable = FLAGS_consistency == "s";
  }
  const bool etcd = FLAGS_api == "etcd";
  if (!etcd && FLAGS_api != "native") {
    std::fprintf(stderr, "raftkv-bench: --api must be native or etcd\n");
    return 2;
  }
  if (etcd && options.op == bench::Op::kTxnPut) {
    std::fprintf(stderr, "raftkv-bench: --api=etcd runs put and range\n");
    return 2;
  }

  Target target;
  if (Status s = target.Open(etcd); !s.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n", s.ToString().c_str());
    return 1;
  }
  std::vector<std::unique_ptr<Client>> conns;
  for (uint32_t i = 0; !etcd && i < std::max<uint32_t>(1, FLAGS_conns); ++i) {
    auto c = target.NewClient(std::chrono::seconds(30));
    if (!c.ok()) {
      std::fprintf(stderr, "raftkv-bench: %s\n", c.status().ToString().c_str());
      return 2;
    }
    conns.push_back(std::move(c).value());
  }
  if (options.op == bench::Op::kRange) {
    const std::string value(FLAGS_val_size, 'v');
    Status s;
    if (etcd) {
      s = bench::EtcdPutOnce(target.etcd_endpoints(), options.range_key, value);
    } else if (!conns[0]->Get(options.range_key).ok()) {
      s = conns[0]->Put(options.range_key, value).status();
    }
    if (!s.ok()) {
      std::fprintf(stderr, "raftkv-bench: cannot write %s: %s\n",
                   options.range_key.c_str(), s.ToString().c_str());
      return 1;
    }
  }
  std::vector<Client*> raw;
  for (auto& c : conns) raw.push_back(c.get());
  // Leader changes: the highest term before and after, as either front
  // door reports it.
  auto max_term = [&]() -> uint64_t {
    return etcd ? bench::EtcdMaxTerm(target.etcd_endpoints())
                : MaxTerm(*conns[0]);
  };

  const uint64_t term_before = max_term();
  const std::vector<double> cpu_before = target.CpuSeconds();
  const double bench_cpu_before = ProcCpuSeconds(::getpid());
  const bool bar = !FLAGS_json && ::isatty(STDERR_FILENO);
  const bench::ProgressFn progress = [&](uint64_t answered, double elapsed_s) {
    if (bar) DrawProgress(command.c_str(), answered, options.total, elapsed_s);
  };
  bench::LoadResult result;
  bench::EtcdLoadOptions etcd_options;
  bench::EtcdLoadResult etcd_result;
  if (etcd) {
    etcd_options.endpoints = target.etcd_endpoints();
    etcd_options.conns = std::max<uint32_t>(1, FLAGS_conns);
    etcd_options.target_leader = FLAGS_target_leader;
    auto r = bench::RunEtcdClosedLoop(etcd_options, options, progress);
    if (!r.ok()) {
      std::fprintf(stderr, "raftkv-bench: %s\n", r.status().ToString().c_str());
      return 1;
    }
    etcd_result = std::move(r).value();
    result = std::move(etcd_result.load);
  } else {
    result = bench::RunClosedLoop(raw, options, progress);
  }
  if (bar) {
    DrawProgress(command.c_str(), options.total, options.total,
                 result.elapsed_s);
    std::fprintf(stderr, "\n");
  }
  const std::vector<double> cpu_after = target.CpuSeconds();
  const double bench_cpu_s = ProcCpuSeconds(::getpid()) - bench_cpu_before;
  const uint64_t leader_changes = max_term() - term_before;
  const bench::LatencySummary summary = bench::Summarize(
      std::move(result.latencies_ms), result.errors, result.elapsed_s);

  json cpu_per_1k = json::array();
  for (size_t i = 0; i < cpu_after.size(); ++i) {
    cpu_per_1k.push_back(summary.count == 0 ? 0.0
                                            : (cpu_after[i] - cpu_before[i]) /
                                                  (summary.count / 1000.0));
  }
  const std::vector<double> rss = target.PeakRssMb();
  if (FLAGS_json) {
    json j = bench::SummaryJson(summary);
    j["op"] = command;
    j["clients"] = options.clients;
    j["conns"] = std::max<uint32_t>(1, FLAGS_conns);
    j["total"] = options.total;
    j["api"] = FLAGS_api;
    // The benchmark's own CPU (its clients share the machine's cores).
    j["bench_cpu_s_per_1k"] =
        summary.count == 0 ? 0.0 : bench_cpu_s / (summary.count / 1000.0);
    if (etcd) {
      j["target_leader"] = FLAGS_target_leader;
      j["conn_endpoints"] = etcd_result.conn_endpoints;
      if (options.op == bench::Op::kPut) {
        j["distinct_revisions"] = etcd_result.distinct_revisions;
      }
    }
    if (options.op == bench::Op::kRange) {
      j["consistency"] = FLAGS_consistency;
    } else {
      j["val_size"] = options.val_size;
      j["key_space_size"] = options.key_space_size;
      j["sequential_keys"] = options.sequential_keys;
    }
    j["leader_changes"] = leader_changes;
    j["first_error"] = result.first_error;
    j["peak_rss_mb"] = rss.empty() ? json(nullptr) : json(rss);
    j["cpu_s_per_1k"] = cpu_after.empty() ? json(nullptr) : cpu_per_1k;
    std::printf("%s\n", raftkv::DumpJson(j).c_str());
  } else {
    std::printf("%s", bench::FormatSummary(summary).c_str());
    std::printf("\nLeader changes:\t%llu\n",
                static_cast<unsigned long long>(leader_changes));
    if (!result.first_error.empty()) {
      std::printf("First error:\t%s\n", result.first_error.c_str());
    }
    if (etcd && options.op == bench::Op::kPut) {
      std::printf(
          "Distinct revisions acknowledged:\t%llu\n",
          static_cast<unsigned long long>(etcd_result.distinct_revisions));
    }
    for (size_t i = 0; i < rss.size(); ++i) {
      std::printf(
          "Node %zu:\t%.3f CPU-s per 1,000 requests, peak RSS %.0f MB\n", i + 1,
          cpu_per_1k[i].get<double>(), rss[i]);
    }
  }
  // Through etcd's API every acknowledged put must have made a revision of
  // its own.
  const bool revisions_ok = !etcd || options.op != bench::Op::kPut ||
                            etcd_result.distinct_revisions == summary.count;
  return result.errors == 0 && leader_changes == 0 && revisions_ok ? 0 : 1;
}

int RunWriter() {
  Target target;
  if (FLAGS_endpoints.empty()) {
    std::fprintf(stderr, "raftkv-bench: writer needs --endpoints\n");
    return 2;
  }
  if (Status s = target.Open(); !s.ok()) return 1;
  auto client = target.NewClient(std::chrono::seconds(10));
  if (!client.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n",
                 client.status().ToString().c_str());
    return 2;
  }
  FILE* log =
      FLAGS_ack_log.empty() ? nullptr : std::fopen(FLAGS_ack_log.c_str(), "w");
  std::map<std::string, std::string> acked;
  size_t errors = 0;
  const auto end = Clock::now() + std::chrono::seconds(FLAGS_duration_s);
  auto wall_ms = [] {
    return static_cast<long long>(
        duration_cast<milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
  };
  for (uint64_t i = 0; Clock::now() < end; ++i) {
    const std::string key = "demo/writer/" + std::to_string(i);
    const long long invoked_ms = wall_ms();
    auto r = (*client)->Put(key, std::to_string(i));
    if (!r.ok()) {
      ++errors;
      std::fprintf(stderr, "writer error: %s\n", r.status().ToString().c_str());
      continue;
    }
    acked[key] = std::to_string(i);
    if (log) {
      std::fprintf(log, "%lld %lld\n", invoked_ms, wall_ms());
      std::fflush(log);
    }
  }
  if (log) std::fclose(log);
  size_t lost = 0;
  for (const auto& [key, value] : acked) {
    auto r = (*client)->Get(key);
    if (!r.ok() || r->value != value) ++lost;
  }
  std::printf(
      "raftkv-bench: writer acked_writes=%zu errors=%zu lost_writes=%zu\n",
      acked.size(), errors, lost);
  return errors == 0 && lost == 0 ? 0 : 1;
}

// One line per fault, as it is measured (two for a partition).
void PrintFault(bench::FaultKind kind, uint32_t k,
                const bench::FaultRecord& f) {
  const char* verb = kind == bench::FaultKind::kKill    ? "killed"
                     : kind == bench::FaultKind::kPause ? "paused"
                                                        : "isolated";
  if (f.recovered) {
    std::printf(
        "fault %2u: leader %d %s; first acknowledged write after %.1f ms "
        "(first write issued after the fault: %.1f ms)\n",
        k + 1, f.victim, verb, f.first_ack_ms, f.strict_ms);
  } else {
    std::printf(
        "fault %2u: leader %d %s; no write issued after the fault was "
        "acknowledged within 30 s\n",
        k + 1, f.victim, verb);
  }
  if (kind == bench::FaultKind::kPartition) {
    std::printf("          rules installed in %.1f ms; healed: ", f.apply_ms);
    if (f.new_leader != 0) {
      std::printf("every node follows %d after %.1f ms\n", f.new_leader,
                  f.settle_ms);
    } else {
      std::printf("the nodes did not agree on a leader within %.0f ms\n",
                  f.settle_ms);
    }
  }
  std::fflush(stdout);
}

int RunFailover() {
  auto kind = bench::ParseFaultKind(FLAGS_fault);
  if (!kind.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n", kind.status().message().c_str());
    return 2;
  }
  const bool partition = *kind == bench::FaultKind::kPartition;
  if (!FLAGS_endpoints.empty()) {
    // Killing, pausing or cutting off a leader takes its process id or its
    // own address: only a cluster the benchmark started has them.
    std::fprintf(stderr,
                 "raftkv-bench: failover injects its faults into the leader "
                 "of a cluster it starts itself (for --fault=partition, in "
                 "its own network namespace); it cannot fault the cluster of "
                 "--endpoints\n");
    return 2;
  }
  bench::FailoverOptions options;
  options.fault = *kind;
  options.faults = FLAGS_faults;
  options.fault_interval = milliseconds(FLAGS_fault_interval_ms);
  options.nodes = static_cast<int>(FLAGS_nodes);
  options.server_flags = SplitOn(FLAGS_server_flags, ' ');
  auto run =
      bench::RunFailover(options, [&](uint32_t k, const bench::FaultRecord& f) {
        if (!FLAGS_json) PrintFault(*kind, k, f);
      });
  if (!run.ok()) {
    // FailedPrecondition: the fault cannot be injected here, and nothing
    // was started; its message says why.
    const bool refused =
        run.status().code() == Status::Code::kFailedPrecondition;
    std::fprintf(stderr, "raftkv-bench: %s\n",
                 refused ? run.status().message().c_str()
                         : run.status().ToString().c_str());
    return refused ? 2 : 1;
  }
  const bench::FailoverResult& r = *run;
  std::vector<double> failover_ms, strict_ms, settle_ms, apply_ms;
  std::vector<int> victims, new_leaders;
  size_t unrecovered = 0, leader_changes = 0;
  for (const bench::FaultRecord& f : r.faults) {
    victims.push_back(f.victim);
    if (f.recovered) {
      failover_ms.push_back(f.first_ack_ms);
      strict_ms.push_back(f.strict_ms);
    } else {
      ++unrecovered;
    }
    new_leaders.push_back(f.new_leader);
    settle_ms.push_back(f.settle_ms);
    apply_ms.push_back(f.apply_ms);
    leader_changes += f.new_leader != 0 && f.new_leader != f.victim;
  }
  auto sorted = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  const std::vector<double> failover_sorted = sorted(failover_ms);
  const std::vector<double> strict_sorted = sorted(strict_ms);
  if (FLAGS_json) {
    json j;
    j["op"] = "failover";
    j["fault"] = FLAGS_fault;
    j["faults"] = r.faults.size();
    j["median_ms"] = bench::NearestRank(failover_sorted, 50);
    j["max_ms"] = bench::NearestRank(failover_sorted, 100);
    j["failover_ms"] = failover_ms;
    j["strict_median_ms"] = bench::NearestRank(strict_sorted, 50);
    j["strict_max_ms"] = bench::NearestRank(strict_sorted, 100);
    j["errors"] = r.errors.size();
    j["acked_writes"] = r.acked_writes;
    j["lost_writes"] = r.lost_writes;
    j["unrecovered"] = unrecovered;
    j["victims"] = victims;
    if (partition) {
      j["new_leaders"] = new_leaders;
      j["leader_changes"] = leader_changes;
      j["settle_ms"] = settle_ms;
      j["apply_ms"] = apply_ms;
    }
    std::printf("%s\n", raftkv::DumpJson(j).c_str());
  } else {
    std::printf(
        "raftkv-bench: failover fault=%s faults=%zu median_ms=%.1f "
        "max_ms=%.1f strict_median_ms=%.1f strict_max_ms=%.1f "
        "writer_errors=%zu acked_writes=%zu lost_writes=%zu unrecovered=%zu",
        FLAGS_fault.c_str(), r.faults.size(),
        bench::NearestRank(failover_sorted, 50),
        bench::NearestRank(failover_sorted, 100),
        bench::NearestRank(strict_sorted, 50),
        bench::NearestRank(strict_sorted, 100), r.errors.size(), r.acked_writes,
        r.lost_writes, unrecovered);
    if (partition) std::printf(" leader_changes=%zu", leader_changes);
    std::printf("\n");
    for (const Status& s : r.errors) {
      std::printf("  writer error: %s\n", s.ToString().c_str());
    }
  }
  const bool leaders_ok = !partition || leader_changes == r.faults.size();
  return r.errors.empty() && r.lost_writes == 0 && unrecovered == 0 &&
                 leaders_ok
             ? 0
             : 1;
}

// Each node's peak RSS, for a cluster started here (null otherwise).
void AddNodeStats(const Target& target, json& j) {
  const std::vector<double> rss = target.PeakRssMb();
  j["peak_rss_mb"] = rss.empty() ? json(nullptr) : json(rss);
}

int RunWatch() {
  Target target;
  if (Status s = target.Open(); !s.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n", s.ToString().c_str());
    return 1;
  }
  auto member = target.Member(FLAGS_watch_on);
  if (!member.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n",
                 member.status().ToString().c_str());
    return 2;
  }
  bench::WatchBenchOptions o;
  o.endpoints = target.endpoints();
  o.watch_endpoints =
      member->empty() ? o.endpoints : std::vector<std::string>{*member};
  o.streams = FLAGS_streams;
  o.watchers_per_stream = FLAGS_watchers_per_stream;
  o.puts = FLAGS_puts;
  o.put_rate = FLAGS_put_rate;
  o.key_size = gflags::GetCommandLineFlagInfoOrDie("key_size").is_default
                   ? 32
                   : FLAGS_key_size;
  o.val_size = FLAGS_val_size;
  o.idle_timeout = std::chrono::seconds(FLAGS_watch_timeout_s);
  o.cpu_seconds = target.CpuSampler();
  o.cpu_wait_seconds = target.CpuWaitSampler();
  const bool bar = !FLAGS_json && ::isatty(STDERR_FILENO);
  const auto start = Clock::now();
  std::unique_ptr<Client> status_client;
  if (auto c = target.NewClient(std::chrono::seconds(10)); c.ok()) {
    status_client = std::move(c).value();
  }
  const uint64_t term_before = status_client ? MaxTerm(*status_client) : 0;
  auto r = bench::RunWatchBench(o, [&](const char* phase, uint64_t done,
                                       uint64_t total) {
    if (bar) {
      DrawProgress(phase, done, total,
                   std::chrono::duration<double>(Clock::now() - start).count());
    }
  });
  if (bar) std::fprintf(stderr, "\n");
  if (!r.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n", r.status().ToString().c_str());
    return 1;
  }
  const uint64_t leader_changes =
      status_client ? MaxTerm(*status_client) - term_before : 0;
  // The longest stall of each node's event loop (since it started: the
  // whole run for a cluster started here), and how much of it was spent
  // waiting for a CPU.
  json stall_ms = json::array(), stall_cpu_wait_ms = json::array();
  if (status_client) {
    for (const NodeInfo& n : status_client->ClusterStatus()) {
      stall_ms.push_back(n.error.ok() ? json(n.loop_stall_max_ms) : json());
      stall_cpu_wait_ms.push_back(
          n.error.ok() ? json(n.loop_stall_max_cpu_wait_ms) : json());
    }
  }
  if (FLAGS_json) {
    json j = bench::WatchResultJson(*r);
    j["loop_stall_max_ms"] = stall_ms;
    j["loop_stall_max_cpu_wait_ms"] = stall_cpu_wait_ms;
    j["op"] = "watch";
    j["streams"] = o.streams;
    j["watchers_per_stream"] = o.watchers_per_stream;
    j["puts"] = o.puts;
    j["put_rate"] = o.put_rate;
    j["key_size"] = o.key_size;
    j["val_size"] = o.val_size;
    j["watch_on"] = FLAGS_watch_on;
    j["watch_member"] = *member;
    j["leader"] = target.LeaderId();
    j["leader_changes"] = leader_changes;
    AddNodeStats(target, j);
    std::printf("%s\n", raftkv::DumpJson(j).c_str());
  } else {
    std::printf("%zu watchers (%u streams x %u) on %s; %llu puts at %.0f/s\n",
                static_cast<size_t>(r->watchers), o.streams,
                o.watchers_per_stream,
                member->empty() ? "every member (the client's choice)"
                                : (FLAGS_watch_on + " " + *member).c_str(),
                static_cast<unsigned long long>(o.puts), o.put_rate);
    std::printf("%s", bench::FormatWatchResult(*r).c_str());
    std::printf("Leader:\t%llu; leader changes: %llu\n",
                static_cast<unsigned long long>(target.LeaderId()),
                static_cast<unsigned long long>(leader_changes));
    std::printf(
        "Longest loop stall per node (of it waiting for a CPU), "
        "ms:\t%s (%s)\n",
        stall_ms.dump().c_str(), stall_cpu_wait_ms.dump().c_str());
  }
  const bool complete = r->from_send_ms.size() == r->expected_events;
  return complete && r->watch_errors == 0 && r->put_errors == 0 &&
                 leader_changes == 0
             ? 0
             : 1;
}

int RunWatchCapacity() {
  if (!FLAGS_endpoints.empty()) {
    std::fprintf(stderr,
                 "raftkv-bench: watch-capacity reads the member's RSS from "
                 "/proc: it needs a cluster it starts itself, not "
                 "--endpoints\n");
    return 2;
  }
  Target target;
  if (Status s = target.Open(); !s.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n", s.ToString().c_str());
    return 1;
  }
  auto member =
      target.Member(FLAGS_watch_on == "any" ? "leader" : FLAGS_watch_on);
  if (!member.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n",
                 member.status().ToString().c_str());
    return 2;
  }
  const int node = target.NodeAt(*member);
  bench::WatchCapacityOptions o;
  o.endpoints = target.endpoints();
  o.member = *member;
  o.member_pid = target.cluster()->pid(node);
  o.streams = FLAGS_streams;
  o.step = FLAGS_step;
  o.max_watchers = FLAGS_max_watchers;
  o.rss_limit_mb = FLAGS_rss_limit_mb;
  if (!FLAGS_json) {
    std::printf(
        "watches on node %d (%s), in steps of %llu, until its RSS "
        "grew by %.0f MB\n",
        node, FLAGS_watch_on == "any" ? "leader" : FLAGS_watch_on.c_str(),
        static_cast<unsigned long long>(o.step), o.rss_limit_mb);
    std::fflush(stdout);
  }
  auto r = bench::RunWatchCapacity(o, [&](const bench::WatchCapacityStep& s) {
    if (!FLAGS_json) {
      std::printf("%s", bench::FormatCapacityStep(s).c_str());
      std::fflush(stdout);
    }
  });
  if (!r.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n", r.status().ToString().c_str());
    return 1;
  }
  if (FLAGS_json) {
    json j = bench::CapacityResultJson(*r);
    j["op"] = "watch-capacity";
    j["node"] = node;
    j["watch_on"] = FLAGS_watch_on == "any" ? "leader" : FLAGS_watch_on;
    j["streams"] = o.streams;
    j["step"] = o.step;
    j["rss_limit_mb"] = o.rss_limit_mb;
    std::printf("%s\n", raftkv::DumpJson(j).c_str());
  } else {
    std::printf(
        "base RSS %.1f MB; most watches with growth under %.0f MB: "
        "%llu (stopped: %s)\n",
        r->base_rss_mb, o.rss_limit_mb,
        static_cast<unsigned long long>(r->most_under_limit),
        r->stopped_by.c_str());
  }
  return r->steps.empty() ? 1 : 0;
}

int RunLeaseKeepAlive() {
  Target target;
  if (Status s = target.Open(); !s.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n", s.ToString().c_str());
    return 1;
  }
  bench::KeepAliveLoopOptions o;
  o.endpoints = target.endpoints();
  o.conns = FLAGS_conns;
  o.clients = FLAGS_clients;
  o.total = FLAGS_total;
  o.ttl_s = FLAGS_lease_ttl > 0 ? FLAGS_lease_ttl : 100;
  o.cpu_seconds = target.CpuSampler();
  const bool bar = !FLAGS_json && ::isatty(STDERR_FILENO);
  auto r = bench::RunKeepAliveLoop(o, [&](uint64_t answered, double s) {
    if (bar) DrawProgress("keepalive", answered, o.total, s);
  });
  if (bar) std::fprintf(stderr, "\n");
  if (!r.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n", r.status().ToString().c_str());
    return 1;
  }
  const bench::LatencySummary summary =
      bench::Summarize(r->latencies_ms, r->errors, r->elapsed_s);
  json cpu_per_1k = json::array();
  for (double cpu : r->node_cpu_s) {
    cpu_per_1k.push_back(summary.count == 0 ? 0.0
                                            : cpu / (summary.count / 1000.0));
  }
  if (FLAGS_json) {
    json j = bench::SummaryJson(summary);
    j["op"] = "lease-keepalive";
    j["leader"] = target.LeaderId();
    j["clients"] = o.clients;
    j["conns"] = o.conns;
    j["total"] = o.total;
    j["ttl_s"] = o.ttl_s;
    j["first_error"] = r->first_error;
    j["leader_changes"] = 0;
    j["cpu_s_per_1k"] = r->node_cpu_s.empty() ? json(nullptr) : cpu_per_1k;
    AddNodeStats(target, j);
    std::printf("%s\n", raftkv::DumpJson(j).c_str());
  } else {
    std::printf("%s", bench::FormatSummary(summary).c_str());
    if (!r->first_error.empty()) {
      std::printf("First error:\t%s\n", r->first_error.c_str());
    }
    for (size_t i = 0; i < cpu_per_1k.size(); ++i) {
      std::printf("Node %zu:\t%.3f CPU-s per 1,000 keep-alives\n", i + 1,
                  cpu_per_1k[i].get<double>());
    }
    std::printf("Leader:\t%llu\n",
                static_cast<unsigned long long>(target.LeaderId()));
  }
  return r->errors == 0 ? 0 : 1;
}

int RunLeaseKeepers() {
  Target target;
  if (Status s = target.Open(); !s.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n", s.ToString().c_str());
    return 1;
  }
  bench::KeepersOptions o;
  o.endpoints = target.endpoints();
  o.leases = FLAGS_leases;
  o.ttl_s = FLAGS_lease_ttl > 0 ? FLAGS_lease_ttl : 30;
  o.idle = std::chrono::seconds(FLAGS_idle_s);
  o.duration = std::chrono::seconds(FLAGS_keep_s);
  o.cpu_seconds = target.CpuSampler();
  auto r = bench::RunKeepers(o, [&](const char* phase) {
    if (!FLAGS_json && ::isatty(STDERR_FILENO)) {
      std::fprintf(stderr, "lease-keepers: %s\n", phase);
    }
  });
  if (!r.ok()) {
    std::fprintf(stderr, "raftkv-bench: %s\n", r.status().ToString().c_str());
    return 1;
  }
  if (FLAGS_json) {
    json j = bench::KeepersResultJson(o, *r);
    j["op"] = "lease-keepers";
    j["leader"] = target.LeaderId();
    AddNodeStats(target, j);
    std::printf("%s\n", raftkv::DumpJson(j).c_str());
  } else {
    std::printf("%s", bench::FormatKeepersResult(o, *r).c_str());
    std::printf("Leader:\t%llu\n",
                static_cast<unsigned long long>(target.LeaderId()));
  }
  return r->grant_errors == 0 && r->lost == 0 ? 0 : 1;
}

// etcd's tool spells its flags with dashes (--val-size); gflags wants
// underscores. Rewrites the flag names, leaving values alone.
void UnderscoreFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* a = argv[i];
    if (a[0] != '-' || a[1] != '-') continue;
    for (char* p = a + 2; *p != '\0' && *p != '='; ++p) {
      if (*p == '-') *p = '_';
    }
  }
}

// etcd's names for flags that have raftkv-bench names (after
// UnderscoreFlagNames): --watch-per-stream, --put-total, --value-size.
void RenameFlagAliases(int argc, char** argv) {
  static const std::pair<const char*, const char*> kAliases[] = {
      {"watch_per_stream", "watchers_per_stream"},
      {"put_total", "puts"},
      {"value_size", "val_size"}};
  static std::vector<std::string> renamed;
  renamed.reserve(argc);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) != 0) continue;
    const size_t end = std::min(a.find('='), a.size());
    const std::string name = a.substr(2, end - 2);
    for (const auto& [alias, flag] : kAliases) {
      if (name != alias) continue;
      renamed.push_back("--" + std::string(flag) + a.substr(end));
      argv[i] = renamed.back().data();
    }
  }
}

}  // namespace
}  // namespace raftkv

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "raftkv-bench [--endpoints=...] [--conns=N] [--clients=M] [--json] "
      "[--api=native|etcd [--etcd-endpoints=...] [--target-leader]] "
      "put|range KEY|txn-put|failover|writer|watch|watch-capacity|"
      "lease-keepalive|lease-keepers [flags]");
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;
  static char help_on[] = "--helpon=raftkv_bench";
  raftkv::RestrictHelpToOwnFlags(argc, argv, help_on);
  raftkv::UnderscoreFlagNames(argc, argv);
  raftkv::RenameFlagAliases(argc, argv);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (argc < 2) {
    std::fprintf(stderr,
                 "raftkv-bench: no command (put, range, txn-put, "
                 "failover, writer, watch, watch-capacity, lease-keepalive, "
                 "lease-keepers); --help for the flags\n");
    return 2;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "put" || command == "range" || command == "txn-put") {
    return raftkv::RunLoad(command, args);
  }
  if (command == "failover") return raftkv::RunFailover();
  if (command == "writer") return raftkv::RunWriter();
  if (command == "watch") return raftkv::RunWatch();
  if (command == "watch-capacity") return raftkv::RunWatchCapacity();
  if (command == "lease-keepalive") return raftkv::RunLeaseKeepAlive();
  if (command == "lease-keepers") return raftkv::RunLeaseKeepers();
  std::fprintf(stderr, "raftkv-bench: unknown command %s\n", command.c_str());
  return 2;
}
