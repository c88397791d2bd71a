// BenchEtcd: raftkv-bench's closed-loop put and range load driven through
// etcd's v3 API over gRPC (`raftkv-bench --api=etcd`), against raftkvd's
// --listen_etcd listeners or a real etcd, so that one workload can be
// measured through both front doors and against etcd itself.
//
// As etcd's benchmark tool: `conns` gRPC connections, each to one endpoint
// in turn (or all to the leader with target_leader), shared by `clients`
// logical clients with one request each in flight. A put is KV.Put, a
// range KV.Range (serializable as asked; linearizable by default). gRPC's
// callback API carries the requests, so 256 clients need no 256 threads.
// Keys, values and the reporting are those of the native load
// (tools/bench_load.h).
//
// Must never: count a failed request as done work, count an answer whose
// header carries no revision as an acknowledged put, or leave a callback
// running after RunEtcdClosedLoop returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/bench_load.h"
#include "util/status.h"

namespace raftkv::bench {

struct EtcdLoadOptions {
  std::vector<std::string> endpoints;  // HOST:PORT of etcd-API listeners
  uint32_t conns = 1;
  // Every connection to the member that leads (Maintenance.Status), as
  // etcd's --target-leader; otherwise connection i goes to endpoint
  // i % endpoints.size().
  bool target_leader = false;
  std::chrono::milliseconds deadline = std::chrono::seconds(30);
};

struct EtcdLoadResult {
  LoadResult load;
  // Puts: distinct revisions in the acknowledgements (every acknowledged
  // put made a revision of its own, so this equals the puts acknowledged).
  uint64_t distinct_revisions = 0;
  std::vector<std::string> conn_endpoints;  // the endpoint of each connection
};

// Maintenance.Status of every endpoint: the endpoint of the member that
// says it is the leader.
StatusOr<std::string> EtcdLeaderEndpoint(
    const std::vector<std::string>& endpoints);

// The highest raft term any endpoint reports (0 if none answers).
uint64_t EtcdMaxTerm(const std::vector<std::string>& endpoints);

// Writes `value` to `key` once through the first endpoint that accepts it
// (the key a range load reads).
Status EtcdPutOnce(const std::vector<std::string>& endpoints,
                   const std::string& key, const std::string& value);

// Runs `load` (Op::kPut or Op::kRange) through etcd's API.
StatusOr<EtcdLoadResult> RunEtcdClosedLoop(const EtcdLoadOptions& options,
                                           const LoadOptions& load,
                                           const ProgressFn& progress);

}  // namespace raftkv::bench
