// Progress: the leader's view of one follower's log (dissertation §3.5 and
// etcd's progress tracker). A follower is in one of three states:
//   probe:     the leader does not know where the logs match; it sends one
//              MSG_APP per heartbeat interval until one is accepted;
//   replicate: the logs match up to `match`; the leader streams MSG_APPs
//              optimistically (pipelining), bounded by Inflights;
//   snapshot:  a snapshot is on its way; nothing else is sent.
// Not thread-safe; owned by Raft.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

namespace raftkv::raft {

// Flow control: the MSG_APPs sent in replicate state and not yet
// acknowledged, each remembered by its last index and payload bytes.
class Inflights {
 public:
  Inflights(uint64_t max_count, uint64_t max_bytes)
      : max_count_(max_count), max_bytes_(max_bytes) {}

  void Add(uint64_t last_index, uint64_t bytes);
  // Frees every message whose last index is <= `index`.
  void FreeLE(uint64_t index);
  void FreeFirstOne();
  bool Full() const;
  size_t Count() const { return in_flight_.size(); }
  uint64_t Bytes() const { return bytes_; }
  void Reset();

 private:
  uint64_t max_count_;
  uint64_t max_bytes_;                                   // 0 = no byte limit
  std::deque<std::pair<uint64_t, uint64_t>> in_flight_;  // (last index, bytes)
  uint64_t bytes_ = 0;
};

enum class ProgressState { kProbe, kReplicate, kSnapshot };
const char* ProgressStateName(ProgressState state);

class Progress {
 public:
  Progress(uint64_t next, uint64_t max_inflight_msgs,
           uint64_t max_inflight_bytes)
      : next_(next), inflights_(max_inflight_msgs, max_inflight_bytes) {}

  uint64_t match() const { return match_; }
  uint64_t next() const { return next_; }
  ProgressState state() const { return state_; }
  uint64_t pending_snapshot() const { return pending_snapshot_; }
  bool recent_active() const { return recent_active_; }
  void set_recent_active(bool active) { recent_active_ = active; }
  // The follower's applied index, as its latest response said.
  uint64_t applied() const { return applied_; }
  void set_applied(uint64_t applied) { applied_ = applied; }
  Inflights& inflights() { return inflights_; }

  // Incarnations (raft/rejoin.h): the one this leader tracks for the node
  // (0: the node's first life), whether it is left out of every quorum, the
  // RejoinRecord this leader appended for it (0: none, or it went into a
  // snapshot), and whether its last response said it has rejoined.
  uint64_t incarnation() const { return incarnation_; }
  bool IsRetired(uint64_t incarnation) const;
  bool rejoining() const { return rejoining_; }
  uint64_t rejoin_index() const { return rejoin_index_; }
  void set_rejoin_index(uint64_t index) { rejoin_index_ = index; }
  bool reported_rejoined() const { return reported_rejoined_; }
  void set_reported_rejoined(bool rejoined) { reported_rejoined_ = rejoined; }
  // Another incarnation speaks: retire the tracked one, forget everything
  // known of it, leave the node out of quorums and probe from `next`.
  void SwitchIncarnation(uint64_t incarnation, uint64_t next);
  void FinishRejoin() { rejoining_ = false; }
  // The node's first response to this leader comes from an incarnation
  // that has already rejoined (under an earlier leader): track it as is.
  void AdoptRejoinedIncarnation(uint64_t incarnation);
  // Whether this leader has had a response from the node.
  bool heard() const { return heard_; }
  void set_heard() { heard_ = true; }

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(uint64_t snapshot_index);

  // The follower acknowledged entries up to `index`. Returns true if that
  // raised `match`.
  bool MaybeUpdate(uint64_t index);
  // Records that entries up to `last_index` (carrying `bytes` of payload)
  // were sent; in replicate state `next` moves past them optimistically.
  void SentEntries(uint64_t last_index, uint64_t bytes);
  // The follower rejected a MSG_APP at index `rejected`; `match_hint` is the
  // highest index that may match. Returns false if the rejection is stale.
  bool MaybeDecrTo(uint64_t rejected, uint64_t match_hint);
  // Probe state: hold back MSG_APPs until the next heartbeat response.
  void PauseProbe() { probe_sent_ = true; }
  // A heartbeat response arrived: a probing leader may send again.
  void OnHeartbeatResponse();
  // Whether the leader must hold back MSG_APPs to this follower.
  bool IsPaused() const;

 private:
  void ResetState(ProgressState state);

  uint64_t match_ = 0;
  uint64_t next_ = 1;
  ProgressState state_ = ProgressState::kProbe;
  uint64_t pending_snapshot_ = 0;
  bool probe_sent_ = false;  // probe state: one MSG_APP awaits an answer
  bool recent_active_ = false;
  uint64_t applied_ = 0;
  uint64_t incarnation_ = 0;
  std::vector<uint64_t> retired_;  // incarnations superseded in this term
  bool rejoining_ = false;
  uint64_t rejoin_index_ = 0;
  bool reported_rejoined_ = false;
  bool heard_ = false;
  Inflights inflights_;
};

}  // namespace raftkv::raft
