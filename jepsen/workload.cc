// Client workers of raftkv-jepsen: register and set workloads, with every
// operation recorded. Must never record an outcome more certain than the
// client's answer (an unknown write is info, never fail).
#include "jepsen/workload.h"

#include <cstdio>
#include <iostream>
#include <random>

#include "jepsen/lease_workload.h"
#include "jepsen/watch_workload.h"

namespace raftkv::jepsen {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kSetBuckets = 16;
constexpr const char* kSetName = "set";

std::string SetBucketPrefix(int bucket) {
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "s/%x/", bucket);
  return buffer;
}

// Errors after which the request certainly had no effect.
bool DefinitelyNotApplied(const Status& s) {
  return s.code() == Status::Code::kInvalidArgument ||
         s.code() == Status::Code::kTooLarge;
}

}  // namespace

Status ValidateWorkload(const WorkloadOptions& o) {
  if (o.name != "register" && o.name != "set" && o.name != "watch" &&
      o.name != "lease") {
    return Status::InvalidArgument(
        "--workload must be register, set, watch or lease");
  }
  if (o.name == "watch" && (o.watchers < 1 || o.watchers > 32)) {
    return Status::InvalidArgument("--watchers must be in [1, 32]");
  }
  if (o.name == "lease" && (o.lease_ttl_s < 1 || o.lease_ttl_s > 60 ||
                            o.lockers < 0 || o.lockers >= o.concurrency)) {
    return Status::InvalidArgument(
        "--lease_ttl_s must be in [1, 60] and --lockers in [0, "
        "concurrency)");
  }
  if (o.concurrency < 1 || o.concurrency > 1000) {
    return Status::InvalidArgument("--concurrency must be in [1, 1000]");
  }
  if (!(o.rate > 0) || o.rate > 100000) {
    return Status::InvalidArgument("--rate must be in (0, 100000]");
  }
  if (o.active_keys < 1 || !(o.key_period_s > 0)) {
    return Status::InvalidArgument("bad key window");
  }
  return Status::OK();
}

std::unique_ptr<ClientWorkload> MakeWorkload(WorkloadOptions options,
                                             Recorder* recorder) {
  if (options.name == "watch") {
    return std::make_unique<WatchWorkload>(std::move(options), recorder);
  }
  if (options.name == "lease") {
    return std::make_unique<LeaseWorkload>(std::move(options), recorder);
  }
  return std::make_unique<Workload>(std::move(options), recorder);
}

Workload::Workload(WorkloadOptions options, Recorder* recorder)
    : options_(std::move(options)),
      recorder_(recorder),
      endpoints_(options_.endpoints) {}

Workload::~Workload() { Stop(); }

Status Workload::Start() {
  RAFTKV_RETURN_IF_ERROR(ValidateWorkload(options_));
  if (endpoints().empty()) return Status::InvalidArgument("no endpoints");
  max_process_ = options_.concurrency - 1;
  for (int i = 0; i < options_.concurrency; ++i) {
    threads_.emplace_back([this, i] { Worker(i); });
  }
  return Status::OK();
}

void Workload::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool Workload::SleepUntil(Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, until, [this] { return stopping_; });
  return !stopping_;
}

StatusOr<std::unique_ptr<Client>> NewWorkloadClient(
    std::vector<std::string> endpoints, std::chrono::milliseconds op_timeout,
    std::chrono::milliseconds attempt_timeout, uint64_t seed) {
  ClientOptions o;
  o.endpoints = std::move(endpoints);
  o.deadline = op_timeout;
  o.attempt_timeout = attempt_timeout;
  o.seed = seed;
  return Client::Create(o);
}

StatusOr<std::unique_ptr<Client>> Workload::NewClient(
    std::vector<std::string> endpoints, uint64_t seed) const {
  return NewWorkloadClient(std::move(endpoints), options_.op_timeout,
                           options_.attempt_timeout, seed);
}

void Workload::Observed(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  last_seen_[key] = value;
}

std::optional<std::string> Workload::LastSeen(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_seen_.find(key);
  if (it == last_seen_.end()) return std::nullopt;
  return it->second;
}

Workload::Op Workload::NextOp(std::mt19937_64& rng) {
  Op op;
  const int64_t v = next_value_.fetch_add(1);
  if (options_.name == "set") {
    op.f = "add";
    op.key = kSetName;
    op.value = std::to_string(v);
    return op;
  }
  const int64_t base =
      static_cast<int64_t>(recorder_->elapsed_s() / options_.key_period_s);
  op.key = "r" + std::to_string(
                     base + static_cast<int64_t>(rng() % options_.active_keys));
  switch (rng() % 3) {
    case 0:
      op.f = "read";
      return op;
    case 1:
      break;
    default:
      if (auto expected = LastSeen(op.key)) {
        op.f = "cas";
        op.value = *expected;
        op.value2 = std::to_string(v);
        return op;
      }
      break;
  }
  op.f = "write";
  op.value = std::to_string(v);
  return op;
}

void Workload::SetEndpoints(std::vector<std::string> endpoints) {
  if (endpoints.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  endpoints_ = std::move(endpoints);
  ++endpoints_version_;
}

std::vector<std::string> Workload::endpoints() {
  std::lock_guard<std::mutex> lock(mu_);
  return endpoints_;
}

StatusOr<Workload::ProcessClients> Workload::NewProcess(int64_t process,
                                                        uint64_t seed,
                                                        uint64_t* version) {
  std::vector<std::string> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all = endpoints_;
    *version = endpoints_version_;
  }
  const std::string& home = all[static_cast<size_t>(process) % all.size()];
  auto reads = NewClient({home}, seed);
  if (!reads.ok()) return reads.status();
  auto writes = NewClient(all, seed + 1);
  if (!writes.ok()) return writes.status();
  return ProcessClients{std::move(reads).value(), std::move(writes).value()};
}

bool Workload::Execute(ProcessClients& clients, int64_t process, const Op& op) {
  Client& client = *clients.writes;
  recorder_->Record(process, EventType::kInvoke, op.f, op.key, op.value,
                    op.value2);
  auto done = [&](EventType type, std::optional<std::string> value,
                  std::optional<std::string> value2) {
    recorder_->Record(process, type, op.f, op.key, std::move(value),
                      std::move(value2));
    return type != EventType::kInfo;
  };
  // Unknown unless the error says the request was refused.
  auto failed_write = [&](const Status& s) {
    return done(DefinitelyNotApplied(s) ? EventType::kFail : EventType::kInfo,
                op.value, op.value2);
  };
  if (op.f == "read") {
    auto r = clients.reads->Get(op.key);
    if (r.ok()) {
      Observed(op.key, r->value);
      return done(EventType::kOk, r->value, std::nullopt);
    }
    if (r.status().IsNotFound()) {
      return done(EventType::kOk, std::nullopt, std::nullopt);
    }
    return done(EventType::kFail, std::nullopt, std::nullopt);
  }
  if (op.f == "write") {
    auto r = client.Put(op.key, *op.value);
    if (!r.ok()) return failed_write(r.status());
    Observed(op.key, *op.value);
    return done(EventType::kOk, op.value, std::nullopt);
  }
  if (op.f == "cas") {
    auto r = client.CompareAndSwap(op.key, *op.value, *op.value2);
    // A cas recorded as fail tells the checker its comparison failed
    // (cas_fail_means_mismatch); a refused cas says nothing of the sort, so
    // every error is info: no more certain than the client's answer.
    if (!r.ok()) return done(EventType::kInfo, op.value, op.value2);
    if (*r) Observed(op.key, *op.value2);
    return done(*r ? EventType::kOk : EventType::kFail, op.value, op.value2);
  }
  // add
  const int64_t e = std::stoll(*op.value);
  auto r =
      client.Put(SetBucketPrefix(static_cast<int>(e % kSetBuckets)) + *op.value,
                 *op.value);
  if (!r.ok()) return failed_write(r.status());
  return done(EventType::kOk, op.value, std::nullopt);
}

void Workload::Worker(int index) {
  std::mt19937_64 rng(options_.seed * 1000003 + index);
  int64_t process = index;
  uint64_t version = 0;
  auto clients = NewProcess(process, rng(), &version);
  const double mean_gap_s = options_.concurrency / options_.rate;
  std::uniform_real_distribution<double> gap(0, 2 * mean_gap_s);
  auto next = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(gap(rng)));
  for (int64_t i = 0; i < options_.max_ops_per_worker; ++i) {
    if (!SleepUntil(next)) return;
    if (!clients.ok()) {
      // Cannot happen with valid endpoints; stop rather than spin.
      std::cerr << "raftkv-jepsen: worker " << index
                << " cannot make a client: " << clients.status().ToString()
                << std::endl;
      return;
    }
    if (version != endpoints_version_) {
      // The membership changed: same process, Clients over the new members.
      clients = NewProcess(process, rng(), &version);
      continue;
    }
    const Op op = NextOp(rng);
    if (!Execute(clients.value(), process, op)) {
      process = max_process_.fetch_add(1) + 1;
      clients = NewProcess(process, rng(), &version);
    }
    next = std::max(next, Clock::now() - std::chrono::seconds(1)) +
           std::chrono::duration_cast<Clock::duration>(
               std::chrono::duration<double>(gap(rng)));
  }
}

Status Workload::FinalRead(std::chrono::milliseconds timeout) {
  if (options_.name != "set") return Status::OK();
  const int64_t process = max_process_.fetch_add(1) + 1;
  auto client = NewClient(endpoints(), options_.seed + 77);
  if (!client.ok()) return client.status();
  const auto until = Clock::now() + timeout;
  Status last = Status::Timeout("no attempt");
  for (int attempt = 0; attempt < 100 && Clock::now() < until; ++attempt) {
    recorder_->Record(process, EventType::kInvoke, "read", kSetName);
    std::string elements;
    last = Status::OK();
    for (int b = 0; b < kSetBuckets && last.ok(); ++b) {
      auto r = (*client)->GetPrefix(SetBucketPrefix(b));
      if (!r.ok()) {
        last = r.status();
        break;
      }
      if (r->more) {
        last = Status::Unavailable("prefix read truncated");
        break;
      }
      for (const KeyValue& kv : r->kvs) {
        elements += (elements.empty() ? "" : ",") + kv.value;
      }
    }
    if (last.ok()) {
      recorder_->Record(process, EventType::kOk, "read", kSetName, elements);
      return Status::OK();
    }
    recorder_->Record(process, EventType::kFail, "read", kSetName);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return Status::Unavailable("final read failed: " + last.ToString());
}

}  // namespace raftkv::jepsen
