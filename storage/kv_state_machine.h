// KvStateMachine: the replicated key-value store of one node. It applies
// committed Raft entries in log order and serves reads. Data model as in
// etcd v3: each key has create/mod revision and version; the store-wide
// revision grows by one with every command that writes (a Txn is one
// revision). Client sessions give exactly-once writes (Raft dissertation
// §6.3): results are remembered per (client id, sequence) until the client
// acknowledges them with first_outstanding, and sessions expire by log time
// (Command.proposed_at_ms, made monotonic), never by wall clock.
//
// Every change is also kept in the retained history (storage/history.h)
// until a compaction command forgets it; leases (TTL in seconds, as
// granted) and the keys attached to them are state like the keys: a lease
// is revoked, with its keys in one revision, only by a command in the log
// (the leader proposes it when the lease expires).
//
// Durability and atomicity: everything one Apply() changes — data, history,
// leases, store revision, applied index and term, log time, session table —
// goes into ONE
// RocksDB WriteBatch, so after a crash the state is exactly that after some
// applied index: a restart neither re-applies nor skips an entry. Apply
// batches are not fsync'd by default (the entries are durable in the Raft
// log and are re-applied after a crash; see docs/storage.md).
//
// On-disk layout (column families of the Engine):
//   kv           user key -> kv::KeyValue without its key field
//   kv_sessions  client id (8 bytes BE) -> SessionHeader;
//                client id + sequence (16 bytes BE) -> kv::CommandResult
//   kv_meta      "applied" -> AppliedState (index, term, revision, log time,
//                compacted revision)
//                "membership" -> kv::Membership (storage/membership.h)
//                "auth" -> kv::AuthState (storage/auth.h; absent: never
//                changed)
//   kv_history   revision + position -> kv::Event (storage/history.h)
//   kv_leases    leases and their keys (storage/leases.h)
//
// Must never: apply an entry out of order or twice, answer a retried
// command by applying it again, let a command half-apply (bad input is
// rejected before anything is written), or consult the wall clock.
// Thread-safety: not thread-safe: one thread (the server's applier) applies
// and reads; snapshots are streamed from a SnapshotSource (storage/
// snapshot.h), and reads may run on other threads at a ReadSnapshot
// (storage/read_snapshot.h), both of which read the database directly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "client/kv.pb.h"
#include "raft/raft.pb.h"
#include "storage/engine.h"

namespace rocksdb {
class WriteBatch;
}  // namespace rocksdb

namespace raftkv::storage {

class RaftLog;

struct KvStateMachineOptions {
  // A session with no command for this long (in log time) is removed; its
  // client then gets SESSION_EXPIRED.
  uint64_t session_expiry_ms = 60 * 60 * 1000;
  // At most this many sessions; registering one more removes the least
  // recently active (ties: lowest client id).
  uint64_t max_sessions = 100000;
  // At most this many unacknowledged results per session; a command beyond
  // it is rejected (INVALID, not applied) until the client acknowledges.
  uint64_t max_results_per_session = 4096;
  // fsync every apply batch (not needed for safety; see the file comment).
  bool sync = false;
};

class AppliedState;

struct LeaseInfo {
  int64_t id = 0;
  int64_t ttl = 0;  // seconds, as granted
};

// What one ApplyBatch changed, for the server's watches and leases.
struct ApplyEffects {
  std::vector<kv::Event> events;  // every change, in revision order
  std::vector<LeaseInfo> leases_granted;
  std::vector<int64_t> leases_revoked;
  bool auth_changed = false;  // an auth command changed the auth state
};

// Corruption (naming `what`) unless `applied` can be a state machine's
// "applied" record: index below kIndexLimit, revision in [0, index] and
// below INT64_MAX (at most one revision per entry; the next write adds one).
Status CheckAppliedState(const AppliedState& applied, const std::string& what);

class KvStateMachine {
 public:
  // Loads the applied state and the session table. `engine` must outlive
  // the state machine.
  static StatusOr<std::unique_ptr<KvStateMachine>> Open(
      Engine* engine,
      const KvStateMachineOptions& options = KvStateMachineOptions());
  ~KvStateMachine();
  KvStateMachine(const KvStateMachine&) = delete;
  KvStateMachine& operator=(const KvStateMachine&) = delete;

  // Applies one committed entry, whose index must be applied_index() + 1
  // (FailedPrecondition otherwise: nothing is skipped or applied twice).
  // Empty entries (leader no-ops) and ENTRY_CONF_CHANGE only advance the
  // applied index. A payload that is not a valid Command is answered with
  // error INVALID (deterministically on every node). A non-OK Status is a
  // storage failure: nothing of the entry was applied, and the state
  // machine refuses further writes.
  StatusOr<kv::CommandResult> Apply(const raft::Entry& entry);
  // Applies consecutive committed entries in ONE WriteBatch (one write for
  // the whole batch); results[i] answers entries[i]. What changed goes to
  // *effects when given.
  Status ApplyBatch(const std::vector<raft::Entry>& entries,
                    std::vector<kv::CommandResult>* results,
                    ApplyEffects* effects = nullptr);

  // Reads the current state (as of applied_index()), or the state at
  // request.revision(). InvalidArgument for a malformed request (empty key,
  // negative limit); Compacted / FailedPrecondition for a revision that is
  // compacted / not reached.
  StatusOr<kv::RangeResponse> Range(const kv::RangeRequest& request) const;

  // Every lease, by id; the keys attached to lease `id` (NotFound if there
  // is no such lease).
  StatusOr<std::vector<LeaseInfo>> Leases() const;
  StatusOr<std::vector<std::string>> LeaseKeys(int64_t id) const;

  uint64_t applied_index() const;
  uint64_t applied_term() const;
  int64_t revision() const;
  int64_t compacted_revision() const;
  uint64_t log_time_ms() const;
  size_t session_count() const;

  // The membership as of the applied index (storage/membership.h); null
  // until one is recorded: a new cluster's founding members, or the one a
  // snapshot brings to a node that joined.
  const kv::Membership* membership() const;
  // The auth state as of the applied index (storage/auth.h): users, roles,
  // permissions, enabled, auth revision.
  const kv::AuthState& auth() const;

  // Records the founding members of a new cluster (synced): only on a
  // state machine that has applied nothing; a no-op once one is recorded.
  Status RecordFoundingMembership(const kv::Membership& membership);

  // Re-reads the applied state and the session table from the database,
  // after a snapshot was installed underneath (storage/snapshot_install.h),
  // and clears a previous apply failure.
  Status Reload();

  const Engine* engine() const { return engine_; }

 private:
  struct State;  // applied state and session table (kv_state_machine.cc)
  class Applier;

  KvStateMachine(Engine* engine, const KvStateMachineOptions& options,
                 std::unique_ptr<State> state);
  static StatusOr<std::unique_ptr<State>> LoadState(Engine* engine);

  Engine* engine_;
  KvStateMachineOptions options_;
  std::unique_ptr<State> state_;
  // Set when a batch could not be built or written: the in-memory session
  // table may then be ahead of the disk, so nothing more is applied.
  Status failed_;
};

}  // namespace raftkv::storage
