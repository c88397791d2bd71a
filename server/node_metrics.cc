// Registration of raftkvd's metrics (see node_metrics.h).
#include "server/node_metrics.h"

namespace raftkv::server {
namespace {

constexpr const char* kOps[] = {"put",    "delete", "txn",     "range",
                                "status", "other",  "register"};

}  // namespace

NodeMetrics::NodeMetrics(MetricsRegistry* r)
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
      rejoining(r->AddGauge("raftkv_rejoining",
                            "1 while this node rejoins after a lost disk.")),
      last_tick_seconds(r->AddGauge(
          "raftkv_loop_last_tick_seconds",
          "When the event loop last ran its tick (monotonic clock).")),
      leader_changes(r->AddCounter("raftkv_raft_leader_changes_total",
                                   "Leaders this node has seen elected.")),
      loop_lateness(r->AddHistogram(
          "raftkv_loop_tick_lateness_seconds",
          "How late the event loop ran its tick timer.", LatencyBuckets())),
      log_write(r->AddHistogram(
          "raftkv_log_write_duration_seconds",
          "Duration of a group-committed Raft log write, with its fsync.",
          LatencyBuckets())),
      snapshots_sent_ok(r->AddCounter("raftkv_snapshots_sent_total",
                                      "Snapshots streamed to followers.",
                                      {{"outcome", "ok"}})),
      snapshots_sent_failed(r->AddCounter("raftkv_snapshots_sent_total",
                                          "Snapshots streamed to followers.",
                                          {{"outcome", "failed"}})),
      snapshots_installed(
          r->AddCounter("raftkv_snapshots_installed_total",
                        "Snapshots received from a leader and installed.")),
      rocksdb_memory_bytes(
          r->AddGauge("raftkv_rocksdb_memory_bytes",
                      "RocksDB block cache usage, memtables included.")) {
  for (const char* op : kOps) {
    Requests& q = requests[op];
    q.ok = r->AddCounter("raftkv_client_requests_total",
                         "Client requests answered, by operation and outcome.",
                         {{"op", op}, {"outcome", "ok"}});
    q.failed =
        r->AddCounter("raftkv_client_requests_total",
                      "Client requests answered, by operation and outcome.",
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
