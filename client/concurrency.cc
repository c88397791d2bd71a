// The recipes of concurrency.h, as etcd's clientv3/concurrency: a
// participant's key is made by one transaction (if absent, put it under
// the session's lease; else read it), the participant whose key has the
// lowest create revision holds or leads, and every other waits for the
// deletion of the key just below its own (etcd's waitDeletes), then reads
// the keys again.
#include "client/concurrency.h"

#include <condition_variable>
#include <cstdio>
#include <future>
#include <map>
#include <utility>
#include <vector>

#include "client/kv.pb.h"

namespace raftkv {

using Clock = std::chrono::steady_clock;

namespace internal {

// Whether a Session has ended (and why), and what to call when it does.
// Ended by the keeper's on_lost (on the client's I/O thread), by Close,
// Orphan or the destructor.
class SessionState {
 public:
  // Ends the session (the first call wins) and calls every listener.
  void End(const Status& why) {
    std::vector<std::function<void()>> listeners;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ended_) return;
      ended_ = true;
      why_ = why;
      for (auto& [id, listener] : listeners_) listeners.push_back(listener);
    }
    for (auto& listener : listeners) listener();
  }

  bool ended() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_;
  }

  Status why() const {
    std::lock_guard<std::mutex> lock(mu_);
    return why_;
  }

  // Calls `on_end` (which must not block) when the session ends, at once
  // if it has. It may still run, once, during or after Unlisten: it must
  // only touch what it owns.
  int Listen(std::function<void()> on_end) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ended_) {
        listeners_[next_id_] = std::move(on_end);
        return next_id_++;
      }
    }
    on_end();
    return 0;
  }

  void Unlisten(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    listeners_.erase(id);
  }

  // Marks the lease as let go of (revoked or orphaned); true the first
  // time. The destructor revokes a lease not let go of.
  bool LetGo() {
    std::lock_guard<std::mutex> lock(mu_);
    const bool first = !let_go_;
    let_go_ = true;
    return first;
  }

 private:
  mutable std::mutex mu_;
  bool ended_ = false;
  bool let_go_ = false;
  Status why_;
  int next_id_ = 1;
  std::map<int, std::function<void()>> listeners_;
};

// One Lock's or Campaign's wait, on the caller's thread: woken by the
// watch it sets (a deletion, or the watch's end) or by the session's end.
class Waiter {
 public:
  enum class Wake { kChanged, kEnded, kTimeout };

  explicit Waiter(Session* session)
      : session_(session), signal_(std::make_shared<Signal>()) {
    std::shared_ptr<Signal> signal = signal_;
    listener_ = session_->state_->Listen([signal] { signal->Set(true); });
  }

  ~Waiter() {
    watch_.reset();
    session_->state_->Unlisten(listener_);
  }

  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // From now on, wakes when `key` is deleted at revision `from` or later
  // (or when the watch ends: compacted history), instead of on the
  // previous watch's key.
  void WatchDelete(const std::string& key, int64_t from) {
    watch_.reset();  // no callback of the previous watch after this
    {
      std::lock_guard<std::mutex> lock(signal_->mu);
      signal_->changed = false;
    }
    WatchOptions options;
    options.start_revision = from;
    options.no_put = true;
    std::shared_ptr<Signal> signal = signal_;
    watch_ = session_->client()->Watch(
        key, options, [signal](StatusOr<WatchUpdate> update) {
          if (update.ok() && update->events.empty()) return;  // progress
          signal->Set(false);
        });
  }

  // Waits for a wake-up until `deadline`. The session's end wins.
  Wake Wait(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(signal_->mu);
    signal_->cv.wait_until(lock, deadline,
                           [&] { return signal_->ended || signal_->changed; });
    if (signal_->ended) return Wake::kEnded;
    if (!signal_->changed) return Wake::kTimeout;
    signal_->changed = false;
    return Wake::kChanged;
  }

  // Aborted, saying why the session ended.
  Status Ended() const {
    return Status::Aborted("session ended: " +
                           session_->state_->why().ToString());
  }

 private:
  // Shared with the callbacks, which may outlive the Waiter by a moment.
  struct Signal {
    std::mutex mu;
    std::condition_variable cv;
    bool changed = false;
    bool ended = false;
    void Set(bool session_ended) {
      {
        std::lock_guard<std::mutex> lock(mu);
        (session_ended ? ended : changed) = true;
      }
      cv.notify_all();
    }
  };

  Session* const session_;
  const std::shared_ptr<Signal> signal_;
  int listener_ = 0;
  std::unique_ptr<Watcher> watch_;
};

}  // namespace internal

namespace {

// "locks" and "locks/" are the same prefix, "locks/".
std::string NormalisedPrefix(std::string prefix) {
  if (prefix.empty() || prefix.back() != '/') prefix += '/';
  return prefix;
}

// A participant's key: the prefix and its lease id in lower-case hex.
std::string KeyOf(const std::string& prefix, int64_t lease) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%llx",
                static_cast<unsigned long long>(lease));
  return prefix + hex;
}

kv::RangeRequest PrefixRange(const std::string& prefix, bool keys_only) {
  kv::RangeRequest range;
  range.set_key(prefix);
  range.set_range_end(PrefixRangeEnd(prefix));
  range.set_keys_only(keys_only);
  return range;
}

kv::Compare CreatedAt(const std::string& key, int64_t revision) {
  kv::Compare compare;
  compare.set_key(key);
  compare.set_target(kv::Compare::CREATE);
  compare.set_result(kv::Compare::EQUAL);
  compare.set_create_revision(revision);
  return compare;
}

bool Contains(const kv::RangeResponse& keys, const std::string& key) {
  for (const kv::KeyValue& kv : keys.kvs()) {
    if (kv.key() == key) return true;
  }
  return false;
}

// The key with the lowest create revision (null: none).
const kv::KeyValue* Lowest(const kv::RangeResponse& keys) {
  const kv::KeyValue* lowest = nullptr;
  for (const kv::KeyValue& kv : keys.kvs()) {
    if (lowest == nullptr || kv.create_revision() < lowest->create_revision())
      lowest = &kv;
  }
  return lowest;
}

// The key with the greatest create revision below `revision` (null: none,
// the key created at `revision` is the lowest).
const kv::KeyValue* JustBelow(const kv::RangeResponse& keys, int64_t revision) {
  const kv::KeyValue* below = nullptr;
  for (const kv::KeyValue& kv : keys.kvs()) {
    if (kv.create_revision() < revision &&
        (below == nullptr || kv.create_revision() > below->create_revision()))
      below = &kv;
  }
  return below;
}

// Deletes `key` if it still has create revision `revision` (not a key
// made again since). OK whether or not it did.
Status DeleteIfCreatedAt(Client* client, const std::string& key,
                         int64_t revision) {
  kv::TxnRequest txn;
  *txn.add_compare() = CreatedAt(key, revision);
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  return client->Txn(txn).status();
}

// A participant's key once made (or found) by Enter.
struct Entry {
  std::string key;
  int64_t revision = 0;    // its create revision
  bool created = false;    // by this Enter (false: it existed)
  std::string value;       // as found, if it existed
  kv::RangeResponse keys;  // every key under the prefix (keys only), then
};

// One transaction: if `key` is absent, put it with `value` under the
// session's lease, else read it; in both cases list the prefix's keys as
// of that revision. Aborted if the lease is gone.
StatusOr<Entry> Enter(Session* session, const std::string& prefix,
                      const std::string& key, const std::string& value) {
  kv::TxnRequest txn;
  *txn.add_compare() = CreatedAt(key, 0);  // absent
  kv::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(session->lease());
  *txn.add_success()->mutable_request_range() = PrefixRange(prefix, true);
  txn.add_failure()->mutable_request_range()->set_key(key);
  *txn.add_failure()->mutable_request_range() = PrefixRange(prefix, true);
  auto r = session->client()->Txn(txn);
  if (!r.ok()) {
    if (r.status().code() == Status::Code::kNotFound) {
      return Status::Aborted("the session's lease is gone: " +
                             r.status().ToString());
    }
    // The outcome is unknown: withdraw the key in case it was made (best
    // effort; it goes with the session otherwise). Were it the key of
    // another Mutex of this session on this prefix (re-entrant), that one
    // is released too, as by its Unlock.
    if (r.status().code() == Status::Code::kUnavailable ||
        r.status().code() == Status::Code::kTimeout) {
      (void)session->client()->Delete(key);
    }
    return r.status();
  }
  Entry entry;
  entry.key = key;
  entry.created = r->succeeded();
  if (r->responses_size() != 2) {
    return Status::InvalidArgument("unexpected answer to the entry's txn");
  }
  if (entry.created) {
    entry.revision = r->header().revision();
  } else {
    const kv::RangeResponse& mine = r->responses(0).response_range();
    if (mine.kvs_size() != 1) {
      return Status::InvalidArgument("the entry's txn found no key '" + key +
                                     "' though it exists");
    }
    entry.revision = mine.kvs(0).create_revision();
    entry.value = mine.kvs(0).value();
  }
  entry.keys = r->responses(1).response_range();
  return entry;
}

// Waits until `entry`'s key has the lowest create revision under `prefix`:
// watches the deletion of the key just below it, then reads the keys
// again (one deletion proves nothing: the key below may have been a
// waiter that gave up while another further below still holds). Timeout
// at `deadline`; Aborted if the session ends or the key is gone.
Status WaitForTurn(internal::Waiter* waiter, Session* session,
                   const std::string& prefix, Entry* entry,
                   Clock::time_point deadline) {
  for (;;) {
    if (!Contains(entry->keys, entry->key)) {
      return Status::Aborted("key '" + entry->key +
                             "' is gone (the session's lease was lost)");
    }
    const kv::KeyValue* below = JustBelow(entry->keys, entry->revision);
    if (below == nullptr) return Status::OK();
    // It exists at the read's revision: its deletion comes after.
    waiter->WatchDelete(below->key(), entry->keys.header().revision() + 1);
    switch (waiter->Wait(deadline)) {
      case internal::Waiter::Wake::kEnded:
        return waiter->Ended();
      case internal::Waiter::Wake::kTimeout:
        return Status::Timeout("still waiting behind '" + below->key() +
                               "' under '" + prefix + "'");
      case internal::Waiter::Wake::kChanged:
        break;
    }
    auto keys = session->client()->Range(PrefixRange(prefix, true));
    if (!keys.ok()) return keys.status();
    entry->keys = std::move(*keys);
  }
}

// Lock's and Campaign's common part: enters with `value` and waits for
// the turn; withdraws a key it made if that fails.
StatusOr<Entry> Acquire(Session* session, const std::string& prefix,
                        const std::string& value, bool update_value,
                        std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  internal::Waiter waiter(session);  // from here, the session's end wakes
  if (!session->alive()) return waiter.Ended();
  auto entry = Enter(session, prefix, KeyOf(prefix, session->lease()), value);
  if (!entry.ok()) return entry.status();
  if (!entry->created && update_value && entry->value != value) {
    // Campaigning again with another value (etcd does the same).
    kv::TxnRequest txn;
    *txn.add_compare() = CreatedAt(entry->key, entry->revision);
    kv::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(entry->key);
    put->set_value(value);
    put->set_lease(session->lease());
    auto r = session->client()->Txn(txn);
    if (!r.ok()) return r.status();
    if (!r->succeeded()) {
      return Status::Aborted("key '" + entry->key + "' is gone");
    }
  }
  Status waited =
      WaitForTurn(&waiter, session, prefix, &entry.value(), deadline);
  if (!waited.ok()) {
    if (entry->created) {
      (void)DeleteIfCreatedAt(session->client(), entry->key, entry->revision);
    }
    return waited;
  }
  return entry;
}

// What Observe follows: every candidate's key and value, and what it last
// told. Used on the client's I/O thread only (the first read's callback,
// then the watch's).
class LeaderTracker {
 public:
  explicit LeaderTracker(std::function<void(StatusOr<KeyValue>)> on_leader)
      : on_leader_(std::move(on_leader)) {}

  void Reset(const kv::RangeResponse& all) {
    for (const kv::KeyValue& kv : all.kvs()) Put(FromProto(kv));
    Tell();
  }

  // Tells the leader after each revision of the update (deliveries are
  // whole revisions).
  void Apply(const WatchUpdate& update) {
    const auto& events = update.events;
    for (size_t i = 0; i < events.size(); ++i) {
      const WatchEvent& e = events[i];
      if (e.type == WatchEvent::Type::kPut) {
        Put(e.kv);
      } else {
        auto it = by_key_.find(e.kv.key);
        if (it != by_key_.end()) {
          by_create_.erase(it->second.create_revision);
          by_key_.erase(it);
        }
      }
      if (i + 1 == events.size() ||
          events[i + 1].kv.mod_revision != e.kv.mod_revision) {
        Tell();
      }
    }
  }

  void Fail(const Status& status) { on_leader_(status); }

 private:
  void Put(const KeyValue& kv) {
    auto it = by_key_.find(kv.key);
    if (it != by_key_.end()) by_create_.erase(it->second.create_revision);
    by_key_[kv.key] = kv;
    by_create_[kv.create_revision] = kv.key;
  }

  // Calls on_leader if the leader, or its value, is not what it told last.
  void Tell() {
    if (by_create_.empty()) {
      if (told_ && !told_leader_) return;
      told_ = true;
      told_leader_ = false;
      on_leader_(Status::NotFound("no leader"));
      return;
    }
    const KeyValue& leader = by_key_.at(by_create_.begin()->second);
    if (told_ && told_leader_ && leader.key == last_.key &&
        leader.create_revision == last_.create_revision &&
        leader.value == last_.value) {
      return;
    }
    told_ = true;
    told_leader_ = true;
    last_ = leader;
    on_leader_(leader);
  }

  const std::function<void(StatusOr<KeyValue>)> on_leader_;
  std::map<std::string, KeyValue> by_key_;
  std::map<int64_t, std::string> by_create_;  // create revision -> key
  bool told_ = false;
  bool told_leader_ = false;  // false: told NotFound
  KeyValue last_;
};

}  // namespace

// --- Session ----------------------------------------------------------------

Session::Session(Client* client, int64_t lease, int64_t ttl)
    : client_(client),
      lease_(lease),
      ttl_(ttl),
      state_(std::make_shared<internal::SessionState>()) {}

StatusOr<std::unique_ptr<Session>> Session::Create(Client* client,
                                                   int64_t ttl_seconds) {
  auto grant = client->LeaseGrant(ttl_seconds);
  if (!grant.ok()) return grant.status();
  std::unique_ptr<Session> session(new Session(client, grant->id, grant->ttl));
  std::shared_ptr<internal::SessionState> state = session->state_;
  session->keeper_ =
      client->KeepAlive(grant->id, grant->ttl, [state](Status why) {
        state->End(Status::Aborted("lease lost: " + why.ToString()));
      });
  return session;
}

Session::~Session() {
  std::unique_ptr<LeaseKeeper> keeper;
  {
    std::lock_guard<std::mutex> lock(keeper_mu_);
    keeper = std::move(keeper_);
  }
  keeper.reset();  // no on_lost after this
  state_->End(Status::Aborted("session destroyed"));
  if (state_->LetGo()) (void)client_->LeaseRevoke(lease_);
}

bool Session::alive() const { return !state_->ended(); }

Status Session::Close() {
  state_->End(Status::Aborted("session closed"));
  std::unique_ptr<LeaseKeeper> keeper;
  {
    std::lock_guard<std::mutex> lock(keeper_mu_);
    keeper = std::move(keeper_);
  }
  keeper.reset();
  if (!state_->LetGo()) return Status::OK();
  Status revoked = client_->LeaseRevoke(lease_);
  if (revoked.code() == Status::Code::kNotFound) return Status::OK();
  return revoked;
}

void Session::Orphan() {
  state_->End(Status::Aborted("session orphaned"));
  state_->LetGo();
  std::unique_ptr<LeaseKeeper> keeper;
  {
    std::lock_guard<std::mutex> lock(keeper_mu_);
    keeper = std::move(keeper_);
  }
  keeper.reset();
}

// --- Mutex ------------------------------------------------------------------

Mutex::Mutex(Session* session, std::string prefix)
    : session_(session), prefix_(NormalisedPrefix(std::move(prefix))) {}

Mutex::~Mutex() {
  if (!key_.empty()) (void)Unlock();
}

Status Mutex::Lock(std::chrono::milliseconds timeout) {
  auto entry = Acquire(session_, prefix_, "", /*update_value=*/false, timeout);
  if (!entry.ok()) return entry.status();
  key_ = entry->key;
  revision_ = entry->revision;
  return Status::OK();
}

Status Mutex::Unlock() {
  if (key_.empty()) return Status::FailedPrecondition("not locked");
  RAFTKV_RETURN_IF_ERROR(
      DeleteIfCreatedAt(session_->client(), key_, revision_));
  key_.clear();
  revision_ = 0;
  return Status::OK();
}

// --- Election ---------------------------------------------------------------

Election::Election(Session* session, std::string prefix)
    : session_(session), prefix_(NormalisedPrefix(std::move(prefix))) {}

Election::~Election() {
  if (!key_.empty()) (void)Resign();
}

Status Election::Campaign(const std::string& value,
                          std::chrono::milliseconds timeout) {
  auto entry =
      Acquire(session_, prefix_, value, /*update_value=*/true, timeout);
  if (!entry.ok()) return entry.status();
  key_ = entry->key;
  revision_ = entry->revision;
  return Status::OK();
}

Status Election::Proclaim(const std::string& value) {
  if (key_.empty()) return Status::FailedPrecondition("not leading");
  kv::TxnRequest txn;
  *txn.add_compare() = CreatedAt(key_, revision_);
  kv::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key_);
  put->set_value(value);
  put->set_lease(session_->lease());
  auto r = session_->client()->Txn(txn);
  if (!r.ok()) return r.status();
  if (!r->succeeded()) {
    const std::string key = key_;
    key_.clear();
    revision_ = 0;
    return Status::FailedPrecondition("no longer leading: key '" + key +
                                      "' is gone (the session's lease was "
                                      "lost)");
  }
  return Status::OK();
}

Status Election::Resign() {
  if (key_.empty()) return Status::OK();
  RAFTKV_RETURN_IF_ERROR(
      DeleteIfCreatedAt(session_->client(), key_, revision_));
  key_.clear();
  revision_ = 0;
  return Status::OK();
}

StatusOr<KeyValue> Election::Leader() {
  Client* client = session_->client();
  for (int attempt = 1;; ++attempt) {
    auto keys = client->Range(PrefixRange(prefix_, /*keys_only=*/true));
    if (!keys.ok()) return keys.status();
    const kv::KeyValue* lowest = Lowest(*keys);
    if (lowest == nullptr) {
      return Status::NotFound("no leader under '" + prefix_ + "'");
    }
    // Its value as of the same revision (the one key's value only).
    kv::RangeRequest one;
    one.set_key(lowest->key());
    one.set_revision(keys->header().revision());
    auto got = client->Range(one);
    if (got.ok() && got->kvs_size() == 1) return FromProto(got->kvs(0));
    // Compacted in between (or not found, which a store at one revision
    // cannot do): read again, a few times.
    if (attempt == 3) {
      return got.ok() ? Status::Unavailable("leader key vanished")
                      : got.status();
    }
  }
}

std::unique_ptr<Watcher> Election::Observe(
    std::function<void(StatusOr<KeyValue>)> on_leader) {
  auto tracker = std::make_shared<LeaderTracker>(std::move(on_leader));
  // The first read through the async API, so that its callback, and so the
  // first on_leader, runs on the I/O thread like every later one.
  kv::TxnRequest read;
  *read.add_success()->mutable_request_range() =
      PrefixRange(prefix_, /*keys_only=*/false);
  std::promise<int64_t> read_at;  // -1: the read failed
  std::future<int64_t> revision_future = read_at.get_future();
  session_->client()->TxnAsync(
      read, [tracker, &read_at](StatusOr<kv::TxnResponse> r) {
        if (!r.ok() || r->responses_size() != 1) {
          tracker->Fail(r.ok() ? Status::InvalidArgument("unexpected answer")
                               : r.status());
          read_at.set_value(-1);
          return;
        }
        const kv::RangeResponse& all = r->responses(0).response_range();
        tracker->Reset(all);
        read_at.set_value(all.header().revision());
      });
  const int64_t revision = revision_future.get();
  if (revision < 0) return nullptr;  // the store may be at revision 0
  WatchOptions options;
  options.range_end = PrefixRangeEnd(prefix_);
  options.start_revision = revision + 1;
  auto follow = [tracker](StatusOr<WatchUpdate> update) {
    if (!update.ok()) return tracker->Fail(update.status());
    tracker->Apply(*update);
  };
  return session_->client()->Watch(prefix_, options, std::move(follow));
}

}  // namespace raftkv
