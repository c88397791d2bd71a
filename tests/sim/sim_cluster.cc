// SimCluster: setup, the event loop, message delivery and the handling of
// each node's Ready in the order raw_node.h prescribes. Never lets a node
// send before it persisted (except a leader's replication, §10.2.1), and
// never keeps anything of a crashed node but its disk.
#include "tests/sim/sim_cluster.h"

#include <cstdlib>

#include "raft/conf_change.h"
#include "raft/describe.h"

namespace raftkv::sim {
namespace {

std::string N(uint64_t v) { return std::to_string(v); }

}  // namespace

SimCluster::SimCluster(const SimOptions& options, Trace* trace)
    : options_(options),
      trace_(trace),
      random_(options.seed),
      network_(
          options.nodes + options.spare_nodes,
          NetworkOptions{options.drop_rate, options.duplicate_rate,
                         options.min_latency_ms, options.max_latency_ms,
                         options.long_delay_rate, options.long_delay_max_ms},
          &random_, &queue_),
      checker_(options.nodes + options.spare_nodes, options.nodes),
      base_config_(MakeBaseConfig()) {
  async_disk_ = options_.vary_config && random_.Chance(0.5);
  sends_early_ = options_.vary_config && !async_disk_ && random_.Chance(0.5);
  if (async_disk_) stats_.async_disk_runs = 1;
  const int ids = options_.nodes + options_.spare_nodes;
  nodes_.reserve(ids);
  raft::ConfState founding;
  for (int i = 1; i <= options_.nodes; ++i) founding.add_voters(i);
  for (int i = 1; i <= ids; ++i) {
    nodes_.emplace_back(i, i <= options_.nodes, founding);
  }
}

raft::Config SimCluster::MakeBaseConfig() {
  raft::Config c;
  for (int i = 1; i <= options_.nodes; ++i) c.peers.push_back(i);
  c.election_tick = options_.election_tick;
  c.heartbeat_tick = options_.heartbeat_tick;
  if (options_.vary_config) {
    c.pre_vote = random_.Below(4) != 0;
    c.check_quorum = random_.Below(4) != 0;
    const uint64_t msg_sizes[] = {256, 4096, 1 << 20};
    c.max_size_per_msg = msg_sizes[random_.Below(3)];
    const uint64_t inflight[] = {1, 4, 16, 256};
    c.max_inflight_msgs = inflight[random_.Below(4)];
    c.max_inflight_bytes = random_.Below(3) == 0 ? 4096 : 0;
    c.max_uncommitted_entries_size = random_.Below(3) == 0 ? 8192 : 0;
    c.max_committed_size_per_ready = random_.Below(3) == 0 ? 512 : 1 << 22;
  }
  c.disable_conf_change_rule = options_.mutant == Mutant::kUnsafeConfChange;
  return c;
}

Status SimCluster::Boot() {
  Note([&] {
    const raft::Config& c = base_config_;
    return "boot " + N(options_.nodes) + " nodes: pre_vote=" + N(c.pre_vote) +
           " check_quorum=" + N(c.check_quorum) +
           " max_size_per_msg=" + N(c.max_size_per_msg) +
           " max_inflight_msgs=" + N(c.max_inflight_msgs) +
           " max_inflight_bytes=" + N(c.max_inflight_bytes) +
           " max_uncommitted=" + N(c.max_uncommitted_entries_size) +
           " async_disk=" + N(async_disk_) + " sends_early=" + N(sends_early_) +
           " spares=" + N(options_.spare_nodes) +
           " mutant=" + MutantName(options_.mutant);
  });
  for (SimNode& n : nodes_) {
    // Spares start, and tick, once a membership change adds them.
    if (!n.founding()) continue;
    RAFTKV_RETURN_IF_ERROR(StartNode(n, "boot"));
    // Each node ticks on its own phase.
    queue_.Push(1 + random_.Below(options_.tick_ms), EventType::kTick, n.id());
  }
  return Status::OK();
}

Status SimCluster::StartNode(SimNode& n, const char* why) {
  raft::Config config = base_config_;
  config.seed = random_.Next();
  // Ignored once its disk holds state.
  config.join_existing_cluster = n.joined();
  Status s = n.Start(config);
  if (!s.ok()) {
    return Status::Corruption("node " + N(n.id()) +
                              " cannot start from its disk: " + s.ToString());
  }
  checker_.OnRestart(n.id(), n.disk().hard_state().commit());
  RAFTKV_RETURN_IF_ERROR(checker_.OnRestoreStateMachine(n.id(), n.applied()));
  Note([&] {
    const raft::HardState& hs = n.disk().hard_state();
    return "node " + N(n.id()) + " starts (" + why + "): term=" + N(hs.term()) +
           " vote=" + N(hs.vote()) + " commit=" + N(hs.commit()) + " log=[" +
           N(n.disk().FirstIndex()) + "," + N(n.disk().LastIndex()) +
           "] applied=" + N(n.applied().index);
  });
  return HandleReady(n);
}

void SimCluster::CrashNode(SimNode& n, const char* why) {
  if (!n.up()) return;
  Note([&] { return "node " + N(n.id()) + " CRASHES (" + why + ")"; });
  n.Crash();
  ++stats_.crashes;
  // Half the time the disk had not flushed an unsynced commit index.
  if (random_.Chance(0.5)) n.LoseUnsyncedCommit();
  if (options_.mutant == Mutant::kLoseTail) n.LoseTail(1 + random_.Below(5));
}

Status SimCluster::Step() {
  if (queue_.empty()) return Status::Aborted("the simulation ran dry");
  Event e = queue_.Pop();
  ++stats_.steps;
  switch (e.type) {
    case EventType::kTick:
      return OnTick(e.node);
    case EventType::kDeliver:
      cause_ = "message";
      return Deliver(*e.delivery);
    case EventType::kFault:
      if (!faults_on_) return Status::OK();
      queue_.Push(now() + 1 + random_.Below(2 * options_.fault_interval_ms),
                  EventType::kFault, 0);
      cause_ = "fault";
      return RandomFault();
    case EventType::kPropose:
      if (!load_on_) return Status::OK();
      queue_.Push(now() + 1 + random_.Below(2 * options_.propose_interval_ms),
                  EventType::kPropose, 0);
      cause_ = "proposal";
      return Propose();
    case EventType::kDiskWrite:
      cause_ = "disk write";
      return OnDiskWrite(e.node, e.incarnation);
    case EventType::kRead:
      if (!load_on_) return Status::OK();
      queue_.Push(now() + 1 + random_.Below(2 * options_.read_interval_ms),
                  EventType::kRead, 0);
      cause_ = "read";
      return RequestRead();
    case EventType::kMembership:
      if (!faults_on_) return Status::OK();
      queue_.Push(
          now() + 1 + random_.Below(2 * options_.membership_interval_ms),
          EventType::kMembership, 0);
      cause_ = "membership";
      return ChangeMembership();
  }
  return Status::OK();
}

Status SimCluster::OnTick(uint64_t id) {
  SimNode& n = node(id);
  if (n.removed()) return Status::OK();  // stopped for good: no more ticks
  // Clocks drift a little: the next tick comes tick_ms +-1 later.
  const uint64_t next = now() + options_.tick_ms + random_.Below(3);
  queue_.Push(next > now() + 1 ? next - 1 : now() + 1, EventType::kTick, id);
  if (!n.up()) return Status::OK();
  cause_ = "tick";
  n.raft().Tick();
  return HandleReady(n);
}

Status SimCluster::Deliver(const Delivery& d) {
  const raft::Message& m = d.message;
  SimNode& to = node(m.to());
  const char* lost = d.lost                               ? "lost"
                     : !to.up()                           ? "receiver down"
                     : network_.Blocked(m.from(), m.to()) ? "link cut"
                                                          : nullptr;
  if (m.type() == raft::MSG_SNAP && d.first_copy) {
    RAFTKV_RETURN_IF_ERROR(
        ReportSnapshot(m, d.sender_incarnation, lost == nullptr));
  }
  if (lost != nullptr) {
    Note(
        [&] { return "drop " + raft::DescribeMessage(m) + " (" + lost + ")"; });
    // Now and then the transport notices the broken connection.
    if (!d.lost && random_.Chance(0.2)) {
      return ReportUnreachable(m, d.sender_incarnation);
    }
    return Status::OK();
  }
  Note([&] {
    return std::string(d.first_copy ? "deliver " : "deliver duplicate ") +
           raft::DescribeMessage(m);
  });
  Status s = to.raft().Step(m);
  if (!s.ok() && !raft::IsMember(to.raft().conf_state(), m.from())) {
    // A removed node, or a learner whose addition was undone, is not heard.
    Note([&] {
      return "node " + N(to.id()) + " ignores " + raft::DescribeMessage(m) +
             " from a non-member: " + s.ToString();
    });
    return Status::OK();
  }
  if (!s.ok()) {
    return Status::Corruption("node " + N(to.id()) + " rejected " +
                              raft::DescribeMessage(m) + ": " + s.ToString());
  }
  return HandleReady(to);
}

Status SimCluster::ReportSnapshot(const raft::Message& m, uint64_t incarnation,
                                  bool delivered) {
  SimNode& sender = node(m.from());
  if (!sender.up() || sender.incarnation() != incarnation) return Status::OK();
  Note([&] {
    return "node " + N(sender.id()) + " learns its snapshot to " + N(m.to()) +
           (delivered ? " arrived" : " FAILED");
  });
  sender.raft().ReportSnapshot(m.to(), /*failed=*/!delivered);
  return HandleReady(sender);
}

Status SimCluster::ReportUnreachable(const raft::Message& m,
                                     uint64_t incarnation) {
  SimNode& sender = node(m.from());
  if (!sender.up() || sender.incarnation() != incarnation) return Status::OK();
  Note([&] {
    return "node " + N(sender.id()) + " finds " + N(m.to()) + " unreachable";
  });
  sender.raft().ReportUnreachable(m.to());
  return HandleReady(sender);
}

// --- Ready handling ----------------------------------------------------------

Status SimCluster::HandleReady(SimNode& n) {
  while (n.up() && n.raft().HasReady()) {
    raft::Ready rd = n.raft().GetReady();
    n.TrackReady(rd);
    if (rd.hard_state) checker_.OnCommitKnown(n.id(), rd.hard_state->commit());
    if (async_disk_) {
      RAFTKV_RETURN_IF_ERROR(HandleReadyAsync(n, std::move(rd)));
    } else {
      RAFTKV_RETURN_IF_ERROR(HandleReadySync(n, rd));
    }
    RAFTKV_RETURN_IF_ERROR(MaybeSnapshot(n, /*force=*/false));
  }
  return n.up() ? CheckMembership(n) : Status::OK();
}

Status SimCluster::CheckMembership(SimNode& n) {
  RAFTKV_RETURN_IF_ERROR(SafetyChecker::OnConfInEffect(
      n.id(), n.raft().conf_state(), n.ConfFromLog()));
  if (n.raft().role() != raft::Role::kLeader) return Status::OK();
  return checker_.OnLeaderLog(n.id(), n.raft().term(), n.ConfIndexes());
}

Status SimCluster::HandleReadySync(SimNode& n, const raft::Ready& rd) {
  const bool crash =
      faults_on_ && random_.Chance(options_.crash_before_send_rate);
  if (sends_early_) {
    // Ready::messages depend on nothing the Ready persists.
    Send(n, rd.messages);
    if (crash) {
      ++stats_.crashes_before_send;
      CrashNode(n, "sent what needs no disk, then crashed before persisting");
      return Status::OK();
    }
  }
  RAFTKV_RETURN_IF_ERROR(Persist(n, rd));
  RAFTKV_RETURN_IF_ERROR(NoteStateChanges(n, rd));
  if (crash && !sends_early_) {
    ++stats_.crashes_before_send;
    CrashNode(n, "persisted a Ready, crashed before sending its messages");
    return Status::OK();
  }
  if (!sends_early_) Send(n, rd.messages);
  RAFTKV_RETURN_IF_ERROR(ApplyCommitted(n, rd));
  RAFTKV_RETURN_IF_ERROR(ServeReads(n, rd));
  n.raft().Advance(rd);
  return SendAfterPersist(n, rd);
}

Status SimCluster::HandleReadyAsync(SimNode& n, raft::Ready rd) {
  n.raft().Accept(rd);
  RAFTKV_RETURN_IF_ERROR(NoteStateChanges(n, rd));
  Send(n, rd.messages);
  // Committed entries handed out are durable already: apply them now.
  RAFTKV_RETURN_IF_ERROR(ApplyCommitted(n, rd));
  if (!rd.committed_entries.empty()) {
    n.raft().OnApplied(rd.committed_entries.back().index());
  }
  RAFTKV_RETURN_IF_ERROR(ServeReads(n, rd));
  // The write completes later, after the ones queued before it.
  const uint64_t done =
      std::max(n.disk_busy_until_ms(),
               now() + random_.Below(options_.max_disk_latency_ms + 1));
  n.set_disk_busy_until_ms(done);
  n.pending_writes().push_back(std::move(rd));
  queue_.PushDiskWrite(done, n.id(), n.incarnation());
  return Status::OK();
}

Status SimCluster::OnDiskWrite(uint64_t id, uint64_t incarnation) {
  SimNode& n = node(id);
  // A crash lost the writes in flight of that incarnation.
  if (!n.up() || n.incarnation() != incarnation) return Status::OK();
  CHECK(!n.pending_writes().empty()) << "a disk write without a Ready";
  const raft::Ready rd = std::move(n.pending_writes().front());
  n.pending_writes().pop_front();
  if (faults_on_ && random_.Chance(options_.crash_before_send_rate)) {
    ++stats_.crashes_before_send;
    CrashNode(n, "crashed with a write in flight");
    return Status::OK();
  }
  RAFTKV_RETURN_IF_ERROR(Persist(n, rd));
  n.raft().OnPersisted(rd.persist_mark());
  RAFTKV_RETURN_IF_ERROR(SendAfterPersist(n, rd));
  return HandleReady(n);
}

Status SimCluster::Persist(SimNode& n, const raft::Ready& rd) {
  raft::MemoryStorage& disk = n.disk();
  if (rd.snapshot) {
    if (!disk.ApplySnapshot(*rd.snapshot)) {
      return Status::Corruption(
          "node " + N(n.id()) + " was handed a snapshot at index " +
          N(rd.snapshot->metadata().index()) + " older than its own");
    }
    RAFTKV_RETURN_IF_ERROR(checker_.OnPersistSnapshot(n.id(), *rd.snapshot));
    RAFTKV_RETURN_IF_ERROR(
        checker_.OnSnapshotConf(n.id(), rd.snapshot->metadata()));
    RAFTKV_RETURN_IF_ERROR(n.RestoreSnapshot(*rd.snapshot));
    ++stats_.snapshots_installed;
    Note([&] {
      return "node " + N(n.id()) + " installs snapshot " +
             N(rd.snapshot->metadata().term()) + "/" +
             N(rd.snapshot->metadata().index());
    });
  }
  if (!rd.entries.empty()) {
    disk.Append(rd.entries);
    RAFTKV_RETURN_IF_ERROR(checker_.OnPersistEntries(n.id(), rd.entries, disk));
  }
  if (rd.hard_state) {
    raft::HardState hs = *rd.hard_state;
    if (options_.mutant == Mutant::kForgetVote) hs.set_vote(raft::kNone);
    n.WriteHardState(hs, rd.must_sync);
    RAFTKV_RETURN_IF_ERROR(checker_.OnPersistHardState(n.id(), hs, disk));
  }
  return Status::OK();
}

Status SimCluster::NoteStateChanges(SimNode& n, const raft::Ready& rd) {
  const raft::Role role = rd.soft_state ? rd.soft_state->role : n.seen_role();
  const uint64_t term = rd.hard_state ? rd.hard_state->term() : n.seen_term();
  if (role == n.seen_role() && term == n.seen_term()) return Status::OK();
  const bool new_leader =
      role == raft::Role::kLeader &&
      (n.seen_role() != raft::Role::kLeader || term != n.seen_term());
  Note([&] {
    return "node " + N(n.id()) + ": " + raft::RoleName(n.seen_role()) +
           " term " + N(n.seen_term()) + " -> " + raft::RoleName(role) +
           " term " + N(term) + " (leader " + N(n.raft().lead()) + ", on " +
           cause_ + ")";
  });
  n.set_seen(role, term);
  if (!new_leader) return Status::OK();
  return checker_.OnBecomeLeader(n.id(), term, n.disk(), n.raft().conf_state());
}

void SimCluster::Send(SimNode& n, const std::vector<raft::Message>& messages) {
  for (const raft::Message& m : messages) {
    if (m.type() == raft::MSG_VOTE_RESP && !m.reject()) {
      checker_.OnVoteGranted(m.from(), m.to(), m.term());
    }
    ++stats_.messages;
    if (m.type() == raft::MSG_SNAP) ++stats_.snapshots_sent;
    const SimNetwork::SendOutcome outcome = network_.Send(m, n.incarnation());
    if (outcome != SimNetwork::SendOutcome::kSent) {
      Note([&] {
        return "send " + raft::DescribeMessage(m) +
               (outcome == SimNetwork::SendOutcome::kLost ? " (lost)"
                                                          : " (duplicated)");
      });
    }
  }
}

Status SimCluster::SendAfterPersist(SimNode& n, const raft::Ready& rd) {
  std::vector<raft::Message> to_peers;
  for (const raft::Message& m : rd.messages_after_persist) {
    if (m.to() != n.id()) {
      to_peers.push_back(m);
      continue;
    }
    if (!n.up()) break;
    if (m.type() == raft::MSG_VOTE_RESP && !m.reject()) {
      checker_.OnVoteGranted(m.from(), m.to(), m.term());
    }
    Note([&] { return "step own " + raft::DescribeMessage(m); });
    Status s = n.raft().Step(m);
    if (!s.ok()) {
      return Status::Corruption("node " + N(n.id()) + " rejected its own " +
                                raft::DescribeMessage(m) + ": " + s.ToString());
    }
  }
  Send(n, to_peers);
  return Status::OK();
}

Status SimCluster::ApplyCommitted(SimNode& n, const raft::Ready& rd) {
  for (const raft::Entry& e : rd.committed_entries) {
    const bool skip = options_.mutant == Mutant::kSkipApply && n.id() == 1 &&
                      !e.data().empty() && random_.Chance(0.02);
    RAFTKV_RETURN_IF_ERROR(n.Apply(e, skip));
    RAFTKV_RETURN_IF_ERROR(checker_.OnApply(n.id(), e, n.applied()));
    if (marker_index_ == 0 && !marker_.empty() && e.data() == marker_) {
      marker_index_ = e.index();
    }
    if (watch_term_ != 0 && watch_commit_ms_ == 0 &&
        n.raft().role() == raft::Role::kLeader && e.term() > watch_term_ &&
        e.term() == n.raft().term()) {
      watch_leader_ = n.id();
      watch_commit_ms_ = now();
    }
  }
  return Status::OK();
}

Status SimCluster::ServeReads(SimNode& n, const raft::Ready& rd) {
  for (const raft::ReadState& rs : rd.read_states) {
    if (rs.request_ctx.size() < 2 || rs.request_ctx[0] != 'r') {
      return Status::Corruption("node " + N(n.id()) +
                                " answered an unknown read '" + rs.request_ctx +
                                "'");
    }
    const uint64_t id = std::strtoull(rs.request_ctx.c_str() + 1, nullptr, 10);
    Note([&] {
      return "node " + N(n.id()) + " answers read " + N(id) + " at index " +
             N(rs.index);
    });
    RAFTKV_RETURN_IF_ERROR(checker_.OnReadState(n.id(), id, rs.index));
  }
  return Status::OK();
}

Status SimCluster::MaybeSnapshot(SimNode& n, bool force) {
  // A node takes its first snapshot early: a node joining the cluster
  // starts from its leader's snapshot, the only thing that tells it the
  // configuration (raft::Config::join_existing_cluster).
  const bool first = options_.snapshot_rate > 0 && n.applied().index > 8 &&
                     n.disk().FirstIndex() == 1;
  if (!random_.Chance(options_.snapshot_rate) && !force && !first) {
    return Status::OK();
  }
  const uint64_t keep = random_.Below(8);
  if (n.applied().index <= n.disk().FirstIndex() + keep) return Status::OK();
  for (const raft::Ready& rd : n.pending_writes()) {
    // A snapshot from the leader is being written: the core's history
    // starts there, the state machine not yet.
    if (rd.snapshot) return Status::OK();
  }
  // The configuration as of the snapshot's index, the applied one.
  StatusOr<raft::ConfState> conf = n.raft().ConfStateAt(n.applied().index);
  if (!conf.ok()) {
    return Status::Corruption(
        "node " + N(n.id()) + " knows no configuration at its applied index " +
        N(n.applied().index) + ": " + conf.status().ToString());
  }
  if (!n.SnapshotAndCompact(*conf, keep)) return Status::OK();
  ++stats_.snapshots_taken;
  Note([&] {
    return "node " + N(n.id()) + " snapshots at " + N(n.applied().index) +
           " (" + raft::DescribeConfState(*conf) +
           ") and compacts its log to [" + N(n.disk().FirstIndex()) + "," +
           N(n.disk().LastIndex()) + "]";
  });
  raft::Snapshot snapshot;
  RAFTKV_RETURN_IF_ERROR(n.disk().GetSnapshot(&snapshot));
  return checker_.OnSnapshotConf(n.id(), snapshot.metadata());
}

uint64_t SimCluster::PickNode() {
  std::vector<uint64_t> live;
  for (const SimNode& n : nodes_) {
    if (!n.spare() && !n.removed()) live.push_back(n.id());
  }
  if (live.empty()) return 1;
  return live[random_.Below(live.size())];
}

uint64_t SimCluster::Leader() const {
  uint64_t leader = 0, term = 0;
  for (const SimNode& n : nodes_) {
    if (n.up() && n.raft().role() == raft::Role::kLeader &&
        n.raft().term() >= term) {
      leader = n.id();
      term = n.raft().term();
    }
  }
  return leader;
}

SimStats SimCluster::stats() const {
  SimStats s = stats_;
  s.sim_ms = now();
  s.terms_with_leader = checker_.terms_with_leader();
  s.committed = checker_.committed_index();
  s.reads_checked = checker_.reads_checked();
  s.dropped = network_.dropped();
  s.duplicated = network_.duplicated();
  return s;
}

}  // namespace raftkv::sim
