// Node: opening a replica's storage and wiring its stages together (see
// node.h). Never does a stage's work itself.
#include "server/node.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <asio/post.hpp>
#include <cstring>
#include <thread>

#include "raft/raw_node.h"
#include "server/applier.h"
#include "server/auto_compactor.h"
#include "server/client_requests.h"
#include "server/client_service.h"
#include "server/cluster_identity.h"
#include "server/etcd/etcd_ops.h"
#include "server/etcd/grpc_server.h"
#include "server/etcd/json_gateway.h"
#include "server/force_new_cluster.h"
#include "server/http_endpoint.h"
#include "server/log_cache.h"
#include "server/log_writer.h"
#include "server/loop_booster.h"
#include "server/member_directory.h"
#include "server/peer_transport.h"
#include "server/raft_loop.h"
#include "server/restore.h"
#include "server/snapshot_transfer.h"
#include "server/stage_thread.h"
#include "server/storage_failure.h"
#include "server/watch_hub.h"
#include "server/watch_streams.h"
#include "storage/engine.h"
#include "storage/kv_state_machine.h"
#include "storage/membership.h"
#include "storage/raft_log.h"
#include "storage/snapshot.h"
#include "storage/snapshot_install.h"

namespace raftkv::server {
namespace {

uint64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Node::Node(ServerConfig config) : config_(std::move(config)) {
  if (config_.rocksdb_memory_bytes == 0) config_.PlanMemory();
}

Node::~Node() = default;

Status Node::OpenStorage() {
  storage::EngineOptions options;
  options.memory_budget_bytes = config_.rocksdb_memory_bytes;
  options.write_buffer_bytes =
      std::min<uint64_t>(16 << 20, config_.rocksdb_memory_bytes / 8);
  options.compaction_nice = kCompactionNice;
  auto engine = storage::Engine::Open(config_.data_dir, options);
  if (!engine.ok()) return engine.status();
  engine_ = std::move(engine).value();
  auto log = storage::RaftLog::Open(engine_.get());
  if (!log.ok()) return log.status();
  log_ = std::move(log).value();
  auto sm = storage::KvStateMachine::Open(engine_.get());
  if (!sm.ok()) return sm.status();
  state_machine_ = std::move(sm).value();
  // Finishes a snapshot install that a crash interrupted.
  RAFTKV_RETURN_IF_ERROR(storage::RecoverSnapshotState(
      config_.data_dir, log_.get(), state_machine_.get()));
  if (!config_.restore_from.empty()) {
    RestoreOptions restore;
    restore.backup_path = config_.restore_from;
    restore.data_dir = config_.data_dir;
    restore.cluster_token = config_.cluster_token;
    restore.peer_addresses = config_.peer_addresses;
    restore.client_addresses = config_.client_addresses;
    bool restored = false;
    RAFTKV_RETURN_IF_ERROR(RestoreFromBackup(restore, log_.get(),
                                             state_machine_.get(), &restored));
  }
  return LoadClusterId();
}

Status Node::LoadClusterId() {
  config_.cluster_id = log_->cluster_id();
  if (config_.cluster_id != 0) {
    LOG(INFO) << "cluster " << ClusterIdText(config_.cluster_id)
              << " (recorded in " << config_.data_dir << ")";
    return Status::OK();
  }
  if (config_.join) {
    // Learned from the first member that contacts us (peer_transport.h).
    LOG(INFO) << "joining a running cluster: its id comes with the first "
                 "member that contacts this node";
    return Status::OK();
  }
  // A new data dir (or one lost and replaced): the cluster the flags
  // describe, the same id every founding member computes.
  config_.cluster_id =
      BootstrapClusterId(config_.cluster_token, config_.peer_addresses);
  RAFTKV_RETURN_IF_ERROR(log_->SetClusterId(config_.cluster_id));
  LOG(INFO) << "cluster " << ClusterIdText(config_.cluster_id)
            << " (formed by --cluster and --cluster_token), recorded in "
            << config_.data_dir;
  return Status::OK();
}

Status Node::LoadMembership() {
  if (state_machine_->membership() != nullptr || config_.join) {
    return Status::OK();
  }
  const kv::Membership founding = storage::BootstrapMembership(
      config_.peer_addresses, config_.client_addresses);
  if (state_machine_->applied_index() == 0) {
    // A new cluster, or a node that lost its disk (the snapshot it gets
    // brings the current membership).
    return state_machine_->RecordFoundingMembership(founding);
  }
  return Status::FailedPrecondition(
      config_.data_dir +
      ": the state machine has applied entries but records no membership "
      "(a data dir of an older raftkvd?)");
}

Status Node::Open() {
  RAFTKV_RETURN_IF_ERROR(config_.Validate());
  RAFTKV_RETURN_IF_ERROR(OpenStorage());

  RAFTKV_RETURN_IF_ERROR(LoadMembership());
  if (config_.force_new_cluster) {
    RAFTKV_RETURN_IF_ERROR(ForceNewCluster(config_.id, config_.data_dir,
                                           log_.get(), *state_machine_));
  }
  // The core starts from the membership as of the applied index and the
  // changes in the log after it.
  const kv::Membership* membership = state_machine_->membership();
  auto cache = LogCache::Load(
      *log_, membership ? storage::ConfStateOf(*membership) : raft::ConfState(),
      state_machine_->applied_index(), [this] {
        if (loop_) loop_->WantSnapshotPoint();
      });
  if (!cache.ok()) return cache.status();
  cache_ = std::move(cache).value();
  members_.SetFallback(config_.peer_addresses, config_.client_addresses);
  if (membership) members_.SetApplied(*membership);
  if (members_.WasRemoved(config_.id)) {
    return Status::FailedPrecondition(
        config_.data_dir + ": node " + std::to_string(config_.id) +
        " was removed from cluster " + ClusterIdText(config_.cluster_id) +
        " (at index " + std::to_string(membership->changed_at()) +
        "); its data cannot serve again. To bring the machine back, add it "
        "under a new id (raftkvctl member add) and start it with an empty "
        "--data_dir and --join");
  }
  for (uint64_t i = state_machine_->applied_index() + 1;
       i <= cache_->LastIndex();) {
    std::vector<raft::Entry> entries;
    RAFTKV_RETURN_IF_ERROR(
        cache_->Entries(i, cache_->LastIndex() + 1, 4 << 20, &entries));
    for (const raft::Entry& e : entries) {
      if (e.type() == raft::ENTRY_CONF_CHANGE) members_.NoteChange(e);
    }
    i = entries.back().index() + 1;
  }

  raft::Config rc;
  rc.id = config_.id;
  for (const auto& [id, address] : config_.peer_addresses) {
    rc.peers.push_back(id);
  }
  rc.join_existing_cluster = config_.join;
  rc.election_tick = config_.election_ticks;
  rc.heartbeat_tick = config_.heartbeat_ticks;
  rc.seed = config_.id * 7919 + WallClockMs();
  rc.applied = state_machine_->applied_index();
  rc.pre_vote = true;
  rc.check_quorum = true;
  // Appends to a follower that is catching up are built, encoded and
  // framed on the loop's thread, all in the pass whose Ready carries them:
  // with 1 MB messages and 8 MB in flight, one such Ready took the loop
  // 58-60 ms (soak, a wiped node rejoining under saturation). Messages of
  // 128 KB stay within the allocator's cached size classes (larger ones
  // are fresh pages, each a page fault), and 2 MB in flight per follower
  // is still far more than a LAN's bandwidth-delay product. A follower may
  // hold this much unacknowledged (its deferred appends), so never more
  // than its share of the peer queues.
  rc.max_size_per_msg = 128 << 10;
  rc.max_inflight_msgs = 256;
  rc.max_inflight_bytes = std::min<uint64_t>(config_.peer_queue_bytes, 2 << 20);
  rc.max_uncommitted_entries_size = 64 << 20;
  auto raft = raft::RawNode::Create(rc, cache_.get());
  if (!raft.ok()) {
    return Status(raft.status().code() == Status::Code::kCorruption
                      ? Status::Corruption(config_.data_dir + ": " +
                                           raft.status().message())
                      : raft.status());
  }
  RAFTKV_RETURN_IF_ERROR(StartStages());

  // Our own address comes from the flags; the peers are set by the loop
  // (RaftLoop::UpdatePeers) before the transport starts.
  auto self_address = ParseEndpoint(config_.peer_addresses.at(config_.id));
  if (!self_address.ok()) {
    return Status::InvalidArgument("--cluster: " +
                                   self_address.status().message());
  }
  std::map<uint64_t, asio::ip::tcp::endpoint> peers = {
      {config_.id, *self_address}};
  PeerTransportOptions transport_options;
  transport_options.cluster_id = config_.cluster_id;
  transport_options.max_queued_bytes = config_.peer_queue_bytes;
  transport_options.tls = config_.peer_tls;
  transport_ = std::make_unique<PeerTransport>(io_, config_.id, peers,
                                               transport_options);
  loop_ = std::make_unique<RaftLoop>(
      config_, io_, std::move(raft).value(),
      RaftLoop::Stages{cache_.get(), writer_.get(), applier_.get(),
                       transfers_.get(), transport_.get(), &members_},
      state_machine_->applied_index(), state_machine_->revision());
  requests_ = std::make_unique<ClientRequests>(config_, io_, loop_.get(),
                                               applier_.get(), &members_);
  requests_->OnAuthState(
      std::make_shared<const kv::AuthState>(state_machine_->auth()),
      state_machine_->applied_index());
  watch_streams_ = std::make_unique<WatchStreams>(
      io_, watch_hub_.get(), config_.watch_max_unsent_bytes);
  requests_->set_watches(watch_streams_.get());
  watch_streams_->set_slow_cancellations(metrics_.watch_slow_cancellations);
  compactor_ =
      std::make_unique<AutoCompactor>(config_.auto_compaction, io_, loop_.get(),
                                      state_machine_->compacted_revision());
  loop_->set_removed_handler([this] { Stop(); });
  PeerTransport::MembershipHooks hooks;
  hooks.was_removed = [this](uint64_t id) { return members_.WasRemoved(id); };
  hooks.removed = [this] { loop_->OnRemoved("a member said so"); };
  hooks.peer_heard = [this](uint64_t id, const std::string& address) {
    members_.NoteHeard(id, address);
  };
  hooks.cluster_id_learned = [this](uint64_t cluster_id) {
    config_.cluster_id = cluster_id;
    transfers_->set_cluster_id(cluster_id);
    watch_hub_->set_cluster_id(cluster_id);
    writer_->RecordClusterId(cluster_id);
  };
  transport_->set_membership_hooks(std::move(hooks));
  loop_->set_clients(requests_.get());
  loop_->set_metrics(&metrics_);
  requests_->set_metrics(&metrics_);
  if (!config_.listen_metrics.empty()) {
    http_ = std::make_unique<HttpEndpoint>(
        &registry_, &metrics_, config_.max_unapplied_entries,
        [this] { metrics_.rocksdb_memory_bytes->Set(engine_->MemoryBytes()); });
    RAFTKV_RETURN_IF_ERROR(http_->Start(config_.listen_metrics));
    LOG(INFO) << "raftkvd " << config_.id << " serves /metrics and /health on "
              << config_.listen_metrics.substr(
                     0, config_.listen_metrics.rfind(':'))
              << ":" << http_->port();
  }
  loop_->UpdatePeers();
  RAFTKV_RETURN_IF_ERROR(transport_->Start(
      [this](raft::Message m) { loop_->OnPeerMessage(std::move(m)); },
      [this](uint64_t peer) { loop_->OnPeerDown(peer); },
      [this](uint64_t peer) { loop_->OnUnreachable(peer); },
      [this](int fd, std::string preamble, std::string buffered,
             std::string remote) {
        transfers_->Receive(fd, std::move(preamble), std::move(buffered),
                            std::move(remote));
      }));

  auto listen = ParseEndpoint(config_.listen_client);
  if (!listen.ok()) {
    return Status::InvalidArgument("--listen_client: " +
                                   listen.status().message());
  }
  clients_service_ = std::make_unique<ClientService>(
      io_, config_.max_key_bytes + config_.max_value_bytes + (64 << 10));
  requests_->set_transfers(transfers_.get());
  clients_service_->set_tls(config_.client_tls);
  clients_service_->set_close_handler(
      [this](const wire::FramedConnection* connection) {
        watch_streams_->ConnectionClosed(connection);
      });
  clients_service_->set_stream_handler(
      [this](kv::ClientRequest request, int fd) {
        requests_->OnBackupRequest(request, fd);
      });
  RAFTKV_RETURN_IF_ERROR(clients_service_->Start(
      *listen, [this](kv::ClientRequest request, Responder respond) {
        requests_->OnClientRequest(std::move(request), std::move(respond));
      }));
  watch_hub_->Start(state_machine_->revision());
  applier_->Start();
  writer_->Start();
  RAFTKV_RETURN_IF_ERROR(StartEtcdApi());
  LOG(INFO) << "raftkvd " << config_.id << " serving clients on "
            << config_.listen_client << ", peers on "
            << config_.peer_addresses.at(config_.id) << ", data in "
            << config_.data_dir << " (applied index "
            << state_machine_->applied_index() << ", revision "
            << state_machine_->revision() << ", log [" << cache_->FirstIndex()
            << ", " << cache_->LastIndex()
            << "] in memory: " << cache_->bytes() / 1024
            << " KiB; memory budget " << config_.memory_budget_mb << " MB)";
  return Status::OK();
}

Status Node::StartStages() {
  // The other stages report back through the loop's mailbox only.
  Applier::Hooks hooks;
  hooks.applied = [this](Applied a) { inbox_.Push(std::move(a)); };
  hooks.reads_served = [this](ReadsServed r) { inbox_.Push(std::move(r)); };
  hooks.snapshot_point =
      [this](std::shared_ptr<const storage::SnapshotSource> p) {
        inbox_.Push(SnapshotPoint{std::move(p)});
      };
  hooks.leases_listed = [this](LeasesListed l) { inbox_.Push(std::move(l)); };
  WatchHubOptions watch_options;
  watch_options.cluster_id = config_.cluster_id;
  watch_options.member_id = config_.id;
  watch_options.progress_interval = config_.watch_progress_interval;
  watch_hub_ = std::make_unique<WatchHub>(
      engine_.get(), watch_options, [this](std::vector<WatchFrame> frames) {
        inbox_.Push(WatchFrames{std::move(frames)});
      });
  hooks.published = [this](int64_t revision, std::vector<kv::Event> events) {
    watch_hub_->Publish(revision, std::move(events));
  };
  hooks.jumped = [this](int64_t revision) { watch_hub_->Jump(revision); };
  auto stop = [this](const Status& s) {
    ExitOnStorageFailure(config_.id, config_.data_dir, s);
  };
  hooks.failed = stop;
  applier_ = std::make_unique<Applier>(state_machine_.get(), std::move(hooks),
                                       config_.testonly_apply_delay);
  writer_ = std::make_unique<LogWriter>(
      engine_.get(), log_.get(), state_machine_.get(), applier_.get(),
      [this](Persisted p) { inbox_.Push(std::move(p)); }, stop);
  const std::string& self = config_.peer_addresses.at(config_.id);
  SnapshotTransferOptions transfer_options;
  transfer_options.cluster_id = config_.cluster_id;
  transfer_options.corrupt_chunk = config_.testonly_corrupt_snapshot_chunk;
  transfer_options.cut_after_chunk = config_.testonly_cut_snapshot_after;
  transfer_options.send_twice = config_.testonly_send_snapshot_twice;
  transfer_options.chunk_delay = config_.testonly_snapshot_chunk_delay;
  transfer_options.tls = config_.peer_tls;
  transfers_ = std::make_unique<SnapshotTransfers>(
      config_.data_dir, self.substr(0, self.rfind(':')), transfer_options,
      [this](uint64_t peer, bool ok) {
        inbox_.Push(SnapshotSent{peer, ok});
      },
      [this](raft::Message m, std::string dir) {
        inbox_.Push(SnapshotStaged{std::move(m), std::move(dir)});
      });
  inbox_watch_ =
      std::make_unique<asio::posix::stream_descriptor>(io_, ::dup(inbox_.fd()));
  return Status::OK();
}

void Node::WatchInbox() {
  inbox_watch_->async_wait(asio::posix::stream_descriptor::wait_read,
                           [this](std::error_code ec) {
                             if (ec || stopped_) return;
                             for (ToLoop& item : inbox_.Take()) Deliver(item);
                             WatchInbox();
                           });
}

void Node::Deliver(ToLoop& item) {
  if (auto* p = std::get_if<Persisted>(&item)) {
    if (p->auth) requests_->OnAuthState(p->auth, p->auth_index);
    loop_->OnPersisted(std::move(*p));
  } else if (auto* a = std::get_if<Applied>(&item)) {
    loop_->OnApplied(*a);
    requests_->OnApplied(*a);
    compactor_->OnApplied(*a);
    watch_hub_->set_raft_term(loop_->raft().term());
    metrics_.revision->Set(a->revision);
    metrics_.compacted_revision->Set(a->compacted_revision);
    metrics_.watches->Set(watch_hub_->watch_count());
    metrics_.leases->Set(requests_->lease_count());
  } else if (auto* w = std::get_if<WatchFrames>(&item)) {
    watch_streams_->Send(std::move(w->frames));
  } else if (auto* l = std::get_if<LeasesListed>(&item)) {
    requests_->OnLeasesListed(*l);
  } else if (auto* r = std::get_if<ReadsServed>(&item)) {
    requests_->OnReadsServed(std::move(*r));
  } else if (auto* point = std::get_if<SnapshotPoint>(&item)) {
    loop_->OnSnapshotPoint(point->source);
  } else if (auto* sent = std::get_if<SnapshotSent>(&item)) {
    loop_->OnSnapshotSent(sent->peer, sent->ok);
  } else {
    auto& staged = std::get<SnapshotStaged>(item);
    loop_->OnSnapshotStaged(std::move(staged.message), std::move(staged.dir));
  }
}

std::unique_ptr<LoopBooster> Node::StartLoopBooster() {
  if (config_.event_loop_rt_priority == 0) return nullptr;
  LoopBooster::Options options;
  options.priority = config_.event_loop_rt_priority;
  options.tick = config_.tick;
  options.overdue_after = config_.tick;
  options.raises = metrics_.loop_raises;
  int refused = 0;
  auto booster = LoopBooster::Start(
      options, std::chrono::steady_clock::now() + config_.tick, &refused);
  if (booster == nullptr) {
    LOG(WARNING)
        << "the event loop cannot be raised to real-time priority "
        << config_.event_loop_rt_priority << ": " << std::strerror(refused)
        << " (it needs CAP_SYS_NICE, root or an RLIMIT_RTPRIO); on a busy "
           "machine its timers may run late; --event_loop_rt_priority=0 asks "
           "for none";
    return nullptr;
  }
  LOG(INFO) << "the event loop is raised to real-time priority "
            << config_.event_loop_rt_priority
            << " (SCHED_RR) whenever its tick is " << config_.tick.count()
            << " ms overdue";
  metrics_.loop_rt_priority->Set(config_.event_loop_rt_priority);
  return booster;
}

Status Node::StartEtcdApi() {
  if (config_.listen_etcd.empty() && config_.listen_etcd_gateway.empty()) {
    return Status::OK();
  }
  etcd::EtcdOps::Options options;
  options.member_id = config_.id;
  options.cluster_id = config_.cluster_id;
  options.native_address = config_.listen_client;
  for (const char* wildcard : {"0.0.0.0:", "[::]:"}) {
    if (options.native_address.rfind(wildcard, 0) == 0) {
      options.native_address = "127.0.0.1:" + options.native_address.substr(
                                                  std::string(wildcard).size());
    }
  }
  options.etcd_address = config_.etcd_advertise;
  options.etcd_tls = config_.client_tls.enabled();
  options.peer_tls = config_.peer_tls.enabled();
  options.scratch_dir = config_.data_dir;
  if (config_.client_tls.enabled()) {
    // The member's own certificate serves as the client certificate when
    // the listener requires one.
    options.native_tls.enabled = true;
    options.native_tls.ca_file = config_.client_tls.trusted_ca_file;
    options.native_tls.cert_file = config_.client_tls.cert_file;
    options.native_tls.key_file = config_.client_tls.key_file;
  }
  options.deadline = 2 * config_.default_request_timeout;
  auto ops = etcd::EtcdOps::Create(std::move(options));
  if (!ops.ok()) return ops.status();
  etcd_ops_ = std::move(ops).value();
  if (!config_.listen_etcd_gateway.empty()) {
    etcd::JsonGateway::Options gateway;
    gateway.tls = config_.client_tls;
    etcd_gateway_ =
        std::make_unique<etcd::JsonGateway>(etcd_ops_.get(), gateway);
    RAFTKV_RETURN_IF_ERROR(etcd_gateway_->Start(config_.listen_etcd_gateway));
  }
  if (config_.listen_etcd.empty()) return Status::OK();
  etcd_grpc_ = std::make_unique<etcd::GrpcServer>(etcd_ops_.get());
  return etcd_grpc_->Start(config_.listen_etcd, config_.client_tls);
}

void Node::Run() {
  SetUpEventLoopThread();
  std::unique_ptr<LoopBooster> booster = StartLoopBooster();
  loop_->set_booster(booster.get());
  loop_->Start();
  requests_->Start();
  compactor_->Start();
  WatchInbox();
  while (!stopped_) {
    // Block for one event, then drain everything else that is ready, so one
    // Ready (and one hand-off to the writer) covers all of it; but a due
    // tick cuts in between two handlers and ends the pass, so that its
    // heartbeats leave with this pass's Ready instead of after the flood.
    io_.run_one();
    LoopMonitor::Pass pass;
    pass.handlers = 1;
    while (!loop_->TickIfDue(std::chrono::steady_clock::now()) &&
           io_.poll_one() == 1) {
      ++pass.handlers;
    }
    if (io_.stopped()) break;
    requests_->StartReadBatch();
    loop_->FinishPass(pass);
  }
  loop_->set_booster(nullptr);
  booster.reset();
  // The other stages finish what they hold and their threads are joined.
  if (etcd_gateway_) etcd_gateway_->Stop();
  if (etcd_grpc_) etcd_grpc_->Stop();
  etcd_gateway_.reset();
  etcd_grpc_.reset();
  etcd_ops_.reset();
  if (http_) http_->Stop();
  transfers_->Stop();
  applier_->Stop();
  watch_hub_->Stop();
  writer_->Stop();
}

void Node::Stop() {
  // etcd's API stops first, while the loop still answers the calls it has
  // in flight (gRPC's shutdown waits for them); then the loop.
  if ((etcd_grpc_ || etcd_gateway_) && !etcd_stopping_.exchange(true)) {
    std::thread([this] {
      if (etcd_gateway_) etcd_gateway_->Stop();
      if (etcd_grpc_) etcd_grpc_->Stop();
      StopLoop();
    }).detach();
    return;
  }
  StopLoop();
}

void Node::StopLoop() {
  asio::post(io_, [this] {
    if (stopped_) return;
    stopped_ = true;
    LOG(INFO) << "raftkvd " << config_.id << " stopping";
    loop_->Stop();
    requests_->Stop();
    compactor_->Stop();
    if (clients_service_) clients_service_->Stop();
    if (transport_) transport_->Stop();
    if (inbox_watch_) inbox_watch_->cancel();
    io_.stop();
  });
}

}  // namespace raftkv::server
