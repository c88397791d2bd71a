// raftkv-bench's failover measurement (see bench_failover.h).
#include "tools/bench_failover.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "fault/firewall.h"
#include "fault/netns.h"
#include "fault/subprocess.h"
#include "tools/local_cluster.h"

namespace raftkv::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a fault may stop every write before the round counts as not
// recovered, and how long the cluster may take to settle after healing.
constexpr auto kRecoveryTimeout = std::chrono::seconds(30);
constexpr auto kSettleTimeout = std::chrono::seconds(10);
// Partitions: the firewall chain, and node N's group (first_gid + N).
constexpr const char* kChain = "RAFTKV_BENCH";
constexpr gid_t kFirstGid = 61000;

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

// The cluster and what a fault kind needs around it. Members are destroyed
// in reverse order: the nodes first, then the rules, then the namespace.
class Rig {
 public:
  static StatusOr<std::unique_ptr<Rig>> Create(const FailoverOptions& o);

  LocalCluster& cluster() { return *cluster_; }
  // Injects the fault into node `victim`; `fault_at` is when it took
  // effect, and for a partition `apply_ms` how long installing the rules
  // took before that.
  Status Inject(int victim, Clock::time_point* fault_at, double* apply_ms);
  // Undoes it (restart, resume, heal).
  Status Undo(int victim);

 private:
  explicit Rig(FaultKind kind) : kind_(kind) {}
  Status EnterPrivateNetwork();

  FaultKind kind_;
  std::unique_ptr<fault::PrivateNetwork> network_;
  std::unique_ptr<fault::Firewall> firewall_;
  std::unique_ptr<LocalCluster> cluster_;
};

// Everything a partition needs, checked before anything is started; then
// the namespace and the firewall. A trial isolation proves that the kernel
// takes the rules (the owner match, for one) before a node runs.
Status Rig::EnterPrivateNetwork() {
  if (::geteuid() != 0) {
    return Status::FailedPrecondition(
        "--fault=partition needs root: it runs the cluster in a private "
        "network namespace and cuts the leader off with iptables rules "
        "inside it (--fault=kill and --fault=pause need no root)");
  }
  for (const char* program : {"ip", "iptables", "iptables-restore"}) {
    auto found = fault::FindProgram(program);
    if (!found.ok()) {
      return Status::FailedPrecondition(
          "--fault=partition needs " + std::string(program) +
          " (apt-get install iptables iproute2): " + found.status().message());
    }
  }
  auto network = fault::PrivateNetwork::Enter();
  if (!network.ok()) {
    return Status::FailedPrecondition(
        "--fault=partition: no private network namespace: " +
        network.status().ToString());
  }
  network_ = std::move(network).value();
  auto firewall = fault::Firewall::Install(*network_, kChain);
  if (!firewall.ok()) {
    return Status::FailedPrecondition("--fault=partition: cannot install " +
                                      std::string(kChain) + ": " +
                                      firewall.status().ToString());
  }
  firewall_ = std::move(firewall).value();
  Status trial =
      firewall_->Apply(fault::Isolation(fault::NodeAddress(1), kFirstGid + 1));
  if (trial.ok()) trial = firewall_->Heal();
  if (!trial.ok()) {
    return Status::FailedPrecondition(
        "--fault=partition: the kernel refused the isolation rules: " +
        trial.ToString());
  }
  return Status::OK();
}

StatusOr<std::unique_ptr<Rig>> Rig::Create(const FailoverOptions& o) {
  std::unique_ptr<Rig> rig(new Rig(o.fault));
  LocalClusterOptions cluster;
  cluster.nodes = o.nodes;
  cluster.extra_flags = o.server_flags;
  if (o.fault == FaultKind::kPartition) {
    RAFTKV_RETURN_IF_ERROR(rig->EnterPrivateNetwork());
    cluster.own_addresses = true;
    cluster.first_gid = kFirstGid;
  }
  rig->cluster_ = std::make_unique<LocalCluster>(cluster);
  return rig;
}

Status Rig::Inject(int victim, Clock::time_point* fault_at, double* apply_ms) {
  *fault_at = Clock::now();
  switch (kind_) {
    case FaultKind::kKill:
      cluster_->Kill(victim);
      return Status::OK();
    case FaultKind::kPause:
      cluster_->Pause(victim);
      return Status::OK();
    case FaultKind::kPartition: {
      // Writes issued while iptables-restore runs (tens of ms here) still
      // reach the old leader: the fault begins when the rules are in.
      const auto start = *fault_at;
      RAFTKV_RETURN_IF_ERROR(firewall_->Apply(
          fault::Isolation(cluster_->host(victim), cluster_->gid(victim))));
      *fault_at = firewall_->applied_at();
      *apply_ms = MsBetween(start, *fault_at);
      return Status::OK();
    }
  }
  return Status::InvalidArgument("unknown fault");
}

Status Rig::Undo(int victim) {
  switch (kind_) {
    case FaultKind::kKill:
      cluster_->Start(victim);
      return Status::OK();
    case FaultKind::kPause:
      cluster_->Resume(victim);
      return Status::OK();
    case FaultKind::kPartition:
      return firewall_->Heal();
  }
  return Status::InvalidArgument("unknown fault");
}

// One fault: inject, measure, undo (and, for a partition, settle).
StatusOr<FaultRecord> OneFault(Rig& rig, FaultKind kind, int victim,
                               Writer& writer) {
  FaultRecord record;
  record.victim = victim;
  Clock::time_point fault_at;
  RAFTKV_RETURN_IF_ERROR(rig.Inject(victim, &fault_at, &record.apply_ms));
  const auto [first, strict] =
      writer.WaitForAcksAfter(fault_at, kRecoveryTimeout);
  record.recovered = strict != Clock::time_point::max();
  if (record.recovered) {
    record.first_ack_ms = MsBetween(fault_at, first);
    record.strict_ms = MsBetween(fault_at, strict);
  }
  RAFTKV_RETURN_IF_ERROR(rig.Undo(victim));
  if (kind == FaultKind::kPartition) {
    const auto healed_at = Clock::now();
    record.new_leader = rig.cluster().WaitForLeader(kSettleTimeout);
    record.settle_ms = MsBetween(healed_at, Clock::now());
  }
  return record;
}

}  // namespace

StatusOr<FaultKind> ParseFaultKind(const std::string& name) {
  if (name == "kill") return FaultKind::kKill;
  if (name == "pause") return FaultKind::kPause;
  if (name == "partition") return FaultKind::kPartition;
  return Status::InvalidArgument("--fault must be kill, pause or partition");
}

const char* FaultName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKill:
      return "kill";
    case FaultKind::kPause:
      return "pause";
    case FaultKind::kPartition:
      return "partition";
  }
  return "?";
}

StatusOr<FailoverResult> RunFailover(
    const FailoverOptions& options,
    const std::function<void(uint32_t index, const FaultRecord&)>& on_fault) {
  auto created = Rig::Create(options);
  if (!created.ok()) return created.status();
  Rig& rig = **created;
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
    auto record =
        OneFault(rig, options.fault, static_cast<int>(leader->first), writer);
    if (!record.ok()) return record.status();
    result.faults.push_back(*record);
    if (on_fault) on_fault(k, *record);
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
