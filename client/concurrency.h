// Recipes on top of raftkv::Client, as etcd's clientv3/concurrency: a
// Session (a lease kept alive while the object lives), a Mutex with a
// fencing token, and an Election among service instances. Each waits by
// watching, never by polling.
//
// How they work (and their limits; docs/api.md): a participant creates a
// key "<prefix>/<lease id in hex>" under its session's lease; the holder
// (the leader) is the key with the lowest create revision; each waiter
// watches the deletion of the key just below its own. The holder's key's
// create revision is a fencing token: it strictly increases from one
// holder to the next, so a resource that remembers the highest token it
// has seen can refuse a stale holder. A holder whose session is lost (the
// process paused beyond the TTL, or cut off from the majority) is no
// longer the holder even if it has not noticed yet: without fencing, no
// lock service can prevent two processes from acting as holder for a
// moment.
//
// The participants' keys are read whole (keys only) at each check: a Lock
// or Campaign costs one transaction plus, per wake-up, one read of every
// key under the prefix (O(contenders) keys; the server has no sort by
// create revision, as etcd does), and a waiter wakes only when the key
// just below its own goes, so n contenders passing through cost O(n^2)
// keys read in all. Meant for tens of contenders, not thousands.
//
// Thread-safety: a Session may be shared; a Mutex or an Election is used
// by one thread at a time. They must be destroyed before their Session,
// and a Session before its Client. None of the blocking calls may be made
// on the client's I/O thread (from a callback).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "client/client.h"

namespace raftkv {

namespace internal {
class SessionState;  // concurrency.cc
class Waiter;
}  // namespace internal

class Session {
 public:
  // Grants a lease of `ttl_seconds` and keeps it alive.
  static StatusOr<std::unique_ptr<Session>> Create(Client* client,
                                                   int64_t ttl_seconds = 60);
  // Revokes the lease (best effort), unless Close or Orphan was called:
  // the session's keys go at once.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  Client* client() const { return client_; }
  int64_t lease() const { return lease_; }
  int64_t ttl() const { return ttl_; }  // seconds, as granted
  // False once the session has ended: the lease was lost (expired or
  // revoked; every key made under it is gone), or Close or Orphan was
  // called. Make a new Session. Locks and campaigns waiting on it return
  // Aborted.
  bool alive() const;
  // Ends the session and revokes the lease now (once; OK if already done).
  Status Close();
  // Ends the session and stops its keep-alives without revoking the lease
  // (etcd's Orphan): its keys stay until the lease expires, a TTL from the
  // last keep-alive at most, as if this process had died. For a process
  // that hands its lease over, or cannot reach the cluster to revoke it.
  void Orphan();

 private:
  friend class internal::Waiter;
  Session(Client* client, int64_t lease, int64_t ttl);
  Client* const client_;
  const int64_t lease_;
  const int64_t ttl_;
  // Whether the session ended and why, and who waits on it; shared with
  // the keeper's on_lost callback.
  const std::shared_ptr<internal::SessionState> state_;
  std::mutex keeper_mu_;  // guards keeper_ (Orphan may race alive())
  std::unique_ptr<LeaseKeeper> keeper_;
};

class Mutex {
 public:
  Mutex(Session* session, std::string prefix);
  ~Mutex();  // unlocks if held (best effort)
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Waits until this session holds the lock. Timeout (the waiting key is
  // withdrawn) or Aborted (the session ended) otherwise, or the error of a
  // call to the cluster. Re-entrant per session, as etcd's: a second Mutex
  // of the same session and prefix holds it at once (and one Unlock
  // releases it for both). `timeout` bounds the waiting; a call to the
  // cluster under way when it passes may add up to the client's deadline.
  Status Lock(std::chrono::milliseconds timeout);
  // Deletes our key (if it still has our create revision).
  // FailedPrecondition if not held.
  Status Unlock();
  // While held: the key, and its create revision, the fencing token.
  const std::string& key() const { return key_; }
  int64_t revision() const { return revision_; }

 private:
  Session* const session_;
  const std::string prefix_;
  std::string key_;
  int64_t revision_ = 0;
};

class Election {
 public:
  Election(Session* session, std::string prefix);
  ~Election();  // resigns if leading (best effort)
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  // Waits until this candidate leads, with `value` as its proposal.
  // Timeout (the candidacy is withdrawn) or Aborted (the session ended)
  // otherwise, or the error of a call to the cluster; `timeout` as
  // Mutex::Lock's.
  Status Campaign(const std::string& value, std::chrono::milliseconds timeout);
  // Replaces the leader's value (if our key still has our create
  // revision); FailedPrecondition unless this candidate leads.
  Status Proclaim(const std::string& value);
  // Gives up leadership: deletes our key (if it still has our create
  // revision); the next candidate leads. OK if not leading.
  Status Resign();
  // The current leader's key and value (NotFound: none).
  StatusOr<KeyValue> Leader();
  // Calls `on_leader` with the leader now and at every change of leader or
  // of its value (NotFound while there is none), until the Watcher is
  // destroyed. Runs on the client's I/O thread (so it must not block or
  // call the synchronous API). Reads every candidate's key and value once,
  // then follows the prefix's changes. Null if that first read failed
  // (on_leader then got the error); if the history to resume from is
  // compacted, on_leader gets Compacted and is not called again.
  std::unique_ptr<Watcher> Observe(
      std::function<void(StatusOr<KeyValue>)> on_leader);
  // While leading: the leader key and its create revision.
  const std::string& key() const { return key_; }
  int64_t revision() const { return revision_; }

 private:
  Session* const session_;
  const std::string prefix_;
  std::string key_;
  int64_t revision_ = 0;
};

}  // namespace raftkv
