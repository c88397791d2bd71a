// raftkv-bench's failover measurement (see bench_failover.h).
#include "tools/bench_failover.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "tools/local_cluster.h"

namespace raftkv::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a fault may stop every write before the round counts as not
// recovered.
constexpr auto kRecoveryTimeout = std::chrono::seconds(30);

double MsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// The client that writes all along: failover/N = N in a loop, remembering
// when each acknowledged write was issued and acknowledged.
class Writer {
 public:
  explicit Writer(Client* client) : client_(client) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Writer() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  // Waits until a write issued after `t` is acknowledged (at most
  // `timeout`). Returns the acknowledgement of the first write acknowledged
  // after `t` and of the first write issued after `t`; time_point::max()
  // for what did not happen.
  std::pair<Clock::time_point, Clock::time_point> WaitForAcksAfter(
      Clock::time_point t, Clock::duration timeout) {
    Clock::time_point first = Clock::time_point::max();
    while (Clock::now() - t < timeout) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = std::upper_bound(acks_.begin(), acks_.end(), t);
        if (it != acks_.end()) first = *it;
        auto inv = std::upper_bound(invokes_.begin(), invokes_.end(), t);
        if (inv != invokes_.end()) {
          return {first, acks_[inv - invokes_.begin()]};
        }
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
    return {first, Clock::time_point::max()};
  }

  // After Stop().
  const std::map<std::string, std::string>& acked() const { return acked_; }
  const std::vector<Status>& errors() const { return errors_; }

 private:
  void Loop() {
    for (uint64_t i = 0; !stop_; ++i) {
      const std::string key = "failover/" + std::to_string(i);
      const auto invoked = Clock::now();
      auto r = client_->Put(key, std::to_string(i));
      std::lock_guard<std::mutex> lock(mu_);
      if (r.ok()) {
        acks_.push_back(Clock::now());
        invokes_.push_back(invoked);
        acked_[key] = std::to_string(i);
      } else {
        errors_.push_back(r.status());
      }
    }
  }

  Client* const client_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Clock::time_point> acks_;     // in order
  std::vector<Clock::time_point> invokes_;  // of the write acked at acks_[i]
  std::map<std::string, std::string> acked_;
  std::vector<Status> errors_;
  std::thread thread_;
};

// The cluster, and the fault's two halves.
class Rig {
 public:
  Rig(const FailoverOptions& o)
      : kind_(o.fault), cluster_(o.nodes, o.server_flags) {}

  LocalCluster& cluster() { return cluster_; }
  void Inject(int victim) {
    if (kind_ == FaultKind::kKill) {
      cluster_.Kill(victim);
    } else {
      cluster_.Pause(victim);
    }
  }
  // Undoes it (restart, resume).
  void Undo(int victim) {
    if (kind_ == FaultKind::kKill) {
      cluster_.Start(victim);
    } else {
      cluster_.Resume(victim);
    }
  }

 private:
  FaultKind kind_;
  LocalCluster cluster_;
};

// One fault: inject, measure, undo.
FaultRecord OneFault(Rig& rig, int victim, Writer& writer) {
  FaultRecord record;
  record.victim = victim;
  const auto fault_at = Clock::now();
  rig.Inject(victim);
  const auto [first, strict] =
      writer.WaitForAcksAfter(fault_at, kRecoveryTimeout);
  record.recovered = strict != Clock::time_point::max();
  if (record.recovered) {
    record.first_ack_ms = MsBetween(fault_at, first);
    record.strict_ms = MsBetween(fault_at, strict);
  }
  rig.Undo(victim);
  return record;
}

}  // namespace

StatusOr<FaultKind> ParseFaultKind(const std::string& name) {
  if (name == "kill") return FaultKind::kKill;
  if (name == "pause") return FaultKind::kPause;
  return Status::InvalidArgument("--fault must be kill or pause");
}

const char* FaultName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKill:
      return "kill";
    case FaultKind::kPause:
      return "pause";
  }
  return "?";
}

StatusOr<FailoverResult> RunFailover(
    const FailoverOptions& options,
    const std::function<void(uint32_t index, const FaultRecord&)>& on_fault) {
  Rig rig(options);
  LocalCluster& cluster = rig.cluster();
  if (cluster.WaitForLeader() == 0) {
    return Status::Unavailable("no leader elected");
  }
  ClientOptions client_options = cluster.client_options();
  client_options.deadline = std::chrono::seconds(30);
  auto client = Client::Create(client_options);
  if (!client.ok()) return client.status();
  auto observer = cluster.NewClient(milliseconds(2000));

  FailoverResult result;
  Writer writer(client->get());
  for (uint32_t k = 0; k < options.faults; ++k) {
    std::this_thread::sleep_for(options.fault_interval);
    auto leader = observer->Leader();
    if (!leader.ok()) {
      std::fprintf(stderr, "fault %u: no leader: %s\n", k + 1,
                   leader.status().ToString().c_str());
      continue;
    }
    const FaultRecord record =
        OneFault(rig, static_cast<int>(leader->first), writer);
    result.faults.push_back(record);
    if (on_fault) on_fault(k, record);
  }
  std::this_thread::sleep_for(milliseconds(500));
  writer.Stop();

  result.errors = writer.errors();
  result.acked_writes = writer.acked().size();
  for (const auto& [key, value] : writer.acked()) {
    auto r = observer->Get(key);
    if (!r.ok() || r->value != value) ++result.lost_writes;
  }
  return result;
}

}  // namespace raftkv::bench
