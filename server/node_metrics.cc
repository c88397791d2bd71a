// Registration of raftkvd's metrics (see node_metrics.h).
#include "server/node_metrics.h"

namespace raftkv::server {
namespace {

// One help text per family, whatever its labels.
constexpr const char* kProposalsHelp =
    "Writes this node proposed as leader, by how they ended.";
constexpr const char* kSnapshotsSentHelp = "Snapshots streamed to followers.";
constexpr const char* kRequestsHelp =
    "Client requests answered, by operation and outcome.";

constexpr const char* kOps[] = {"put",     "delete", "txn",       "range",
                                "status",  "other",  "register",  "member",
                                "compact", "lease",  "keepalive", "watch"};

}  // namespace

NodeMetrics::NodeMetrics(MetricsRegistry* r, uint64_t self,
                         const std::map<uint64_t, std::string>& peer_addresses)
    : term(r->AddGauge("raftkv_raft_term", "The current Raft term.")),
      is_leader(r->AddGauge("raftkv_raft_is_leader",
                            "1 if this node is the leader, else 0.")),
      leader_id(r->AddGauge("raftkv_raft_leader_id",
                            "The leader this node knows (0: none).")),
      commit_index(
          r->AddGauge("raftkv_raft_commit_index", "The commit index known.")),
      applied_index(r->AddGauge("raftkv_raft_applied_index",
                                "The index the state machine has applied.")),
      log_cache_bytes(r->AddGauge("raftkv_log_memory_bytes",
                                  "Bytes of Raft log held in memory.")),
      apply_backlog_full(r->AddGauge(
          "raftkv_apply_backlog_full",
          "1 while this node holds back new entries because too many "
          "committed ones are not applied yet.")),
      apply_backlog_episodes(r->AddCounter(
          "raftkv_apply_backlog_episodes_total",
          "Times this node started holding back new entries for its "
          "apply backlog.")),
      writes_held_back(r->AddCounter(
          "raftkv_writes_held_back_total",
          "Client writes a leader held back until its apply backlog "
          "drained.")),
      rejoining(r->AddGauge("raftkv_rejoining",
                            "1 while this node rejoins after a lost disk.")),
      last_tick_seconds(r->AddGauge(
          "raftkv_loop_last_tick_seconds",
          "When the event loop last ran its tick (monotonic clock).")),
      loop_rt_priority(r->AddGauge(
          "raftkv_loop_realtime_priority",
          "The real-time priority the event loop is raised to while its "
          "tick is overdue (0: it is never raised).")),
      loop_raises(r->AddCounter(
          "raftkv_loop_realtime_raises_total",
          "Times the event loop was raised to real-time priority because "
          "its tick was overdue.")),
      leader_changes(r->AddCounter("raftkv_raft_leader_changes_total",
                                   "Leaders this node has seen elected.")),
      loop_lateness(r->AddHistogram(
          "raftkv_loop_tick_lateness_seconds",
          "How late the event loop ran its tick timer.", LatencyBuckets())),
      log_write(r->AddHistogram(
          "raftkv_log_write_duration_seconds",
          "Duration of a group-committed Raft log write, with its fsync.",
          LatencyBuckets())),
      apply(r->AddHistogram("raftkv_apply_duration_seconds",
                            "Duration of one batch of committed entries "
                            "written to the state machine.",
                            LatencyBuckets())),
      proposal(r->AddHistogram(
          "raftkv_proposal_duration_seconds",
          "From a write's proposal by this leader to its entry applied here "
          "(replication, commit and apply).",
          LatencyBuckets())),
      proposals_applied(r->AddCounter("raftkv_proposals_total", kProposalsHelp,
                                      {{"outcome", "applied"}})),
      proposals_lost(r->AddCounter("raftkv_proposals_total", kProposalsHelp,
                                   {{"outcome", "lost"}})),
      proposals_timed_out(r->AddCounter("raftkv_proposals_total",
                                        kProposalsHelp,
                                        {{"outcome", "timed_out"}})),
      write_retries_joined(r->AddCounter(
          "raftkv_write_retries_joined_total",
          "Client retries of a write still unanswered here that joined it "
          "instead of being proposed again.")),
      proposals_pending(
          r->AddGauge("raftkv_proposals_pending",
                      "Writes proposed by this leader and not applied yet.")),
      snapshots_sent_ok(r->AddCounter("raftkv_snapshots_sent_total",
                                      kSnapshotsSentHelp, {{"outcome", "ok"}})),
      snapshots_sent_failed(r->AddCounter("raftkv_snapshots_sent_total",
                                          kSnapshotsSentHelp,
                                          {{"outcome", "failed"}})),
      snapshots_installed(
          r->AddCounter("raftkv_snapshots_installed_total",
                        "Snapshots received from a leader and installed.")),
      revision(r->AddGauge("raftkv_revision",
                           "The store revision this node has applied.")),
      compacted_revision(
          r->AddGauge("raftkv_compacted_revision",
                      "History at and below this revision is forgotten.")),
      watches(r->AddGauge("raftkv_watches", "Watches open on this node.")),
      watch_slow_cancellations(r->AddCounter(
          "raftkv_watch_slow_cancellations_total",
          "Watches cancelled (to resume) because their connection had too "
          "much unsent.")),
      leases(r->AddGauge("raftkv_leases",
                         "Leases this node keeps as the leader (0 on "
                         "followers).")),
      rocksdb_memory_bytes(
          r->AddGauge("raftkv_rocksdb_memory_bytes",
                      "RocksDB block cache usage, memtables included.")) {
  for (const auto& [id, address] : peer_addresses) {
    if (id == self) continue;
    peer_round_trip[id] =
        r->AddHistogram("raftkv_peer_round_trip_seconds",
                        "From a heartbeat sent to a peer to its answer.",
                        LatencyBuckets(), {{"peer", std::to_string(id)}});
  }
  for (const char* op : kOps) {
    Requests& q = requests[op];
    q.ok = r->AddCounter("raftkv_client_requests_total", kRequestsHelp,
                         {{"op", op}, {"outcome", "ok"}});
    q.failed = r->AddCounter("raftkv_client_requests_total", kRequestsHelp,
                             {{"op", op}, {"outcome", "error"}});
    q.latency = r->AddHistogram(
        "raftkv_client_request_duration_seconds",
        "Time from a request's arrival to its answer, by operation.",
        LatencyBuckets(), {{"op", op}});
  }
}

NodeMetrics::Requests& NodeMetrics::RequestsFor(const std::string& op) {
  auto it = requests.find(op);
  return it != requests.end() ? it->second : requests.at("other");
}

}  // namespace raftkv::server
