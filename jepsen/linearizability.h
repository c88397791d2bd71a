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
// at most once. Ok ops are tried before optional ones. Sound reductions,
// each checked against a brute-force search in the tests:
//  - values that no read returns and no cas compares with are merged into
//    one (the model cannot tell them apart);
//  - an optional op whose resulting value nobody observes (no ok read
//    returns it, no cas expects it) is dropped up front unless failed cas
//    ops constrain the key (cas_fail_means_mismatch), and so is an optional
//    cas v -> v: either can be left out of any linearization;
//  - an optional cas is never linearized as a no-op (comparison failed);
//  - an optional op may only be followed by an op that observes its result
//    (a read of it, a cas expecting it, a failed cas it explains):
//    otherwise it could be left out;
//  - among invoked optional ops with the same effect (kind and values) only
//    the earliest is tried: they are interchangeable, having no deadline;
//  - an ok read or cas observing a value that no op invoked before it
//    completed writes is refuted without a search.
//
// Cost: for typical histories about linear in the key's operations times
// its concurrency (pending info ops included), with a memo of ops/8 bytes
// per configuration; exponential in the worst case (the problem is
// NP-complete), so each key has a time, configuration and memory budget.
// A key whose search is cut off is kUnknown, never kValid. Hot spots: one
// key carrying thousands of ops with many pending info ops and few distinct
// values.
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
  // Wall-clock budget of the whole check: keys not searched by then are
  // kUnknown; 0 = unlimited.
  int64_t max_total_ms = 300'000;
  // Memoised configurations per key; 0 = unlimited.
  uint64_t max_states_per_key = 4'000'000;
  // Memory of the memo per key (a configuration costs about ops/8 + 20
  // bytes); 0 = unlimited.
  uint64_t max_memo_bytes_per_key = uint64_t{1} << 30;
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
// (nemesis events and observations, history.h, are skipped). Operations are in
// invocation order. An invocation without completion is an info op.
// InvalidArgument on a completion without a pending invocation, a second
// invocation while one is pending, or a completion whose f or key differs from
// its invocation.
StatusOr<std::vector<Operation>> PairOperations(const History& history);

// A text timeline of `slice` (a few operations and nemesis events): one row
// per operation, grouped by process, with a bar spanning invocation to
// completion on a common time axis. Operations whose invocation event is at
// an index in `marked` are flagged with '*'.
std::string RenderTimeline(const History& slice,
                           const std::vector<size_t>& marked = {});

}  // namespace raftkv::jepsen
