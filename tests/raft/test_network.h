// TestNetwork: a small deterministic in-process cluster of RawNodes over
// MemoryStorages for the Raft core's unit tests.
//
// It handles every Ready the way the RawNode contract requires (install the
// snapshot, append the entries and save the hard state to the node's
// MemoryStorage, then queue the messages, then apply the committed entries,
// then Advance, then step the node's own acknowledgements back into it) and
// checks the contract's promises as it goes: no acknowledgement leaves
// before the Ready is persisted, a granted vote is durable (hard state,
// must_sync) in the Ready that carries it, and committed entries are
// durable, handed out once each, in order, and agree across nodes.
//
// Messages wait in one FIFO queue until delivered. Links can be cut, nodes
// isolated, and arbitrary messages dropped by a filter. Like a transport,
// the network reports each MSG_SNAP's fate to its sender (ReportSnapshot).
// Nothing happens unless the test asks: no ticks, no delivery. Not thread-safe.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "raft/config.h"
#include "raft/memory_storage.h"
#include "raft/raft.pb.h"
#include "raft/raw_node.h"
#include "raft/ready.h"

namespace raftkv::raft::rafttest {

// A Config as the tests use it: small election timeout, one-tick
// heartbeats, and a seed distinct per node so timeouts differ.
Config TestConfig(uint64_t id, std::vector<uint64_t> peers);

// An entry with the given term, index and payload.
Entry MakeEntry(uint64_t term, uint64_t index, std::string data = "");
// Entries with the given terms at indexes first, first + 1, ...
std::vector<Entry> MakeEntries(uint64_t first_index,
                               const std::vector<uint64_t>& terms);

// A peer message with the given routing and term.
Message Msg(MessageType type, uint64_t from, uint64_t to, uint64_t term);

// Counts the messages of `type` in `msgs` (optionally only those to `to`).
size_t CountMessages(const std::vector<Message>& msgs, MessageType type,
                     uint64_t to = kNone);

class TestNetwork {
 public:
  // Nodes 1..n. `configure` may adjust each node's Config (pre_vote,
  // limits, ...) before the node is created; it is reused on Restart().
  explicit TestNetwork(size_t n,
                       std::function<void(Config*)> configure = nullptr);

  RawNode& node(uint64_t id) { return *nodes_.at(id).raw; }
  MemoryStorage& storage(uint64_t id) { return *nodes_.at(id).storage; }
  const std::vector<uint64_t>& ids() const { return ids_; }

  // Rebuilds node `id` from what its MemoryStorage holds, as after a crash
  // (unpersisted state and its queued inbound messages are lost). The
  // node's applied index becomes `applied` (Config::applied).
  void Restart(uint64_t id, uint64_t applied = 0);
  // Like Restart, with the Config adjusted by `configure` first.
  void Restart(uint64_t id, uint64_t applied,
               const std::function<void(Config*)>& configure);
  // Node `id` loses its disk and restarts on a blank one: it polls its
  // peers and rejoins (raft/rejoin.h).
  void WipeDisk(uint64_t id);
  // Creates node `id` (not yet a member) on a blank MemoryStorage with
  // Config::join_existing_cluster set and no peers, as an operator starts
  // a node before adding it to a running cluster. The network's configure
  // then `configure` adjust its Config. It takes part in ticks and
  // delivery like the others from now on.
  void AddNode(uint64_t id,
               const std::function<void(Config*)>& configure = nullptr);
  // Messages from `id` may be refused by their receiver's Step (a node
  // removed from the configuration is unknown to the others); they are
  // counted in rejected() instead of failing the test.
  void AllowRejectedFrom(uint64_t id) { may_be_rejected_from_.insert(id); }
  // The messages a receiver's Step refused (see AllowRejectedFrom).
  const std::vector<Message>& rejected() const { return rejected_; }

  // Handles one Ready of node `id` if it has one, following the contract;
  // its messages join the queue. Returns the Ready (empty if none).
  Ready HandleReady(uint64_t id);
  // Handles Readys of every node until none has one. Returns whether any
  // node had one.
  bool HandleAllReadys();

  // Delivers (or drops) the messages queued now, not those they cause.
  // Returns how many were delivered.
  size_t DeliverQueued();
  // Delivers (or drops) only the i-th queued message; returns whether it
  // was delivered. Lets tests reorder the network.
  bool DeliverAt(size_t i);
  // When set, delivering a message does not handle the receiver's Ready at
  // once: several messages may be stepped before the next Ready, which the
  // RawNode contract allows (the test calls HandleAllReadys()).
  void set_defer_readys(bool defer) { defer_readys_ = defer; }
  // Drops the i-th queued message (a lost MSG_SNAP is reported to its
  // sender as failed, like a transport would).
  void DropAt(size_t i);
  // Handles Readys and delivers messages until nothing is left to do.
  void Stabilize();

  // Ticks node `id` `n` times (no Ready handling).
  void Tick(uint64_t id, int n = 1);
  // Ticks every node once, then stabilizes; `n` times.
  void TickAllAndStabilize(int n = 1);
  // Campaign() on `id`, then stabilize; expects `id` to become leader.
  void Elect(uint64_t id);

  // Partitions: a cut link drops messages both ways.
  void Cut(uint64_t a, uint64_t b);
  // Drops messages from `from` to `to` only (an asymmetric partition).
  void CutOneWay(uint64_t from, uint64_t to) { cut_.insert({from, to}); }
  void Isolate(uint64_t id);
  void Heal();
  // Drops every message for which `drop` returns true (nullptr: none).
  void SetDropFilter(std::function<bool(const Message&)> drop) {
    drop_ = std::move(drop);
  }
  // Discards the messages queued now.
  void ClearQueue() { queue_.clear(); }
  std::deque<Message>& queue() { return queue_; }

  // Every message handed out in a Ready since the last ClearSent(),
  // whether later delivered or dropped.
  const std::vector<Message>& sent() const { return sent_; }
  void ClearSent() { sent_.clear(); }
  size_t CountSent(MessageType type, uint64_t from = kNone,
                   uint64_t to = kNone) const;

  // What node `id` applied: entries by index (a snapshot counts as applied
  // up to its index), and the read states it was handed, in order.
  const std::map<uint64_t, Entry>& applied(uint64_t id) const {
    return nodes_.at(id).applied;
  }
  uint64_t applied_index(uint64_t id) const {
    return nodes_.at(id).applied_index;
  }
  const std::vector<ReadState>& read_states(uint64_t id) const {
    return nodes_.at(id).read_states;
  }
  void ClearReadStates(uint64_t id) { nodes_.at(id).read_states.clear(); }
  // The configurations node `id` announced (Ready::conf_state), in order.
  const std::vector<ConfState>& conf_states(uint64_t id) const {
    return nodes_.at(id).conf_states;
  }

  // Every entry applied by some node, by index (all nodes agree on them).
  const std::map<uint64_t, Entry>& committed() const { return committed_; }

  // The current leader if exactly one node believes it leads, else kNone.
  uint64_t Leader() const;

 private:
  struct Node {
    Config config;
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<RawNode> raw;
    std::map<uint64_t, Entry> applied;
    uint64_t applied_index = 0;
    std::vector<ReadState> read_states;
    std::vector<ConfState> conf_states;
  };

  void CreateNode(uint64_t id);
  void CheckReadyContract(const Node& n, const Ready& rd) const;
  void Apply(uint64_t id, const Ready& rd);
  bool Dropped(const Message& m) const;
  bool Deliver(const Message& m);
  void ReportSnapshot(const Message& m, bool failed);

  std::vector<uint64_t> ids_;
  std::function<void(Config*)> configure_;
  std::map<uint64_t, Node> nodes_;
  std::deque<Message> queue_;
  std::vector<Message> sent_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::function<bool(const Message&)> drop_;
  bool defer_readys_ = false;
  std::set<uint64_t> may_be_rejected_from_;
  std::vector<Message> rejected_;
  // Committed entries applied by any node, by index: all nodes must agree
  // (State Machine Safety, Raft paper §5.4.3).
  std::map<uint64_t, Entry> committed_;
};

}  // namespace raftkv::raft::rafttest
