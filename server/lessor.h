// Lessor: the leader's clock for leases (etcd's lessor). Leases themselves
// (id, granted TTL, attached keys) are replicated state in the state
// machine; when each one expires is known only to the leader, in memory:
// keep-alives reset it, and an expired lease is revoked by a command the
// leader proposes, so its keys go in one revision on every member.
//
// A new leader knows no keep-alive its predecessor answered: once it has
// applied everything committed before its term (so every grant its
// predecessor answered is known), it loads the leases and gives every one
// its full TTL plus an election timeout from then (as etcd's Promote does),
// so a failover never expires a lease that was kept alive. Until then it
// answers lease requests UNAVAILABLE (the client retries). Keep-alives are
// answered only while a quorum of voters was heard within an election timeout:
// a leader cut off from the majority (about to be replaced) does not promise
// time it cannot keep.
//
// Must never: expire a lease by a clock other than the leader's monotonic
// one, revoke anything except through the log, or answer a keep-alive
// while not the leader.
// Thread-safety: the loop's thread only.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "client/kv.pb.h"
#include "server/handoff.h"

namespace raftkv::server {

class Applier;
class RaftLoop;

struct LessorOptions {
  std::chrono::milliseconds election_timeout{150};
  // How often expiry is looked at.
  std::chrono::milliseconds check_interval{100};
  // Revocations proposed per check, at most (a mass expiry is spread out).
  size_t max_revokes_per_check = 1000;
  // An expiry proposal not applied within this long is proposed again.
  std::chrono::milliseconds revoke_retry{3000};
};

class Lessor {
 public:
  // `not_leader` builds the NOT_LEADER answer naming the leader.
  Lessor(LessorOptions options, asio::io_context& io, RaftLoop* loop,
         Applier* applier, std::function<kv::ClientResponse()> not_leader);

  void Start();
  void Stop();

  // The smallest TTL granted, in seconds: 1.5 election timeouts rounded up
  // (a lease must outlive a failover), at least 1.
  int64_t min_ttl_seconds() const;

  // From the loop.
  void OnLeadershipChange();
  void OnLeasesListed(const LeasesListed& listed);
  void OnApplied(const Applied& applied);

  // Leader requests; each returns the whole answer (an error response when
  // this node is not the leader, has not loaded its leases yet, or does
  // not know the lease).
  kv::ClientResponse KeepAlive(int64_t id);
  kv::ClientResponse TimeToLive(int64_t id);
  kv::ClientResponse Leases() const;
  // Fills the remaining and granted TTL into a TimeToLive answer (the
  // applier filled the keys); false if the lease is unknown by now.
  bool FillTimeToLive(kv::LeaseTimeToLiveResponse* response) const;
  // Whether leases are loaded and kept on this node (it leads).
  bool serving() const { return state_ == State::kServing; }
  size_t size() const { return leases_.size(); }

 private:
  using Clock = std::chrono::steady_clock;
  enum class State { kIdle, kLoading, kServing };
  struct Lease {
    int64_t ttl = 0;  // seconds
    Clock::time_point expiry;
    std::optional<Clock::time_point> revoke_proposed;
  };

  void OnCheck();
  // Asks the applier for the leases once it has applied `load_after_index_`.
  void MaybeList(uint64_t applied_index);
  // Why a lease request cannot be answered here now, if it cannot.
  std::optional<kv::ClientResponse> Refusal() const;
  bool QuorumHeardRecently() const;

  const LessorOptions options_;
  RaftLoop* const loop_;
  Applier* const applier_;
  const std::function<kv::ClientResponse()> not_leader_;
  asio::steady_timer timer_;
  State state_ = State::kIdle;
  uint64_t loading_term_ = 0;
  uint64_t load_after_index_ = 0;  // this term's first entry
  bool list_requested_ = false;
  std::map<int64_t, Lease> leases_;
  bool stopped_ = false;
};

}  // namespace raftkv::server
