// The retained history (MVCC): every change to a key is recorded as a
// kv::Event in the "kv_history" column family under its revision, until a
// compaction forgets the revisions at and below a point. Watches replay it
// from a revision; reads at an old revision undo it from the current state.
// Internal to storage/ except ReadHistory, which any thread may call.
//
// Must never: return part of a revision (a watcher would see half a
// transaction), or history at or below the compacted revision as if it
// were complete.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "client/kv.pb.h"
#include "util/status.h"

namespace raftkv::storage {

class Engine;
class WriteView;

// "kv_history" key of the event at `position` within `revision`.
std::string HistoryKey(int64_t revision, uint32_t position);

// Whether `key` lies in the etcd range [begin, end) (end empty: just
// `begin`; end "\0": every key >= begin).
bool InRange(const std::string& key, const std::string& begin,
             const std::string& end);

// Records the events of one revision (their kv.mod_revision) in `view`.
void RecordHistory(WriteView* view, const std::vector<kv::Event>& events);

// Schedules the removal of every history record at or below `revision`
// (a range deletion: invisible to reads through `view`).
void ForgetHistory(WriteView* view, int64_t revision);

// Turns *state, the keys of the etcd range [begin, end) at revision
// `current`, into those keys at `revision` (in [compacted, current]):
// undoes every later change, newest first.
Status UndoHistory(WriteView* view, int64_t current, int64_t revision,
                   const std::string& begin, const std::string& end,
                   std::map<std::string, kv::KeyValue>* state);

// Reads the events with revisions in [from, to], in order, stopping after
// the revision in which `max_events` is reached (never inside a revision);
// *next is the first revision not read (to + 1 when everything was).
// Compacted when `from` is at or below the compacted revision (the error
// names the oldest revision still available); Unavailable when a revision
// in [from, to] has no record (every one has at least one: the history is
// being replaced by a snapshot install; retry after it). Thread-safe: reads
// a consistent view of the database, whatever the applier writes meanwhile.
Status ReadHistory(const Engine& engine, int64_t from, int64_t to,
                   size_t max_events, std::vector<kv::Event>* events,
                   int64_t* next);

// The compacted revision as the applier last wrote it (any thread).
int64_t CompactedRevision(const Engine& engine);

// The message clients see for a compacted revision (etcd's wording first).
std::string CompactedMessage(int64_t asked, int64_t compacted);
std::string FutureRevisionMessage(int64_t asked, int64_t current);

}  // namespace raftkv::storage
