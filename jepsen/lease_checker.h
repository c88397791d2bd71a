// Checker of the lease workload of raftkv-jepsen (records as
// jepsen/lease_workload.h describes them). Only what the system guarantees
// is asserted:
//
// (a) A kept-alive key does not disappear. A lease is certainly alive until
//     B, the latest of: its grant's invocation + the TTL granted (the
//     leader starts the clock when it applies the grant, later), and each
//     ok TTL probe's invocation + (seconds left - 1) (the leader rounds
//     up; it answered after the invocation). A lease alive at some time
//     was alive at every time since its grant (a revoked lease never comes
//     back). So an ok linearizable read of "reg/" that began after the put
//     of "reg/<p>" was acknowledged and ended before B, with no revoke of
//     the lease invoked before it ended, must contain "reg/<p>" on that
//     lease: else "kept-alive-key-missing". Nothing is asserted past B: a
//     keeper cut off from the majority (partition, paused leader) may see
//     its lease expire, and reports the loss ("lost", counted, not an
//     anomaly). The LeaseKeeper's own view (alive until it says lost) is
//     not trusted to the millisecond: it learns of an expiry by a timer.
// (b) A revoked or expired lease's keys are gone. An ok linearizable read
//     that began after a revoke of lease L was acknowledged must hold no
//     key on L: else "revoked-key-present". After the final heal, every
//     lease is dead (abandoned, revoked or lost before the final phase):
//     the last linearizable read of the whole key space, and on each node
//     the last serializable read at or past that read's revision, must
//     hold no key on any lease: else "dead-lease-key-present" (naming the
//     node). A read holding a key no put made (that key on that lease),
//     is "unexpected-key".
// (c) The lock (counter key "lock-counter"). Fencing tokens (Mutex::revision(),
// the lock key's create
//     revision) of ok locks whose calls did not overlap increase: a lock
//     that completed before another was invoked has the smaller token,
//     else "non-increasing-token" (two Lock calls that overlap may complete
//     in either order: a holder whose session expires right after its
//     check returns late with a token already stale). Increments of the
//     guarded counter, ordered by the revision of their Txn, carry
//     non-decreasing tokens ("stale-token-write": a holder wrote after a
//     later holder did) and write strictly increasing values; two ok
//     increments writing the same value lost one ("lost-increment"); an
//     ok increment's read value must be 0 or a value some increment wrote
//     ("unexpected-counter-value"); the final counter read F is at least
//     every ok increment's value and at most the ok plus unknown
//     increments ("lost-increment", "unexpected-counter-value").
//
// kUnknown (unless an anomaly was found): no final linearizable read, a
// node without a final read at the final revision, an unsupported
// operation, or a malformed history.
//
// Pure computation: never does I/O.
#pragma once

#include "jepsen/check_result.h"
#include "jepsen/history.h"

namespace raftkv::jepsen {

CheckResult CheckLease(const History& history);

}  // namespace raftkv::jepsen
