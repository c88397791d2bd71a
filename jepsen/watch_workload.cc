// The watch workload (see watch_workload.h): writers, watchers and the
// final read with its fence. Must never record an outcome more certain
// than the client's answer, nor an event a watch did not deliver.
#include "jepsen/watch_workload.h"

#include <algorithm>
#include <iostream>

#include "client/kv.pb.h"

namespace raftkv::jepsen {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kFinalPause = std::chrono::milliseconds(200);

Event MakeEvent(int64_t process, EventType type, const std::string& f,
                const std::string& key, std::optional<std::string> value,
                int64_t revision = 0) {
  Event e;
  e.process = process;
  e.type = type;
  e.f = f;
  e.key = key;
  e.value = std::move(value);
  e.revision = revision;
  return e;
}

// Errors after which the request certainly had no effect.
bool DefinitelyNotApplied(const Status& s) {
  return s.code() == Status::Code::kInvalidArgument ||
         s.code() == Status::Code::kTooLarge;
}

// "k1=v1,k2=v2", as watch_checker.h reads it.
std::string StateText(const std::vector<KeyValue>& kvs) {
  std::string text;
  for (const KeyValue& kv : kvs) {
    text += (text.empty() ? "" : ",") + kv.key + "=" + kv.value;
  }
  return text;
}

}  // namespace

WatchWorkload::WatchWorkload(WorkloadOptions options, Recorder* recorder)
    : options_(std::move(options)),
      recorder_(recorder),
      endpoints_(options_.endpoints) {}

WatchWorkload::~WatchWorkload() {
  Stop();
  for (auto& w : watchers_) {
    if (w->watcher) w->watcher->Cancel();
  }
}

StatusOr<std::unique_ptr<Client>> WatchWorkload::NewClient(
    std::vector<std::string> endpoints, uint64_t seed) const {
  return NewWorkloadClient(std::move(endpoints), options_.op_timeout,
                           options_.attempt_timeout, seed);
}

std::vector<std::string> WatchWorkload::endpoints() {
  std::lock_guard<std::mutex> lock(mu_);
  return endpoints_;
}

void WatchWorkload::SetEndpoints(std::vector<std::string> endpoints) {
  if (endpoints.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  endpoints_ = std::move(endpoints);
  ++endpoints_version_;
}

bool WatchWorkload::SleepUntil(Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, until, [this] { return stopping_; });
  return !stopping_;
}

Status WatchWorkload::Start() {
  RAFTKV_RETURN_IF_ERROR(ValidateWorkload(options_));
  const std::vector<std::string> all = endpoints();
  if (all.empty()) return Status::InvalidArgument("no endpoints");
  for (int i = 0; i < options_.watchers; ++i) {
    auto state = std::make_unique<WatcherState>();
    state->process = i;
    // The client starts at endpoint rng() % n of its list (seeded, see
    // client_impl.cc): the list is rotated so that this is node i mod n,
    // spreading the watchers over the nodes. Were that to change, a
    // watcher would merely start elsewhere.
    const uint64_t seed = options_.seed * 7919 + 101 + i;
    const size_t first = std::mt19937_64(seed)() % all.size();
    std::vector<std::string> rotated(all.size());
    for (size_t k = 0; k < all.size(); ++k) {
      rotated[(first + k) % all.size()] = all[(i + k) % all.size()];
    }
    auto client = NewClient(rotated, seed);
    if (!client.ok()) return client.status();
    state->client = std::move(client).value();
    watchers_.push_back(std::move(state));
  }
  for (auto& w : watchers_) {
    WatcherState* state = w.get();
    WatchOptions wo;
    wo.range_end = PrefixRangeEnd(kPrefix);
    wo.start_revision = 1;
    Event invoke = MakeEvent(state->process, EventType::kInvoke, "watch",
                             kPrefix, std::nullopt, wo.start_revision);
    recorder_->Record(std::move(invoke));
    state->watcher = state->client->Watch(
        kPrefix, wo, [this, state](StatusOr<WatchUpdate> update) {
          OnUpdate(state, std::move(update));
        });
  }
  max_process_ = options_.watchers + options_.concurrency - 1;
  for (int i = 0; i < options_.concurrency; ++i) {
    threads_.emplace_back([this, i] { Writer(i); });
  }
  return Status::OK();
}

void WatchWorkload::OnUpdate(WatcherState* state,
                             StatusOr<WatchUpdate> update) {
  if (!update.ok()) {
    // The watch ended by itself (compacted, refused): say so, once.
    if (state->ended.exchange(true)) return;
    recorder_->Record(MakeEvent(state->process, EventType::kInfo, "watch",
                                kPrefix, update.status().ToString(),
                                state->delivered));
    return;
  }
  state->delivered = std::max<int64_t>(state->delivered, update->revision);
  for (const WatchEvent& e : update->events) {
    const bool put = e.type == WatchEvent::Type::kPut;
    recorder_->Record(MakeEvent(
        state->process, EventType::kOk, "event", e.kv.key,
        put ? std::optional(e.kv.value) : std::nullopt, e.kv.mod_revision));
  }
}

void WatchWorkload::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

bool WatchWorkload::WriteOnce(Client& client, int64_t process,
                              std::mt19937_64& rng) {
  const std::string key =
      kPrefix + std::to_string(static_cast<int>(rng() % kKeys));
  if (rng() % 4 != 0) {
    const std::string value = std::to_string(next_value_.fetch_add(1));
    recorder_->Record(
        MakeEvent(process, EventType::kInvoke, "put", key, value));
    auto r = client.Put(key, value);
    if (r.ok()) {
      recorder_->Record(
          MakeEvent(process, EventType::kOk, "put", key, value, *r));
      return true;
    }
    const bool refused = DefinitelyNotApplied(r.status());
    recorder_->Record(MakeEvent(process,
                                refused ? EventType::kFail : EventType::kInfo,
                                "put", key, value));
    return refused;
  }
  recorder_->Record(
      MakeEvent(process, EventType::kInvoke, "delete", key, std::nullopt));
  kv::TxnRequest txn;
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  auto r = client.Txn(txn);
  if (r.ok() && r->responses_size() == 1) {
    const int64_t deleted = r->responses(0).response_delete_range().deleted();
    recorder_->Record(MakeEvent(process, EventType::kOk, "delete", key,
                                std::to_string(deleted),
                                r->header().revision()));
    return true;
  }
  const bool refused = !r.ok() && DefinitelyNotApplied(r.status());
  recorder_->Record(MakeEvent(process,
                              refused ? EventType::kFail : EventType::kInfo,
                              "delete", key, std::nullopt));
  return refused;
}

void WatchWorkload::Writer(int index) {
  std::mt19937_64 rng(options_.seed * 1000003 + 17 + index);
  int64_t process = options_.watchers + index;
  uint64_t version = endpoints_version_;
  auto client = NewClient(endpoints(), rng());
  const double mean_gap_s = options_.concurrency / options_.rate;
  std::uniform_real_distribution<double> gap(0, 2 * mean_gap_s);
  auto next = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(gap(rng)));
  for (int64_t i = 0; i < options_.max_ops_per_worker; ++i) {
    if (!SleepUntil(next)) return;
    if (!client.ok()) {
      std::cerr << "raftkv-jepsen: writer " << index
                << " cannot make a client: " << client.status().ToString()
                << std::endl;
      return;
    }
    if (version != endpoints_version_) {
      version = endpoints_version_;
      client = NewClient(endpoints(), rng());
      continue;
    }
    if (!WriteOnce(**client, process, rng)) {
      process = max_process_.fetch_add(1) + 1;
      version = endpoints_version_;
      client = NewClient(endpoints(), rng());
    }
    next = std::max(next, Clock::now() - std::chrono::seconds(1)) +
           std::chrono::duration_cast<Clock::duration>(
               std::chrono::duration<double>(gap(rng)));
  }
}

void WatchWorkload::EndWatchers() {
  for (auto& w : watchers_) {
    if (!w->watcher) continue;
    w->watcher->Cancel();  // no callback runs after this
    if (!w->ended.exchange(true)) {
      recorder_->Record(MakeEvent(w->process, EventType::kOk, "watch", kPrefix,
                                  std::nullopt, w->watcher->revision()));
    }
  }
}

Status WatchWorkload::FinalRead(std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  auto client = NewClient(endpoints(), options_.seed + 77);
  if (!client.ok()) {
    EndWatchers();
    return client.status();
  }
  int64_t process = max_process_.fetch_add(1) + 1;
  Status last = Status::Timeout("no attempt");
  bool read = false;
  for (int attempt = 0; attempt < 100 && Clock::now() < until; ++attempt) {
    recorder_->Record(
        MakeEvent(process, EventType::kInvoke, "read", kPrefix, std::nullopt));
    auto r = (*client)->GetPrefix(kPrefix);
    if (r.ok() && !r->more) {
      recorder_->Record(MakeEvent(process, EventType::kOk, "read", kPrefix,
                                  StateText(r->kvs), r->revision));
      read = true;
      break;
    }
    last = r.ok() ? Status::Unavailable("prefix read truncated") : r.status();
    recorder_->Record(
        MakeEvent(process, EventType::kFail, "read", kPrefix, std::nullopt));
    std::this_thread::sleep_for(kFinalPause);
  }
  // The fence: a write after the read, so that each watcher's progress
  // past the read's revision shows.
  int64_t fence = 0;
  for (int attempt = 0; read && attempt < 100 && Clock::now() < until;
       ++attempt) {
    const std::string key = std::string(kPrefix) + "fence";
    const std::string value = std::to_string(next_value_.fetch_add(1));
    recorder_->Record(
        MakeEvent(process, EventType::kInvoke, "put", key, value));
    auto r = (*client)->Put(key, value);
    if (r.ok()) {
      recorder_->Record(
          MakeEvent(process, EventType::kOk, "put", key, value, *r));
      fence = *r;
      break;
    }
    last = r.status();
    recorder_->Record(MakeEvent(process, EventType::kInfo, "put", key, value));
    process = max_process_.fetch_add(1) + 1;  // after info, a new process
    std::this_thread::sleep_for(kFinalPause);
  }
  Status result = Status::OK();
  if (fence == 0) {
    result = Status::Unavailable("final read or fence write failed: " +
                                 last.ToString());
  } else {
    for (auto& w : watchers_) {
      while (!w->ended && w->watcher->revision() < fence &&
             Clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!w->ended && w->watcher->revision() < fence) {
        result =
            Status::Timeout("watcher p" + std::to_string(w->process) +
                            " delivered through revision " +
                            std::to_string(w->watcher->revision()) +
                            " only, not the fence's " + std::to_string(fence));
      }
    }
  }
  EndWatchers();
  return result;
}

}  // namespace raftkv::jepsen
