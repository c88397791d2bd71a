// Watch workload checker (see watch_checker.h for the encoding and the
// anomalies): per-watcher order, duplicates and gaps, agreement between
// watchers, every event explained by a write, and the replay of each
// watcher's events against the final read.
//
// Must never do I/O, and never call a history valid unless some watcher
// reached the final read's revision.
#include "jepsen/watch_checker.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "jepsen/linearizability.h"

namespace raftkv::jepsen {
namespace {

constexpr size_t kMaxExamples = 10;     // listed in a description
constexpr size_t kMaxSliceEvents = 24;  // events in an anomaly's slice

struct Write {
  const Operation* op = nullptr;
  bool put = true;
  std::string key;
  std::optional<std::string> value;  // put: the value written
  int64_t revision = 0;              // ok: the write's revision
  bool changed = false;  // ok and changed the prefix (a put, a delete of 1)
  int64_t seen_at = 0;   // an unknown write: the revision it was seen at
};

struct Observed {
  int64_t revision = 0;
  std::string key;
  std::optional<std::string> value;  // null: a delete
  int64_t time_ns = 0;
  size_t index = 0;  // in the history
  int64_t watcher = 0;
};

struct WatcherLog {
  int64_t process = 0;
  int64_t start = 0;  // the start revision asked for
  int64_t end = 0;    // delivered through (0: unknown)
  bool ended_by_itself = false;
  std::string error;
  std::vector<Observed> events;
  std::set<int64_t> revisions;
  // The longest an acknowledged write's event came after its ok.
  int64_t max_lag_ns = 0;
};

std::string Seconds(int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.3f s", static_cast<double>(ns) / 1e9);
  return buf;
}

std::string Describe(const std::string& key,
                     const std::optional<std::string>& value) {
  return value ? "put " + QuoteForText(key) + " = " + QuoteForText(*value)
               : "delete " + QuoteForText(key);
}

std::string Describe(const Observed& e) {
  return Describe(e.key, e.value) + " at revision " +
         std::to_string(e.revision);
}

std::string Describe(const Write& w) {
  std::string s = Describe(w.key, w.put ? w.value : std::nullopt) + " (p" +
                  std::to_string(w.op->process) + ", invoked at " +
                  Seconds(w.op->invoke_ns) + ", " +
                  EventTypeName(w.op->outcome);
  if (w.op->outcome == EventType::kOk) {
    s += w.changed ? " at revision " + std::to_string(w.revision)
                   : ": nothing to delete";
  }
  return s + ")";
}

bool Same(const Observed& a, const Observed& b) {
  return a.key == b.key && a.value == b.value;
}

// One line per event: time, process, type, f, key, value, revision.
std::string RenderEvents(const History& slice) {
  std::string out;
  for (const Event& e : slice) {
    char head[64];
    std::snprintf(head, sizeof(head), "%10.3f s  ",
                  static_cast<double>(e.time_ns) / 1e9);
    out += head;
    out += e.is_nemesis() ? "nemesis" : "p" + std::to_string(e.process);
    out += std::string(" ") + EventTypeName(e.type) + " " + e.f;
    if (!e.key.empty()) out += " " + QuoteForText(e.key);
    if (e.value) out += " " + QuoteForText(*e.value);
    if (!e.value && e.f == "event") out += " (delete)";
    if (e.revision != 0) out += " @" + std::to_string(e.revision);
    out += "\n";
  }
  return out;
}

class Slicer {
 public:
  explicit Slicer(const History& history) : history_(history) {}
  void Add(size_t index) {
    if (index != kNoEvent && indexes_.size() < kMaxSliceEvents) {
      indexes_.insert(index);
    }
  }
  void Add(const Operation* op) {
    Add(op->invoke_index);
    Add(op->complete_index);
  }
  Anomaly Make(std::string kind, std::string key, std::string description) {
    Anomaly a;
    a.kind = std::move(kind);
    a.key = std::move(key);
    a.description = std::move(description);
    for (size_t i : indexes_) a.slice.push_back(history_[i]);
    a.rendering = RenderEvents(a.slice);
    return a;
  }

 private:
  const History& history_;
  std::set<size_t> indexes_;
};

// Examples of one anomaly kind, gathered before they become one anomaly.
struct Findings {
  size_t count = 0;
  std::vector<std::string> examples;
  std::vector<size_t> events;
  std::vector<const Operation*> ops;
  void Add(std::string example, std::vector<size_t> event_indexes,
           std::vector<const Operation*> related = {}) {
    if (count++ >= kMaxExamples) return;
    examples.push_back(std::move(example));
    for (size_t i : event_indexes) events.push_back(i);
    for (const Operation* op : related) ops.push_back(op);
  }
  void Flush(const History& history, const std::string& kind,
             const std::string& key, const std::string& what,
             std::vector<Anomaly>* out) const {
    if (count == 0) return;
    Slicer slicer(history);
    for (size_t i : events) slicer.Add(i);
    for (const Operation* op : ops) slicer.Add(op);
    std::string text = what + " (" + std::to_string(count) + "): ";
    for (size_t i = 0; i < examples.size(); ++i) {
      text += (i ? "; " : "") + examples[i];
    }
    if (count > examples.size()) {
      text += "; and " + std::to_string(count - examples.size()) + " more";
    }
    out->push_back(slicer.Make(kind, key, text + "."));
  }
};

std::map<std::string, std::string> ParseState(
    const std::optional<std::string>& value, bool* ok) {
  std::map<std::string, std::string> state;
  *ok = true;
  if (!value || value->empty()) return state;
  size_t start = 0;
  while (start <= value->size()) {
    size_t comma = value->find(',', start);
    if (comma == std::string::npos) comma = value->size();
    const std::string item = value->substr(start, comma - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      *ok = false;
    } else {
      state[item.substr(0, eq)] = item.substr(eq + 1);
    }
    start = comma + 1;
  }
  return state;
}

class WatchCheck {
 public:
  WatchCheck(const History& history, const std::vector<Operation>& ops)
      : history_(history), ops_(ops) {}

  CheckResult Run();

 private:
  void Gather();
  void CheckWatcherOrder();
  void MatchEvents();
  void CheckGaps();
  void CheckReplay();
  void Finish();

  const History& history_;
  const std::vector<Operation>& ops_;
  CheckResult result_;
  std::vector<Write> writes_;
  std::map<int64_t, WatcherLog> watchers_;  // by process
  const Operation* final_read_ = nullptr;
  std::vector<std::string> unsupported_;
  std::map<int64_t, const Write*> acknowledged_;  // changing writes by revision
  std::map<int64_t, Observed> canonical_;         // first event per revision
  std::set<int64_t> required_;  // revisions that changed the prefix
  size_t unknown_seen_ = 0;
  std::vector<std::string> stalled_;
  std::vector<std::string> notes_;
  uint64_t events_ = 0;
};

void WatchCheck::Gather() {
  for (const Operation& op : ops_) {
    ++result_.ops;
    result_.ok += op.outcome == EventType::kOk;
    result_.fail += op.outcome == EventType::kFail;
    result_.info += op.outcome == EventType::kInfo;
    const Event* done =
        op.complete_index == kNoEvent ? nullptr : &history_[op.complete_index];
    if (op.f == "put" || op.f == "delete") {
      Write w;
      w.op = &op;
      w.put = op.f == "put";
      w.key = op.key;
      w.value = op.value;
      if (op.outcome == EventType::kOk) {
        w.revision = done->revision;
        w.changed = w.put || op.result.value_or("") == "1";
      }
      writes_.push_back(w);
    } else if (op.f == "watch") {
      WatcherLog& log = watchers_[op.process];
      log.process = op.process;
      log.start = history_[op.invoke_index].revision;
      if (done != nullptr) {
        log.end = done->revision;
        log.ended_by_itself = op.outcome != EventType::kOk;
        if (log.ended_by_itself) log.error = done->value.value_or("");
      }
    } else if (op.f == "read") {
      if (op.outcome == EventType::kOk &&
          (final_read_ == nullptr || op.invoke_ns >= final_read_->invoke_ns)) {
        final_read_ = &op;
      }
    } else {
      unsupported_.push_back(op.f);
    }
  }
  for (size_t i = 0; i < history_.size(); ++i) {
    const Event& e = history_[i];
    if (!e.is_observation() || e.f != "event") continue;
    WatcherLog& log = watchers_[e.process];
    log.process = e.process;
    log.events.push_back({e.revision, e.key, e.value, e.time_ns, i, e.process});
    ++events_;
  }
  for (auto& [process, log] : watchers_) {
    int64_t last = 0;
    for (const Observed& e : log.events) last = std::max(last, e.revision);
    // Without a say of its own, a watcher delivered through its last event.
    if (log.end == 0) log.end = last;
  }
}

void WatchCheck::CheckWatcherOrder() {
  for (auto& [process, log] : watchers_) {
    Findings out_of_order, duplicated;
    int64_t max_revision = 0;
    size_t max_index = kNoEvent;
    for (const Observed& e : log.events) {
      if (log.revisions.count(e.revision) != 0) {
        duplicated.Add("revision " + std::to_string(e.revision) + " (" +
                           Describe(e.key, e.value) + ") delivered again at " +
                           Seconds(e.time_ns),
                       {e.index});
      } else if (e.revision < max_revision) {
        out_of_order.Add(Describe(e) + " delivered at " + Seconds(e.time_ns) +
                             " after revision " + std::to_string(max_revision),
                         {max_index, e.index});
      }
      log.revisions.insert(e.revision);
      if (e.revision > max_revision) {
        max_revision = e.revision;
        max_index = e.index;
      }
    }
    const std::string who = "watcher p" + std::to_string(process);
    out_of_order.Flush(history_, "out-of-order", "",
                       who + " delivered revisions out of order",
                       &result_.anomalies);
    duplicated.Flush(history_, "duplicated", "",
                     who + " delivered revisions more than once",
                     &result_.anomalies);
  }
  // The event of each revision as first delivered (history order), which
  // every other delivery of it must equal.
  Findings divergent;
  std::vector<const Observed*> all;
  for (const auto& [process, log] : watchers_) {
    for (const Observed& e : log.events) all.push_back(&e);
  }
  std::sort(all.begin(), all.end(),
            [](auto* a, auto* b) { return a->index < b->index; });
  for (const Observed* e : all) {
    auto [it, inserted] = canonical_.emplace(e->revision, *e);
    if (inserted || it->second.watcher == e->watcher || Same(it->second, *e)) {
      continue;
    }
    divergent.Add("at revision " + std::to_string(e->revision) + " p" +
                      std::to_string(it->second.watcher) + " got " +
                      Describe(it->second.key, it->second.value) + " but p" +
                      std::to_string(e->watcher) + " got " +
                      Describe(e->key, e->value),
                  {it->second.index, e->index});
  }
  divergent.Flush(history_, "divergent", "",
                  "Watchers delivered different events at the same revision",
                  &result_.anomalies);
}

void WatchCheck::MatchEvents() {
  Findings reused, wrong, unexpected, early;
  std::map<std::string, std::vector<Write*>> puts_by_value, deletes_by_key;
  for (Write& w : writes_) {
    if (w.put) {
      puts_by_value[w.value.value_or("")].push_back(&w);
    } else {
      deletes_by_key[w.key].push_back(&w);
    }
    if (!w.changed) continue;
    auto [it, inserted] = acknowledged_.emplace(w.revision, &w);
    if (!inserted) {
      reused.Add("revision " + std::to_string(w.revision) +
                     " acknowledged to " + Describe(*it->second) + " and to " +
                     Describe(w),
                 {}, {it->second->op, w.op});
    }
    required_.insert(w.revision);
  }
  for (const auto& [revision, e] : canonical_) {
    auto ack = acknowledged_.find(revision);
    if (ack != acknowledged_.end()) {
      const Write& w = *ack->second;
      const bool matches =
          w.key == e.key && (w.put ? e.value == w.value : !e.value);
      if (!matches) {
        wrong.Add("revision " + std::to_string(revision) + " was " +
                      Describe(w) + " but p" + std::to_string(e.watcher) +
                      " got " + Describe(e.key, e.value),
                  {e.index}, {w.op});
      } else if (e.time_ns < w.op->invoke_ns) {
        early.Add(Describe(e) + " delivered to p" + std::to_string(e.watcher) +
                      " at " + Seconds(e.time_ns) + ", before " + Describe(w) +
                      " was invoked",
                  {e.index}, {w.op});
      }
      continue;
    }
    // An unknown write that took effect, if some write can explain it.
    std::vector<Write*>* candidates = nullptr;
    if (e.value) {
      auto it = puts_by_value.find(*e.value);
      if (it != puts_by_value.end()) candidates = &it->second;
    } else {
      auto it = deletes_by_key.find(e.key);
      if (it != deletes_by_key.end()) candidates = &it->second;
    }
    Write* chosen = nullptr;
    std::string why = "no write of it was attempted";
    for (Write* w : candidates ? *candidates : std::vector<Write*>{}) {
      if (w->key != e.key) {
        why = "the only put of that value was to " + QuoteForText(w->key);
      } else if (w->op->outcome == EventType::kFail) {
        why = Describe(*w) + " failed (certainly not applied)";
      } else if (w->op->outcome == EventType::kOk) {
        why = Describe(*w) + " was acknowledged otherwise";
      } else if (w->seen_at != 0) {
        why = Describe(*w) + " was already seen at revision " +
              std::to_string(w->seen_at);
      } else if (w->op->invoke_ns > e.time_ns) {
        why = Describe(*w) + " was invoked only after the event was delivered";
      } else {
        chosen = w;
        break;
      }
    }
    if (chosen == nullptr) {
      std::vector<const Operation*> related;
      for (Write* w : candidates ? *candidates : std::vector<Write*>{}) {
        if (related.size() < 3) related.push_back(w->op);
      }
      unexpected.Add(Describe(e) + " delivered to p" +
                         std::to_string(e.watcher) + " at " +
                         Seconds(e.time_ns) + ": " + why,
                     {e.index}, related);
      continue;
    }
    chosen->seen_at = revision;
    ++unknown_seen_;
    required_.insert(revision);
  }
  reused.Flush(history_, "revision-reused", "",
               "Acknowledged writes given the same revision",
               &result_.anomalies);
  wrong.Flush(history_, "wrong-event", "",
              "Events that differ from the acknowledged write of their "
              "revision",
              &result_.anomalies);
  unexpected.Flush(history_, "unexpected-event", "",
                   "Events no write can explain", &result_.anomalies);
  early.Flush(history_, "event-before-write", "",
              "Events delivered before their write was invoked",
              &result_.anomalies);
}

void WatchCheck::CheckGaps() {
  for (auto& [process, log] : watchers_) {
    for (const Observed& e : log.events) {
      auto ack = acknowledged_.find(e.revision);
      if (ack == acknowledged_.end()) continue;
      log.max_lag_ns =
          std::max(log.max_lag_ns, e.time_ns - ack->second->op->complete_ns);
    }
    Findings lost;
    const int64_t from = std::max<int64_t>(log.start, 1);
    for (auto it = required_.lower_bound(from);
         it != required_.end() && *it <= log.end; ++it) {
      if (log.revisions.count(*it) != 0) continue;
      auto ack = acknowledged_.find(*it);
      if (ack != acknowledged_.end()) {
        lost.Add(
            "revision " + std::to_string(*it) + ": " + Describe(*ack->second),
            {}, {ack->second->op});
      } else {
        const Observed& seen = canonical_.at(*it);
        lost.Add(Describe(seen) + " (an unknown write; p" +
                     std::to_string(seen.watcher) + " got it)",
                 {seen.index});
      }
    }
    lost.Flush(history_, "lost-event", "",
               "watcher p" + std::to_string(process) +
                   " never delivered these changes of its window (revisions " +
                   std::to_string(from) + " to " + std::to_string(log.end) +
                   ")",
               &result_.anomalies);
  }
}

void WatchCheck::CheckReplay() {
  if (final_read_ == nullptr) {
    notes_.push_back("no final read: the replay was not checked");
    return;
  }
  bool parsed = true;
  const std::map<std::string, std::string> final_state =
      ParseState(final_read_->result, &parsed);
  const int64_t final_revision = history_[final_read_->complete_index].revision;
  if (!parsed) {
    stalled_.push_back("the final read's value is not k=v,k=v: " +
                       QuoteForText(final_read_->result.value_or("")));
    return;
  }
  for (const auto& [process, log] : watchers_) {
    const std::string who = "watcher p" + std::to_string(process);
    if (log.end < final_revision) {
      stalled_.push_back(
          who + " delivered through revision " + std::to_string(log.end) +
          " only" + (log.ended_by_itself ? " (ended: " + log.error + ")" : ""));
      continue;
    }
    if (log.start > 1) {
      notes_.push_back(who + " started at revision " +
                       std::to_string(log.start) + ": no replay");
      continue;
    }
    std::map<std::string, std::string> state;
    Findings mismatch;
    for (const Observed& e : log.events) {
      if (e.revision > final_revision) continue;
      if (e.value) {
        state[e.key] = *e.value;
      } else if (state.erase(e.key) == 0) {
        mismatch.Add(Describe(e) + " deletes a key that was not there",
                     {e.index});
      }
    }
    std::set<std::string> keys;
    for (const auto& [k, v] : state) keys.insert(k);
    for (const auto& [k, v] : final_state) keys.insert(k);
    for (const std::string& k : keys) {
      auto a = state.find(k);
      auto b = final_state.find(k);
      const std::optional<std::string> replayed =
          a == state.end() ? std::nullopt : std::optional(a->second);
      const std::optional<std::string> read =
          b == final_state.end() ? std::nullopt : std::optional(b->second);
      if (replayed == read) continue;
      mismatch.Add(QuoteForText(k) + " is " +
                       (replayed ? QuoteForText(*replayed) : "absent") +
                       " after the replay but " +
                       (read ? QuoteForText(*read) : "absent") +
                       " in the final read",
                   {});
    }
    if (mismatch.count != 0) {
      mismatch.events.push_back(final_read_->invoke_index);
      mismatch.events.push_back(final_read_->complete_index);
    }
    mismatch.Flush(history_, "replay-mismatch", "",
                   who + "'s events up to revision " +
                       std::to_string(final_revision) +
                       " do not replay into the final read",
                   &result_.anomalies);
  }
}

void WatchCheck::Finish() {
  int64_t writes_ok = 0, writes_info = 0;
  for (const Write& w : writes_) {
    writes_ok += w.op->outcome == EventType::kOk;
    writes_info += w.op->outcome == EventType::kInfo;
  }
  const int64_t final_revision =
      final_read_ ? history_[final_read_->complete_index].revision : 0;
  bool parsed = true;
  const size_t final_keys =
      final_read_ ? ParseState(final_read_->result, &parsed).size() : 0;
  result_.figures = {
      {"writes", static_cast<int64_t>(writes_.size())},
      {"writes ok", writes_ok},
      {"writes unknown", writes_info},
      {"unknown writes seen", static_cast<int64_t>(unknown_seen_)},
      {"revisions that changed the prefix",
       static_cast<int64_t>(required_.size())},
      {"watchers", static_cast<int64_t>(watchers_.size())},
      {"events", static_cast<int64_t>(events_)},
      {"final revision", final_revision},
      {"final keys", static_cast<int64_t>(final_keys)}};
  for (const auto& [process, log] : watchers_) {
    int64_t lo = 0, hi = 0;
    if (!log.events.empty()) {
      lo = log.events.front().revision;
      hi = log.events.back().revision;
    }
    result_.checks.push_back(
        "watcher p" + std::to_string(process) + ": from revision " +
        std::to_string(log.start) + ", " + std::to_string(log.events.size()) +
        " events (revisions " + std::to_string(lo) + " to " +
        std::to_string(hi) + "), delivered through " + std::to_string(log.end) +
        ", at most " + Seconds(log.max_lag_ns) +
        " after a write's acknowledgement" +
        (log.end >= final_revision && final_revision > 0
             ? ": checked up to and past the final read"
             : ": did NOT reach the final read's revision"));
  }
  for (const std::string& n : notes_) result_.checks.push_back(n);
  const std::string counts =
      std::to_string(watchers_.size()) + " watchers, " +
      std::to_string(events_) + " events, " + std::to_string(writes_.size()) +
      " writes (" + std::to_string(writes_ok) + " ok, " +
      std::to_string(writes_info) + " unknown, " +
      std::to_string(unknown_seen_) + " of those seen), final revision " +
      std::to_string(final_revision);
  if (!result_.anomalies.empty()) {
    result_.validity = Validity::kInvalid;
    result_.summary =
        "watch invalid: " + std::to_string(result_.anomalies.size()) +
        " anomalies; " + counts;
    return;
  }
  std::string unknown;
  if (watchers_.empty()) unknown = "no watcher";
  if (final_read_ == nullptr) unknown = "no final read";
  if (!stalled_.empty()) unknown = stalled_.front();
  if (!unsupported_.empty()) {
    unknown = "unsupported operation " + QuoteForText(unsupported_.front());
  }
  if (!unknown.empty()) {
    result_.validity = Validity::kUnknown;
    result_.summary = "watch unknown (" + unknown + "): " + counts;
    return;
  }
  result_.summary = "watch valid: " + counts;
}

CheckResult WatchCheck::Run() {
  Gather();
  CheckWatcherOrder();
  MatchEvents();
  CheckGaps();
  CheckReplay();
  Finish();
  return std::move(result_);
}

}  // namespace

CheckResult CheckWatch(const History& history) {
  StatusOr<std::vector<Operation>> paired = PairOperations(history);
  if (!paired.ok()) return MalformedHistory(paired.status().message());
  WatchCheck check(history, paired.value());
  return check.Run();
}

}  // namespace raftkv::jepsen
