// The retained history: records, range reads at a revision, replay for
// watches. Must never return part of a revision.
#include "storage/history.h"

#include <memory>

#include "storage/coding.h"
#include "storage/engine_rep.h"
#include "storage/write_view.h"

namespace raftkv::storage {
namespace {

int64_t RevisionOf(const rocksdb::Slice& key) {
  return key.size() == 12 ? static_cast<int64_t>(GetBigEndian64(key.data()))
                          : -1;
}

Status ParseEvent(const Engine::Rep* rep, const rocksdb::Slice& key,
                  const rocksdb::Slice& value, kv::Event* event) {
  if (RevisionOf(key) < 0 ||
      !event->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Status::Corruption(rep->dir + ": kv_history record of " +
                              std::to_string(key.size()) +
                              "-byte key does not parse");
  }
  return Status::OK();
}

}  // namespace

std::string HistoryKey(int64_t revision, uint32_t position) {
  std::string key;
  PutBigEndian64(&key, static_cast<uint64_t>(revision));
  for (int shift = 24; shift >= 0; shift -= 8) {
    key.push_back(static_cast<char>((position >> shift) & 0xff));
  }
  return key;
}

bool InRange(const std::string& key, const std::string& begin,
             const std::string& end) {
  if (end.empty()) return key == begin;
  if (key < begin) return false;
  return end == std::string(1, '\0') || key < end;
}

void RecordHistory(WriteView* view, const std::vector<kv::Event>& events) {
  uint32_t position = 0;
  std::string value;
  for (const kv::Event& event : events) {
    value.clear();
    CHECK(event.SerializeToString(&value));
    view->Put(view->rep()->kv_history,
              HistoryKey(event.kv().mod_revision(), position++), value);
  }
}

void ForgetHistory(WriteView* view, int64_t revision) {
  CHECK(view->batch()
            ->DeleteRange(view->rep()->kv_history, HistoryKey(0, 0),
                          HistoryKey(revision + 1, 0))
            .ok());
}

Status UndoHistory(WriteView* view, int64_t current, int64_t revision,
                   const std::string& begin, const std::string& end,
                   std::map<std::string, kv::KeyValue>* state) {
  Engine::Rep* rep = view->rep();
  std::unique_ptr<rocksdb::Iterator> it = view->NewIterator(rep->kv_history);
  for (it->SeekForPrev(HistoryKey(current + 1, 0)); it->Valid(); it->Prev()) {
    if (RevisionOf(it->key()) <= revision) break;
    kv::Event event;
    RAFTKV_RETURN_IF_ERROR(ParseEvent(rep, it->key(), it->value(), &event));
    const std::string& key = event.kv().key();
    if (!InRange(key, begin, end)) continue;
    if (event.has_prev_kv()) {
      (*state)[key] = event.prev_kv();
    } else {
      state->erase(key);
    }
  }
  if (!it->status().ok()) return rep->Error(it->status(), "read history");
  return Status::OK();
}

Status ReadHistory(const Engine& engine, int64_t from, int64_t to,
                   size_t max_events, std::vector<kv::Event>* events,
                   int64_t* next) {
  Engine::Rep* rep = engine.rep();
  *next = from;
  if (from > to) return Status::OK();
  // The iterator reads one consistent view; the compaction that could have
  // removed records under it is published (below) before it is written.
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(
      rep->db->NewIterator(ro, rep->kv_history));
  const int64_t compacted = rep->compacted_revision.load();
  if (from <= compacted) {
    return Status::Compacted(CompactedMessage(from, compacted));
  }
  // Every revision above the compacted one has at least one event (the
  // revision moves only when a command changes a key), so a gap means the
  // history is being replaced under the read (a snapshot install clears it
  // before ingesting the new one): never mistaken for "nothing happened".
  auto gap = [&](int64_t missing) {
    return Status::Unavailable(rep->dir + ": history revision " +
                               std::to_string(missing) +
                               " is missing (being replaced by a snapshot "
                               "install?); retry");
  };
  int64_t last = 0;
  for (it->Seek(HistoryKey(from, 0)); it->Valid(); it->Next()) {
    const int64_t revision = RevisionOf(it->key());
    if (revision > to) break;
    if (revision != last) {
      if (revision != (last == 0 ? from : last + 1)) {
        return gap(last == 0 ? from : last + 1);
      }
      if (events->size() >= max_events) break;
    }
    kv::Event event;
    RAFTKV_RETURN_IF_ERROR(ParseEvent(rep, it->key(), it->value(), &event));
    events->push_back(std::move(event));
    last = revision;
    *next = revision + 1;
  }
  if (!it->status().ok()) return rep->Error(it->status(), "read history");
  const bool limited = it->Valid() && RevisionOf(it->key()) <= to;
  if (!limited) {
    if (last != to) return gap(last == 0 ? from : last + 1);
    *next = to + 1;
  }
  return Status::OK();
}

int64_t CompactedRevision(const Engine& engine) {
  return engine.rep()->compacted_revision.load();
}

std::string CompactedMessage(int64_t asked, int64_t compacted) {
  return "mvcc: required revision has been compacted (revision " +
         std::to_string(asked) + "; the oldest available is " +
         std::to_string(compacted + 1) + ")";
}

std::string FutureRevisionMessage(int64_t asked, int64_t current) {
  return "mvcc: required revision is a future revision (revision " +
         std::to_string(asked) + "; the current is " + std::to_string(current) +
         ")";
}

}  // namespace raftkv::storage
