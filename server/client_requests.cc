// ClientRequests: checks, proposals, read batches, answers and deadlines
// (see client_requests.h). Never answers a write before it is applied.
#include "server/client_requests.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>

#include "server/applier.h"
#include "server/auth_crypto.h"
#include "server/member_directory.h"
#include "server/raft_loop.h"
#include "server/snapshot_transfer.h"
#include "server/watch_streams.h"
#include "storage/auth.h"
#include "storage/snapshot.h"

namespace raftkv::server {
namespace {

// Password hashes and checks waiting for the PasswordWorker at most; more
// are refused (UNAVAILABLE) rather than queued.
constexpr size_t kMaxPasswordJobs = 64;

uint64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ClientRequests::ClientRequests(const ServerConfig& config, asio::io_context& io,
                               RaftLoop* loop, Applier* applier,
                               MemberDirectory* members)
    : config_(config),
      loop_(loop),
      applier_(applier),
      members_(members),
      member_requests_(config, loop, members),
      lessor_(LessorOptions{config.tick * config.election_ticks}, io, loop,
              applier, [this] { return NotLeaderResponse(); }),
      auth_(config.id),
      passwords_(io, kMaxPasswordJobs),
      sweep_timer_(io) {}

void ClientRequests::Start() {
  OnSweep();
  lessor_.Start();
  passwords_.Start();
}

void ClientRequests::Stop() {
  stopped_ = true;
  sweep_timer_.cancel();
  lessor_.Stop();
  passwords_.Stop();
}

size_t ClientRequests::pending() const {
  size_t batched = 0;
  for (const auto& [ctx, batch] : read_batches_) batched += batch.size();
  return pending_writes_.size() + held_writes_.size() +
         unbatched_reads_.size() + batched + reads_in_applier_.size() +
         member_requests_.pending();
}

ClientRequests::Clock::time_point ClientRequests::DeadlineOf(
    const kv::ClientRequest& request) const {
  const auto timeout = request.timeout_ms() > 0
                           ? std::chrono::milliseconds(request.timeout_ms())
                           : config_.default_request_timeout;
  return Clock::now() + std::min(timeout, config_.default_request_timeout);
}

void ClientRequests::OnSweep() {
  const auto now = Clock::now();
  member_requests_.Sweep(now);
  ReleaseWatchesIfLeaderless(now);
  for (auto it = pending_writes_.begin(); it != pending_writes_.end();) {
    if (it->second.deadline <= now) {
      it->second.respond(ErrorResponse(
          kv::TIMEOUT, "not committed in time (the write may still apply)"));
      if (metrics_) metrics_->proposals_timed_out->Inc();
      ErasePending(it++);
    } else {
      ++it;
    }
  }
  for (auto it = held_writes_.begin(); it != held_writes_.end();) {
    if (it->deadline <= now) {
      it->respond(ErrorResponse(
          kv::UNAVAILABLE,
          "not proposed in time: node " + std::to_string(config_.id) +
              " holds writes back until its applier catches up"));
      it = EraseHeld(it);
    } else {
      ++it;
    }
  }
  for (auto it = read_batches_.begin(); it != read_batches_.end();) {
    auto& reads = it->second;
    auto keep = std::remove_if(reads.begin(), reads.end(), [now](auto& r) {
      if (r.deadline > now) return false;
      r.respond(ErrorResponse(kv::TIMEOUT, "read not confirmed in time"));
      return true;
    });
    reads.erase(keep, reads.end());
    it = reads.empty() ? read_batches_.erase(it) : std::next(it);
  }
  for (auto it = reads_in_applier_.begin(); it != reads_in_applier_.end();) {
    if (it->second.deadline <= now) {
      *it->second.abandoned = true;
      it->second.respond(
          ErrorResponse(kv::TIMEOUT, "read not applied in time"));
      it = reads_in_applier_.erase(it);
    } else {
      ++it;
    }
  }
  if (metrics_) metrics_->proposals_pending->Set(pending_writes_.size());
  sweep_timer_.expires_after(std::chrono::milliseconds(50));
  sweep_timer_.async_wait([this](const std::error_code& ec) {
    if (!ec) OnSweep();
  });
}

bool ClientRequests::Leaderless() const {
  const raft::RawNode& raft = loop_->raft();
  return raft.lead() == raft::kNone || !raft.taking_part();
}

void ClientRequests::ReleaseWatchesIfLeaderless(Clock::time_point now) {
  if (!Leaderless()) {
    leaderless_since_.reset();
    watches_released_ = false;
    return;
  }
  if (!leaderless_since_) leaderless_since_ = now;
  // A member cut off from the leader stops applying: its watches would
  // wait silently. After a few election timeouts (a normal election takes
  // one), they are sent to another member.
  const auto grace = 3 * config_.tick * config_.election_ticks;
  if (watches_released_ || watches_ == nullptr ||
      now - *leaderless_since_ < grace) {
    return;
  }
  watches_released_ = true;
  LOG(WARNING) << "raftkvd " << config_.id << ": no leader for "
               << std::chrono::duration_cast<std::chrono::milliseconds>(
                      now - *leaderless_since_)
                      .count()
               << " ms; its watches resume on other members";
  watches_->ReleaseAll("member " + std::to_string(config_.id) +
                       " has no leader");
}

kv::ClientResponse ClientRequests::NotLeaderResponse() const {
  const uint64_t lead = loop_->raft().lead();
  return server::NotLeaderResponse(config_.id, lead,
                                   members_->ClientAddress(lead));
}

namespace {

const char* OpName(const kv::ClientRequest& request) {
  switch (request.request_case()) {
    case kv::ClientRequest::kCommand:
      switch (request.command().op_case()) {
        case kv::Command::kPut:
          return "put";
        case kv::Command::kDeleteRange:
          return "delete";
        case kv::Command::kTxn:
          return "txn";
        case kv::Command::kRegisterClient:
          return "register";
        case kv::Command::kCompact:
          return "compact";
        case kv::Command::kLeaseGrant:
        case kv::Command::kLeaseRevoke:
          return "lease";
        default:
          return "other";
      }
    case kv::ClientRequest::kRange:
      return "range";
    case kv::ClientRequest::kStatus:
      return "status";
    case kv::ClientRequest::kMemberList:
    case kv::ClientRequest::kMemberAdd:
    case kv::ClientRequest::kMemberPromote:
    case kv::ClientRequest::kMemberRemove:
      return "member";
    case kv::ClientRequest::kWatchCreate:
    case kv::ClientRequest::kWatchCancel:
    case kv::ClientRequest::kWatchProgress:
      return "watch";
    case kv::ClientRequest::kLeaseKeepAlive:
      return "keepalive";
    case kv::ClientRequest::kLeaseTimeToLive:
    case kv::ClientRequest::kLeaseLeases:
      return "lease";
    default:
      return "other";
  }
}

}  // namespace

void ClientRequests::OnClientRequest(kv::ClientRequest request,
                                     Responder respond) {
  if (stopped_) return;
  if (metrics_ != nullptr) {
    // Counted and timed when answered, whatever path answers it.
    respond.set_metrics(&metrics_->RequestsFor(OpName(request)), Clock::now());
  }
  if (pending() >= config_.max_pending_requests) {
    respond(ErrorResponse(kv::UNAVAILABLE,
                          "server overloaded: too many pending requests"));
    return;
  }
  std::string user;
  kv::ErrorCode denied = auth_.Authenticate(request, WallClockMs(), &user);
  // Writes are checked on the leader (HandleWrite), linearizable reads
  // once served (OnReadsServed): a member's auth state may lag.
  const bool later = request.has_command() ||
                     (request.has_range() && !request.range().serializable() &&
                      !config_.unsafe_serve_stale_reads);
  if (denied == kv::OK && !later) denied = auth_.Permit(request, user);
  if (denied != kv::OK) {
    respond(ErrorResponse(denied, storage::AuthErrorMessage(denied)));
    return;
  }
  if (request.has_command()) {
    if (storage::IsAuthCommand(request.command())) {
      respond(ErrorResponse(
          kv::MALFORMED,
          "auth commands are made by the server: send the auth request"));
      return;
    }
    request.mutable_command()->set_auth_user(user);
  }
  switch (request.request_case()) {
    case kv::ClientRequest::kCommand:
      HandleWrite(request, std::move(respond));
      return;
    case kv::ClientRequest::kRange:
      HandleRead(request, std::move(respond));
      return;
    case kv::ClientRequest::kStatus:
      HandleStatus(std::move(respond));
      return;
    case kv::ClientRequest::kTransferLeader:
      HandleTransferLeader(request, std::move(respond));
      return;
    case kv::ClientRequest::kMemberList:
    case kv::ClientRequest::kMemberAdd:
    case kv::ClientRequest::kMemberPromote:
    case kv::ClientRequest::kMemberRemove:
      member_requests_.Handle(request, std::move(respond), DeadlineOf(request));
      return;
    case kv::ClientRequest::kWatchCreate:
      if (Leaderless()) {
        respond(ErrorResponse(kv::UNAVAILABLE,
                              "member " + std::to_string(config_.id) +
                                  " has no leader: watch another member"));
        return;
      }
      if (watches_ != nullptr) {
        watches_->Create(respond, std::move(*request.mutable_watch_create()));
      }
      return;
    case kv::ClientRequest::kWatchCancel:
      if (watches_ != nullptr) {
        watches_->Cancel(respond, request.watch_cancel().watch_id());
      }
      return;
    case kv::ClientRequest::kWatchProgress:
      if (watches_ != nullptr) watches_->RequestProgress(respond);
      return;
    case kv::ClientRequest::kLeaseKeepAlive:
      respond(lessor_.KeepAlive(request.lease_keep_alive().id()));
      return;
    case kv::ClientRequest::kLeaseTimeToLive:
      HandleTimeToLive(request.lease_time_to_live(), std::move(respond));
      return;
    case kv::ClientRequest::kLeaseLeases:
      respond(lessor_.Leases());
      return;
    case kv::ClientRequest::kAuthEnable:
    case kv::ClientRequest::kAuthDisable:
    case kv::ClientRequest::kAuthStatus:
    case kv::ClientRequest::kAuthenticate:
    case kv::ClientRequest::kAuthUserAdd:
    case kv::ClientRequest::kAuthUserGet:
    case kv::ClientRequest::kAuthUserList:
    case kv::ClientRequest::kAuthUserDelete:
    case kv::ClientRequest::kAuthUserChangePassword:
    case kv::ClientRequest::kAuthUserGrantRole:
    case kv::ClientRequest::kAuthUserRevokeRole:
    case kv::ClientRequest::kAuthRoleAdd:
    case kv::ClientRequest::kAuthRoleGet:
    case kv::ClientRequest::kAuthRoleList:
    case kv::ClientRequest::kAuthRoleDelete:
    case kv::ClientRequest::kAuthRoleGrantPermission:
    case kv::ClientRequest::kAuthRoleRevokePermission:
      HandleAuth(request, std::move(respond));
      return;
    default:
      respond(ErrorResponse(kv::MALFORMED, "empty or unknown request"));
      return;
  }
}

void ClientRequests::OnBackupRequest(const kv::ClientRequest& request, int fd) {
  if (stopped_ || transfers_ == nullptr) {
    ::close(fd);
    return;
  }
  std::string user;
  const kv::ErrorCode denied = auth_.Authorize(request, WallClockMs(), &user);
  if (denied != kv::OK) {
    kv::ClientResponse refused =
        ErrorResponse(denied, storage::AuthErrorMessage(denied));
    refused.set_request_id(request.request_id());
    transfers_->SendBackup(fd, refused.SerializeAsString(), nullptr);
    return;
  }
  raft::RawNode& raft = loop_->raft();
  if (!raft.taking_part() || raft.lead() == raft::kNone) {
    // A node catching up after a lost disk, or cut off from the leader,
    // may be far behind: the client should ask another.
    kv::ClientResponse refused = ErrorResponse(
        kv::UNAVAILABLE,
        "node " + std::to_string(config_.id) +
            (raft.taking_part() ? " knows no leader"
                                : " is rejoining after a lost disk") +
            ": ask another member for a backup");
    refused.set_request_id(request.request_id());
    transfers_->SendBackup(fd, refused.SerializeAsString(), nullptr);
    return;
  }
  LOG(INFO) << "raftkvd " << config_.id << ": a backup was requested";
  // Closed unless handed to the transfer (the point may never come if the
  // node stops first).
  auto owned = std::shared_ptr<int>(new int(fd), [](int* p) {
    if (*p >= 0) ::close(*p);
    delete p;
  });
  const uint64_t request_id = request.request_id();
  loop_->WithNextSnapshotPoint(
      [this, owned,
       request_id](std::shared_ptr<const storage::SnapshotSource> point) {
        kv::ClientResponse response;
        response.set_request_id(request_id);
        kv::SnapshotSaveResponse* save = response.mutable_snapshot_save();
        save->set_index(point->index());
        save->set_term(point->term());
        kv::ResponseHeader* header = save->mutable_header();
        header->set_cluster_id(config_.cluster_id);
        header->set_member_id(config_.id);
        header->set_raft_term(loop_->raft().term());
        header->set_revision(loop_->revision());
        const int fd = *owned;
        *owned = -1;
        transfers_->SendBackup(fd, response.SerializeAsString(),
                               std::move(point));
      });
}

Status ClientRequests::CheckSizes(const kv::Command& command) const {
  auto check_key = [this](const std::string& key) {
    if (key.size() > config_.max_key_bytes) {
      return Status::TooLarge("key of " + std::to_string(key.size()) +
                              " bytes exceeds the limit of " +
                              std::to_string(config_.max_key_bytes));
    }
    return Status::OK();
  };
  auto check_put = [&](const kv::PutRequest& put) {
    RAFTKV_RETURN_IF_ERROR(check_key(put.key()));
    if (put.value().size() > config_.max_value_bytes) {
      return Status::TooLarge("value of " + std::to_string(put.value().size()) +
                              " bytes exceeds the limit of " +
                              std::to_string(config_.max_value_bytes));
    }
    return Status::OK();
  };
  if (command.has_put()) return check_put(command.put());
  if (command.has_delete_range()) {
    return check_key(command.delete_range().key());
  }
  if (command.has_txn()) {
    size_t total = 0;
    for (const auto* ops :
         {&command.txn().success(), &command.txn().failure()}) {
      for (const kv::RequestOp& op : *ops) {
        if (op.has_request_put()) {
          RAFTKV_RETURN_IF_ERROR(check_put(op.request_put()));
          total += op.request_put().value().size();
        }
      }
    }
    if (total > config_.max_value_bytes) {
      return Status::TooLarge("transaction writes " + std::to_string(total) +
                              " bytes, over the limit of " +
                              std::to_string(config_.max_value_bytes));
    }
  }
  return Status::OK();
}

void ClientRequests::HandleWrite(kv::ClientRequest& request,
                                 Responder respond) {
  kv::Command* command = request.mutable_command();
  if (command->op_case() == kv::Command::OP_NOT_SET) {
    respond(ErrorResponse(kv::MALFORMED, "command without an operation"));
    return;
  }
  if (Status s = CheckSizes(*command); !s.ok()) {
    respond(ErrorResponse(kv::TOO_LARGE, s.message()));
    return;
  }
  if (command->has_lease_grant()) {
    // Every member agrees on the TTL in the log; the minimum is the
    // leader's to apply (a lease must outlive a failover).
    kv::LeaseGrantRequest* grant = command->mutable_lease_grant();
    grant->set_ttl(std::max(grant->ttl(), lessor_.min_ttl_seconds()));
  }
  if (loop_->raft().role() != raft::Role::kLeader) {
    respond(NotLeaderResponse());
    return;
  }
  if (const kv::ErrorCode denied = auth_.Permit(request, command->auth_user());
      denied != kv::OK) {
    respond(ErrorResponse(denied, storage::AuthErrorMessage(denied)));
    return;
  }
  const Clock::time_point deadline = DeadlineOf(request);
  const SessionKey session{command->client_id(), command->sequence()};
  if (session.first != 0 && JoinRetry(session, respond, deadline)) return;
  if (loop_->apply_backlog_full() || !held_writes_.empty()) {
    held_writes_.push_back(
        {std::move(request), Responders(std::move(respond)), deadline});
    if (session.first != 0) {
      held_by_session_[session] = std::prev(held_writes_.end());
    }
    return;
  }
  Propose(request, Responders(std::move(respond)), deadline);
}

bool ClientRequests::JoinRetry(const SessionKey& session, Responder& respond,
                               Clock::time_point deadline) {
  if (auto held = held_by_session_.find(session);
      held != held_by_session_.end()) {
    held->second->respond.Join(std::move(respond));
    held->second->deadline = std::max(held->second->deadline, deadline);
  } else if (auto index = pending_by_session_.find(session);
             index != pending_by_session_.end()) {
    PendingWrite& pending = pending_writes_.at(index->second);
    // Proposed in an earlier term, its entry may be gone: propose again
    // (the state machine applies a session's sequence number once).
    if (pending.term != loop_->raft().term()) return false;
    pending.respond.Join(std::move(respond));
    pending.deadline = std::max(pending.deadline, deadline);
  } else {
    return false;
  }
  if (metrics_) metrics_->write_retries_joined->Inc();
  return true;
}

void ClientRequests::ErasePending(
    std::map<uint64_t, PendingWrite>::iterator it) {
  auto by_session = pending_by_session_.find(it->second.session);
  if (by_session != pending_by_session_.end() &&
      by_session->second == it->first) {
    pending_by_session_.erase(by_session);
  }
  pending_writes_.erase(it);
}

std::list<ClientRequests::HeldWrite>::iterator ClientRequests::EraseHeld(
    std::list<HeldWrite>::iterator it) {
  const kv::Command& command = it->request.command();
  held_by_session_.erase({command.client_id(), command.sequence()});
  return held_writes_.erase(it);
}

size_t ClientRequests::OnApplyBacklogFreed() {
  // Proposing does not refill the backlog (only applying empties it, and
  // committing fills it), so every held write goes now, in order.
  std::list<HeldWrite> held = std::move(held_writes_);
  held_writes_.clear();
  held_by_session_.clear();
  for (HeldWrite& w : held) {
    if (loop_->raft().role() != raft::Role::kLeader) {
      w.respond(NotLeaderResponse());
    } else {
      Propose(w.request, std::move(w.respond), w.deadline);
    }
  }
  return held.size();
}

void ClientRequests::Propose(kv::ClientRequest& request, Responders respond,
                             Clock::time_point deadline) {
  raft::RawNode& raft = loop_->raft();
  kv::Command* command = request.mutable_command();
  command->set_proposed_at_ms(WallClockMs());
  auto index = raft.Propose(command->SerializeAsString());
  if (!index.ok()) {
    if (index.status().IsNotLeader()) {
      respond(NotLeaderResponse());
    } else {
      respond(ErrorResponse(kv::UNAVAILABLE, index.status().ToString()));
    }
    return;
  }
  auto stale = pending_writes_.find(*index);
  if (stale != pending_writes_.end()) {
    // A write this node proposed at the same index in an earlier term; the
    // log was truncated there, so that entry can never commit.
    stale->second.respond(ErrorResponse(
        kv::UNAVAILABLE, "leadership changed before the write committed"));
    if (metrics_) metrics_->proposals_lost->Inc();
    ErasePending(stale);
  }
  const SessionKey session{command->client_id(), command->sequence()};
  pending_writes_.emplace(
      *index, PendingWrite{raft.term(), std::move(respond), deadline,
                           Clock::now(), session, command->auth_user()});
  if (session.first != 0) pending_by_session_[session] = *index;
}

void ClientRequests::HandleRead(kv::ClientRequest& request, Responder respond) {
  PendingRead read{std::move(*request.mutable_range()), std::move(respond),
                   DeadlineOf(request)};
  // Checked again when served, against the auth state as of the read
  // index: this node may not have applied an `auth enable` that the read
  // index covers, so a token counts even while auth looks disabled here.
  read.auth_token = request.auth_token();
  if (read.request.serializable() || config_.unsafe_serve_stale_reads) {
    std::vector<PendingRead> now;
    now.push_back(std::move(read));
    ReadAt(0, std::move(now));
    return;
  }
  if (loop_->raft().lead() == raft::kNone) {
    read.respond(NotLeaderResponse());
    return;
  }
  unbatched_reads_.push_back(std::move(read));  // one ReadIndex per loop pass
}

void ClientRequests::StartReadBatch() {
  if (unbatched_reads_.empty()) return;
  std::vector<PendingRead> batch = std::move(unbatched_reads_);
  unbatched_reads_.clear();
  const std::string ctx = std::to_string(next_read_ctx_++);
  Status s = loop_->raft().ReadIndex(ctx);
  if (!s.ok()) {
    for (PendingRead& r : batch) r.respond(NotLeaderResponse());
    return;
  }
  read_batches_.emplace(ctx, std::move(batch));
}

void ClientRequests::ReadAt(uint64_t read_index,
                            std::vector<PendingRead> reads) {
  std::vector<ReadRequest> handed;
  handed.reserve(reads.size());
  for (PendingRead& r : reads) {
    const uint64_t id = next_read_id_++;
    auto abandoned = std::make_shared<std::atomic<bool>>(false);
    Waiting waiting{std::move(r.respond), r.deadline, abandoned};
    if (!r.auth_token.empty()) {
      waiting.recheck.emplace();
      waiting.recheck->set_auth_token(r.auth_token);
      *waiting.recheck->mutable_range() = r.request;
    }
    reads_in_applier_.emplace(id, std::move(waiting));
    handed.push_back(
        {id, std::move(r.request), r.lease_keys, std::move(abandoned)});
  }
  applier_->Read(read_index, std::move(handed));
}

void ClientRequests::OnReadStates(
    const std::vector<raft::ReadState>& read_states) {
  for (const raft::ReadState& rs : read_states) {
    auto it = read_batches_.find(rs.request_ctx);
    if (it == read_batches_.end()) continue;
    ReadAt(rs.index, std::move(it->second));
    read_batches_.erase(it);
  }
}

void ClientRequests::OnReadsServed(ReadsServed served) {
  for (auto& [id, response] : served.responses) {
    auto it = reads_in_applier_.find(id);
    if (it == reads_in_applier_.end()) continue;  // timed out meanwhile
    if (it->second.recheck) {
      // Authorised as of everything applied up to the read index.
      std::string user;
      kv::ErrorCode denied =
          auth_.Authenticate(*it->second.recheck, WallClockMs(), &user);
      if (denied == kv::OK) denied = auth_.Permit(*it->second.recheck, user);
      if (denied != kv::OK) {
        it->second.respond(
            ErrorResponse(denied, storage::AuthErrorMessage(denied)));
        reads_in_applier_.erase(it);
        continue;
      }
    }
    kv::ResponseHeader* h = nullptr;
    if (response.has_range()) {
      h = response.mutable_range()->mutable_header();
    } else if (response.has_lease_time_to_live()) {
      // The keys are read; the time left is the leader's, now.
      if (!lessor_.FillTimeToLive(response.mutable_lease_time_to_live())) {
        response = lessor_.TimeToLive(response.lease_time_to_live().id());
      }
      if (response.has_lease_time_to_live()) {
        h = response.mutable_lease_time_to_live()->mutable_header();
      }
    }
    if (h != nullptr) {
      h->set_member_id(config_.id);
      h->set_cluster_id(config_.cluster_id);
      h->set_raft_term(loop_->raft().term());
    }
    it->second.respond(std::move(response));
    reads_in_applier_.erase(it);
  }
}

void ClientRequests::OnApplied(const Applied& applied) {
  if (applied.auth) auth_.SetState(applied.auth, applied.index);
  member_requests_.OnApplied(applied);
  lessor_.OnApplied(applied);
  const auto now = Clock::now();
  for (const Applied::Result& r : applied.results) {
    auto it = pending_writes_.find(r.index);
    if (it == pending_writes_.end()) continue;
    if (it->second.term != r.term) {
      // Another leader's entry took this index: ours was never committed.
      it->second.respond(ErrorResponse(
          kv::UNAVAILABLE, "leadership changed before the write committed"));
      if (metrics_) metrics_->proposals_lost->Inc();
    } else {
      it->second.respond(ResponseFor(it->second, r.result));
      if (metrics_) {
        metrics_->proposals_applied->Inc();
        metrics_->proposal->Observe(
            std::chrono::duration<double>(now - it->second.proposed_at)
                .count());
      }
    }
    ErasePending(it);
  }
}

void ClientRequests::OnLeadershipChange() {
  lessor_.OnLeadershipChange();
  if (loop_->raft().role() != raft::Role::kLeader) {
    for (HeldWrite& w : held_writes_) w.respond(NotLeaderResponse());
    held_writes_.clear();
    held_by_session_.clear();
  }
  // The core dropped its pending ReadIndex requests: let clients retry.
  for (auto& [ctx, batch] : read_batches_) {
    for (PendingRead& r : batch) {
      r.respond(ErrorResponse(kv::UNAVAILABLE, "leadership changed"));
    }
  }
  read_batches_.clear();
}

void ClientRequests::HandleStatus(Responder respond) {
  const raft::NodeStatus st = loop_->raft().GetStatus();
  kv::ClientResponse response;
  kv::StatusResponse* s = response.mutable_status();
  s->set_id(st.id);
  s->set_role(raft::RoleName(st.role));
  s->set_term(st.term);
  s->set_leader_id(st.lead);
  s->set_commit_index(st.commit);
  s->set_applied_index(loop_->applied_index());
  s->set_last_index(st.last_index);
  s->set_rejoin(st.rejoin);
  const LoopMonitor& monitor = loop_->monitor();
  s->set_loop_stall_max_ms(monitor.max_stall().ms());
  s->set_loop_stall_max_cpu_wait_ms(monitor.max_stall().cpu_wait_ms());
  s->set_loop_stall_recent_ms(monitor.recent_stall().ms());
  s->set_loop_stall_recent_cpu_wait_ms(monitor.recent_stall().cpu_wait_ms());
  s->set_log_cache_bytes(loop_->log_cache_bytes());
  s->set_etcd_address(config_.etcd_advertise);
  s->mutable_header()->set_revision(loop_->revision());
  s->mutable_header()->set_member_id(config_.id);
  s->mutable_header()->set_cluster_id(config_.cluster_id);
  s->mutable_header()->set_raft_term(st.term);
  *s->mutable_members() = member_requests_.List().members();
  respond(std::move(response));
}

void ClientRequests::HandleTimeToLive(const kv::LeaseTimeToLiveRequest& request,
                                      Responder respond) {
  kv::ClientResponse answer = lessor_.TimeToLive(request.id());
  if (answer.error() != kv::OK || !request.keys()) {
    if (answer.has_lease_time_to_live()) {
      kv::ResponseHeader* h =
          answer.mutable_lease_time_to_live()->mutable_header();
      h->set_member_id(config_.id);
      h->set_cluster_id(config_.cluster_id);
      h->set_raft_term(loop_->raft().term());
      h->set_revision(loop_->revision());
    }
    respond(std::move(answer));
    return;
  }
  // The keys come from the state machine, as applied here.
  PendingRead read{kv::RangeRequest(), std::move(respond),
                   Clock::now() + config_.default_request_timeout,
                   request.id()};
  std::vector<PendingRead> now;
  now.push_back(std::move(read));
  ReadAt(0, std::move(now));
}

void ClientRequests::HandleTransferLeader(const kv::ClientRequest& request,
                                          Responder respond) {
  raft::RawNode& raft = loop_->raft();
  if (raft.role() != raft::Role::kLeader) {
    respond(NotLeaderResponse());
    return;
  }
  Status s = raft.TransferLeader(request.transfer_leader().transferee());
  if (!s.ok()) {
    respond(ErrorResponse(kv::INVALID, s.ToString()));
    return;
  }
  LOG(INFO) << "raftkvd " << config_.id << ": leadership transfer to "
            << request.transfer_leader().transferee() << " requested";
  kv::ClientResponse response;
  response.mutable_transfer_leader();
  respond(std::move(response));
}

}  // namespace raftkv::server

namespace raftkv::server {

void ClientRequests::FillHeader(kv::ResponseHeader* header) const {
  header->set_cluster_id(config_.cluster_id);
  header->set_member_id(config_.id);
  header->set_raft_term(loop_->raft().term());
  header->set_revision(loop_->revision());
}

kv::ClientResponse ClientRequests::ResponseFor(
    const PendingWrite& write, const kv::CommandResult& result) {
  if (result.error() == kv::CommandResult::AUTH) {
    // Refused at apply (the keys of a lease, or the auth store's rules).
    if (result.auth_error() == kv::PERMISSION_DENIED) {
      auth_.LogDenial(write.auth_user, "a write with a lease's keys",
                      result.auth_error());
    }
    return ErrorResponse(result.auth_error(), result.error_message());
  }
  kv::ClientResponse response;
  const auto* from =
      kv::CommandResult::descriptor()->FindFieldByNumber(result.result_case());
  const auto* to =
      from == nullptr
          ? nullptr
          : kv::ClientResponse::descriptor()->FindFieldByName(from->name());
  if (from != nullptr && from->name().rfind("auth_", 0) == 0 && to != nullptr) {
    // An auth command's response goes in the field of the same name.
    response.GetReflection()
        ->MutableMessage(&response, to)
        ->CopyFrom(result.GetReflection()->GetMessage(result, from));
    return response;
  }
  *response.mutable_command() = result;
  return response;
}

void ClientRequests::HandleAuth(kv::ClientRequest& request, Responder respond) {
  kv::Command command;
  switch (request.request_case()) {
    case kv::ClientRequest::kAuthenticate:
      HandleAuthenticate(request.authenticate(), std::move(respond));
      return;
    case kv::ClientRequest::kAuthEnable:
      command.mutable_auth_enable()->set_token_secret(RandomBytes(32));
      break;
    case kv::ClientRequest::kAuthDisable:
      command.mutable_auth_disable();
      break;
    case kv::ClientRequest::kAuthUserAdd:
      *command.mutable_auth_user_add() = request.auth_user_add();
      break;
    case kv::ClientRequest::kAuthUserDelete:
      *command.mutable_auth_user_delete() = request.auth_user_delete();
      break;
    case kv::ClientRequest::kAuthUserChangePassword:
      *command.mutable_auth_user_change_password() =
          request.auth_user_change_password();
      break;
    case kv::ClientRequest::kAuthUserGrantRole:
      *command.mutable_auth_user_grant_role() = request.auth_user_grant_role();
      break;
    case kv::ClientRequest::kAuthUserRevokeRole:
      *command.mutable_auth_user_revoke_role() =
          request.auth_user_revoke_role();
      break;
    case kv::ClientRequest::kAuthRoleAdd:
      *command.mutable_auth_role_add() = request.auth_role_add();
      break;
    case kv::ClientRequest::kAuthRoleDelete:
      *command.mutable_auth_role_delete() = request.auth_role_delete();
      break;
    case kv::ClientRequest::kAuthRoleGrantPermission:
      *command.mutable_auth_role_grant_permission() =
          request.auth_role_grant_permission();
      break;
    case kv::ClientRequest::kAuthRoleRevokePermission:
      *command.mutable_auth_role_revoke_permission() =
          request.auth_role_revoke_permission();
      break;
    default: {
      // auth_status, user and role queries: the applied auth state.
      kv::ClientResponse response;
      const kv::ErrorCode code =
          storage::AnswerAuthQuery(auth_.state(), request, &response);
      if (code != kv::OK) {
        respond(ErrorResponse(code, storage::AuthErrorMessage(code)));
        return;
      }
      const auto* field = kv::ClientResponse::descriptor()->FindFieldByNumber(
          response.response_case());
      auto* answer = response.GetReflection()->MutableMessage(&response, field);
      FillHeader(static_cast<kv::ResponseHeader*>(
          answer->GetReflection()->MutableMessage(
              answer, answer->GetDescriptor()->FindFieldByNumber(1))));
      respond(std::move(response));
      return;
    }
  }
  // Passwords are hashed before proposing (no clear password in the log),
  // on the PasswordWorker.
  std::string* password = nullptr;
  kv::AuthUserAddRequest* add = nullptr;
  kv::AuthUserChangePasswordRequest* change = nullptr;
  if (command.has_auth_user_add()) {
    add = command.mutable_auth_user_add();
    add->clear_hashed_password();
    add->clear_salt();
    add->clear_iterations();
    if (!add->options().no_password()) password = add->mutable_password();
  } else if (command.has_auth_user_change_password()) {
    change = command.mutable_auth_user_change_password();
    password = change->mutable_password();
  }
  const uint64_t timeout_ms = request.timeout_ms();
  if (password == nullptr) {
    if (add != nullptr) add->clear_password();
    ProposeAuth(timeout_ms, std::move(command), std::move(respond));
    return;
  }
  if (loop_->raft().role() != raft::Role::kLeader) {
    respond(NotLeaderResponse());  // before spending a hash on it
    return;
  }
  std::string clear = std::move(*password);
  password->clear();
  auto job = [this, clear = std::move(clear), command = std::move(command),
              timeout_ms, respond]() mutable -> PasswordWorker::Continuation {
    PasswordHash hash = HashPassword(clear, kPasswordIterations);
    if (command.has_auth_user_add()) {
      kv::AuthUserAddRequest* r = command.mutable_auth_user_add();
      r->set_hashed_password(hash.hashed_password);
      r->set_salt(hash.salt);
      r->set_iterations(hash.iterations);
    } else {
      kv::AuthUserChangePasswordRequest* r =
          command.mutable_auth_user_change_password();
      r->set_hashed_password(hash.hashed_password);
      r->set_salt(hash.salt);
      r->set_iterations(hash.iterations);
    }
    return [this, command = std::move(command), timeout_ms, respond]() mutable {
      if (!stopped_) ProposeAuth(timeout_ms, std::move(command), respond);
    };
  };
  if (!passwords_.Submit(std::move(job))) {
    respond(ErrorResponse(kv::UNAVAILABLE,
                          "too many password operations in progress"));
  }
}

void ClientRequests::ProposeAuth(uint64_t timeout_ms, kv::Command command,
                                 Responder respond) {
  kv::ClientRequest request;
  request.set_timeout_ms(timeout_ms);
  *request.mutable_command() = std::move(command);
  HandleWrite(request, std::move(respond));
}

void ClientRequests::HandleAuthenticate(const kv::AuthenticateRequest& request,
                                        Responder respond) {
  if (!auth_.enabled()) {
    respond(ErrorResponse(kv::AUTH_NOT_ENABLED,
                          storage::AuthErrorMessage(kv::AUTH_NOT_ENABLED)));
    return;
  }
  auto fail = [this](const std::string& name, const Responder& r) {
    auth_.LogDenial(name, "authenticate", kv::AUTH_FAILED);
    r(ErrorResponse(kv::AUTH_FAILED,
                    storage::AuthErrorMessage(kv::AUTH_FAILED)));
  };
  const kv::AuthUser* user = storage::FindUser(auth_.state(), request.name());
  if (user == nullptr || user->no_password()) {
    fail(request.name(), respond);
    return;
  }
  auto job = [this, user = *user, password = request.password(), respond,
              fail]() -> PasswordWorker::Continuation {
    const bool ok = CheckPassword(password, user);
    return [this, ok, user, respond, fail] {
      if (stopped_) return;
      const kv::AuthUser* now = storage::FindUser(auth_.state(), user.name());
      // The user may have changed while its password was checked.
      if (!ok || !auth_.enabled() || now == nullptr ||
          now->token_revision() != user.token_revision()) {
        fail(user.name(), respond);
        return;
      }
      kv::ClientResponse response;
      kv::AuthenticateResponse* answer = response.mutable_authenticate();
      answer->set_token(auth_.IssueToken(user.name(), WallClockMs()));
      FillHeader(answer->mutable_header());
      respond(std::move(response));
    };
  };
  if (!passwords_.Submit(std::move(job))) {
    respond(ErrorResponse(kv::UNAVAILABLE,
                          "too many authentication requests in progress"));
  }
}

}  // namespace raftkv::server
