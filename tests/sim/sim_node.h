// SimNode: one simulated server: its "disk" (a MemoryStorage, the only
// thing that survives a crash), the writes queued for that disk (in order;
// a crash loses them), its raft::RawNode and its state machine (while up).
// The state machine is the chain of applied entries, summarised as (index,
// chain hash): two nodes that applied the same entries in the same order
// have the same summary, and a snapshot carries it as its data.
// Never touches another node, the network or the wall clock.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "raft/config.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"

namespace raftkv::sim {

// The state machine's summary after applying entries 1..index.
struct AppliedState {
  uint64_t index = 0;
  uint64_t hash = 0;
  bool operator==(const AppliedState& o) const {
    return index == o.index && hash == o.hash;
  }
};

// The summary after applying `entry` to `state` (entry must be the next).
uint64_t ChainHash(uint64_t hash, const raft::Entry& entry);
// Snapshot data: the state machine image, "<index> <hash>".
std::string EncodeSnapshotData(const AppliedState& state);
bool DecodeSnapshotData(const std::string& data, AppliedState* state);

class SimNode {
 public:
  // `founding` is the configuration a founding node starts from; a spare
  // (not founding) starts only when a membership change adds it.
  SimNode(uint64_t id, bool founding, raft::ConfState founding_conf);

  uint64_t id() const { return id_; }
  bool up() const { return raft_ != nullptr; }
  raft::RawNode& raft() { return *raft_; }
  const raft::RawNode& raft() const { return *raft_; }
  raft::MemoryStorage& disk() { return *disk_; }
  const raft::MemoryStorage& disk() const { return *disk_; }
  const AppliedState& applied() const { return applied_; }
  // Counts the node's lives: each Start() begins a new one.
  uint64_t incarnation() const { return incarnation_; }

  // Asynchronous disk: Readys whose writes are in flight, oldest first, and
  // the simulated time the disk is busy until (writes complete in order).
  std::deque<raft::Ready>& pending_writes() { return pending_writes_; }
  uint64_t disk_busy_until_ms() const { return disk_busy_until_ms_; }
  void set_disk_busy_until_ms(uint64_t t) { disk_busy_until_ms_ = t; }

  // The disk is lost: the node restarts with blank storage (crash first).
  void WipeDisk();
  // Wiped and not yet seen taking part again (raft/rejoin.h).
  bool lost() const { return lost_; }
  void set_lost(bool lost) { lost_ = lost; }

  // Boots a RawNode from the disk (config.applied is set here). The state
  // machine restarts from the disk's snapshot; the core then hands out the
  // committed entries after it again.
  Status Start(raft::Config config);
  // Loses the RawNode, the state machine and the writes in flight; the disk
  // stays.
  void Crash();
  // Writes `hard_state` to the disk; `synced` when the write was fsynced
  // (Ready::must_sync), otherwise a crash may lose it.
  void WriteHardState(const raft::HardState& hard_state, bool synced);
  // A crash loses an unsynced hard state write: the commit index goes back
  // to the last synced one (never below the disk's snapshot, whose write
  // was synced). Term and vote changes are always synced.
  void LoseUnsyncedCommit();
  // Mutant kLoseTail: the disk forgets its last `count` entries (never the
  // snapshot); the persisted commit index is clamped to what remains.
  void LoseTail(uint64_t count);

  // State machine. Apply fails unless `entry` is the next index. With
  // `skip_effect` (mutant kSkipApply) the index advances but the entry's
  // content does not enter the state.
  Status Apply(const raft::Entry& entry, bool skip_effect = false);
  // Replaces the state machine by a snapshot's image.
  Status RestoreSnapshot(const raft::Snapshot& snapshot);
  // Snapshots the state machine at its applied index and compacts the disk
  // up to `keep` entries below it. False if there is nothing to compact.
  bool SnapshotAndCompact(const raft::ConfState& conf_state, uint64_t keep);

  // Membership, as the simulator drives it: a founding node, a spare not
  // started yet, one started to join the cluster (Config::
  // join_existing_cluster), or one removed and stopped for good.
  bool founding() const { return founding_; }
  bool spare() const { return !founding_ && !joined_; }
  bool joined() const { return joined_; }
  void set_joined() { joined_ = true; }
  bool removed() const { return removed_; }
  void set_removed() { removed_ = true; }

  // The membership changes of the node's log (in memory: what its Readys
  // handed out; rebuilt from the disk at Start()) and the configuration
  // they give on top of the base (its snapshot's, or the founding one).
  void TrackReady(const raft::Ready& rd);
  const raft::ConfState& ConfFromLog();
  // Indexes of the membership changes in its log, ascending.
  std::vector<uint64_t> ConfIndexes() const;

  // Last role and term seen in a Ready (for the trace and leader checks).
  raft::Role seen_role() const { return seen_role_; }
  uint64_t seen_term() const { return seen_term_; }
  void set_seen(raft::Role role, uint64_t term) {
    seen_role_ = role;
    seen_term_ = term;
  }

 private:
  const uint64_t id_;
  std::unique_ptr<raft::MemoryStorage> disk_;
  std::unique_ptr<raft::RawNode> raft_;  // null while crashed
  AppliedState applied_;
  uint64_t incarnation_ = 0;
  uint64_t synced_commit_ = 0;
  std::deque<raft::Ready> pending_writes_;
  uint64_t disk_busy_until_ms_ = 0;
  bool lost_ = false;
  raft::Role seen_role_ = raft::Role::kFollower;
  uint64_t seen_term_ = 0;

  void RescanConf();
  void TrackEntries(const std::vector<raft::Entry>& entries);

  const bool founding_;
  const raft::ConfState founding_conf_;
  bool joined_ = false;
  bool removed_ = false;
  raft::ConfState base_conf_;
  uint64_t base_index_ = 0;
  std::map<uint64_t, raft::Entry> conf_entries_;  // by index
  raft::ConfState log_conf_;
  bool log_conf_stale_ = true;
};

}  // namespace raftkv::sim
