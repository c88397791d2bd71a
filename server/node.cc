// Node: the event loop, the Ready loop and the client request paths of one
// raftkvd replica. See node.h for the contract.
#include "server/node.h"

#include <glog/logging.h>

#include <algorithm>
#include <asio/post.hpp>

#include "raft/describe.h"
#include "server/campaign_turn.h"
#include "storage/engine.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot.h"

namespace raftkv::server {
namespace {

StatusOr<asio::ip::tcp::endpoint> ToEndpoint(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("'" + address + "' is not host:port");
  }
  std::string host = address.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  std::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  const int port = std::atoi(address.c_str() + colon + 1);
  if (ec || port <= 0 || port > 65535) {
    return Status::InvalidArgument("'" + address +
                                   "' is not a numeric IP address and port");
  }
  return asio::ip::tcp::endpoint(ip, static_cast<uint16_t>(port));
}

kv::ClientResponse ErrorResponse(kv::ErrorCode error, std::string message) {
  kv::ClientResponse response;
  response.set_error(error);
  response.set_error_message(std::move(message));
  return response;
}

uint64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Node::Node(ServerConfig config)
    : config_(std::move(config)),
      tick_timer_(io_),
      sweep_timer_(io_),
      rng_(config_.id * 7919 + WallClockMs()),
      campaign_timer_(io_) {}

Node::~Node() = default;

Status Node::Open() {
  RAFTKV_RETURN_IF_ERROR(config_.Validate());

  auto engine = storage::Engine::Open(config_.data_dir);
  if (!engine.ok()) return engine.status();
  engine_ = std::move(engine).value();
  auto log = storage::RaftLog::Open(engine_.get());
  if (!log.ok()) return log.status();
  log_ = std::move(log).value();
  auto sm = storage::KvStateMachine::Open(engine_.get());
  if (!sm.ok()) return sm.status();
  state_machine_ = std::move(sm).value();
  // Finishes a snapshot install that a crash interrupted.
  RAFTKV_RETURN_IF_ERROR(storage::Reconcile(log_.get(), state_machine_.get()));

  raft::Config rc;
  rc.id = config_.id;
  for (const auto& [id, address] : config_.peer_addresses) {
    rc.peers.push_back(id);
  }
  rc.election_tick = config_.election_ticks;
  rc.heartbeat_tick = config_.heartbeat_ticks;
  rc.seed = rng_();
  rc.applied = state_machine_->applied_index();
  rc.pre_vote = true;
  rc.check_quorum = true;
  rc.max_size_per_msg = 1 << 20;
  rc.max_inflight_msgs = 256;
  rc.max_uncommitted_entries_size = 64 << 20;
  auto raft = raft::RawNode::Create(rc, log_.get());
  if (!raft.ok()) {
    return Status(raft.status().code() == Status::Code::kCorruption
                      ? Status::Corruption(config_.data_dir + ": " +
                                           raft.status().message())
                      : raft.status());
  }
  raft_ = std::move(raft).value();
  last_snapshot_index_ = state_machine_->applied_index();

  std::map<uint64_t, asio::ip::tcp::endpoint> peers;
  for (const auto& [id, address] : config_.peer_addresses) {
    auto ep = ToEndpoint(address);
    if (!ep.ok())
      return Status::InvalidArgument("--cluster: " + ep.status().message());
    peers[id] = *ep;
  }
  transport_ = std::make_unique<PeerTransport>(io_, config_.id, peers,
                                               PeerTransportOptions());
  RAFTKV_RETURN_IF_ERROR(transport_->Start(
      [this](raft::Message m) { OnPeerMessage(std::move(m)); },
      [this](uint64_t peer) { OnPeerDown(peer); },
      [this](uint64_t peer) { raft_->ReportUnreachable(peer); }));

  auto listen = ToEndpoint(config_.listen_client);
  if (!listen.ok()) {
    return Status::InvalidArgument("--listen_client: " +
                                   listen.status().message());
  }
  clients_ = std::make_unique<ClientService>(
      io_, config_.max_key_bytes + config_.max_value_bytes + (64 << 10));
  RAFTKV_RETURN_IF_ERROR(clients_->Start(
      *listen, [this](kv::ClientRequest request, Responder respond) {
        OnClientRequest(std::move(request), std::move(respond));
      }));

  LOG(INFO) << "raftkvd " << config_.id << " serving clients on "
            << config_.listen_client << ", peers on "
            << config_.peer_addresses.at(config_.id) << ", data in "
            << config_.data_dir << " (applied index "
            << state_machine_->applied_index() << ", revision "
            << state_machine_->revision() << ")";
  return Status::OK();
}

void Node::Run() {
  next_tick_ = Clock::now() + config_.tick;
  tick_timer_.expires_at(next_tick_);
  tick_timer_.async_wait([this](const std::error_code& ec) {
    if (!ec) OnTick();
  });
  OnSweep();
  while (!stopped_) {
    // Block for one event, then drain everything else that is ready, so one
    // Ready (and one fsync) covers all of it.
    io_.run_one();
    io_.poll();
    if (io_.stopped()) break;
    ProcessReady();
  }
}

void Node::Stop() {
  asio::post(io_, [this] {
    if (stopped_) return;
    stopped_ = true;
    LOG(INFO) << "raftkvd " << config_.id << " stopping";
    tick_timer_.cancel();
    sweep_timer_.cancel();
    campaign_timer_.cancel();
    if (clients_) clients_->Stop();
    if (transport_) transport_->Stop();
    io_.stop();
  });
}

// --- Events -----------------------------------------------------------------

void Node::OnTick() {
  if (storage_error_.ok()) raft_->Tick();
  // Fixed-rate ticks: a late wake-up does not stretch every later tick.
  next_tick_ += config_.tick;
  const auto now = Clock::now();
  if (next_tick_ < now) next_tick_ = now + config_.tick;
  tick_timer_.expires_at(next_tick_);
  tick_timer_.async_wait([this](const std::error_code& ec) {
    if (!ec) OnTick();
  });
}

void Node::OnSweep() {
  const auto now = Clock::now();
  for (auto it = pending_writes_.begin(); it != pending_writes_.end();) {
    if (it->second.deadline <= now) {
      it->second.respond(ErrorResponse(
          kv::TIMEOUT, "not committed in time (the write may still apply)"));
      it = pending_writes_.erase(it);
    } else {
      ++it;
    }
  }
  auto expire_reads = [now](std::vector<PendingRead>& reads) {
    auto keep = std::remove_if(reads.begin(), reads.end(), [now](auto& r) {
      if (r.deadline > now) return false;
      r.respond(ErrorResponse(kv::TIMEOUT, "read not confirmed in time"));
      return true;
    });
    reads.erase(keep, reads.end());
  };
  for (auto it = read_batches_.begin(); it != read_batches_.end();) {
    expire_reads(it->second);
    it = it->second.empty() ? read_batches_.erase(it) : std::next(it);
  }
  for (auto it = reads_waiting_for_apply_.begin();
       it != reads_waiting_for_apply_.end();) {
    if (it->second.deadline <= now) {
      it->second.respond(
          ErrorResponse(kv::TIMEOUT, "read not applied in time"));
      it = reads_waiting_for_apply_.erase(it);
    } else {
      ++it;
    }
  }
  sweep_timer_.expires_after(std::chrono::milliseconds(50));
  sweep_timer_.async_wait([this](const std::error_code& ec) {
    if (!ec) OnSweep();
  });
}

void Node::OnPeerMessage(raft::Message message) {
  if (!storage_error_.ok()) return;
  Status s = raft_->Step(message);
  if (!s.ok()) {
    LOG(WARNING) << "dropping peer message " << raft::DescribeMessage(message)
                 << ": " << s.ToString();
  }
}

void Node::OnPeerDown(uint64_t peer) {
  if (!config_.fast_failover || peer != raft_->lead() ||
      raft_->role() != raft::Role::kFollower || campaign_scheduled_) {
    return;
  }
  // The leader's connection broke: it has probably crashed. Forget it (so
  // our peers' pre-votes are granted) and campaign in our turn (see
  // campaign_turn.h); the election timeout stays the backstop. PreVote keeps
  // a live leader safe: a node still hearing from it refuses.
  const auto delay = CampaignTurn(raft_->GetStatus().voters, config_.id, peer) *
                     kCampaignTurnTicks * config_.tick;
  LOG(INFO) << "raftkvd " << config_.id << ": connection to leader " << peer
            << " lost; campaigning in " << delay.count() << " ms";
  raft_->ForgetLeader();
  campaign_scheduled_ = true;
  campaign_timer_.expires_after(delay);
  campaign_timer_.async_wait([this](const std::error_code& ec) {
    campaign_scheduled_ = false;
    if (ec || !storage_error_.ok()) return;
    if (raft_->role() == raft::Role::kFollower &&
        raft_->lead() == raft::kNone) {
      raft_->Campaign();
    }
  });
}

// --- Client requests --------------------------------------------------------

Node::Clock::time_point Node::DeadlineOf(
    const kv::ClientRequest& request) const {
  const auto timeout = request.timeout_ms() > 0
                           ? std::chrono::milliseconds(request.timeout_ms())
                           : config_.default_request_timeout;
  return Clock::now() + std::min(timeout, config_.default_request_timeout);
}

kv::ClientResponse Node::NotLeaderResponse() const {
  const uint64_t lead = raft_->lead();
  kv::ClientResponse response;
  response.set_error(kv::NOT_LEADER);
  response.set_leader_id(lead);
  auto it = config_.client_addresses.find(lead);
  if (lead == raft::kNone) {
    response.set_error_message("node " + std::to_string(config_.id) +
                               " is not the leader; leader unknown");
  } else {
    if (it != config_.client_addresses.end()) {
      response.set_leader_address(it->second);
    }
    response.set_error_message(
        "node " + std::to_string(config_.id) +
        " is not the leader; leader is " + std::to_string(lead) +
        (it != config_.client_addresses.end() ? " at " + it->second : ""));
  }
  return response;
}

void Node::OnClientRequest(kv::ClientRequest request, Responder respond) {
  if (stopped_) return;
  if (pending_writes_.size() + unbatched_reads_.size() +
          reads_waiting_for_apply_.size() >=
      config_.max_pending_requests) {
    respond(ErrorResponse(kv::UNAVAILABLE,
                          "server overloaded: too many "
                          "pending requests"));
    return;
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
    default:
      respond(ErrorResponse(kv::MALFORMED, "empty or unknown request"));
      return;
  }
}

Status Node::CheckSizes(const kv::Command& command) const {
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

void Node::HandleWrite(kv::ClientRequest& request, Responder respond) {
  if (!storage_error_.ok()) {
    respond(ErrorResponse(kv::STORAGE, storage_error_.ToString()));
    return;
  }
  kv::Command* command = request.mutable_command();
  if (command->op_case() == kv::Command::OP_NOT_SET) {
    respond(ErrorResponse(kv::MALFORMED, "command without an operation"));
    return;
  }
  if (Status s = CheckSizes(*command); !s.ok()) {
    respond(ErrorResponse(kv::TOO_LARGE, s.message()));
    return;
  }
  if (raft_->role() != raft::Role::kLeader) {
    respond(NotLeaderResponse());
    return;
  }
  command->set_proposed_at_ms(WallClockMs());
  auto index = raft_->Propose(command->SerializeAsString());
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
    pending_writes_.erase(stale);
  }
  pending_writes_.emplace(
      *index,
      PendingWrite{raft_->term(), std::move(respond), DeadlineOf(request)});
}

void Node::HandleRead(kv::ClientRequest& request, Responder respond) {
  PendingRead read{std::move(*request.mutable_range()), std::move(respond),
                   DeadlineOf(request)};
  if (read.request.serializable() || config_.unsafe_serve_stale_reads) {
    ServeRead(read);
    return;
  }
  if (!storage_error_.ok()) {
    read.respond(ErrorResponse(kv::STORAGE, storage_error_.ToString()));
    return;
  }
  if (raft_->lead() == raft::kNone) {
    read.respond(NotLeaderResponse());
    return;
  }
  unbatched_reads_.push_back(std::move(read));  // one ReadIndex per loop pass
}

void Node::ServeRead(PendingRead& read) {
  auto result = state_machine_->Range(read.request);
  kv::ClientResponse response;
  if (!result.ok()) {
    response = ErrorResponse(
        result.status().code() == Status::Code::kInvalidArgument ? kv::INVALID
                                                                 : kv::STORAGE,
        result.status().ToString());
  } else {
    *response.mutable_range() = std::move(result).value();
    kv::ResponseHeader* h = response.mutable_range()->mutable_header();
    h->set_member_id(config_.id);
    h->set_raft_term(raft_->term());
  }
  read.respond(std::move(response));
}

void Node::HandleStatus(Responder respond) {
  const raft::NodeStatus st = raft_->GetStatus();
  kv::ClientResponse response;
  kv::StatusResponse* s = response.mutable_status();
  s->set_id(st.id);
  s->set_role(raft::RoleName(st.role));
  s->set_term(st.term);
  s->set_leader_id(st.lead);
  s->set_commit_index(st.commit);
  s->set_applied_index(state_machine_->applied_index());
  s->set_last_index(st.last_index);
  s->mutable_header()->set_revision(state_machine_->revision());
  s->mutable_header()->set_member_id(config_.id);
  s->mutable_header()->set_raft_term(st.term);
  for (const auto& [id, peer] : config_.peer_addresses) {
    kv::MemberStatus* m = s->add_members();
    m->set_id(id);
    m->set_peer_address(peer);
    auto it = config_.client_addresses.find(id);
    if (it != config_.client_addresses.end()) {
      m->set_client_address(it->second);
    } else if (id == config_.id) {
      m->set_client_address(config_.listen_client);
    }
  }
  respond(std::move(response));
}

void Node::HandleTransferLeader(const kv::ClientRequest& request,
                                Responder respond) {
  if (raft_->role() != raft::Role::kLeader) {
    respond(NotLeaderResponse());
    return;
  }
  Status s = raft_->TransferLeader(request.transfer_leader().transferee());
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

// --- The Ready loop -------------------------------------------------------

void Node::StartReadBatch() {
  if (unbatched_reads_.empty()) return;
  std::vector<PendingRead> batch = std::move(unbatched_reads_);
  unbatched_reads_.clear();
  const std::string ctx = std::to_string(next_read_ctx_++);
  Status s = raft_->ReadIndex(ctx);
  if (!s.ok()) {
    for (PendingRead& r : batch) r.respond(NotLeaderResponse());
    return;
  }
  read_batches_.emplace(ctx, std::move(batch));
}

void Node::ProcessReady() {
  if (!storage_error_.ok()) return;
  StartReadBatch();
  while (raft_->HasReady()) {
    raft::Ready ready = raft_->GetReady();
    if (!HandleReady(ready)) return;
    raft_->Advance(ready);
    // Our own acknowledgements (a leader's of its entries, a candidate's of
    // its vote), now that they are durable.
    for (const raft::Message& m : ready.messages_after_persist) {
      if (m.to() == config_.id) raft_->Step(m);
    }
  }
  MaybeSnapshot();
}

bool Node::HandleReady(raft::Ready& ready) {
  if (ready.soft_state) {
    const raft::SoftState& ss = *ready.soft_state;
    if (ss.lead != soft_state_.lead) {
      LOG(INFO) << "raftkvd " << config_.id << ": leader is now "
                << (ss.lead == raft::kNone ? std::string("unknown")
                                           : std::to_string(ss.lead))
                << " at term " << raft_->term() << " (was " << soft_state_.lead
                << "); this node is " << raft::RoleName(ss.role);
    }
    if (ss.lead != soft_state_.lead || ss.role != soft_state_.role) {
      // The core dropped its pending ReadIndex requests: let clients retry.
      FailPendingReads(kv::UNAVAILABLE, "leadership changed");
    }
    soft_state_ = ss;
  }
  // A leader streams its appends while it writes its own log (§10.2.1).
  const bool leader = raft_->role() == raft::Role::kLeader;
  std::vector<raft::Message> later;
  for (raft::Message& m : ready.messages) {
    if (leader &&
        (m.type() == raft::MSG_APP || m.type() == raft::MSG_HEARTBEAT)) {
      transport_->Send(m);
    } else {
      later.push_back(std::move(m));
    }
  }
  if (ready.snapshot) {
    // Log and state machine are replaced in one atomic batch.
    Status s = storage::InstallSnapshot(*ready.snapshot, log_.get(),
                                        state_machine_.get());
    if (!s.ok()) {
      FailStorage(s);
      return false;
    }
    LOG(INFO) << "raftkvd " << config_.id << ": installed snapshot at index "
              << ready.snapshot->metadata().index();
  }
  const auto start = Clock::now();
  Status s = log_->Save(ready.hard_state ? &*ready.hard_state : nullptr,
                        ready.entries, ready.must_sync);
  if (!s.ok()) {
    FailStorage(s);
    return false;
  }
  const auto took = Clock::now() - start;
  if (took > config_.slow_fsync_warning) {
    LOG(WARNING)
        << "slow log write: " << ready.entries.size() << " entries took "
        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
        << " ms";
  }
  for (raft::Message& m : ready.messages_after_persist) {
    if (m.to() != config_.id) later.push_back(std::move(m));
  }
  for (raft::Message& m : later) {
    if (m.type() == raft::MSG_SNAP) {
      // The snapshot rides in the message; report delivery at once (the
      // transport either queued it or will report the peer unreachable).
      const uint64_t to = m.to();
      transport_->Send(m);
      raft_->ReportSnapshot(to, !transport_->connected(to));
    } else {
      transport_->Send(m);
    }
  }
  ApplyEntries(ready.committed_entries);
  if (!storage_error_.ok()) return false;
  for (raft::ReadState& rs : ready.read_states) {
    auto it = read_batches_.find(rs.request_ctx);
    if (it == read_batches_.end()) continue;
    for (PendingRead& r : it->second) {
      reads_waiting_for_apply_.emplace(rs.index, std::move(r));
    }
    read_batches_.erase(it);
  }
  ServeReadsUpTo(state_machine_->applied_index());
  return true;
}

void Node::ApplyEntries(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return;
  // One write batch for everything committed in this Ready.
  std::vector<kv::CommandResult> results;
  if (Status s = state_machine_->ApplyBatch(entries, &results); !s.ok()) {
    FailStorage(s);
    return;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const raft::Entry& entry = entries[i];
    auto it = pending_writes_.find(entry.index());
    if (it == pending_writes_.end()) continue;
    if (it->second.term != entry.term()) {
      // Another leader's entry took this index: ours was never committed.
      it->second.respond(ErrorResponse(
          kv::UNAVAILABLE, "leadership changed before the write committed"));
    } else {
      kv::ClientResponse response;
      *response.mutable_command() = std::move(results[i]);
      it->second.respond(std::move(response));
    }
    pending_writes_.erase(it);
  }
}

void Node::ServeReadsUpTo(uint64_t applied) {
  while (!reads_waiting_for_apply_.empty() &&
         reads_waiting_for_apply_.begin()->first <= applied) {
    ServeRead(reads_waiting_for_apply_.begin()->second);
    reads_waiting_for_apply_.erase(reads_waiting_for_apply_.begin());
  }
}

void Node::FailPendingReads(kv::ErrorCode error, const std::string& why) {
  for (auto& [ctx, batch] : read_batches_) {
    for (PendingRead& r : batch) r.respond(ErrorResponse(error, why));
  }
  read_batches_.clear();
}

void Node::MaybeSnapshot() {
  const uint64_t applied = state_machine_->applied_index();
  if (applied < last_snapshot_index_ + config_.snapshot_every_entries) return;
  Status s = log_->CreateSnapshot(applied, *state_machine_);
  if (!s.ok()) {
    LOG(WARNING) << "snapshot at index " << applied
                 << " failed: " << s.ToString();
    return;
  }
  last_snapshot_index_ = applied;
  // Keep a tail of the log so that a follower that is only a little behind
  // catches up from entries rather than a whole snapshot.
  const uint64_t keep = std::min(applied, config_.log_entries_kept);
  if (applied - keep >= log_->FirstIndex()) {
    s = log_->Compact(applied - keep);
    if (!s.ok()) {
      FailStorage(s);
      return;
    }
  }
  LOG(INFO) << "raftkvd " << config_.id << ": snapshot at index " << applied
            << ", log compacted up to " << applied - keep;
}

void Node::FailStorage(const Status& status) {
  if (!storage_error_.ok()) return;
  storage_error_ = status;
  LOG(ERROR) << "raftkvd " << config_.id << ": STORAGE FAILURE in "
             << config_.data_dir << ": " << status.ToString()
             << ". This node stops taking part in replication and refuses "
                "writes; serializable reads are still served. Fix the disk "
                "and restart it.";
  for (auto& [index, w] : pending_writes_) {
    w.respond(ErrorResponse(kv::STORAGE, status.ToString()));
  }
  pending_writes_.clear();
  FailPendingReads(kv::STORAGE, status.ToString());
  for (auto& [index, r] : reads_waiting_for_apply_) {
    r.respond(ErrorResponse(kv::STORAGE, status.ToString()));
  }
  reads_waiting_for_apply_.clear();
}

}  // namespace raftkv::server
