// Failover, as raftkv-bench measures it (`raftkv-bench failover`): a client
// writes in a loop while a fault hits the leader, `faults` times, and per
// fault the time from the fault to the first acknowledged write (of any
// write, and of the first write issued after the fault) is recorded; at the
// end every acknowledged write must be readable. The faults:
//
//   kill       SIGKILL; the node is restarted once a write issued after
//              the kill was acknowledged.
//   pause      SIGSTOP; resumed at the same point.
//   partition  the leader is cut off from its peers and from the clients
//              (fault::Isolation); healed at the same point, then the
//              cluster must settle: every node, the old leader included,
//              follows one leader.
//
// The cluster is a LocalCluster started here. For partitions this process
// first enters a private network namespace (fault/netns.h) that its nodes,
// its clients and its firewall chain RAFTKV_BENCH share; node N listens on
// 127.0.0.(10+N) and runs with group 61000+N, so that a rule can single
// out its address and what its process sends.
//
// Must never signal a process it did not start, touch a firewall outside
// its own namespace, or return with a fault in place: the cluster is killed
// (paused nodes included) and the rules removed on every return, and both
// vanish with this process if it dies.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/status.h"

namespace raftkv::bench {

enum class FaultKind { kKill, kPause, kPartition };

// "kill", "pause", "partition"; InvalidArgument otherwise.
StatusOr<FaultKind> ParseFaultKind(const std::string& name);
const char* FaultName(FaultKind kind);

struct FailoverOptions {
  FaultKind fault = FaultKind::kKill;
  uint32_t faults = 20;
  // From the end of one fault's recovery to the next fault.
  std::chrono::milliseconds fault_interval{1500};
  int nodes = 3;
  std::vector<std::string> server_flags;  // for every raftkvd
};

// One fault, as measured. Times are from the moment the fault took effect
// (for a partition: when iptables-restore returned, its rules in place).
struct FaultRecord {
  int victim = 0;  // the leader hit
  // Whether a write issued after the fault was acknowledged within 30 s;
  // the two times below are meaningful only then.
  bool recovered = false;
  double first_ack_ms = 0;  // first write acknowledged after the fault
  double strict_ms = 0;     // first ack of a write issued after it
  // Partitions only: the time iptables took to install the rules (before
  // the fault took effect, so not in the times above); the leader every
  // node followed after healing (0: they did not agree within 10 s) and
  // how long that took.
  double apply_ms = 0;
  int new_leader = 0;
  double settle_ms = 0;
};

struct FailoverResult {
  std::vector<FaultRecord> faults;  // the faults injected
  std::vector<Status> errors;       // of the writing client
  size_t acked_writes = 0;
  size_t lost_writes = 0;  // acknowledged but not readable at the end
};

// Runs the measurement. Call from the main thread before any other thread
// was started: a partition run enters a network namespace, which applies
// to the calling thread only. FailedPrecondition when the fault cannot be
// injected here (a partition needs root and iptables), before anything
// was started; other errors when the cluster does not come up.
// `on_fault` is called after each fault's measurement and recovery.
StatusOr<FailoverResult> RunFailover(
    const FailoverOptions& options,
    const std::function<void(uint32_t index, const FaultRecord&)>& on_fault);

}  // namespace raftkv::bench
