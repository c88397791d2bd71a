// ClientRequests: raftkvd's client-facing side on the loop's thread: it
// checks each request, proposes writes through the Raft core and answers
// them once applied, batches linearizable reads into ReadIndex rounds (every
// read that arrives in one loop pass shares one round) and has the applier
// serve them once it has applied their read index, and answers status and
// leader-transfer requests; membership requests go to MemberRequests,
// watch requests to WatchStreams, lease keep-alives and queries to the
// Lessor. Every request has a deadline; a sweep answers TIMEOUT to those
// that pass it.
//
// While the node's apply backlog is full (RaftLoop::apply_backlog_full())
// a leader holds new writes back, unproposed, in arrival order, and
// proposes them once the applier has caught up.
//
// A client retries a write it got no answer to in time, with the same
// session and sequence number. A retry of a write this leader holds back,
// or has proposed in its current term and not answered yet, joins it
// instead of becoming another log entry: both attempts get the one answer.
// Without that, an overloaded leader's slow answers brought retries, whose
// entries slowed it further (a write backlog 10x the writes, answers
// timing out after 119 attempts).
//
// While authentication is enabled, AuthGuard (auth_guard.h) checks each
// request's token and permissions first; auth, user and role requests
// that change the auth state become commands (passwords hashed on the
// PasswordWorker first, never on this thread), the others are answered
// from the applied auth state.
//
// Writes are answered only after their entry is committed and applied.
// Must never answer a write whose entry was replaced by another leader's,
// or serve a linearizable read below its read index.
// Thread-safety: the loop's thread only.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client/kv.pb.h"
#include "raft/ready.h"
#include "server/auth_guard.h"
#include "server/client_service.h"
#include "server/handoff.h"
#include "server/lessor.h"
#include "server/member_requests.h"
#include "server/node_metrics.h"
#include "server/password_worker.h"
#include "server/server_config.h"

namespace raftkv::server {

class Applier;
class MemberDirectory;
class RaftLoop;
class SnapshotTransfers;
class WatchStreams;

class ClientRequests {
 public:
  ClientRequests(const ServerConfig& config, asio::io_context& io,
                 RaftLoop* loop, Applier* applier, MemberDirectory* members);

  void Start();
  void Stop();
  // Where to count requests (may stay null).
  void set_metrics(NodeMetrics* metrics) { metrics_ = metrics; }

  // A request from ClientService.
  void OnClientRequest(kv::ClientRequest request, Responder respond);
  // A backup (snapshot_save) whose connection, `fd`, ClientService handed
  // over: streamed from the next snapshot point by `transfers`.
  void OnBackupRequest(const kv::ClientRequest& request, int fd);
  void set_transfers(SnapshotTransfers* transfers) { transfers_ = transfers; }
  void set_watches(WatchStreams* watches) { watches_ = watches; }
  // Leases this node keeps as the leader (0 on a follower).
  size_t lease_count() const { return lessor_.size(); }
  // Starts one ReadIndex round for the reads that arrived since the last
  // (called by the loop before it handles the core's Ready).
  void StartReadBatch();

  // From the raft loop.
  void OnLeadershipChange();
  void OnReadStates(const std::vector<raft::ReadState>& read_states);
  void OnApplied(const Applied& applied);
  // The raft loop's apply backlog is no longer full: proposes the writes
  // held back and returns how many there were.
  size_t OnApplyBacklogFreed();
  // From the applier (posted).
  void OnReadsServed(ReadsServed served);
  void OnLeasesListed(const LeasesListed& listed) {
    lessor_.OnLeasesListed(listed);
  }
  // The auth state as applied through log index `index` (at start-up, and
  // after a snapshot install).
  void OnAuthState(std::shared_ptr<const kv::AuthState> state, uint64_t index) {
    auth_.SetState(std::move(state), index);
  }
  const AuthGuard& auth() const { return auth_; }

 private:
  using Clock = std::chrono::steady_clock;
  // A write's (client_id, sequence); (0, 0) without a session.
  using SessionKey = std::pair<uint64_t, uint64_t>;
  // Every attempt waiting for one write's answer: the first and the
  // retries that joined it.
  class Responders {
   public:
    explicit Responders(Responder first) { all_.push_back(std::move(first)); }
    void Join(Responder retry) { all_.push_back(std::move(retry)); }
    void operator()(const kv::ClientResponse& response) const {
      for (const Responder& r : all_) r(response);
    }

   private:
    std::vector<Responder> all_;
  };
  struct PendingWrite {
    uint64_t term;
    Responders respond;
    Clock::time_point deadline;
    Clock::time_point proposed_at;
    SessionKey session;
    std::string auth_user;  // for the log of a denial at apply
  };
  struct PendingRead {
    kv::RangeRequest request;
    Responder respond;
    Clock::time_point deadline;
    int64_t lease_keys = 0;  // ReadRequest::lease_keys
    // The request's token, if any: checked again once the read is served
    // (the auth state then includes everything up to the read index, which
    // may enable auth this node had not applied when the read arrived).
    std::string auth_token;
  };
  // A write held back while the apply backlog is full (never proposed).
  struct HeldWrite {
    kv::ClientRequest request;
    Responders respond;
    Clock::time_point deadline;
  };
  struct Waiting {
    Responder respond;
    Clock::time_point deadline;
    // Shared with the read pool: set when the read times out here.
    std::shared_ptr<std::atomic<bool>> abandoned;
    // A range read to authorise again when served (PendingRead::auth_token).
    std::optional<kv::ClientRequest> recheck;
  };

  void OnSweep();
  // Whether this node knows no leader (or is rejoining).
  bool Leaderless() const;
  // After a few election timeouts without a leader, cancels every watch
  // (with its resume revision) so that clients follow another member.
  void ReleaseWatchesIfLeaderless(Clock::time_point now);
  void HandleWrite(kv::ClientRequest& request, Responder respond);
  void Propose(kv::ClientRequest& request, Responders respond,
               Clock::time_point deadline);
  // Joins `respond` to the unanswered write of the same session and
  // sequence, if this leader holds one back or proposed one in its current
  // term; false if there is none.
  bool JoinRetry(const SessionKey& session, Responder& respond,
                 Clock::time_point deadline);
  void ErasePending(std::map<uint64_t, PendingWrite>::iterator it);
  std::list<HeldWrite>::iterator EraseHeld(std::list<HeldWrite>::iterator it);
  void HandleRead(kv::ClientRequest& request, Responder respond);
  void HandleStatus(Responder respond);
  void HandleTimeToLive(const kv::LeaseTimeToLiveRequest& request,
                        Responder respond);
  void HandleTransferLeader(const kv::ClientRequest& request,
                            Responder respond);
  Status CheckSizes(const kv::Command& command) const;
  // Auth, user and role requests (auth_guard.h checked them).
  void HandleAuth(kv::ClientRequest& request, Responder respond);
  void HandleAuthenticate(const kv::AuthenticateRequest& request,
                          Responder respond);
  // Proposes an auth command as a write of its own.
  void ProposeAuth(uint64_t timeout_ms, kv::Command command, Responder respond);
  // The client's answer to an applied command's result (auth results in
  // their own ClientResponse fields, auth errors as error codes).
  kv::ClientResponse ResponseFor(const PendingWrite& write,
                                 const kv::CommandResult& result);
  void FillHeader(kv::ResponseHeader* header) const;
  // Hands reads to the applier, to serve once it applied `read_index`.
  void ReadAt(uint64_t read_index, std::vector<PendingRead> reads);
  kv::ClientResponse NotLeaderResponse() const;
  Clock::time_point DeadlineOf(const kv::ClientRequest& request) const;
  size_t pending() const;

  const ServerConfig& config_;
  NodeMetrics* metrics_ = nullptr;
  RaftLoop* const loop_;
  Applier* const applier_;
  MemberDirectory* const members_;
  MemberRequests member_requests_;
  SnapshotTransfers* transfers_ = nullptr;
  WatchStreams* watches_ = nullptr;
  Lessor lessor_;
  AuthGuard auth_;
  PasswordWorker passwords_;
  asio::steady_timer sweep_timer_;

  std::map<uint64_t, PendingWrite> pending_writes_;  // by log index
  std::map<SessionKey, uint64_t> pending_by_session_;
  std::list<HeldWrite> held_writes_;  // in arrival order
  std::map<SessionKey, std::list<HeldWrite>::iterator> held_by_session_;
  std::vector<PendingRead> unbatched_reads_;
  std::map<std::string, std::vector<PendingRead>> read_batches_;  // by ctx
  std::map<uint64_t, Waiting> reads_in_applier_;                  // by read id
  std::optional<Clock::time_point> leaderless_since_;
  bool watches_released_ = false;
  uint64_t next_read_ctx_ = 1;
  uint64_t next_read_id_ = 1;
  bool stopped_ = false;
};

}  // namespace raftkv::server
