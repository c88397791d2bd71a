// Lessor: lease expiry on the leader (see lessor.h). Never revokes except
// through the log.
#include "server/lessor.h"

#include <glog/logging.h>

#include <algorithm>

#include "server/applier.h"
#include "server/client_service.h"
#include "server/raft_loop.h"

namespace raftkv::server {
namespace {

uint64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

kv::ClientResponse LeaseNotFound(int64_t id) {
  return ErrorResponse(kv::LEASE_NOT_FOUND,
                       "etcdserver: requested lease not found (lease " +
                           std::to_string(id) + ")");
}

}  // namespace

Lessor::Lessor(LessorOptions options, asio::io_context& io, RaftLoop* loop,
               Applier* applier, std::function<kv::ClientResponse()> not_leader)
    : options_(options),
      loop_(loop),
      applier_(applier),
      not_leader_(std::move(not_leader)),
      timer_(io) {}

void Lessor::Start() { OnCheck(); }

void Lessor::Stop() {
  stopped_ = true;
  timer_.cancel();
}

int64_t Lessor::min_ttl_seconds() const {
  const int64_t ms = options_.election_timeout.count() * 3 / 2;
  return std::max<int64_t>(1, (ms + 999) / 1000);
}

void Lessor::OnLeadershipChange() {
  raft::RawNode& raft = loop_->raft();
  if (raft.role() != raft::Role::kLeader) {
    if (state_ != State::kIdle) {
      LOG(INFO) << "lessor: no longer the leader; " << leases_.size()
                << " leases are the next leader's to keep";
    }
    state_ = State::kIdle;
    leases_.clear();
    return;
  }
  if (state_ != State::kIdle && loading_term_ == raft.term()) return;
  // The leases are loaded once everything committed before this term is
  // applied (the term's first entry, appended on election, is the last
  // entry now): a grant the previous leader answered is then known here,
  // so no keep-alive of it is refused as unknown.
  state_ = State::kLoading;
  loading_term_ = raft.term();
  load_after_index_ = raft.GetStatus().last_index;
  list_requested_ = false;
  leases_.clear();
  MaybeList(loop_->applied_index());
}

void Lessor::MaybeList(uint64_t applied_index) {
  if (state_ != State::kLoading || list_requested_ ||
      applied_index < load_after_index_) {
    return;
  }
  // Everything applied before this request is in the list; everything
  // after comes as Applied, after it.
  list_requested_ = true;
  applier_->ListLeases(loading_term_);
}

void Lessor::OnLeasesListed(const LeasesListed& listed) {
  if (state_ != State::kLoading || !list_requested_ ||
      listed.term != loading_term_) {
    return;
  }
  if (!listed.status.ok()) {
    LOG(ERROR) << "lessor: cannot load the leases: "
               << listed.status.ToString();
    return;  // the applier stops the node
  }
  const Clock::time_point now = Clock::now();
  for (const storage::LeaseInfo& l : listed.leases) {
    leases_[l.id] = {
        l.ttl, now + std::chrono::seconds(l.ttl) + options_.election_timeout,
        std::nullopt};
  }
  state_ = State::kServing;
  LOG(INFO) << "lessor: leading with " << leases_.size()
            << " leases, each extended to its TTL plus an election timeout";
}

void Lessor::OnApplied(const Applied& applied) {
  if (state_ == State::kLoading) MaybeList(applied.index);
  if (state_ != State::kServing) return;  // the list includes these
  const Clock::time_point now = Clock::now();
  for (const storage::LeaseInfo& l : applied.leases_granted) {
    leases_[l.id] = {l.ttl, now + std::chrono::seconds(l.ttl), std::nullopt};
  }
  for (int64_t id : applied.leases_revoked) leases_.erase(id);
}

bool Lessor::QuorumHeardRecently() const {
  const raft::ConfState& conf = loop_->raft().conf_state();
  size_t heard = 0;
  for (uint64_t id : conf.voters()) {
    if (loop_->HeardRecently(id)) ++heard;
  }
  return heard > static_cast<size_t>(conf.voters_size()) / 2;
}

std::optional<kv::ClientResponse> Lessor::Refusal() const {
  if (loop_->raft().role() != raft::Role::kLeader || state_ == State::kIdle) {
    return not_leader_();
  }
  if (state_ == State::kLoading) {
    return ErrorResponse(kv::UNAVAILABLE,
                         "the new leader is loading its leases; retry");
  }
  return std::nullopt;
}

kv::ClientResponse Lessor::KeepAlive(int64_t id) {
  if (auto refused = Refusal()) return *refused;
  auto it = leases_.find(id);
  if (it == leases_.end()) return LeaseNotFound(id);
  if (!QuorumHeardRecently()) {
    return ErrorResponse(kv::UNAVAILABLE,
                         "the leader has not heard from a quorum within an "
                         "election timeout; retry");
  }
  // Past its expiry the lease is being revoked: it is not renewed (etcd
  // answers the same way).
  const Clock::time_point now = Clock::now();
  if (it->second.expiry <= now) return LeaseNotFound(id);
  it->second.expiry = now + std::chrono::seconds(it->second.ttl);
  kv::ClientResponse response;
  kv::LeaseKeepAliveResponse* r = response.mutable_lease_keep_alive();
  r->set_id(id);
  r->set_ttl(it->second.ttl);
  return response;
}

bool Lessor::FillTimeToLive(kv::LeaseTimeToLiveResponse* response) const {
  auto it = leases_.find(response->id());
  if (state_ != State::kServing || it == leases_.end()) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      it->second.expiry - Clock::now());
  response->set_ttl(std::max<int64_t>(0, (left.count() + 999) / 1000));
  response->set_granted_ttl(it->second.ttl);
  return true;
}

kv::ClientResponse Lessor::TimeToLive(int64_t id) {
  if (auto refused = Refusal()) return *refused;
  kv::ClientResponse response;
  kv::LeaseTimeToLiveResponse* r = response.mutable_lease_time_to_live();
  r->set_id(id);
  if (!FillTimeToLive(r)) return LeaseNotFound(id);
  return response;
}

kv::ClientResponse Lessor::Leases() const {
  if (auto refused = Refusal()) return *refused;
  kv::ClientResponse response;
  kv::LeaseLeasesResponse* r = response.mutable_lease_leases();
  for (const auto& [id, lease] : leases_) r->add_leases()->set_id(id);
  return response;
}

void Lessor::OnCheck() {
  if (stopped_) return;
  if (state_ == State::kServing &&
      loop_->raft().role() == raft::Role::kLeader) {
    const Clock::time_point now = Clock::now();
    size_t proposed = 0;
    for (auto& [id, lease] : leases_) {
      if (proposed >= options_.max_revokes_per_check) break;
      if (lease.expiry > now) continue;
      if (lease.revoke_proposed &&
          now - *lease.revoke_proposed < options_.revoke_retry) {
        continue;
      }
      kv::Command command;
      command.set_proposed_at_ms(WallClockMs());
      command.mutable_lease_revoke()->set_id(id);
      auto index = loop_->raft().Propose(command.SerializeAsString());
      if (!index.ok()) break;  // not leading any more, or overloaded
      lease.revoke_proposed = now;
      if (proposed++ < 3) {
        LOG(INFO) << "lessor: lease " << id << " (TTL " << lease.ttl
                  << " s) expired; revoking it";
      }
    }
    if (proposed > 3) {
      LOG(INFO) << "lessor: " << proposed << " leases expired; revoking them";
    }
  }
  timer_.expires_after(options_.check_interval);
  timer_.async_wait([this](const std::error_code& ec) {
    if (!ec) OnCheck();
  });
}

}  // namespace raftkv::server
