// raftkvd's flags. Names avoid those glog and librocksdb already define
// (see the toolchain notes): a clash aborts the program at start-up.
#include "server/flags.h"

#include <gflags/gflags.h>

#include <cstdlib>
#include <exception>
#include <string>

DEFINE_uint64(id, 0, "This node's id (a key of --cluster).");
DEFINE_string(cluster, "",
              "Peer (Raft) addresses: ID=HOST:PORT,... e.g. "
              "1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003. Those of "
              "the founding members for a new cluster; with --join, the "
              "current members and this node. Once the data dir records a "
              "membership (raftkvctl member changes it), that wins.");
DEFINE_string(cluster_clients, "",
              "Client addresses of the founding members, ID=HOST:PORT,...; "
              "recorded in the membership, so followers name the leader's "
              "client address and clients discover every member. Members "
              "added later publish theirs through `raftkvctl member add`.");
DEFINE_string(listen_client, "", "HOST:PORT to serve clients on.");
DEFINE_bool(join, false,
            "This node was added to a running cluster (raftkvctl member "
            "add): with an empty --data_dir it never forms a cluster of its "
            "own but waits for the leader to send it the state; --cluster "
            "lists the current members and this node. Ignored once the "
            "data dir holds state (etcd's --initial-cluster-state=existing).");
DEFINE_string(restore_from, "",
              "A backup (raftkvctl snapshot save) to start this node from, as "
              "a founding member of a NEW cluster (--cluster, "
              "--cluster_token): every member restores the same file with "
              "the same flags. Ignored once the data dir holds state.");
DEFINE_bool(force_new_cluster, false,
            "DISASTER RECOVERY ONLY, when a majority of the cluster is lost "
            "for good: this node makes itself a single-node cluster, keeping "
            "and committing everything its log holds. Writes acknowledged "
            "with the help of the lost nodes only may be gone. Start once "
            "with it, then without it, and add members (docs/membership.md).");
DEFINE_string(cluster_token, "raftkv",
              "With --cluster, names the cluster a new data dir joins (as "
              "etcd's --initial-cluster-token): its id is a hash of both, "
              "recorded in the data dir on first start; peers and snapshot "
              "streams of another cluster are refused.");
DEFINE_string(listen_etcd, "",
              "HOST:PORT to serve etcd's v3 API on (gRPC; docs/etcd-api.md). "
              "Empty: none.");
DEFINE_string(listen_etcd_gateway, "",
              "HOST:PORT to serve etcd's JSON gateway on (POST /v3/kv/range, "
              "/v3/watch, ... as etcd's client port; HTTPS with --cert-file). "
              "Empty: none.");
DEFINE_string(listen_metrics, "",
              "HOST:PORT to serve /metrics (Prometheus), /health, /livez "
              "and /readyz on over HTTP; empty: none.");
DEFINE_string(data_dir, "", "Directory for this node's RocksDB data.");
DEFINE_uint32(tick_ms, 10, "Raft logical clock period, ms.");
DEFINE_uint32(election_ticks, 15,
              "Election timeout in ticks; followers campaign after a random "
              "[N, 2N) ticks without hearing from a leader.");
DEFINE_uint32(heartbeat_ticks, 1, "Leader heartbeat period in ticks.");
DEFINE_bool(fast_failover, true,
            "When the TCP connection to the leader breaks, campaign at once "
            "or in turn (survivors 3 ticks apart by id); PreVote protects a "
            "leader that is alive.");
DEFINE_uint64(max_key_bytes, 4096, "Largest accepted key.");
DEFINE_uint64(max_value_bytes, 1 << 20, "Largest accepted value.");
DEFINE_uint64(request_timeout_ms, 5000,
              "Longest a request may wait for commit or a read index.");
DEFINE_uint64(snapshot_entries, 100000,
              "Compact the Raft log when it spans more than N entries (or "
              "outgrows its share of --memory_budget_mb); followers behind "
              "it catch up by a streamed snapshot.");
DEFINE_uint64(log_entries_kept, 10000,
              "Applied entries kept in the log when compacting it, for "
              "followers that are only a little behind.");
DEFINE_uint64(max_unapplied_entries, 10000,
              "The most log entries a node holds committed or appended but "
              "not yet applied: past it, a follower stops taking appends and "
              "a leader holds new writes back until its applier catches up. "
              "Bounds the work before serving after a restart or a "
              "failover.");
DEFINE_string(
    auto_compaction_mode, "revision",
    "How the history kept for watches and reads at a revision is "
    "compacted: 'revision' keeps the last --auto_compaction_retention "
    "revisions, 'periodic' those of the last "
    "--auto_compaction_retention (a duration).");
DEFINE_string(auto_compaction_retention, "100000",
              "revision mode: revisions to keep (0: keep all); periodic mode: "
              "a duration such as 90s, 30m, 1h (a bare number is hours, as "
              "etcd's; 0: keep all).");
DEFINE_uint64(watch_progress_interval_ms, 10 * 60 * 1000,
              "A watch that asked for progress notifications gets one after "
              "this long without a frame.");
DEFINE_uint64(watch_max_unsent_mb, 16,
              "A client connection with more than this many MiB of watch "
              "frames unsent (a slow reader) has its watches cancelled, "
              "each with the revision to resume from.");
DEFINE_uint32(event_loop_rt_priority,
              raftkv::server::kEventLoopRealtimePriority,
              "Real-time (SCHED_RR) priority, 1-99, the event loop thread is "
              "raised to while its heartbeat tick is overdue (and lowered "
              "again once the tick has run), so that heartbeats and timers run "
              "on time however busy the machine is; needs CAP_SYS_NICE, root "
              "or an RLIMIT_RTPRIO, without which the node logs a warning and "
              "never raises it. 0: never.");
DEFINE_uint64(memory_budget_mb, 160,
              "Memory for this node: RocksDB's block cache and memtables "
              "(45%), the Raft log in memory (25%), send queues to peers "
              "(10%) and headroom (20%).");
// TLS, with etcd's names (gflags reads --cert-file as --cert_file).
DEFINE_string(cert_file, "",
              "TLS on the client listener: PEM certificate (chain) it "
              "presents. Reloaded when it changes on disk.");
DEFINE_string(key_file, "", "TLS on the client listener: PEM private key.");
DEFINE_string(trusted_ca_file, "",
              "TLS on the client listener: PEM CAs that client "
              "certificates must chain to (with --client-cert-auth).");
DEFINE_bool(client_cert_auth, false,
            "TLS on the client listener: require a client certificate "
            "signed by --trusted-ca-file.");
DEFINE_string(peer_cert_file, "",
              "TLS between peers (mutual): PEM certificate this node "
              "presents to peers, as server and as client. Reloaded when it "
              "changes on disk.");
DEFINE_string(peer_key_file, "", "TLS between peers: PEM private key.");
DEFINE_string(peer_trusted_ca_file, "",
              "TLS between peers: PEM CAs that peers' certificates must "
              "chain to (required with --peer-cert-file).");
DEFINE_bool(peer_client_cert_auth, true,
            "TLS between peers: require a certificate from peers that dial "
            "this node (false: only dialing nodes check the listener's).");
DEFINE_string(testonly_snapshot_fault, "",
              "TEST ONLY: damage the first snapshot this node sends: "
              "corrupt:N flips a byte of chunk N, cut:N closes the "
              "connection after N chunks, twice:0 sends it again on a "
              "second connection before the first is acknowledged; or "
              "slow:N sleeps N ms before each chunk of every snapshot it "
              "sends.");
DEFINE_uint32(testonly_apply_delay_us, 0,
              "TEST ONLY: the applier sleeps this long per entry (a node "
              "that cannot apply as fast as the cluster commits).");
DEFINE_bool(unsafe_serve_stale_reads, false,
            "TEST ONLY: answer reads from the local state machine on any "
            "node (not linearizable). Used to prove the Jepsen checker "
            "catches stale reads.");

namespace raftkv::server {
namespace {

// "90s", "30m", "1h", "500ms"; a bare number is hours (etcd).
StatusOr<std::chrono::milliseconds> ParseRetentionPeriod(
    const std::string& text) {
  size_t end = 0;
  double value = 0;
  try {
    value = std::stod(text, &end);
  } catch (const std::exception&) {
    end = 0;
  }
  const std::string unit = text.substr(end);
  double ms_per_unit = 0;
  if (unit.empty() || unit == "h") ms_per_unit = 3600e3;
  if (unit == "m") ms_per_unit = 60e3;
  if (unit == "s") ms_per_unit = 1e3;
  if (unit == "ms") ms_per_unit = 1;
  if (end == 0 || value < 0 || ms_per_unit == 0) {
    return Status::InvalidArgument(
        "--auto_compaction_retention: '" + text +
        "' is not a duration (such as 90s, 30m, 1h)");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(value * ms_per_unit));
}

Status ParseAutoCompaction(AutoCompactionOptions* options) {
  const std::string& retention = FLAGS_auto_compaction_retention;
  if (FLAGS_auto_compaction_mode == "revision") {
    options->mode = AutoCompactionOptions::Mode::kRevision;
    char* end = nullptr;
    const long long n = std::strtoll(retention.c_str(), &end, 10);
    if (retention.empty() || *end != '\0' || n < 0) {
      return Status::InvalidArgument(
          "--auto_compaction_retention: in revision mode, a number of "
          "revisions (got '" +
          retention + "')");
    }
    options->retain_revisions = n;
    return Status::OK();
  }
  if (FLAGS_auto_compaction_mode == "periodic") {
    options->mode = AutoCompactionOptions::Mode::kPeriodic;
    auto period = ParseRetentionPeriod(retention);
    if (!period.ok()) return period.status();
    options->retain_for = *period;
    return Status::OK();
  }
  return Status::InvalidArgument(
      "--auto_compaction_mode must be 'revision' or 'periodic'");
}

// --cert-file ... (`prefix` "") or --peer-cert-file ... (`prefix` "peer-").
StatusOr<TlsFiles> TlsFromFlags(const std::string& prefix,
                                const std::string& cert, const std::string& key,
                                const std::string& ca, bool client_cert_auth,
                                bool need_ca) {
  TlsFiles tls{cert, key, ca, client_cert_auth};
  if (cert.empty() != key.empty()) {
    return Status::InvalidArgument("--" + prefix + "cert-file and --" + prefix +
                                   "key-file go together");
  }
  if (cert.empty()) {
    if (!ca.empty()) {
      return Status::InvalidArgument(
          "--" + prefix + "trusted-ca-file needs --" + prefix + "cert-file");
    }
    tls.client_cert_auth = false;  // no TLS
    return tls;
  }
  if ((client_cert_auth || need_ca) && ca.empty()) {
    return Status::InvalidArgument(
        "--" + prefix + "trusted-ca-file must be set " +
        (need_ca ? "with --" + prefix + "cert-file"
                 : "with --" + prefix + "client-cert-auth"));
  }
  return tls;
}

}  // namespace

StatusOr<ServerConfig> ConfigFromFlags() {
  ServerConfig config;
  config.id = FLAGS_id;
  if (FLAGS_cluster.empty()) {
    return Status::InvalidArgument("--cluster must list every node");
  }
  auto peers = ParseMemberList(FLAGS_cluster);
  if (!peers.ok()) {
    return Status::InvalidArgument("--cluster: " + peers.status().message());
  }
  config.peer_addresses = *peers;
  if (!FLAGS_cluster_clients.empty()) {
    auto clients = ParseMemberList(FLAGS_cluster_clients);
    if (!clients.ok()) {
      return Status::InvalidArgument("--cluster_clients: " +
                                     clients.status().message());
    }
    config.client_addresses = *clients;
  }
  config.listen_client = FLAGS_listen_client;
  config.join = FLAGS_join;
  config.force_new_cluster = FLAGS_force_new_cluster;
  config.restore_from = FLAGS_restore_from;
  config.cluster_token = FLAGS_cluster_token;
  config.listen_metrics = FLAGS_listen_metrics;
  config.listen_etcd = FLAGS_listen_etcd;
  config.listen_etcd_gateway = FLAGS_listen_etcd_gateway;
  config.etcd_advertise = config.listen_etcd;
  for (const char* wildcard : {"0.0.0.0:", "[::]:"}) {
    if (config.etcd_advertise.rfind(wildcard, 0) == 0) {
      config.etcd_advertise = "127.0.0.1:" + config.etcd_advertise.substr(
                                                 std::string(wildcard).size());
    }
  }
  if (config.client_addresses.count(config.id) == 0 &&
      !config.listen_client.empty()) {
    config.client_addresses[config.id] = config.listen_client;
  }
  config.data_dir = FLAGS_data_dir;
  config.tick = std::chrono::milliseconds(FLAGS_tick_ms);
  config.election_ticks = static_cast<int>(FLAGS_election_ticks);
  config.heartbeat_ticks = static_cast<int>(FLAGS_heartbeat_ticks);
  config.fast_failover = FLAGS_fast_failover;
  config.max_key_bytes = FLAGS_max_key_bytes;
  config.max_value_bytes = FLAGS_max_value_bytes;
  config.default_request_timeout =
      std::chrono::milliseconds(FLAGS_request_timeout_ms);
  config.snapshot_every_entries = FLAGS_snapshot_entries;
  config.log_entries_kept = FLAGS_log_entries_kept;
  config.max_unapplied_entries = FLAGS_max_unapplied_entries;
  config.memory_budget_mb = FLAGS_memory_budget_mb;
  config.event_loop_rt_priority =
      static_cast<int>(FLAGS_event_loop_rt_priority);
  config.PlanMemory();
  RAFTKV_RETURN_IF_ERROR(ParseAutoCompaction(&config.auto_compaction));
  config.watch_progress_interval =
      std::chrono::milliseconds(FLAGS_watch_progress_interval_ms);
  config.watch_max_unsent_bytes = FLAGS_watch_max_unsent_mb << 20;
  config.unsafe_serve_stale_reads = FLAGS_unsafe_serve_stale_reads;
  config.testonly_apply_delay =
      std::chrono::microseconds(FLAGS_testonly_apply_delay_us);
  if (!FLAGS_testonly_snapshot_fault.empty()) {
    const std::string& f = FLAGS_testonly_snapshot_fault;
    const size_t colon = f.find(':');
    const int n =
        colon == std::string::npos ? -1 : std::atoi(f.c_str() + colon + 1);
    const std::string kind = f.substr(0, colon);
    if (n < 0 || (kind != "corrupt" && kind != "cut" && kind != "twice" &&
                  kind != "slow")) {
      return Status::InvalidArgument(
          "--testonly_snapshot_fault must be corrupt:N, cut:N, twice:0 or "
          "slow:N");
    }
    if (kind == "twice") config.testonly_send_snapshot_twice = true;
    if (kind == "corrupt") config.testonly_corrupt_snapshot_chunk = n;
    if (kind == "cut") config.testonly_cut_snapshot_after = n;
    if (kind == "slow") {
      config.testonly_snapshot_chunk_delay = std::chrono::milliseconds(n);
    }
  }
  auto client_tls =
      TlsFromFlags("", FLAGS_cert_file, FLAGS_key_file, FLAGS_trusted_ca_file,
                   FLAGS_client_cert_auth, /*need_ca=*/false);
  if (!client_tls.ok()) return client_tls.status();
  config.client_tls = *client_tls;
  auto peer_tls = TlsFromFlags("peer-", FLAGS_peer_cert_file,
                               FLAGS_peer_key_file, FLAGS_peer_trusted_ca_file,
                               FLAGS_peer_client_cert_auth, /*need_ca=*/true);
  if (!peer_tls.ok()) return peer_tls.status();
  config.peer_tls = *peer_tls;
  RAFTKV_RETURN_IF_ERROR(config.Validate());
  return config;
}

}  // namespace raftkv::server
