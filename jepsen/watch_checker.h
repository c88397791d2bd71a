// Checker of the watch workload of raftkv-jepsen (jepsen/watch_workload.h):
// writers put and delete single keys under a prefix while watchers watch
// the prefix from a start revision; at the end one linearizable read of
// the prefix gives the final state and its revision.
//
// Encoding in the history (the workload writes it, this file reads it):
//   put     invoke {f "put", key, value}; ok adds "revision": the write's
//           store revision. fail: certainly not applied; info: unknown.
//   delete  invoke {f "delete", key}; ok: value "1" (the key was deleted,
//           at "revision") or "0" (it did not exist: nothing changed, no
//           revision of its own).
//   watch   invoke {f "watch", key = the prefix, "revision" = the start
//           revision} by the watcher's own process; then its observations
//           {f "event", key, value (null: a delete), "revision"} (single ok
//           events, history.h); finally ok {f "watch", "revision" = the
//           revision through which the watch delivered everything} or info
//           {f "watch", value = why it ended by itself}.
//   read    the final read: invoke {f "read", key = the prefix}; ok value
//           "k1=v1,k2=v2" (keys in order; keys and values hold no ',' or
//           '='), "revision" = the store revision it read at.
// Writes are single-key, so each revision changes at most one key of the
// prefix: one event per revision.
//
// What must hold (each violation is one anomaly kind):
//   out-of-order    a watcher delivered a revision below one it delivered
//                   before;
//   duplicated      a watcher delivered a revision twice;
//   divergent       two watchers delivered different events at a revision;
//   wrong-event     the event at the revision of an acknowledged write is
//                   not that write (key, put or delete, value);
//   unexpected-event an event that no write could have made: no write with
//                   its key and value (put) or key (delete) was attempted
//                   before it was delivered, or only one that failed
//                   (certainly not applied), or one acknowledged at another
//                   revision, or one already seen at another revision;
//   event-before-write an acknowledged write's event delivered before the
//                   write was invoked;
//   revision-reused two acknowledged writes with the same revision;
//   lost-event      a watcher's window (start revision to the revision it
//                   reported delivering through) misses a revision that
//                   changed the prefix: an acknowledged write's, or one
//                   that another watcher delivered (an unknown write that
//                   took effect);
//   replay-mismatch replaying a watcher's events up to the final read's
//                   revision does not give the final read's state (or
//                   deletes a key that was not there).
// Not an anomaly: an unknown (info) write that never appears, or appears
// once. A watcher that did not reach the final read's revision (it stalled,
// or ended with an error) makes the result kUnknown unless an anomaly was
// found; its window is checked as far as it got.
//
// Pure computation: never does I/O.
#pragma once

#include "jepsen/check_result.h"
#include "jepsen/history.h"

namespace raftkv::jepsen {

CheckResult CheckWatch(const History& history);

}  // namespace raftkv::jepsen
