// The lease workload (see lease_workload.h): holders registering under
// leases, lockers counting under a Mutex, and the final reads. Must never
// record an outcome more certain than the client's answer.
#include "jepsen/lease_workload.h"

#include <algorithm>
#include <iostream>

#include "client/concurrency.h"
#include "client/kv.pb.h"

namespace raftkv::jepsen {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr auto kLinger = std::chrono::seconds(1);
constexpr auto kLockTimeout = std::chrono::seconds(2);
constexpr auto kFinalPause = milliseconds(300);

Event MakeEvent(int64_t process, EventType type, const std::string& f,
                const std::string& key,
                std::optional<std::string> value = std::nullopt,
                int64_t lease = 0, int64_t revision = 0) {
  Event e;
  e.process = process;
  e.type = type;
  e.f = f;
  e.key = key;
  e.value = std::move(value);
  e.lease = lease;
  e.revision = revision;
  return e;
}

bool DefinitelyNotApplied(const Status& s) {
  return s.code() == Status::Code::kInvalidArgument ||
         s.code() == Status::Code::kTooLarge || s.IsNotFound();
}

// "k@lease,k@lease" of the keys with a lease (all of them if `all`).
std::string LeasedKeys(const std::vector<KeyValue>& kvs, bool all) {
  std::string text;
  for (const KeyValue& kv : kvs) {
    if (!all && kv.lease == 0) continue;
    text += (text.empty() ? "" : ",") + kv.key + "@" + std::to_string(kv.lease);
  }
  return text;
}

}  // namespace

LeaseWorkload::LeaseWorkload(WorkloadOptions options, Recorder* recorder)
    : options_(std::move(options)),
      recorder_(recorder),
      endpoints_(options_.endpoints) {}

LeaseWorkload::~LeaseWorkload() { Stop(); }

StatusOr<std::unique_ptr<Client>> LeaseWorkload::NewClient(
    std::vector<std::string> endpoints, uint64_t seed) const {
  return NewWorkloadClient(std::move(endpoints), options_.op_timeout,
                           options_.attempt_timeout, seed);
}

std::vector<std::string> LeaseWorkload::endpoints() {
  std::lock_guard<std::mutex> lock(mu_);
  return endpoints_;
}

void LeaseWorkload::SetEndpoints(std::vector<std::string> endpoints) {
  if (endpoints.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  endpoints_ = std::move(endpoints);
}

bool LeaseWorkload::stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

bool LeaseWorkload::SleepUntil(Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, until, [this] { return stopping_; });
  return !stopping_;
}

Status LeaseWorkload::Start() {
  RAFTKV_RETURN_IF_ERROR(ValidateWorkload(options_));
  if (endpoints().empty()) return Status::InvalidArgument("no endpoints");
  const int holders = options_.concurrency - options_.lockers;
  for (int i = 0; i < holders; ++i) {
    threads_.emplace_back([this, i] { Holder(i); });
  }
  for (int i = 0; i < options_.lockers; ++i) {
    threads_.emplace_back([this, i] { Locker(i); });
  }
  return Status::OK();
}

void LeaseWorkload::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void LeaseWorkload::ReadPrefix(Client& client, int64_t process) {
  recorder_->Record(MakeEvent(process, EventType::kInvoke, "read", kPrefix));
  auto r = client.GetPrefix(kPrefix);
  if (r.ok() && !r->more) {
    recorder_->Record(MakeEvent(process, EventType::kOk, "read", kPrefix,
                                LeasedKeys(r->kvs, true), 0, r->revision));
  } else {
    recorder_->Record(MakeEvent(process, EventType::kFail, "read", kPrefix));
  }
}

void LeaseWorkload::Holder(int index) {
  std::mt19937_64 rng(options_.seed * 1000003 + 31 + index);
  while (!stopping()) {
    Register(rng);
  }
}

void LeaseWorkload::Register(std::mt19937_64& rng) {
  const int holders = options_.concurrency - options_.lockers;
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(2.0 * holders / options_.rate));
  std::uniform_real_distribution<double> gap(0, 2);
  auto pause = [&] {
    return SleepFor(
        std::chrono::duration_cast<Clock::duration>(period * gap(rng)));
  };
  const int64_t p = NewProcess();
  const std::string key = kPrefix + std::to_string(p);
  auto made = NewClient(endpoints(), rng());
  if (!made.ok()) {
    std::cerr << "raftkv-jepsen: holder cannot make a client: "
              << made.status().ToString() << std::endl;
    SleepFor(std::chrono::seconds(1));
    return;
  }
  Client& client = **made;
  const int64_t ttl = options_.lease_ttl_s;
  recorder_->Record(
      MakeEvent(p, EventType::kInvoke, "grant", key, std::to_string(ttl)));
  auto grant = client.LeaseGrant(ttl);
  if (!grant.ok()) {
    // Unknown: a lease may have been granted, with no key (yet) on it.
    recorder_->Record(
        MakeEvent(p, EventType::kInfo, "grant", key, std::to_string(ttl)));
    pause();
    return;
  }
  const int64_t lease = grant->id;
  recorder_->Record(MakeEvent(p, EventType::kOk, "grant", key,
                              std::to_string(grant->ttl), lease));
  auto abandon = [&] {
    recorder_->Record(
        MakeEvent(p, EventType::kInvoke, "abandon", key, std::nullopt, lease));
    recorder_->Record(
        MakeEvent(p, EventType::kOk, "abandon", key, std::nullopt, lease));
  };
  recorder_->Record(MakeEvent(p, EventType::kInvoke, "put", key,
                              std::to_string(lease), lease));
  PutOptions put_options;
  put_options.lease = lease;
  auto put = client.Put(key, std::to_string(lease), put_options);
  if (!put.ok()) {
    recorder_->Record(MakeEvent(p,
                                DefinitelyNotApplied(put.status())
                                    ? EventType::kFail
                                    : EventType::kInfo,
                                "put", key, std::to_string(lease), lease));
    abandon();  // never kept alive
    pause();
    return;
  }
  recorder_->Record(MakeEvent(p, EventType::kOk, "put", key,
                              std::to_string(lease), lease, *put));
  std::unique_ptr<LeaseKeeper> keeper =
      client.KeepAlive(lease, grant->ttl, [this, p, key, lease](Status why) {
        Event e =
            MakeEvent(p, EventType::kOk, "lost", key, why.ToString(), lease);
        recorder_->Record(std::move(e));
      });
  std::uniform_real_distribution<double> lifetime_s(2, 8);
  const auto end_of_life =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(lifetime_s(rng)));
  const bool revoke = rng() % 2 == 0;
  bool gone = false;  // the lease is known to be gone
  while (Clock::now() < end_of_life && keeper->alive() && !gone) {
    recorder_->Record(
        MakeEvent(p, EventType::kInvoke, "ttl", key, std::nullopt, lease));
    auto left = client.LeaseTimeToLive(lease);
    if (left.ok()) {
      recorder_->Record(MakeEvent(p, EventType::kOk, "ttl", key,
                                  std::to_string(left->ttl), lease));
    } else {
      gone = left.status().IsNotFound();
      recorder_->Record(MakeEvent(
          p, EventType::kFail, "ttl", key,
          gone ? std::optional<std::string>("not-found") : std::nullopt,
          lease));
    }
    ReadPrefix(client, p);
    if (!pause()) break;
  }
  const bool lost = !keeper->alive();
  keeper.reset();  // no keep-alive after this
  if (!lost && revoke && !stopping()) {
    recorder_->Record(
        MakeEvent(p, EventType::kInvoke, "revoke", key, std::nullopt, lease));
    Status s = client.LeaseRevoke(lease);
    if (s.ok() || s.IsNotFound()) {
      recorder_->Record(MakeEvent(
          p, EventType::kOk, "revoke", key,
          s.ok() ? std::nullopt : std::optional<std::string>("not-found"),
          lease));
    } else {
      recorder_->Record(
          MakeEvent(p, EventType::kInfo, "revoke", key, std::nullopt, lease));
      return;  // an unknown outcome ends the process
    }
  } else if (!lost) {
    abandon();
  }
  // Read on for a while: a revoked lease's key must not come back.
  const auto linger_end = Clock::now() + kLinger;
  while (Clock::now() < linger_end && !stopping()) {
    ReadPrefix(client, p);
    if (!pause()) break;
  }
}

void LeaseWorkload::Locker(int index) {
  std::mt19937_64 rng(options_.seed * 1000003 + 7001 + index);
  while (!stopping()) {
    auto made = NewClient(endpoints(), rng());
    if (!made.ok()) return;
    Client& client = **made;
    int64_t p = NewProcess();
    recorder_->Record(MakeEvent(p, EventType::kInvoke, "session", kLockName));
    auto created = Session::Create(&client, options_.lease_ttl_s);
    if (!created.ok()) {
      recorder_->Record(MakeEvent(p, EventType::kInfo, "session", kLockName,
                                  created.status().ToString()));
      SleepFor(milliseconds(200));
      continue;
    }
    std::unique_ptr<Session> session = std::move(created).value();
    const int64_t lease = session->lease();
    recorder_->Record(MakeEvent(p, EventType::kOk, "session", kLockName,
                                std::nullopt, lease));
    bool healthy = true;
    {
      Mutex mutex(session.get(), kLockName);
      while (healthy && !stopping() && session->alive()) {
        recorder_->Record(MakeEvent(p, EventType::kInvoke, "lock", kLockName,
                                    std::nullopt, lease));
        Status locked = mutex.Lock(kLockTimeout);
        if (!locked.ok()) {
          recorder_->Record(MakeEvent(p, EventType::kFail, "lock", kLockName,
                                      locked.ToString(), lease));
          healthy = false;  // a new session: no waiting key left behind
          break;
        }
        const int64_t token = mutex.revision();
        recorder_->Record(MakeEvent(p, EventType::kOk, "lock", kLockName,
                                    mutex.key(), lease, token));
        const int increments = 1 + static_cast<int>(rng() % 3);
        for (int i = 0; i < increments && healthy; ++i) {
          recorder_->Record(MakeEvent(p, EventType::kInvoke, "incr", kCounter,
                                      std::nullopt, 0, token));
          auto current = client.Get(kCounter);
          if (!current.ok() && !current.status().IsNotFound()) {
            recorder_->Record(MakeEvent(p, EventType::kFail, "incr", kCounter,
                                        "read failed", 0, 0));
            healthy = false;
            break;
          }
          const int64_t next =
              (current.ok() ? std::stoll(current->value) : 0) + 1;
          kv::TxnRequest txn;
          kv::Compare* c = txn.add_compare();
          c->set_key(mutex.key());
          c->set_target(kv::Compare::CREATE);
          c->set_result(kv::Compare::EQUAL);
          c->set_create_revision(token);
          kv::PutRequest* put = txn.add_success()->mutable_request_put();
          put->set_key(kCounter);
          put->set_value(std::to_string(next));
          auto r = client.Txn(txn);
          if (r.ok() && r->succeeded()) {
            recorder_->Record(MakeEvent(p, EventType::kOk, "incr", kCounter,
                                        std::to_string(next), 0,
                                        r->header().revision()));
          } else if (r.ok()) {
            recorder_->Record(MakeEvent(p, EventType::kFail, "incr", kCounter,
                                        "stale", 0, r->header().revision()));
            healthy = false;  // the lock is no longer ours
          } else {
            recorder_->Record(MakeEvent(p, EventType::kInfo, "incr", kCounter,
                                        std::to_string(next)));
            p = NewProcess();
            healthy = false;
          }
        }
        SleepFor(milliseconds(rng() % 100));
        recorder_->Record(MakeEvent(p, EventType::kInvoke, "unlock", kLockName,
                                    std::nullopt, lease));
        Status unlocked = mutex.Unlock();
        recorder_->Record(
            MakeEvent(p, unlocked.ok() ? EventType::kOk : EventType::kInfo,
                      "unlock", kLockName, std::nullopt, lease));
        if (!unlocked.ok()) {
          p = NewProcess();
          healthy = false;
        }
        SleepFor(milliseconds(rng() % 50));
      }
    }
    // End of the session: revoke its lease (its keys go at once), or leave
    // it to expire when stopping (Orphan: no keep-alive after this).
    if (stopping()) {
      recorder_->Record(MakeEvent(p, EventType::kInvoke, "abandon", kLockName,
                                  std::nullopt, lease));
      session->Orphan();
      recorder_->Record(MakeEvent(p, EventType::kOk, "abandon", kLockName,
                                  std::nullopt, lease));
    } else {
      recorder_->Record(MakeEvent(p, EventType::kInvoke, "revoke", kLockName,
                                  std::nullopt, lease));
      Status s = session->Close();
      recorder_->Record(MakeEvent(
          p, s.ok() || s.IsNotFound() ? EventType::kOk : EventType::kInfo,
          "revoke", kLockName,
          s.IsNotFound() ? std::optional<std::string>("not-found")
                         : std::nullopt,
          lease));
    }
    session.reset();  // closed or orphaned: nothing more is sent
  }
}

Status LeaseWorkload::FinalRead(std::chrono::milliseconds timeout) {
  const auto until = Clock::now() + timeout;
  const std::vector<std::string> all = endpoints();
  auto made = NewClient(all, options_.seed + 77);
  if (!made.ok()) return made.status();
  Client& client = **made;
  const int64_t p = NewProcess();
  // Until no key is left on a lease: every lease is dead by now.
  int64_t revision = 0;
  bool clean = false;
  while (!clean && Clock::now() < until) {
    recorder_->Record(MakeEvent(p, EventType::kInvoke, "read", "*"));
    auto r = client.GetPrefix("");
    if (r.ok() && !r->more) {
      const std::string leased = LeasedKeys(r->kvs, false);
      recorder_->Record(
          MakeEvent(p, EventType::kOk, "read", "*", leased, 0, r->revision));
      revision = r->revision;
      clean = leased.empty();
    } else {
      recorder_->Record(MakeEvent(p, EventType::kFail, "read", "*"));
    }
    if (!clean) std::this_thread::sleep_for(kFinalPause);
  }
  if (revision == 0) return Status::Unavailable("no final read succeeded");
  bool counted = false;
  while (!counted && Clock::now() < until) {
    recorder_->Record(MakeEvent(p, EventType::kInvoke, "read", kCounter));
    auto r = client.Get(kCounter);
    if (r.ok() || r.status().IsNotFound()) {
      recorder_->Record(
          MakeEvent(p, EventType::kOk, "read", kCounter,
                    r.ok() ? std::optional(r->value) : std::nullopt, 0,
                    r.ok() ? r->mod_revision : 0));
      counted = true;
    } else {
      recorder_->Record(MakeEvent(p, EventType::kFail, "read", kCounter));
      std::this_thread::sleep_for(kFinalPause);
    }
  }
  Status result = clean ? Status::OK()
                        : Status::FailedPrecondition(
                              "keys on leases still there at the timeout");
  for (size_t i = 0; i < all.size(); ++i) {
    auto node = NewClient({all[i]}, options_.seed + 78 + i);
    if (!node.ok()) return node.status();
    const int64_t q = NewProcess();
    ReadOptions serializable;
    serializable.serializable = true;
    bool caught_up = false;
    while (!caught_up && Clock::now() < until) {
      Event invoke = MakeEvent(q, EventType::kInvoke, "read", "*");
      invoke.node = all[i];
      recorder_->Record(invoke);
      auto r = (*node)->GetPrefix("", 0, serializable);
      Event done = MakeEvent(q, EventType::kFail, "read", "*");
      done.node = all[i];
      if (r.ok() && !r->more) {
        done.type = EventType::kOk;
        done.value = LeasedKeys(r->kvs, false);
        done.revision = r->revision;
        caught_up = r->revision >= revision;
      }
      recorder_->Record(std::move(done));
      if (!caught_up) std::this_thread::sleep_for(kFinalPause);
    }
    if (!caught_up && result.ok()) {
      result = Status::Unavailable("node " + all[i] +
                                   " did not reach the final revision");
    }
  }
  return result;
}

}  // namespace raftkv::jepsen
