// Linearizability checker for the register workload of raftkv-jepsen, and
// the pairing and timeline rendering the checkers share.
//
// Model: every key is an independent register that starts absent (null).
// write v sets it to v; delete makes it absent; cas [expected, new] sets it
// to new only if it currently equals expected (null = absent); read returns
// the current value, null if absent.
//
// Outcomes: an ok op took effect exactly once between its invocation and its
// completion; a fail op never took effect and is dropped; an info op (or one
// that never completed) may have taken effect at any time after its
// invocation, or never: its completion time is +infinity and it is optional.
// Info and fail reads carry no information and are dropped.
//
// Algorithm: keys are checked independently (P-compositionality: a history
// is linearizable iff each key's sub-history is). For each key, the
// Wing-Gong search as refined by Lowe: a depth-first search over partial
// linearizations, where the next operation to linearize is any pending
// operation invoked before the earliest completion among the required
// (ok) operations not yet linearized, and every configuration (set of
// linearized operations, register value) is memoised so that it is explored
// at most once. Optional operations whose written value nobody ever observes
// are dropped up front (they can always be moved past the end). Ok ops are
// tried before optional ones.
//
// Cost: linear in the key's operations times its concurrency for typical
// histories; exponential in the worst case (the problem is NP-complete), so
// each key has a time and a configuration budget. A key whose search is cut
// off is kUnknown, never kValid.
//
// Must never claim kValid without a completed search, and never do I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jepsen/check_result.h"
#include "jepsen/history.h"
#include "util/status.h"

namespace raftkv::jepsen {

struct LinearizabilityOptions {
  // Wall-clock budget of the search of one key (and again of each search of
  // the slice minimisation on a violation); 0 = unlimited.
  int64_t max_ms_per_key = 20'000;
  // Memoised configurations per key (each costs about ops/8 bytes + 24);
  // 0 = unlimited.
  uint64_t max_states_per_key = 2'000'000;
  // If true, a cas that completed with fail is taken to mean "the comparison
  // failed": it linearized at some point inside its interval at which the
  // register differed from the expected value. If false (default) failed
  // cas ops are dropped like every other failed op, which is always sound.
  bool cas_fail_means_mismatch = false;
};

// Checks every key of the register workload in `history`. Nemesis events
// and keys of the set workload (keys with any "add") are ignored; any other
// f than read/write/cas/delete makes the result kUnknown, and so does a
// history whose events do not pair up (anomaly "malformed-history"). One
// "nonlinearizable" anomaly per violating key, with a minimal failing slice
// of that key's history.
CheckResult CheckRegisters(const History& history,
                           const LinearizabilityOptions& options);

// ---------------------------------------------------------------------------
// Shared by the checkers.

// An invocation paired with its completion.
struct Operation {
  int64_t process = 0;
  std::string f;
  std::string key;
  EventType outcome = EventType::kInfo;  // kOk, kFail or kInfo
  // The invocation's arguments (cas: expected, new).
  std::optional<std::string> value;
  std::optional<std::string> value2;
  // The ok completion's value (what a read returned).
  std::optional<std::string> result;
  int64_t invoke_ns = 0;
  // Time of the completion event; kNoCompletion if the history ended first.
  int64_t complete_ns = 0;
  // Indexes of the two events in the history; kNoEvent if none.
  size_t invoke_index = 0;
  size_t complete_index = 0;
};
constexpr int64_t kNoCompletion = INT64_MAX;
constexpr size_t kNoEvent = SIZE_MAX;

// Pairs each client invocation with the next completion of the same process
// (nemesis events are skipped). Operations are in invocation order. An
// invocation without completion is an info op. InvalidArgument on a
// completion without a pending invocation, a second invocation while one is
// pending, or a completion whose f or key differs from its invocation.
StatusOr<std::vector<Operation>> PairOperations(const History& history);

// A text timeline of `slice` (a few operations and nemesis events): one row
// per operation, grouped by process, with a bar spanning invocation to
// completion on a common time axis. Operations whose invocation event is at
// an index in `marked` are flagged with '*'.
std::string RenderTimeline(const History& slice,
                           const std::vector<size_t>& marked = {});

}  // namespace raftkv::jepsen
