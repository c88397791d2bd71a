// RawNode: the application's handle on one Raft node. A pure state machine:
// no threads, sockets, clocks or disk. Time enters through Tick(), messages
// through Step(), requests through Propose()/ReadIndex()/TransferLeader(),
// and all resulting work leaves as a Ready.
//
// Contract for the application (one thread or strand owns a RawNode; it is
// not thread-safe). Synchronously:
//   while (node.HasReady()) {
//     Ready rd = node.GetReady();
//     send rd.messages (at any point of this iteration);
//     1. install rd.snapshot, append rd.entries, save rd.hard_state
//        (fsync when rd.must_sync);
//     2. send rd.messages_after_persist (Step() those addressed to self);
//     3. apply rd.committed_entries, serve rd.read_states once applied;
//     4. node.Advance(rd);
//   }
// Asynchronously (persisting and applying on other threads): Accept(rd)
// right after GetReady() and send rd.messages; hand the writes to a writer
// that completes them in order and then calls OnPersisted(rd.persist_mark())
// and sends (or Steps) rd.messages_after_persist; hand committed entries to
// an applier that reports OnApplied(index). Between those calls the node
// keeps ticking and stepping. Committed entries are only handed out once
// they are durable locally.
// Step() / Tick() / Propose() must not be called between GetReady() and
// Advance() unless step 1 has completed (synchronous use only).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "raft/config.h"
#include "raft/ready.h"
#include "raft/storage.h"

namespace raftkv::raft {

class Raft;

// Replication progress of one peer, as seen by the leader.
struct PeerStatus {
  uint64_t match = 0;
  uint64_t next = 0;
  std::string state;  // "probe", "replicate" or "snapshot"
  bool recent_active = false;
  bool rejoining = false;         // a new incarnation, outside every quorum
  uint64_t pending_snapshot = 0;  // in "snapshot": the index being sent
};

struct NodeStatus {
  uint64_t id = 0;
  uint64_t term = 0;
  uint64_t vote = 0;
  uint64_t commit = 0;
  uint64_t applied = 0;
  uint64_t last_index = 0;
  uint64_t lead = 0;
  Role role = Role::kFollower;
  uint64_t lead_transferee = 0;
  // "" (taking part), "polling" (blank storage, asking the peers) or
  // "rejoining" (a new incarnation catching up; see raft/rejoin.h).
  std::string rejoin;
  std::set<uint64_t> voters;
  std::set<uint64_t> learners;
  uint64_t last_conf_index = 0;  // the latest membership change (0: none)
  std::map<uint64_t, PeerStatus> progress;  // leader only
};

class RawNode {
 public:
  // `storage` must outlive the node. Fails if the config is invalid or
  // storage cannot be read.
  static StatusOr<std::unique_ptr<RawNode>> Create(const Config& config,
                                                   const Storage* storage);
  ~RawNode();
  RawNode(const RawNode&) = delete;
  RawNode& operator=(const RawNode&) = delete;

  // Advances the logical clock by one tick.
  void Tick();
  // Starts an election now (pre-vote first when enabled).
  void Campaign();
  // A follower forgets its leader (e.g. its connection broke), so that it
  // grants pre-votes again and may campaign. Term and vote are unchanged;
  // a no-op on a leader or candidate. Safe with PreVote + CheckQuorum: a
  // live leader keeps the other followers from granting.
  void ForgetLeader();
  // Follower flow control: while paused, this node answers heartbeats with
  // reject set, which tells the leader to send it no more appends (not even
  // the one a heartbeat answer normally frees a full pipeline for) until a
  // plain answer. For a follower that cannot take entries for now (its
  // applier is behind); it stays in every quorum it was in.
  void SetAppendsPaused(bool paused);
  // Appends `data` to the log when this node is the leader and returns the
  // entry's index. A follower returns NotLeader naming the leader ("leader
  // is N", or "leader unknown"); see lead(). ProposalDropped during a
  // leader transfer or when the uncommitted-size limit is reached.
  StatusOr<uint64_t> Propose(std::string data);
  // Appends a single-server membership change (conf_change.h) when this
  // node is the leader and returns the entry's index. It takes effect on
  // each node once the entry is in its log (Ready::conf_state tells the
  // application). Refused while another change is uncommitted, before the
  // leader has committed an entry of its term, and when the change makes no
  // sense (see Raft::ProposeConfChange).
  StatusOr<uint64_t> ProposeConfChange(const ConfChange& change);
  // Handles a message from a peer. Local message types, and messages from
  // nodes outside the configuration other than a leader's appends,
  // heartbeats and snapshots (a joining node knows no one yet), a
  // timeout-now of the current term (a removed leader handing over) and
  // vote and pre-vote requests (a node behind on the configuration still
  // votes, dissertation §4.1), are rejected with InvalidArgument.
  Status Step(const Message& message);
  // Requests a linearizable read point. The answer comes back as a
  // ReadState with the same request_ctx in a later Ready. A follower
  // forwards to the leader; with no leader known, returns NotLeader.
  Status ReadIndex(std::string request_ctx);
  // Asks the leader to hand leadership to `transferee` (dissertation §3.10).
  Status TransferLeader(uint64_t transferee);
  // Transport feedback: `id` could not be reached; the leader goes back to
  // probing it.
  void ReportUnreachable(uint64_t id);
  // Snapshot delivery to `id` finished (failed: it did not arrive).
  void ReportSnapshot(uint64_t id, bool failed);

  bool HasReady() const;
  Ready GetReady();
  // Acknowledges that `ready` has been handled completely (synchronous use:
  // Accept + OnPersisted + OnApplied).
  void Advance(const Ready& ready);
  // Asynchronous use: the application took `ready` over; its entries,
  // snapshot and committed entries are not handed out again.
  void Accept(const Ready& ready);
  // What an accepted Ready asked to persist is durable (in Ready order).
  void OnPersisted(const PersistMark& mark);
  // The state machine applied every committed entry up to `index`.
  void OnApplied(uint64_t index);

  NodeStatus GetStatus() const;
  // The configuration in effect (the latest one in the log).
  const ConfState& conf_state() const;
  // The configuration in effect at log index `index`, for any index at or
  // above the applied one (NotFound below it): what a snapshot taken at
  // the applied index must record.
  StatusOr<ConfState> ConfStateAt(uint64_t index) const;
  uint64_t id() const;
  uint64_t lead() const;
  uint64_t term() const;
  uint64_t commit() const;   // the commit index this node knows
  bool taking_part() const;  // not polling or rejoining after a lost disk
  Role role() const;

 private:
  RawNode(std::unique_ptr<Raft> raft, const HardState& stored);

  std::unique_ptr<Raft> raft_;
  SoftState prev_soft_state_;
  ConfState prev_conf_state_;
  HardState prev_hard_state_;
};

}  // namespace raftkv::raft
