// Failover, as raftkv-bench measures it (`raftkv-bench failover`): a client
// writes in a loop while a fault hits the leader, `faults` times, and per
// fault the time from the fault to the first acknowledged write (of any
// write, and of the first write issued after the fault) is recorded; at the
// end every acknowledged write must be readable. The faults:
//
//   kill       SIGKILL; the node is restarted once a write issued after
//              the kill was acknowledged.
//   pause      SIGSTOP; resumed at the same point.
//
// The cluster is a LocalCluster started here.
//
// Must never signal a process it did not start, or return with a fault in
// place: the cluster is killed (paused nodes included) on every return,
// and if this process dies.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/status.h"

namespace raftkv::bench {

enum class FaultKind { kKill, kPause };

// "kill", "pause"; InvalidArgument otherwise.
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

// One fault, as measured. Times are from the moment the fault was
// requested.
struct FaultRecord {
  int victim = 0;  // the leader hit
  // Whether a write issued after the fault was acknowledged within 30 s;
  // the two times below are meaningful only then.
  bool recovered = false;
  double first_ack_ms = 0;  // first write acknowledged after the fault
  double strict_ms = 0;     // first ack of a write issued after it
};

struct FailoverResult {
  std::vector<FaultRecord> faults;  // the faults injected
  std::vector<Status> errors;       // of the writing client
  size_t acked_writes = 0;
  size_t lost_writes = 0;  // acknowledged but not readable at the end
};

// Runs the measurement. An error when the cluster does not come up.
// `on_fault` is called after each fault's measurement and recovery.
StatusOr<FailoverResult> RunFailover(
    const FailoverOptions& options,
    const std::function<void(uint32_t index, const FaultRecord&)>& on_fault);

}  // namespace raftkv::bench
