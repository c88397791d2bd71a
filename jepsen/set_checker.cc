// Set workload checker (see set_checker.h for the encoding): lost,
// unexpected, duplicated, failed-add-present and recovered elements per set.
//
// Must never do I/O, and never call a set valid without an ok read of it.
#include "jepsen/set_checker.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "jepsen/linearizability.h"

namespace raftkv::jepsen {
namespace {

// Decimal strings in numeric order; anything else after them, by bytes.
bool ElementLess(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

std::vector<std::string> Sorted(const std::set<std::string>& s) {
  std::vector<std::string> v(s.begin(), s.end());
  std::sort(v.begin(), v.end(), ElementLess);
  return v;
}

// The tokens of a read's value: "" and null are the empty set.
std::vector<std::string> SplitElements(const std::optional<std::string>& v) {
  std::vector<std::string> out;
  if (!v || v->empty()) return out;
  size_t start = 0;
  while (true) {
    size_t comma = v->find(',', start);
    out.push_back(v->substr(start, comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// What the adds of one element did.
struct AddRecord {
  bool ok = false;
  bool only_failed = true;  // every add of it failed
  int64_t first_ok_ns = kNoCompletion;
  std::vector<const Operation*> adds;
};

// The operations of one set, and what came of them.
struct SetOps {
  std::vector<const Operation*> adds, reads;
  bool unsupported = false;
};

bool IsRegisterWrite(const std::string& f) {
  return f == "write" || f == "cas" || f == "delete";
}

std::map<std::string, SetOps> GroupBySet(const std::vector<Operation>& ops) {
  std::set<std::string> register_keys;
  for (const Operation& op : ops) {
    if (IsRegisterWrite(op.f)) register_keys.insert(op.key);
  }
  std::map<std::string, SetOps> sets;
  for (const Operation& op : ops) {
    if (register_keys.count(op.key) != 0) continue;
    SetOps& s = sets[op.key];
    if (op.f == "add") {
      s.adds.push_back(&op);
    } else if (op.f == "read") {
      if (op.outcome == EventType::kOk) s.reads.push_back(&op);
    } else {
      s.unsupported = true;
    }
  }
  return sets;
}

const Operation* FinalRead(const std::vector<const Operation*>& reads) {
  const Operation* last = nullptr;
  for (const Operation* r : reads) {
    if (!last || r->invoke_ns > last->invoke_ns ||
        (r->invoke_ns == last->invoke_ns &&
         r->complete_ns > last->complete_ns)) {
      last = r;
    }
  }
  return last;
}

SetTally Tally(const std::string& name, const SetOps& ops) {
  SetTally t;
  t.set = name;
  std::map<std::string, AddRecord> added;
  for (const Operation* op : ops.adds) {
    AddRecord& r = added[op->value.value_or("")];
    r.adds.push_back(op);
    if (op->outcome == EventType::kOk) {
      r.ok = true;
      r.first_ok_ns = std::min(r.first_ok_ns, op->complete_ns);
    }
    if (op->outcome != EventType::kFail) r.only_failed = false;
  }
  t.attempted = added.size();
  for (const auto& [element, r] : added) t.acknowledged += r.ok ? 1 : 0;
  std::set<std::string> unexpected, duplicated, failed_present;
  for (const Operation* read : ops.reads) {
    std::map<std::string, int> counts;
    for (const std::string& e : SplitElements(read->result)) ++counts[e];
    for (const auto& [e, n] : counts) {
      if (n > 1) duplicated.insert(e);
      auto add = added.find(e);
      if (add == added.end()) {
        unexpected.insert(e);
      } else if (add->second.only_failed) {
        failed_present.insert(e);
      }
    }
  }
  t.unexpected = Sorted(unexpected);
  t.duplicated = Sorted(duplicated);
  t.failed_present = Sorted(failed_present);
  const Operation* final_read = FinalRead(ops.reads);
  if (final_read == nullptr) return t;
  t.has_final_read = true;
  std::vector<std::string> tokens = SplitElements(final_read->result);
  t.final_read_size = tokens.size();
  std::set<std::string> present(tokens.begin(), tokens.end());
  std::set<std::string> lost, recovered;
  for (const auto& [element, r] : added) {
    bool in_read = present.count(element) != 0;
    if (r.ok && r.first_ok_ns < final_read->invoke_ns && !in_read) {
      lost.insert(element);
    }
    if (!r.ok && !r.only_failed && in_read) recovered.insert(element);
  }
  t.lost = Sorted(lost);
  t.recovered = Sorted(recovered);
  return t;
}

// "1 element", "3 elements".
std::string Count(size_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string FormatSeconds(int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.3f s", static_cast<double>(ns) / 1e9);
  return buf;
}

std::string ElementList(const std::vector<std::string>& elements) {
  constexpr size_t kMaxListed = 20;
  std::string s;
  for (size_t i = 0; i < elements.size() && i < kMaxListed; ++i) {
    s += (i ? ", " : "") + elements[i];
  }
  if (elements.size() > kMaxListed) {
    s += " and " + std::to_string(elements.size() - kMaxListed) + " more";
  }
  return s;
}

// A slice of `history`: the events of `ops`, plus at most a dozen nemesis
// events between the first and the last of them. `marked` ops are flagged.
Anomaly SliceAnomaly(const History& history, const std::string& set,
                     const std::vector<const Operation*>& ops,
                     const std::vector<const Operation*>& marked) {
  std::set<size_t> events;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (const Operation* op : ops) {
    events.insert(op->invoke_index);
    lo = std::min(lo, op->invoke_ns);
    hi = std::max(hi, op->invoke_ns);
    if (op->complete_index != kNoEvent) {
      events.insert(op->complete_index);
      hi = std::max(hi, op->complete_ns);
    }
  }
  constexpr size_t kMaxNemesisEvents = 12;
  size_t nemesis = 0;
  for (size_t i = 0; i < history.size() && nemesis < kMaxNemesisEvents; ++i) {
    const Event& e = history[i];
    if (e.is_nemesis() && e.time_ns >= lo && e.time_ns <= hi) {
      events.insert(i);
      ++nemesis;
    }
  }
  Anomaly a;
  std::vector<size_t> marks;
  for (size_t i : events) {
    for (const Operation* m : marked) {
      if (m->invoke_index == i) marks.push_back(a.slice.size());
    }
    a.slice.push_back(history[i]);
  }
  a.rendering =
      "set " + QuoteForText(set) + "\n" + RenderTimeline(a.slice, marks);
  return a;
}

// The first ok read of the set containing any of `elements` (as often as
// `min_count` times).
const Operation* ReadContaining(const SetOps& ops,
                                const std::vector<std::string>& elements,
                                int min_count) {
  std::set<std::string> wanted(elements.begin(), elements.end());
  for (const Operation* read : ops.reads) {
    std::map<std::string, int> counts;
    for (const std::string& e : SplitElements(read->result)) ++counts[e];
    for (const auto& [e, n] : counts) {
      if (n >= min_count && wanted.count(e) != 0) return read;
    }
  }
  return nullptr;
}

// The lost elements of a set: the slice shows the final read and the ok
// adds of the first few of them.
Anomaly LostAnomaly(const History& history, const SetTally& t,
                    const SetOps& ops) {
  const Operation* read = FinalRead(ops.reads);
  constexpr size_t kMaxSliceAdds = 6;
  std::set<std::string> shown(
      t.lost.begin(), t.lost.begin() + std::min(t.lost.size(), kMaxSliceAdds));
  std::vector<const Operation*> slice_ops, marked;
  for (const Operation* add : ops.adds) {
    if (add->outcome == EventType::kOk &&
        shown.count(add->value.value_or("")) != 0) {
      slice_ops.push_back(add);
      marked.push_back(add);
    }
  }
  slice_ops.push_back(read);
  Anomaly a = SliceAnomaly(history, t.set, slice_ops, marked);
  a.kind = "lost";
  a.key = t.set;
  a.description =
      "Set " + QuoteForText(t.set) + ": " + std::to_string(t.lost.size()) +
      " of " + Count(t.acknowledged, "acknowledged element") +
      " missing from the final read (process " + std::to_string(read->process) +
      ", invoked at " + FormatSeconds(read->invoke_ns) + ", " +
      Count(t.final_read_size, "element") +
      "), although their adds completed ok before it began. Lost: " +
      ElementList(t.lost) + ".";
  return a;
}

// Elements wrong within a read (unexpected, or duplicated: present at least
// `min_count` times): the slice shows the first read with one of them.
Anomaly ReadAnomaly(const History& history, const SetTally& t,
                    const SetOps& ops, const char* kind,
                    const std::vector<std::string>& elements, int min_count,
                    const char* what) {
  const Operation* read = ReadContaining(ops, elements, min_count);
  CHECK(read != nullptr) << "the elements came from a read";
  Anomaly a = SliceAnomaly(history, t.set, {read}, {read});
  a.kind = kind;
  a.key = t.set;
  a.description = "Set " + QuoteForText(t.set) + ": " +
                  Count(elements.size(), "element") + what +
                  ElementList(elements) +
                  ". The slice shows the first read with one of them.";
  return a;
}

// Elements read although every add of them failed: the slice shows the
// failed adds of the first few and the first read with one of them.
Anomaly FailedPresentAnomaly(const History& history, const SetTally& t,
                             const SetOps& ops) {
  const Operation* read = ReadContaining(ops, t.failed_present, 1);
  CHECK(read != nullptr) << "the elements came from a read";
  constexpr size_t kMaxSliceAdds = 6;
  std::set<std::string> shown(
      t.failed_present.begin(),
      t.failed_present.begin() +
          std::min(t.failed_present.size(), kMaxSliceAdds));
  std::vector<const Operation*> slice_ops, marked;
  for (const Operation* add : ops.adds) {
    if (shown.count(add->value.value_or("")) != 0) {
      slice_ops.push_back(add);
      marked.push_back(add);
    }
  }
  slice_ops.push_back(read);
  marked.push_back(read);
  Anomaly a = SliceAnomaly(history, t.set, slice_ops, marked);
  a.kind = "failed-add-present";
  a.key = t.set;
  a.description =
      "Set " + QuoteForText(t.set) + ": " +
      Count(t.failed_present.size(), "element") +
      " read although every add of it failed (fail = definitely not "
      "applied): a failed operation took effect. Elements: " +
      ElementList(t.failed_present) +
      ". The slice shows their failed adds and the first read with one of "
      "them.";
  return a;
}

void AddAnomalies(const History& history, const SetTally& t, const SetOps& ops,
                  std::vector<Anomaly>* out) {
  if (!t.lost.empty()) out->push_back(LostAnomaly(history, t, ops));
  if (!t.unexpected.empty()) {
    out->push_back(ReadAnomaly(history, t, ops, "unexpected", t.unexpected, 1,
                               " read that no add ever attempted: "));
  }
  if (!t.duplicated.empty()) {
    out->push_back(ReadAnomaly(history, t, ops, "duplicated", t.duplicated, 2,
                               " present more than once in a single read: "));
  }
  if (!t.failed_present.empty()) {
    out->push_back(FailedPresentAnomaly(history, t, ops));
  }
}

}  // namespace

StatusOr<std::vector<SetTally>> TallySets(const History& history) {
  StatusOr<std::vector<Operation>> ops = PairOperations(history);
  if (!ops.ok()) return ops.status();
  std::vector<SetTally> tallies;
  for (const auto& [name, set_ops] : GroupBySet(ops.value())) {
    tallies.push_back(Tally(name, set_ops));
  }
  return tallies;
}

CheckResult CheckSet(const History& history) {
  CheckResult result;
  StatusOr<std::vector<Operation>> paired = PairOperations(history);
  if (!paired.ok()) return MalformedHistory(paired.status().message());
  uint64_t adds = 0, adds_ok = 0, lost = 0, unexpected = 0, duplicated = 0,
           failed_present = 0, recovered = 0;
  std::vector<std::string> unread, unsupported;
  for (const Operation& op : paired.value()) {
    ++result.ops;
    result.ok += op.outcome == EventType::kOk;
    result.fail += op.outcome == EventType::kFail;
    result.info += op.outcome == EventType::kInfo;
  }
  std::map<std::string, SetOps> sets = GroupBySet(paired.value());
  for (const auto& [name, ops] : sets) {
    SetTally t = Tally(name, ops);
    adds += ops.adds.size();
    for (const Operation* add : ops.adds) {
      adds_ok += add->outcome == EventType::kOk;
    }
    lost += t.lost.size();
    unexpected += t.unexpected.size();
    duplicated += t.duplicated.size();
    failed_present += t.failed_present.size();
    recovered += t.recovered.size();
    if (!t.has_final_read && !ops.adds.empty()) unread.push_back(name);
    if (ops.unsupported) unsupported.push_back(name);
    AddAnomalies(history, t, ops, &result.anomalies);
  }
  std::string counts =
      std::to_string(sets.size()) + " sets, " + std::to_string(adds) +
      " adds (" + std::to_string(adds_ok) + " ok); lost " +
      std::to_string(lost) + ", unexpected " + std::to_string(unexpected) +
      ", duplicated " + std::to_string(duplicated) + ", failed but present " +
      std::to_string(failed_present) + ", recovered " +
      std::to_string(recovered);
  if (!result.anomalies.empty()) {
    result.validity = Validity::kInvalid;
    result.summary = "set invalid: " + counts;
  } else if (!unread.empty() || !unsupported.empty()) {
    result.validity = Validity::kUnknown;
    result.summary = "set unknown: " + counts;
    if (!unread.empty()) {
      result.summary += "; no ok read of " + std::to_string(unread.size()) +
                        " sets (first: " + unread.front() + ")";
    }
    if (!unsupported.empty()) {
      result.summary += "; operations other than add/read on " +
                        std::to_string(unsupported.size()) +
                        " sets (first: " + unsupported.front() + ")";
    }
  } else {
    result.summary = "set valid: " + counts;
  }
  return result;
}

}  // namespace raftkv::jepsen
