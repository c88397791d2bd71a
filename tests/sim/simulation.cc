// The deterministic cluster simulator (see simulation.h). One event queue
// ordered by (simulated time, insertion order); one seeded generator for
// every random choice; ordered containers only.
#include "tests/sim/simulation.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <sstream>

#include "raft/describe.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"

namespace raftkv::sim {
namespace {

using raft::Entry;
using raft::Message;

constexpr size_t kTraceLines = 150;

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

uint64_t HashBytes(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// A failed safety or liveness property; unwinds the run.
struct Violation {
  std::string what;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& options)
      : opt_(options), rng_(options.seed) {}

  SimResult Run();
  LeaderLossResult RunLeaderLoss();
  void RunLeaderLossPhases(LeaderLossResult* result);

 private:
  struct Node {
    uint64_t id = 0;
    std::unique_ptr<raft::MemoryStorage> disk;  // survives crashes
    std::unique_ptr<raft::RawNode> raft;        // null while crashed
    uint64_t applied = 0;                       // state machine (volatile)
    uint64_t applied_hash = 0;                  // chain hash of applied entries
    uint64_t checked_commit = 0;  // committed entries checked so far
    raft::Role role = raft::Role::kFollower;
  };
  enum class EventType { kDeliver, kTick, kFault, kPropose, kRead };
  struct Event {
    uint64_t time;
    uint64_t seq;
    EventType type;
    uint64_t node = 0;
    std::shared_ptr<Message> message;
    bool operator>(const Event& o) const {
      return time != o.time ? time > o.time : seq > o.seq;
    }
  };
  struct PendingRead {
    uint64_t node;
    uint64_t min_index;  // highest index acknowledged before the request
  };

  // Setup and the event loop.
  void Boot();
  void StartNode(Node& n);
  void Crash(Node& n, const char* why);
  void LoseTail(Node& n);
  void Schedule(uint64_t at, EventType type, uint64_t node,
                std::shared_ptr<Message> m = nullptr);
  bool Step();
  void HandleReady(Node& n);
  void Send(const Message& m);
  void Deliver(const Message& m);
  void Apply(Node& n, const Entry& e);
  void RestoreSnapshot(Node& n, const raft::Snapshot& snapshot);
  void MaybeSnapshot(Node& n);

  // Faults and load.
  void RandomFault();
  void Heal();
  void Propose(const std::string& data);
  void RequestRead();

  // Invariants.
  void CheckLeader(Node& n);
  void RecordCommitted(Node& n, uint64_t commit);
  void CheckLogMatching();
  void CheckLiveness();
  void Fail(const std::string& what) { throw Violation{what}; }

  void Trace(const std::function<std::string()>& line);
  uint64_t RandBelow(uint64_t n) {
    return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_);
  }
  bool Chance(double p) {
    return std::uniform_real_distribution<double>(0, 1)(rng_) < p;
  }
  Node& node(uint64_t id) { return nodes_[id - 1]; }
  uint64_t Leader() const;

  SimOptions opt_;
  std::mt19937_64 rng_;
  std::vector<Node> nodes_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  uint64_t now_ = 0;
  uint64_t seq_ = 0;
  uint64_t steps_ = 0;
  bool faults_on_ = true;
  std::set<std::pair<uint64_t, uint64_t>> blocked_;  // (from, to)

  // Global history for the checks.
  std::map<uint64_t, uint64_t> leader_of_term_;
  // applied_[i] = (term, chain hash) of the entry applied at index i.
  std::vector<std::pair<uint64_t, uint64_t>> applied_{{0, 0}};
  uint64_t acknowledged_ = 0;  // highest index a leader applied (client ack)
  // committed_[i] = term of the entry committed at index i, learned from
  // every node's persisted commit index.
  std::vector<uint64_t> committed_{0};
  std::map<std::string, PendingRead> reads_;
  uint64_t next_proposal_ = 1;
  uint64_t next_read_ = 1;
  std::deque<std::string> trace_;
  SimResult stats_;
};

// --- Setup and the event loop ---------------------------------------------

void Simulation::Boot() {
  nodes_.resize(opt_.nodes);
  for (int i = 0; i < opt_.nodes; ++i) {
    nodes_[i].id = i + 1;
    nodes_[i].disk = std::make_unique<raft::MemoryStorage>();
  }
  for (Node& n : nodes_) {
    StartNode(n);
    // Each node ticks on its own phase.
    Schedule(1 + RandBelow(opt_.tick_ms), EventType::kTick, n.id);
  }
}

void Simulation::StartNode(Node& n) {
  raft::Config c;
  c.id = n.id;
  for (const Node& p : nodes_) c.peers.push_back(p.id);
  c.election_tick = opt_.election_tick;
  c.heartbeat_tick = opt_.heartbeat_tick;
  c.seed = rng_();
  c.max_size_per_msg = 4096;
  c.max_inflight_msgs = 16;
  // The state machine restarts from the last snapshot.
  raft::Snapshot snapshot;
  n.disk->GetSnapshot(&snapshot);
  n.applied = 0;
  n.applied_hash = 0;
  if (snapshot.metadata().index() > 0) RestoreSnapshot(n, snapshot);
  c.applied = n.applied;
  auto raft = raft::RawNode::Create(c, n.disk.get());
  if (!raft.ok())
    Fail("node " + std::to_string(n.id) +
         " cannot restart: " + raft.status().ToString());
  n.raft = std::move(raft).value();
  n.role = raft::Role::kFollower;
}

void Simulation::Crash(Node& n, const char* why) {
  if (!n.raft) return;
  Trace([&] {
    return "node " + std::to_string(n.id) + " crashes (" + why + ")";
  });
  n.raft.reset();
  n.role = raft::Role::kFollower;
  ++stats_.crashes;
  if (opt_.mutant == "lose_entries") LoseTail(n);
}

void Simulation::LoseTail(Node& n) {
  // A disk that acknowledged writes it never made durable: the last few
  // entries are gone after the crash.
  raft::MemoryStorage& disk = *n.disk;
  const uint64_t drop = 1 + RandBelow(5);
  if (disk.LastIndex() < disk.FirstIndex() + drop) return;
  const uint64_t last = disk.LastIndex() - drop;
  raft::Snapshot snapshot;
  disk.GetSnapshot(&snapshot);
  std::vector<Entry> kept;
  disk.Entries(disk.FirstIndex(), last + 1, UINT64_MAX, &kept);
  raft::HardState hs = disk.hard_state();
  hs.set_commit(std::min<uint64_t>(hs.commit(), last));
  auto fresh = std::make_unique<raft::MemoryStorage>();
  if (snapshot.metadata().index() > 0) fresh->ApplySnapshot(snapshot);
  fresh->Append(kept);
  fresh->SetHardState(hs);
  n.disk = std::move(fresh);
  n.checked_commit = std::min(n.checked_commit, last);
}

void Simulation::Schedule(uint64_t at, EventType type, uint64_t node,
                          std::shared_ptr<Message> m) {
  queue_.push(Event{at, seq_++, type, node, std::move(m)});
}

uint64_t Simulation::Leader() const {
  uint64_t leader = 0, term = 0;
  for (const Node& n : nodes_) {
    if (n.raft && n.raft->role() == raft::Role::kLeader &&
        n.raft->term() >= term) {
      leader = n.id;
      term = n.raft->term();
    }
  }
  return leader;
}

bool Simulation::Step() {
  if (queue_.empty()) return false;
  Event e = queue_.top();
  queue_.pop();
  now_ = e.time;
  ++steps_;
  switch (e.type) {
    case EventType::kTick: {
      Node& n = node(e.node);
      if (n.raft) {
        n.raft->Tick();
        HandleReady(n);
      }
      // Clocks drift a little: the next tick comes 9..11 units later.
      const int jitter = static_cast<int>(RandBelow(3)) - 1;
      Schedule(now_ + opt_.tick_ms + jitter, EventType::kTick, e.node);
      break;
    }
    case EventType::kDeliver:
      Deliver(*e.message);
      break;
    case EventType::kFault:
      if (faults_on_) {
        RandomFault();
        Schedule(now_ + 1 + RandBelow(2 * opt_.fault_interval_ms),
                 EventType::kFault, 0);
      }
      break;
    case EventType::kPropose:
      Propose("p" + std::to_string(next_proposal_++));
      if (faults_on_)
        Schedule(now_ + 1 + RandBelow(20), EventType::kPropose, 0);
      break;
    case EventType::kRead:
      RequestRead();
      if (faults_on_) Schedule(now_ + 1 + RandBelow(60), EventType::kRead, 0);
      break;
  }
  if (steps_ % 64 == 0) CheckLogMatching();
  return true;
}

void Simulation::HandleReady(Node& n) {
  while (n.raft && n.raft->HasReady()) {
    raft::Ready rd = n.raft->GetReady();
    // 1. Persist (the MemoryStorage is the disk).
    if (rd.snapshot) {
      n.disk->ApplySnapshot(*rd.snapshot);
      RestoreSnapshot(n, *rd.snapshot);
    }
    if (opt_.mutant != "lose_entries") n.disk->Append(rd.entries);
    if (rd.hard_state) {
      raft::HardState hs = *rd.hard_state;
      if (opt_.mutant == "forget_vote") hs.set_vote(0);
      n.disk->SetHardState(hs);
      RecordCommitted(n, hs.commit());
    }
    // A crash after the write but before the messages go out.
    if (faults_on_ && Chance(0.0005)) {
      Crash(n, "after persisting, before sending");
      return;
    }
    // 2. Send.
    for (const Message& m : rd.messages) {
      Send(m);
      if (m.type() == raft::MSG_SNAP) {
        ++stats_.snapshots_sent;
        n.raft->ReportSnapshot(m.to(), false);
      }
    }
    // 3. Apply, and serve reads.
    for (const Entry& e : rd.committed_entries) Apply(n, e);
    for (const raft::ReadState& rs : rd.read_states) {
      auto it = reads_.find(rs.request_ctx);
      if (it == reads_.end()) continue;
      if (rs.index < it->second.min_index) {
        Fail("stale read: ReadIndex " + rs.request_ctx + " on node " +
             std::to_string(n.id) + " returned index " +
             std::to_string(rs.index) + " but index " +
             std::to_string(it->second.min_index) +
             " was acknowledged before the read was requested");
      }
      reads_.erase(it);
      ++stats_.reads_checked;
    }
    if (rd.soft_state) {
      const raft::Role old = n.role;
      n.role = rd.soft_state->role;
      if (n.role == raft::Role::kLeader && old != raft::Role::kLeader) {
        CheckLeader(n);
      }
    }
    n.raft->Advance(rd);
    MaybeSnapshot(n);
  }
}

void Simulation::Send(const Message& m) {
  Trace([&] { return "send " + raft::DescribeMessage(m); });
  if (faults_on_ && Chance(opt_.drop_rate)) return;
  const int copies = faults_on_ && Chance(opt_.duplicate_rate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    const uint64_t latency =
        opt_.min_latency_ms +
        RandBelow(opt_.max_latency_ms - opt_.min_latency_ms + 1);
    Schedule(now_ + latency, EventType::kDeliver, m.to(),
             std::make_shared<Message>(m));
  }
}

void Simulation::Deliver(const Message& m) {
  Node& n = node(m.to());
  if (!n.raft || blocked_.count({m.from(), m.to()}) > 0) return;
  Trace([&] { return "deliver " + raft::DescribeMessage(m); });
  Status s = n.raft->Step(m);
  if (!s.ok()) Fail("Step rejected a peer message: " + s.ToString());
  HandleReady(n);
}

void Simulation::Apply(Node& n, const Entry& e) {
  if (e.index() != n.applied + 1) {
    Fail("node " + std::to_string(n.id) + " applies index " +
         std::to_string(e.index()) + " after " + std::to_string(n.applied));
  }
  const uint64_t hash = Mix(Mix(n.applied_hash, e.term()), HashBytes(e.data()));
  if (e.index() < applied_.size()) {
    // State machine safety: every node applies the same entry at an index.
    if (applied_[e.index()].first != e.term() ||
        applied_[e.index()].second != hash) {
      Fail("state machine safety: node " + std::to_string(n.id) + " applies " +
           raft::DescribeEntry(e) + " at index " + std::to_string(e.index()) +
           " where term " + std::to_string(applied_[e.index()].first) +
           " was applied before");
    }
  } else {
    applied_.emplace_back(e.term(), hash);
  }
  n.applied = e.index();
  n.applied_hash = hash;
  if (n.raft && n.raft->role() == raft::Role::kLeader) {
    acknowledged_ = std::max(acknowledged_, e.index());
  }
}

void Simulation::RestoreSnapshot(Node& n, const raft::Snapshot& snapshot) {
  // Snapshot data: "<applied index> <chain hash>".
  std::istringstream in(snapshot.data());
  uint64_t index = 0, hash = 0;
  in >> index >> hash;
  if (index != snapshot.metadata().index() || index >= applied_.size() ||
      applied_[index].second != hash) {
    Fail("node " + std::to_string(n.id) + " got a snapshot at index " +
         std::to_string(snapshot.metadata().index()) +
         " that does not match the applied history");
  }
  n.applied = index;
  n.applied_hash = hash;
}

void Simulation::MaybeSnapshot(Node& n) {
  // Now and then a node snapshots its state machine and compacts its log,
  // so that slow followers need MSG_SNAP.
  if (!Chance(0.002) || n.applied <= n.disk->FirstIndex() + 8) return;
  raft::ConfState cs;
  for (const Node& p : nodes_) cs.add_voters(p.id);
  Status s = n.disk->CreateSnapshot(
      n.applied, cs,
      std::to_string(n.applied) + " " + std::to_string(n.applied_hash));
  if (!s.ok()) return;
  const uint64_t keep = RandBelow(8);
  n.disk->Compact(n.applied - keep);
  Trace([&] {
    return "node " + std::to_string(n.id) + " snapshots at " +
           std::to_string(n.applied) + ", compacts to " +
           std::to_string(n.applied - keep);
  });
}

// --- Faults and load --------------------------------------------------------

void Simulation::RandomFault() {
  const uint64_t a = 1 + RandBelow(opt_.nodes);
  const uint64_t b = 1 + RandBelow(opt_.nodes);
  switch (RandBelow(10)) {
    case 0: {  // symmetric partition into two random sides
      blocked_.clear();
      std::vector<int> side(opt_.nodes);
      for (int& s : side) s = static_cast<int>(RandBelow(2));
      for (int i = 0; i < opt_.nodes; ++i) {
        for (int j = 0; j < opt_.nodes; ++j) {
          if (side[i] != side[j]) blocked_.insert({i + 1, j + 1});
        }
      }
      ++stats_.partitions;
      Trace([] { return std::string("fault: random partition"); });
      break;
    }
    case 1:  // isolate one node (often the leader)
      blocked_.clear();
      for (int j = 1; j <= opt_.nodes; ++j) {
        const uint64_t victim = Leader() != 0 && Chance(0.5) ? Leader() : a;
        if (static_cast<uint64_t>(j) != victim) {
          blocked_.insert({victim, static_cast<uint64_t>(j)});
          blocked_.insert({static_cast<uint64_t>(j), victim});
        }
      }
      ++stats_.partitions;
      Trace([] { return std::string("fault: isolate one node"); });
      break;
    case 2:  // one-way link failure
      if (a != b) blocked_.insert({a, b});
      Trace([&] {
        return "fault: one-way block " + std::to_string(a) + "->" +
               std::to_string(b);
      });
      break;
    case 3:
    case 4:
      Heal();
      break;
    case 5:
      Crash(node(a), "kill");
      break;
    case 6:
      for (Node& n : nodes_) {
        if (!n.raft) {
          Trace([&] { return "restart node " + std::to_string(n.id); });
          StartNode(n);
          break;
        }
      }
      break;
    case 7:
      if (uint64_t leader = Leader()) {
        Status s = node(leader).raft->TransferLeader(a);
        ++stats_.transfers;
        Trace([&] {
          return "transfer leadership " + std::to_string(leader) + "->" +
                 std::to_string(a) + ": " + s.ToString();
        });
        HandleReady(node(leader));
      }
      break;
    case 8:
      if (node(a).raft) {
        Trace([&] { return "node " + std::to_string(a) + " campaigns"; });
        node(a).raft->Campaign();
        HandleReady(node(a));
      }
      break;
    case 9:
      if (node(a).raft && node(a).raft->role() == raft::Role::kFollower) {
        node(a).raft->ForgetLeader();
        HandleReady(node(a));
      }
      break;
  }
}

void Simulation::Heal() {
  blocked_.clear();
  Trace([] { return std::string("fault: heal network"); });
}

void Simulation::Propose(const std::string& data) {
  const uint64_t leader = Leader();
  if (leader == 0) return;
  Node& n = node(leader);
  auto index = n.raft->Propose(data);
  Trace([&] {
    return "propose " + data + " on " + std::to_string(leader) + ": " +
           (index.ok() ? "index " + std::to_string(*index)
                       : index.status().ToString());
  });
  HandleReady(n);
}

void Simulation::RequestRead() {
  const uint64_t id = 1 + RandBelow(opt_.nodes);
  Node& n = node(id);
  if (!n.raft) return;
  const std::string ctx = "r" + std::to_string(next_read_++);
  if (!n.raft->ReadIndex(ctx).ok()) return;
  reads_[ctx] = {id, acknowledged_};
  HandleReady(n);
}

// --- Invariants -------------------------------------------------------------

void Simulation::RecordCommitted(Node& n, uint64_t commit) {
  // Entries up to a node's commit index are committed: they must never
  // differ between nodes or change later.
  const uint64_t from = std::max(n.checked_commit + 1, n.disk->FirstIndex());
  for (uint64_t i = from; i <= commit; ++i) {
    uint64_t term = 0;
    if (!n.disk->Term(i, &term).ok()) {
      Fail("node " + std::to_string(n.id) + " committed index " +
           std::to_string(i) + " that is not in its log");
    }
    if (i < committed_.size()) {
      if (committed_[i] != term) {
        Fail("committed entry changed: index " + std::to_string(i) +
             " was committed with term " + std::to_string(committed_[i]) +
             " but node " + std::to_string(n.id) + " committed term " +
             std::to_string(term));
      }
    } else if (i == committed_.size()) {
      committed_.push_back(term);
    }
  }
  n.checked_commit = std::max(n.checked_commit, commit);
}

void Simulation::CheckLeader(Node& n) {
  const uint64_t term = n.raft->term();
  auto [it, inserted] = leader_of_term_.emplace(term, n.id);
  Trace([&] {
    return "node " + std::to_string(n.id) + " becomes leader at term " +
           std::to_string(term);
  });
  if (!inserted && it->second != n.id) {
    Fail("election safety: nodes " + std::to_string(it->second) + " and " +
         std::to_string(n.id) + " are both leaders of term " +
         std::to_string(term));
  }
  // Leader completeness: every entry applied anywhere is in its log (or
  // below its snapshot).
  const raft::MemoryStorage& disk = *n.disk;
  const uint64_t committed = committed_.size() - 1;
  if (disk.LastIndex() < committed) {
    Fail("leader completeness: leader " + std::to_string(n.id) + " of term " +
         std::to_string(term) + " has last index " +
         std::to_string(disk.LastIndex()) + " < committed " +
         std::to_string(committed));
  }
  for (uint64_t i = std::max<uint64_t>(disk.FirstIndex(), 1); i <= committed;
       ++i) {
    uint64_t t = 0;
    if (!disk.Term(i, &t).ok() || t != committed_[i]) {
      Fail("leader completeness: leader " + std::to_string(n.id) + " of term " +
           std::to_string(term) + " lacks committed entry " +
           std::to_string(committed_[i]) + "/" + std::to_string(i));
    }
  }
}

void Simulation::CheckLogMatching() {
  // If two logs hold an entry with the same index and term, they are
  // identical up to it (§5.3). Checked on what each node persisted.
  for (size_t a = 0; a < nodes_.size(); ++a) {
    for (size_t b = a + 1; b < nodes_.size(); ++b) {
      const raft::MemoryStorage& x = *nodes_[a].disk;
      const raft::MemoryStorage& y = *nodes_[b].disk;
      const uint64_t lo = std::max(x.FirstIndex(), y.FirstIndex());
      const uint64_t hi = std::min(x.LastIndex(), y.LastIndex());
      if (lo > hi) continue;
      std::vector<Entry> ex, ey;
      x.Entries(lo, hi + 1, UINT64_MAX, &ex);
      y.Entries(lo, hi + 1, UINT64_MAX, &ey);
      // The highest index where the terms agree.
      size_t match = ex.size();
      while (match > 0 && ex[match - 1].term() != ey[match - 1].term()) {
        --match;
      }
      for (size_t i = 0; i < match; ++i) {
        if (ex[i].term() != ey[i].term() || ex[i].data() != ey[i].data()) {
          Fail("log matching: nodes " + std::to_string(a + 1) + " and " +
               std::to_string(b + 1) + " agree on " +
               raft::DescribeEntry(ex[match - 1]) + " but differ at index " +
               std::to_string(ex[i].index()));
        }
      }
    }
  }
}

void Simulation::CheckLiveness() {
  // Heal everything, then a fresh proposal must reach every node.
  faults_on_ = false;
  Heal();
  for (Node& n : nodes_) {
    if (!n.raft) StartNode(n);
  }
  const uint64_t deadline = now_ + opt_.liveness_timeout_ms;
  const std::string marker = "liveness-check";
  uint64_t next_try = now_;
  while (now_ < deadline) {
    if (now_ >= next_try) {
      Propose(marker);
      next_try = now_ + 200;
    }
    bool everywhere = true;
    for (const Node& n : nodes_) {
      std::vector<Entry> last;
      if (n.applied == 0 || n.applied < n.disk->FirstIndex() ||
          !n.disk->Entries(n.applied, n.applied + 1, UINT64_MAX, &last).ok()) {
        everywhere = false;
        break;
      }
      everywhere = everywhere && last[0].data() == marker;
    }
    if (everywhere) return;
    if (!Step()) break;
  }
  std::ostringstream os;
  os << "liveness: after healing, the cluster did not apply a new proposal "
        "on every node within "
     << opt_.liveness_timeout_ms << " ms (leader " << Leader() << "; applied";
  for (const Node& n : nodes_) os << " " << n.id << ":" << n.applied;
  os << ")";
  Fail(os.str());
}

void Simulation::Trace(const std::function<std::string()>& line) {
  if (!opt_.trace) return;
  trace_.push_back("t=" + std::to_string(now_) + " " + line());
  if (trace_.size() > kTraceLines) trace_.pop_front();
}

SimResult Simulation::Run() {
  SimResult& result = stats_;
  try {
    Boot();
    Schedule(opt_.fault_interval_ms, EventType::kFault, 0);
    Schedule(50, EventType::kPropose, 0);
    Schedule(80, EventType::kRead, 0);
    while (steps_ < static_cast<uint64_t>(opt_.steps) && Step()) {
    }
    CheckLogMatching();
    CheckLiveness();
    CheckLogMatching();
  } catch (const Violation& v) {
    result.ok = false;
    result.failure = v.what;
  }
  result.trace.assign(trace_.begin(), trace_.end());
  result.steps = steps_;
  result.sim_ms = now_;
  result.elections = leader_of_term_.size();
  result.committed = applied_.size() - 1;
  return result;
}

LeaderLossResult Simulation::RunLeaderLoss() {
  LeaderLossResult result;
  faults_on_ = false;
  try {
    RunLeaderLossPhases(&result);
  } catch (const Violation& v) {
    result.failure = v.what;
  }
  return result;
}

void Simulation::RunLeaderLossPhases(LeaderLossResult* out) {
  LeaderLossResult& result = *out;
  Boot();
  // Elect a leader and commit a few entries.
  while (now_ < 5000 && (Leader() == 0 || applied_.size() < 5)) {
    if (Leader() != 0 && now_ % 20 == 0) Propose("warm-up");
    if (!Step()) return;
  }
  result.old_leader = Leader();
  if (result.old_leader == 0) return;
  const uint64_t old_term = node(result.old_leader).raft->term();
  Crash(node(result.old_leader), "leader loss scenario");
  const uint64_t crashed_at = now_;
  while (now_ < crashed_at + 10000) {
    if (!Step()) break;
    const uint64_t leader = Leader();
    if (leader == 0 || node(leader).raft->term() <= old_term) continue;
    const Node& n = node(leader);
    if (n.applied > 0 && applied_[n.applied].first > old_term) {
      result.new_leader = leader;
      result.election_ms = static_cast<int64_t>(now_ - crashed_at);
      return;
    }
  }
}

}  // namespace

SimResult RunSimulation(const SimOptions& options) {
  return Simulation(options).Run();
}

LeaderLossResult RunLeaderLoss(uint64_t seed, int nodes) {
  SimOptions options;
  options.seed = seed;
  options.nodes = nodes;
  return Simulation(options).RunLeaderLoss();
}

}  // namespace raftkv::sim
