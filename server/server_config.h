// ServerConfig: everything that parameterises one raftkvd process. Built
// from flags in flags.cc (the only file that reads flags) or directly by
// tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "server/stage_thread.h"
#include "util/status.h"

namespace raftkv::server {

// Automatic compaction of the retained history (etcd's
// --auto-compaction-mode/--auto-compaction-retention; auto_compactor.h).
struct AutoCompactionOptions {
  enum class Mode { kRevision, kPeriodic };
  Mode mode = Mode::kRevision;
  int64_t retain_revisions = 100000;        // revision mode; 0: never
  std::chrono::milliseconds retain_for{0};  // periodic mode; 0: never
};

// TLS on one listener (etcd's flags; empty files: plain TCP). The client
// listener's are --cert-file, --key-file, --trusted-ca-file and
// --client-cert-auth, the peers' --peer-cert-file, ... (flags.cc).
struct TlsFiles {
  std::string cert_file;  // PEM certificate chain presented
  std::string key_file;   // PEM private key of cert_file
  // PEM CAs that clients' (peers': both ways) certificates must chain to.
  std::string trusted_ca_file;
  // Require a client certificate chaining to trusted_ca_file.
  bool client_cert_auth = false;

  bool enabled() const { return !cert_file.empty(); }
};

struct ServerConfig {
  uint64_t id = 0;
  std::map<uint64_t, std::string> peer_addresses;    // id -> host:port
  std::map<uint64_t, std::string> client_addresses;  // id -> host:port
  std::string listen_client;  // host:port of this node's client service
  // Added to a running cluster (--join): a new data dir waits for the
  // leader instead of forming a cluster (raft::Config::join_existing_cluster).
  bool join = false;
  // Disaster recovery (--force_new_cluster, server/force_new_cluster.h):
  // make this node a single-node cluster of itself before starting.
  bool force_new_cluster = false;
  // A backup to start a new cluster's member from (--restore_from,
  // server/restore.h); ignored once the data dir holds state.
  std::string restore_from;
  // With peer_addresses, names the cluster a new data dir is formed into
  // (cluster_identity.h); distinct clusters on the same addresses over time
  // need distinct tokens only if their data dirs could meet.
  std::string cluster_token = "raftkv";
  // host:port of the HTTP endpoint for /metrics, /health, /livez and
  // /readyz (http_endpoint.h); empty: none.
  std::string listen_metrics;
  // host:port to serve etcd's v3 API on, over gRPC (server/etcd/); empty:
  // none. etcd_advertise: that address as clients reach it (a wildcard
  // host replaced by 127.0.0.1), reported in Status and member lists.
  std::string listen_etcd;
  std::string etcd_advertise;
  // host:port to serve etcd's JSON gateway on (/v3/kv/range, ...; HTTPS
  // with client_tls; server/etcd/json_gateway.h); empty: none.
  std::string listen_etcd_gateway;
  std::string data_dir;
  // TLS on the client listener(s) and between peers (docs/server.md "TLS").
  // Peer TLS is mutual: a node dialing a peer presents peer_tls's
  // certificate and checks the peer's against its trusted CA and address.
  TlsFiles client_tls;
  TlsFiles peer_tls;

  // Raft timing: a follower campaigns after [election_ticks,
  // 2 * election_ticks) ticks without a leader; the leader heartbeats every
  // heartbeat_ticks.
  std::chrono::milliseconds tick{10};
  int election_ticks = 15;
  int heartbeat_ticks = 1;
  // Campaign as soon as the connection to the leader breaks (PreVote keeps
  // this from disrupting a leader that is in fact alive).
  bool fast_failover = true;

  size_t max_key_bytes = 4096;
  size_t max_value_bytes = 1 << 20;
  size_t max_pending_requests = 100000;
  std::chrono::milliseconds default_request_timeout{5000};
  // fsyncs slower than this are logged as warnings.
  std::chrono::milliseconds slow_fsync_warning{100};

  // The Raft log held in memory (LogCache) is compacted when it spans this
  // many entries past its start or holds more than the memory plan's log
  // bytes; the applied entries are dropped but for this many kept (within
  // half the byte budget) for followers that are only a little behind.
  uint64_t snapshot_every_entries = 100000;
  uint64_t log_entries_kept = 10000;
  // The most log entries a node holds unapplied before it holds back new
  // ones (RaftLoop::apply_backlog_full(); half the log's bytes is the
  // other limit). It bounds what a node must apply before it can serve
  // after a restart or on becoming leader (etcd's gap is 5,000).
  uint64_t max_unapplied_entries = 10000;
  // History kept for watches and reads at a revision (auto_compactor.h).
  AutoCompactionOptions auto_compaction;
  // A watch that asked for progress notifications gets one after this long
  // idle; a watch connection with more than this many bytes unsent has its
  // watches cancelled (to resume) instead (watch_streams.h).
  std::chrono::milliseconds watch_progress_interval{10 * 60 * 1000};
  size_t watch_max_unsent_bytes = 16 << 20;

  // One memory budget for the node, split by PlanMemory().
  uint64_t memory_budget_mb = 160;
  // The real-time (SCHED_RR) priority, 1-99, the event loop is raised to
  // while its tick is overdue, where the process may (server/loop_booster.h);
  // 0: never raised.
  int event_loop_rt_priority = kEventLoopRealtimePriority;
  // The event loop is considered stalled when its timers run this late
  // (logged, counted in the status).
  std::chrono::milliseconds loop_stall_warning{50};
  // A snapshot point (a RocksDB snapshot pinning old versions) is released
  // when no transfer has used it for this long.
  std::chrono::milliseconds snapshot_point_idle{30000};
  // Derived from memory_budget_mb by PlanMemory() (flags.cc; tests may set
  // them directly).
  uint64_t rocksdb_memory_bytes = 0;  // block cache; memtables charged to it
  // The cluster this node's data belongs to: set by Node::Open from the
  // data dir (or, for a new one, from peer_addresses and cluster_token).
  uint64_t cluster_id = 0;
  uint64_t max_log_cache_bytes = 0;
  uint64_t peer_queue_bytes = 0;  // per peer

  // Test-only: answer linearizable reads from the local state machine on
  // any node. Exists to prove the Jepsen harness catches stale reads.
  bool unsafe_serve_stale_reads = false;
  // Test-only: damage the first snapshot transfer this node sends
  // ("corrupt:N" flips a byte of chunk N, "cut:N" closes the connection
  // after N chunks), to prove the receiver rejects it and the transfer is
  // retried.
  int testonly_corrupt_snapshot_chunk = -1;
  int testonly_cut_snapshot_after = -1;
  bool testonly_send_snapshot_twice = false;
  std::chrono::milliseconds testonly_snapshot_chunk_delay{0};
  // Test-only: the applier sleeps this long per entry, to prove that a
  // node which cannot apply as fast as the cluster commits keeps its log
  // within its memory budget.
  std::chrono::microseconds testonly_apply_delay{0};

  Status Validate() const;
  // Splits memory_budget_mb: 45% RocksDB (block cache, with the memtables
  // charged to it and capped at half of it), 25% the in-memory Raft log,
  // 10% the send queues to peers; the rest is headroom for requests,
  // snapshot chunks and the allocator.
  void PlanMemory();
};

// Parses "1=127.0.0.1:7001,2=127.0.0.1:7002".
StatusOr<std::map<uint64_t, std::string>> ParseMemberList(
    const std::string& text);

}  // namespace raftkv::server
