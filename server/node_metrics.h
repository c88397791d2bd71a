// NodeMetrics: the figures raftkvd exports on GET /metrics, by the stage
// that owns each: the raft loop (term, leadership, indexes, the log in
// memory, the apply backlog, event-loop lateness, log-write latency,
// snapshot transfers, round trips to each peer, apply batches, proposals)
// and the client side (requests by operation and outcome, with their
// latency). Registered once at start-up.
//
// Must never: be read to make a decision (they are for people), or be
// written by a stage that does not own the figure.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "server/metrics.h"

namespace raftkv::server {

struct NodeMetrics {
  // `peer_addresses`: every node of the cluster by id, this one included.
  NodeMetrics(MetricsRegistry* registry, uint64_t self,
              const std::map<uint64_t, std::string>& peer_addresses);

  // Raft loop, refreshed every tick.
  Gauge* term;
  Gauge* is_leader;
  Gauge* leader_id;
  Gauge* commit_index;
  Gauge* applied_index;
  Gauge* log_cache_bytes;
  Gauge* apply_backlog_full;
  Counter* apply_backlog_episodes;  // times it became full
  Counter* writes_held_back;        // client writes it held back
  Gauge* rejoining;
  Gauge* last_tick_seconds;  // steady clock, for /livez
  Gauge* loop_rt_priority;   // 0: never raised
  Counter* loop_raises;      // to real-time, while its tick was overdue
  Counter* leader_changes;
  Histogram* loop_lateness;  // how late each tick ran, seconds
  Histogram* log_write;      // one group-committed log write, with its sync
  Histogram* apply;          // one applied batch's state machine write
  // Heartbeat to its answer, by peer (Raft's own traffic, both loops' time
  // included): what a leader's peers cost it in time.
  std::map<uint64_t, Histogram*> peer_round_trip;
  // The leader's proposals of client writes: from proposal to applied here,
  // and how they ended: applied, lost (another leader's entry took the
  // index), or timed out unanswered (their outcome unknown to the client).
  Histogram* proposal;
  Counter* proposals_applied;
  Counter* proposals_lost;
  Counter* proposals_timed_out;
  Counter* write_retries_joined;  // retries answered with the first try
  Gauge* proposals_pending;
  Counter* snapshots_sent_ok;
  Counter* snapshots_sent_failed;
  Counter* snapshots_installed;
  Gauge* revision;
  Gauge* compacted_revision;
  Gauge* watches;
  Counter* watch_slow_cancellations;
  Gauge* leases;

  // Client requests: by operation (put, delete, txn, range, status, ...).
  struct Requests {
    Counter* ok;
    Counter* failed;
    Histogram* latency;
  };
  std::map<std::string, Requests> requests;
  Requests& RequestsFor(const std::string& op);

  // Set when scraped (from the HTTP thread): RocksDB's block cache, which
  // holds the memtables too (storage::EngineOptions).
  Gauge* rocksdb_memory_bytes;
};

}  // namespace raftkv::server
