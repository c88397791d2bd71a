// SafetyChecker: incremental checks of the Raft safety properties over the
// history of one simulated run. Never modifies a node or its disk.
#include "tests/sim/invariants.h"

#include <algorithm>

#include "raft/conf_change.h"
#include "raft/describe.h"
#include "raft/quorum.h"

namespace raftkv::sim {
namespace {

uint64_t HashData(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::string N(uint64_t v) { return std::to_string(v); }

Status Violation(const std::string& property, const std::string& detail) {
  return Status::Corruption(property + ": " + detail);
}

std::string Ids(const std::set<uint64_t>& ids) {
  std::string out;
  for (uint64_t id : ids) out += (out.empty() ? "" : ",") + N(id);
  return "{" + out + "}";
}

template <typename T>
T& Grow(std::vector<T>& v, uint64_t index) {
  if (index >= v.size()) v.resize(index + 1);
  return v[index];
}

}  // namespace

SafetyChecker::SafetyChecker(int nodes, int founding_voters)
    : checked_commit_(nodes, 0) {
  const int founding = founding_voters > 0 ? founding_voters : nodes;
  for (int i = 1; i <= founding; ++i) founding_.add_voters(i);
}

Status SafetyChecker::OnBecomeLeader(uint64_t node, uint64_t term,
                                     const raft::Storage& log,
                                     const raft::ConfState& conf) {
  auto [it, inserted] = leader_of_term_.emplace(term, node);
  if (!inserted && it->second != node) {
    return Violation("election safety",
                     "nodes " + N(it->second) + " and " + N(node) +
                         " are both leaders of term " + N(term));
  }
  if (!raft::IsVoter(conf, node)) {
    return Violation("membership", "node " + N(node) +
                                       " became leader of term " + N(term) +
                                       " but is not a voter of its "
                                       "configuration " +
                                       raft::DescribeConfState(conf));
  }
  if (auto removed = removal_committed_.find(node);
      removed != removal_committed_.end()) {
    return Violation("membership", "node " + N(node) +
                                       " became leader of term " + N(term) +
                                       " after its removal at index " +
                                       N(removed->second) + " committed");
  }
  // The grants that left voters of the leader's configuration: the only
  // votes that may count (a learner's or a stranger's never do).
  const std::set<uint64_t> voters = raft::Voters(conf);
  std::set<uint64_t> counted;
  for (uint64_t v : grants_[{term, node}]) {
    if (voters.count(v)) counted.insert(v);
  }
  if (counted.size() < raft::MajoritySize(voters.size())) {
    return Violation("membership",
                     "node " + N(node) + " became leader of term " + N(term) +
                         " with grants from only " + Ids(counted) +
                         " of its voters " + Ids(voters));
  }
  if (log.LastIndex() < max_commit_) {
    return Violation("leader completeness",
                     "leader " + N(node) + " of term " + N(term) +
                         " has last index " + N(log.LastIndex()) +
                         " but index " + N(max_commit_) + " is committed");
  }
  // Below FirstIndex() - 1 the log is covered by a snapshot, which was
  // checked against the committed history when it was installed.
  const uint64_t from = std::max<uint64_t>(log.FirstIndex() - 1, 1);
  for (uint64_t i = from; i <= max_commit_; ++i) {
    const uint64_t want = CommittedTerm(i);
    uint64_t got = 0;
    if (want != 0 && (!log.Term(i, &got).ok() || got != want)) {
      return Violation("leader completeness",
                       "leader " + N(node) + " of term " + N(term) +
                           " lacks committed entry " + N(want) + "/" + N(i) +
                           " (has term " + N(got) + ")");
    }
  }
  return Status::OK();
}

Status SafetyChecker::OnPersistEntries(uint64_t node,
                                       const std::vector<raft::Entry>& entries,
                                       const raft::Storage& log) {
  if (entries.empty()) return Status::OK();
  uint64_t prev_term = 0;
  bool prev_known = log.Term(entries.front().index() - 1, &prev_term).ok();
  for (const raft::Entry& e : entries) {
    RAFTKV_RETURN_IF_ERROR(RecordEntry(node, e, prev_term, prev_known));
    prev_term = e.term();
    prev_known = true;
  }
  return Status::OK();
}

Status SafetyChecker::RecordEntry(uint64_t node, const raft::Entry& entry,
                                  uint64_t prev_term, bool prev_known) {
  if (entry.type() == raft::ENTRY_CONF_CHANGE &&
      !conf_entries_.count({entry.index(), entry.term()})) {
    auto change = raft::DecodeConfChange(entry);
    if (!change.ok()) {
      return Violation("membership", "node " + N(node) + " persisted " +
                                         raft::DescribeEntry(entry) +
                                         " which holds no membership change");
    }
    conf_entries_[{entry.index(), entry.term()}] = *change;
    NoteCommittedConfChange(entry.index(), entry.term());
  }
  const uint64_t data_hash = HashData(entry.data());
  std::vector<EntryId>& seen = Grow(entries_, entry.index());
  for (EntryId& id : seen) {
    if (id.term != entry.term()) continue;
    if (id.data_hash != data_hash) {
      return Violation("log matching",
                       "node " + N(node) + " persisted " +
                           raft::DescribeEntry(entry) +
                           " whose data differs from another entry " +
                           N(entry.term()) + "/" + N(entry.index()));
    }
    if (prev_known && id.prev_known && id.prev_term != prev_term) {
      return Violation("log matching", "node " + N(node) + " persisted " +
                                           raft::DescribeEntry(entry) +
                                           " after term " + N(prev_term) +
                                           " where another log has term " +
                                           N(id.prev_term) + " before it");
    }
    if (prev_known && !id.prev_known) {
      id.prev_term = prev_term;
      id.prev_known = true;
    }
    return Status::OK();
  }
  seen.push_back({entry.term(), data_hash, prev_term, prev_known});
  return Status::OK();
}

Status SafetyChecker::OnPersistSnapshot(uint64_t node,
                                        const raft::Snapshot& snapshot) {
  const uint64_t index = snapshot.metadata().index();
  const uint64_t term = snapshot.metadata().term();
  if (CommittedTerm(index) != term) {
    return Violation("committed prefix",
                     "node " + N(node) + " installed a snapshot at " + N(term) +
                         "/" + N(index) +
                         " but the committed entry there has term " +
                         N(CommittedTerm(index)));
  }
  AppliedState state;
  if (!DecodeSnapshotData(snapshot.data(), &state) || state.index != index) {
    return Violation("state machine safety",
                     "node " + N(node) + " installed a snapshot at " +
                         N(index) + " with image '" + snapshot.data() + "'");
  }
  return OnRestoreStateMachine(node, state);
}

Status SafetyChecker::OnPersistHardState(uint64_t node,
                                         const raft::HardState& hard_state,
                                         const raft::Storage& log) {
  const uint64_t commit = hard_state.commit();
  if (commit > log.LastIndex()) {
    return Violation("committed prefix",
                     "node " + N(node) + " persisted commit index " +
                         N(commit) + " beyond its persisted log (last " +
                         N(log.LastIndex()) + ")");
  }
  uint64_t& checked = checked_commit_[node - 1];
  const uint64_t from =
      std::max<uint64_t>({checked + 1, log.FirstIndex() - 1, 1});
  for (uint64_t i = from; i <= commit; ++i) {
    uint64_t term = 0;
    if (!log.Term(i, &term).ok()) {
      return Violation("committed prefix", "node " + N(node) +
                                               " committed index " + N(i) +
                                               " that is not in its log");
    }
    RAFTKV_RETURN_IF_ERROR(RecordCommitted(node, i, term));
  }
  checked = std::max(checked, commit);
  max_commit_ = std::max(max_commit_, commit);
  return Status::OK();
}

Status SafetyChecker::RecordCommitted(uint64_t node, uint64_t index,
                                      uint64_t term) {
  uint64_t& known = Grow(committed_term_, index);
  if (known == 0) {
    known = term;
    NoteCommittedConfChange(index, term);
  } else if (known != term) {
    return Violation("committed prefix",
                     "index " + N(index) + " was committed with term " +
                         N(known) + " but node " + N(node) +
                         " now commits term " + N(term) +
                         " there: a committed entry was lost");
  }
  return Status::OK();
}

void SafetyChecker::NoteCommittedConfChange(uint64_t index, uint64_t term) {
  if (CommittedTerm(index) != term) return;
  auto it = conf_entries_.find({index, term});
  if (it == conf_entries_.end() ||
      it->second.type() != raft::CONF_REMOVE_NODE) {
    return;
  }
  removal_committed_.emplace(it->second.node(), index);
}

void SafetyChecker::OnVoteGranted(uint64_t voter, uint64_t candidate,
                                  uint64_t term) {
  grants_[{term, candidate}].insert(voter);
}

Status SafetyChecker::OnLeaderLog(
    uint64_t node, uint64_t term,
    const std::vector<uint64_t>& conf_indexes) const {
  // Only the changes above the highest commit index known anywhere are
  // uncommitted (the leader's own commit index may lag).
  std::vector<uint64_t> above;
  for (uint64_t i : conf_indexes) {
    if (i > max_commit_) above.push_back(i);
  }
  if (above.size() < 2) return Status::OK();
  return Violation("membership",
                   "leader " + N(node) + " of term " + N(term) +
                       " holds uncommitted membership changes at indexes " +
                       N(above[0]) + " and " + N(above[1]) + " (commit " +
                       N(max_commit_) + "): more than one at a time");
}

Status SafetyChecker::OnConfInEffect(uint64_t node,
                                     const raft::ConfState& in_effect,
                                     const raft::ConfState& from_log) {
  if (raft::SameConfState(in_effect, from_log)) return Status::OK();
  return Violation("membership", "node " + N(node) + " has " +
                                     raft::DescribeConfState(in_effect) +
                                     " in effect but its log gives " +
                                     raft::DescribeConfState(from_log));
}

bool SafetyChecker::CommittedConfAt(uint64_t index,
                                    raft::ConfState* conf) const {
  raft::ConfState c = founding_;
  for (const auto& [key, change] : conf_entries_) {
    const auto [i, term] = key;
    if (i > index) break;
    const uint64_t committed = CommittedTerm(i);
    if (committed == 0) return false;  // not known yet
    if (committed != term) continue;   // an entry that was replaced
    // An invalid change has no effect, on every node alike.
    if (auto next = raft::ApplyConfChange(c, change); next.ok()) c = *next;
  }
  *conf = c;
  return true;
}

Status SafetyChecker::OnSnapshotConf(uint64_t node,
                                     const raft::SnapshotMetadata& meta) const {
  raft::ConfState committed;
  if (!CommittedConfAt(meta.index(), &committed) ||
      raft::SameConfState(committed, meta.conf_state())) {
    return Status::OK();
  }
  return Violation("membership",
                   "node " + N(node) + " holds a snapshot at " +
                       N(meta.index()) + " recording " +
                       raft::DescribeConfState(meta.conf_state()) + " but " +
                       raft::DescribeConfState(committed) +
                       " was committed as of that index");
}

void SafetyChecker::OnRestart(uint64_t node, uint64_t commit) {
  uint64_t& checked = checked_commit_[node - 1];
  checked = std::min(checked, commit);
}

void SafetyChecker::OnCommitKnown(uint64_t node, uint64_t commit) {
  max_commit_ = std::max(max_commit_, commit);
}

Status SafetyChecker::OnApply(uint64_t node, const raft::Entry& entry,
                              const AppliedState& after) {
  const uint64_t i = entry.index();
  if (i > max_commit_ ||
      (CommittedTerm(i) != 0 && CommittedTerm(i) != entry.term())) {
    return Violation(
        "state machine safety",
        "node " + N(node) + " applies " + raft::DescribeEntry(entry) +
            " which is not the committed entry there (term " +
            N(CommittedTerm(i)) + ", highest commit " + N(max_commit_) + ")");
  }
  // Applying says the node knows the entry committed: it must agree with
  // what any node committed there (before or later).
  RAFTKV_RETURN_IF_ERROR(RecordCommitted(node, i, entry.term()));
  AppliedId& seen = Grow(applied_, i);
  if (seen.term == 0) {
    seen = {entry.term(), after.hash};
  } else if (seen.term != entry.term() || seen.hash != after.hash) {
    return Violation("state machine safety",
                     "node " + N(node) + " applies " +
                         raft::DescribeEntry(entry) + " at index " + N(i) +
                         " where an entry of term " + N(seen.term) +
                         " (or a different history) was applied before");
  }
  return Status::OK();
}

Status SafetyChecker::OnRestoreStateMachine(uint64_t node,
                                            const AppliedState& state) {
  if (state.index == 0) return Status::OK();
  if (state.index >= applied_.size() || applied_[state.index].term == 0 ||
      applied_[state.index].hash != state.hash) {
    return Violation("state machine safety",
                     "node " + N(node) + " restores a state machine at index " +
                         N(state.index) +
                         " that no node reached by applying entries");
  }
  return Status::OK();
}

void SafetyChecker::OnReadRequested(uint64_t read_id) {
  pending_reads_[read_id] = max_commit_;
}

Status SafetyChecker::OnReadState(uint64_t node, uint64_t read_id,
                                  uint64_t index) {
  auto it = pending_reads_.find(read_id);
  if (it == pending_reads_.end()) return Status::OK();  // a duplicate answer
  const uint64_t floor = it->second;
  pending_reads_.erase(it);
  ++reads_checked_;
  if (index < floor) {
    return Violation("linearizable reads",
                     "read " + N(read_id) + " answered on node " + N(node) +
                         " at index " + N(index) + " but index " + N(floor) +
                         " was committed before the read was requested");
  }
  if (index > max_commit_) {
    return Violation("linearizable reads",
                     "read " + N(read_id) + " answered on node " + N(node) +
                         " at index " + N(index) +
                         " which is not committed (highest commit " +
                         N(max_commit_) + ")");
  }
  return Status::OK();
}

Status SafetyChecker::CheckLogMatching(
    const std::vector<const raft::Storage*>& logs) {
  for (size_t a = 0; a < logs.size(); ++a) {
    for (size_t b = a + 1; b < logs.size(); ++b) {
      const raft::Storage& x = *logs[a];
      const raft::Storage& y = *logs[b];
      const uint64_t lo = std::max(x.FirstIndex(), y.FirstIndex());
      const uint64_t hi = std::min(x.LastIndex(), y.LastIndex());
      if (lo > hi) continue;
      std::vector<raft::Entry> ex, ey;
      RAFTKV_RETURN_IF_ERROR(x.Entries(lo, hi + 1, UINT64_MAX, &ex));
      RAFTKV_RETURN_IF_ERROR(y.Entries(lo, hi + 1, UINT64_MAX, &ey));
      // The highest index where both logs hold the same term.
      size_t match = ex.size();
      while (match > 0 && ex[match - 1].term() != ey[match - 1].term()) {
        --match;
      }
      for (size_t i = 0; i < match; ++i) {
        if (ex[i].term() != ey[i].term() || ex[i].data() != ey[i].data()) {
          return Violation("log matching",
                           "nodes " + N(a + 1) + " and " + N(b + 1) +
                               " both hold " +
                               raft::DescribeEntry(ex[match - 1]) +
                               " but differ at " + raft::DescribeEntry(ex[i]) +
                               " vs " + raft::DescribeEntry(ey[i]));
        }
      }
    }
  }
  return Status::OK();
}

}  // namespace raftkv::sim
