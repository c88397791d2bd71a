// TestNetwork: deterministic in-process cluster of RawNodes for the Raft
// core's unit tests (see test_network.h).
#include "tests/raft/test_network.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "raft/describe.h"

namespace raftkv::raft::rafttest {

Config TestConfig(uint64_t id, std::vector<uint64_t> peers) {
  Config c;
  c.id = id;
  c.peers = std::move(peers);
  c.election_tick = 10;
  c.heartbeat_tick = 1;
  c.seed = 1000 + 17 * id;
  // The nodes of a test cluster start together; none ever held state.
  c.blank_storage_is_new_cluster = true;
  return c;
}

Entry MakeEntry(uint64_t term, uint64_t index, std::string data) {
  Entry e;
  e.set_term(term);
  e.set_index(index);
  e.set_type(ENTRY_NORMAL);
  e.set_data(std::move(data));
  return e;
}

std::vector<Entry> MakeEntries(uint64_t first_index,
                               const std::vector<uint64_t>& terms) {
  std::vector<Entry> out;
  for (size_t i = 0; i < terms.size(); ++i) {
    out.push_back(MakeEntry(terms[i], first_index + i));
  }
  return out;
}

Message Msg(MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.set_type(type);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  return m;
}

size_t CountMessages(const std::vector<Message>& msgs, MessageType type,
                     uint64_t to) {
  return std::count_if(msgs.begin(), msgs.end(), [&](const Message& m) {
    return m.type() == type && (to == kNone || m.to() == to);
  });
}

TestNetwork::TestNetwork(size_t n, std::function<void(Config*)> configure)
    : configure_(std::move(configure)) {
  for (uint64_t id = 1; id <= n; ++id) ids_.push_back(id);
  for (uint64_t id : ids_) {
    Node& node = nodes_[id];
    node.storage = std::make_unique<MemoryStorage>();
    node.config = TestConfig(id, ids_);
    if (configure_) configure_(&node.config);
    CreateNode(id);
  }
  // Each node saves that it took part (HardState.initialized) before the
  // test begins.
  HandleAllReadys();
}

void TestNetwork::CreateNode(uint64_t id) {
  Node& n = nodes_.at(id);
  auto raw = RawNode::Create(n.config, n.storage.get());
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  n.raw = std::move(raw).value();
}

void TestNetwork::Restart(uint64_t id, uint64_t applied) {
  Restart(id, applied, nullptr);
}

void TestNetwork::Restart(uint64_t id, uint64_t applied,
                          const std::function<void(Config*)>& configure) {
  Node& n = nodes_.at(id);
  n.config.applied = applied;
  if (configure) configure(&n.config);
  n.raw.reset();
  CreateNode(id);
  // The state machine restarts from `applied` (or from the snapshot).
  n.applied_index = std::max(applied, n.storage->FirstIndex() - 1);
  n.applied.erase(n.applied.upper_bound(n.applied_index), n.applied.end());
  n.read_states.clear();
  std::deque<Message> kept;
  std::deque<Message> lost;
  for (Message& m : queue_) {
    (m.to() == id ? lost : kept).push_back(std::move(m));
  }
  queue_.swap(kept);
  for (const Message& m : lost) ReportSnapshot(m, /*failed=*/true);
}

void TestNetwork::WipeDisk(uint64_t id) {
  Node& n = nodes_.at(id);
  n.storage = std::make_unique<MemoryStorage>();
  n.applied.clear();
  Restart(id, 0, [](Config* c) { c->blank_storage_is_new_cluster = false; });
}

void TestNetwork::AddNode(uint64_t id,
                          const std::function<void(Config*)>& configure) {
  ASSERT_EQ(nodes_.count(id), 0u) << "node " << id << " exists already";
  Node& n = nodes_[id];
  n.storage = std::make_unique<MemoryStorage>();
  n.config = TestConfig(id, {});
  n.config.join_existing_cluster = true;
  // A blank disk that is not part of a new cluster: without the flag the
  // node would poll its peers (raft/rejoin.h).
  n.config.blank_storage_is_new_cluster = false;
  if (configure_) configure_(&n.config);
  if (configure) configure(&n.config);
  ids_.push_back(id);
  CreateNode(id);
}

void TestNetwork::CheckReadyContract(const Node& n, const Ready& rd) const {
  // Called after the Ready was persisted.
  const HardState& hs = n.storage->hard_state();
  const uint64_t id = n.config.id;
  if (!rd.entries.empty() || rd.snapshot) {
    EXPECT_TRUE(rd.must_sync) << "node " << id << ": entries without sync";
  }
  for (const Message& m : rd.messages) {
    EXPECT_NE(m.type(), MSG_APP_RESP)
        << "node " << id << " acknowledges "
        << "before persisting: " << DescribeMessage(m);
    EXPECT_NE(m.type(), MSG_VOTE_RESP) << "node " << id << " votes before "
                                       << "persisting: " << DescribeMessage(m);
  }
  for (const Message& m : rd.messages_after_persist) {
    EXPECT_EQ(m.from(), id) << DescribeMessage(m);
    const bool vote_grant =
        m.type() == MSG_VOTE_RESP && !m.reject() && m.to() != id;
    const bool own_vote = m.type() == MSG_VOTE_RESP && m.to() == id;
    if (vote_grant || own_vote) {
      // Raft paper Figure 2: votedFor is on stable storage before the vote
      // is cast. (With several messages stepped per Ready the node may
      // already have moved to a later term, which rules out any other vote
      // in m.term() just as well.)
      EXPECT_GE(hs.term(), m.term())
          << "node " << id << " " << DescribeMessage(m);
      if (hs.term() == m.term()) {
        EXPECT_EQ(hs.vote(), vote_grant ? m.to() : id)
            << "node " << id << " " << DescribeMessage(m);
      }
    }
  }
}

Ready TestNetwork::HandleReady(uint64_t id) {
  Node& n = nodes_.at(id);
  if (!n.raw->HasReady()) return Ready();
  Ready rd = n.raw->GetReady();
  const HardState before = n.storage->hard_state();
  // 1. Persist: snapshot, entries, hard state.
  if (rd.snapshot) n.storage->ApplySnapshot(*rd.snapshot);
  n.storage->Append(rd.entries);
  if (rd.hard_state) {
    if (rd.hard_state->term() != before.term() ||
        rd.hard_state->vote() != before.vote()) {
      EXPECT_TRUE(rd.must_sync) << "node " << id << ": term/vote without sync";
    }
    n.storage->SetHardState(*rd.hard_state);
  }
  CheckReadyContract(n, rd);
  // Committed entries are durable: persisted earlier or in this Ready.
  for (const Entry& e : rd.committed_entries) {
    uint64_t term = 0;
    EXPECT_TRUE(n.storage->Term(e.index(), &term).ok() && term == e.term())
        << "node " << id << " hands out " << DescribeEntry(e)
        << " as committed but has not persisted it";
  }
  // 2. Send (what waited for the disk too); keep what is for this node.
  std::vector<Message> to_self;
  for (const auto* msgs : {&rd.messages, &rd.messages_after_persist}) {
    for (const Message& m : *msgs) {
      if (m.to() == id) {
        to_self.push_back(m);
        continue;
      }
      sent_.push_back(m);
      queue_.push_back(m);
    }
  }
  // 3. Apply.
  Apply(id, rd);
  // 4. Advance, then hand the node its own acknowledgements.
  n.raw->Advance(rd);
  for (const Message& m : to_self) {
    EXPECT_TRUE(n.raw->Step(m).ok()) << DescribeMessage(m);
  }
  return rd;
}

void TestNetwork::Apply(uint64_t id, const Ready& rd) {
  Node& n = nodes_.at(id);
  if (rd.snapshot) {
    n.applied_index = rd.snapshot->metadata().index();
    n.applied.clear();
  }
  for (const Entry& e : rd.committed_entries) {
    EXPECT_EQ(e.index(), n.applied_index + 1)
        << "node " << id << " applies " << DescribeEntry(e) << " after "
        << n.applied_index;
    n.applied_index = e.index();
    n.applied[e.index()] = e;
    auto [it, inserted] = committed_.emplace(e.index(), e);
    if (!inserted) {
      EXPECT_EQ(it->second.term(), e.term())
          << "node " << id << " applies " << DescribeEntry(e)
          << " but another node applied " << DescribeEntry(it->second);
      EXPECT_EQ(it->second.data(), e.data());
    }
  }
  n.read_states.insert(n.read_states.end(), rd.read_states.begin(),
                       rd.read_states.end());
  if (rd.conf_state) n.conf_states.push_back(*rd.conf_state);
}

bool TestNetwork::HandleAllReadys() {
  bool any = false;
  bool again = true;
  while (again) {
    again = false;
    for (uint64_t id : ids_) {
      if (nodes_.at(id).raw->HasReady()) {
        HandleReady(id);
        any = again = true;
      }
    }
  }
  return any;
}

bool TestNetwork::Dropped(const Message& m) const {
  if (cut_.count({m.from(), m.to()}) > 0) return true;
  return drop_ && drop_(m);
}

void TestNetwork::ReportSnapshot(const Message& m, bool failed) {
  if (m.type() != MSG_SNAP) return;
  auto it = nodes_.find(m.from());
  if (it == nodes_.end()) return;
  it->second.raw->ReportSnapshot(m.to(), failed);
  HandleReady(m.from());
}

bool TestNetwork::Deliver(const Message& m) {
  auto it = nodes_.find(m.to());
  if (Dropped(m) || it == nodes_.end()) {
    ReportSnapshot(m, /*failed=*/true);
    return false;
  }
  Status s = it->second.raw->Step(m);
  if (!s.ok() && may_be_rejected_from_.count(m.from()) > 0) {
    rejected_.push_back(m);
  } else {
    EXPECT_TRUE(s.ok()) << DescribeMessage(m) << ": " << s.ToString();
  }
  // Normally each node handles its Ready before the next message reaches
  // it.
  if (!defer_readys_) HandleReady(m.to());
  ReportSnapshot(m, /*failed=*/false);
  return true;
}

void TestNetwork::DropAt(size_t i) {
  if (i >= queue_.size()) return;
  Message m = std::move(queue_[i]);
  queue_.erase(queue_.begin() + i);
  ReportSnapshot(m, /*failed=*/true);
}

size_t TestNetwork::DeliverQueued() {
  std::deque<Message> batch;
  batch.swap(queue_);
  size_t delivered = 0;
  for (const Message& m : batch) delivered += Deliver(m) ? 1 : 0;
  return delivered;
}

bool TestNetwork::DeliverAt(size_t i) {
  if (i >= queue_.size()) return false;
  Message m = std::move(queue_[i]);
  queue_.erase(queue_.begin() + i);
  return Deliver(m);
}

void TestNetwork::Stabilize() {
  for (int round = 0; round < 10000; ++round) {
    bool any = HandleAllReadys();
    if (!queue_.empty()) {
      DeliverQueued();
      any = true;
    }
    if (!any) return;
  }
  ADD_FAILURE() << "network did not stabilize";
}

void TestNetwork::Tick(uint64_t id, int n) {
  for (int i = 0; i < n; ++i) nodes_.at(id).raw->Tick();
}

void TestNetwork::TickAllAndStabilize(int n) {
  for (int i = 0; i < n; ++i) {
    for (uint64_t id : ids_) {
      nodes_.at(id).raw->Tick();
      HandleAllReadys();
    }
    Stabilize();
  }
}

void TestNetwork::Elect(uint64_t id) {
  node(id).Campaign();
  Stabilize();
  EXPECT_EQ(node(id).role(), Role::kLeader) << "node " << id << " not elected";
}

void TestNetwork::Cut(uint64_t a, uint64_t b) {
  cut_.insert({a, b});
  cut_.insert({b, a});
}

void TestNetwork::Isolate(uint64_t id) {
  for (uint64_t other : ids_) {
    if (other != id) Cut(id, other);
  }
}

void TestNetwork::Heal() {
  cut_.clear();
  drop_ = nullptr;
}

size_t TestNetwork::CountSent(MessageType type, uint64_t from,
                              uint64_t to) const {
  return std::count_if(sent_.begin(), sent_.end(), [&](const Message& m) {
    return m.type() == type && (from == kNone || m.from() == from) &&
           (to == kNone || m.to() == to);
  });
}

uint64_t TestNetwork::Leader() const {
  uint64_t leader = kNone;
  uint64_t term = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.raw->role() == Role::kLeader && n.raw->term() >= term) {
      leader = n.raw->term() == term ? kNone : id;
      term = n.raw->term();
    }
  }
  return leader;
}

}  // namespace raftkv::raft::rafttest
