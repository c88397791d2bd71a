// Linearizability checker of the register workload (see linearizability.h
// for the model and the algorithm), plus operation pairing and the text
// timeline shared with the set checker.
//
// Must never report a key valid unless its search ran to completion, and
// never touch anything but its arguments (the clock only for budgets and the
// summary's duration).
#include "jepsen/linearizability.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "util/json_bytes.h"

namespace raftkv::jepsen {
namespace {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Formatting helpers.

std::string FormatSeconds(int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.3f s", static_cast<double>(ns) / 1e9);
  return buf;
}

std::string FormatMs(int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(ns) / 1e6);
  return buf;
}

std::string Quoted(const std::optional<std::string>& v) {
  if (!v) return "null";
  constexpr size_t kMaxValueChars = 16;
  if (v->size() <= kMaxValueChars) return QuoteForText(*v);
  // Cut text between characters, so that it stays text.
  size_t cut = kMaxValueChars;
  if (IsValidUtf8(*v)) {
    while (cut > 0 && (static_cast<unsigned char>((*v)[cut]) & 0xC0) == 0x80) {
      --cut;
    }
  }
  return QuoteForText(v->substr(0, cut)) + "...";
}

// "read -> "18"", "write "17"", "cas "17" -> "18"", "delete", "add "5"".
std::string OpLabel(const std::string& f, const std::optional<std::string>& a,
                    const std::optional<std::string>& b,
                    const std::optional<std::string>& result, bool ok) {
  if (f == "read") return ok ? "read -> " + Quoted(result) : "read";
  if (f == "cas") return "cas " + Quoted(a) + " -> " + Quoted(b);
  if (f == "delete") return "delete";
  if (f == "add" || f == "write") return f + " " + Quoted(a);
  return a ? f + " " + Quoted(a) : f;
}

std::string ProcessName(int64_t process) {
  return process == kNemesis ? "nemesis" : "p" + std::to_string(process);
}

// "process 5's read -> "18" (invoked at 1.200 s, ok at 1.300 s)".
std::string DescribeOp(const Operation& op) {
  std::string s = "process " + std::to_string(op.process) + "'s " +
                  OpLabel(op.f, op.value, op.value2, op.result,
                          op.outcome == EventType::kOk) +
                  " (invoked at " + FormatSeconds(op.invoke_ns);
  if (op.complete_index == kNoEvent) return s + ", never completed)";
  return s + ", " + EventTypeName(op.outcome) + " at " +
         FormatSeconds(op.complete_ns) + ")";
}

// ---------------------------------------------------------------------------
// The sequential model: a register over interned values.

constexpr int32_t kAbsent = -1;
constexpr int32_t kOther = -2;  // any value the model never compares with

enum class OpKind : uint8_t {
  kRead,         // a = value read
  kWrite,        // a = value written
  kDelete,       // register becomes absent
  kCas,          // a = expected, b = new
  kCasMismatch,  // failed cas read as "register != a" (option)
};

// One operation of a key's search problem.
struct LinOp {
  OpKind kind = OpKind::kRead;
  bool required = true;  // ok: must linearize before `ret`
  int32_t a = kAbsent;
  int32_t b = kAbsent;
  int64_t call = 0;
  int64_t ret = kNoCompletion;  // kNoCompletion when optional
  size_t source = 0;            // index in the key's operations
};

// Whether `op` can take effect on `state`; if so, the state after it.
bool Step(const LinOp& op, int32_t state, int32_t* next) {
  switch (op.kind) {
    case OpKind::kRead:
      *next = state;
      return state == op.a;
    case OpKind::kWrite:
      *next = op.a;
      return true;
    case OpKind::kDelete:
      *next = kAbsent;
      return true;
    case OpKind::kCas:
      if (state == op.a) {
        *next = op.b;
        return true;
      }
      // An optional cas may have run and found a different value.
      *next = state;
      return !op.required;
    case OpKind::kCasMismatch:
      *next = state;
      return state != op.a;
  }
  return false;
}

// Maps values to small integers (null = kAbsent).
class ValueTable {
 public:
  int32_t Intern(const std::optional<std::string>& v) {
    if (!v) return kAbsent;
    auto [it, inserted] = ids_.emplace(*v, static_cast<int32_t>(ids_.size()));
    return it->second;
  }

 private:
  std::unordered_map<std::string, int32_t> ids_;
};

// Values that no read returns and no cas compares with (kRead, kCas and
// kCasMismatch's `a`) behave alike in every step of the model: all become
// kOther, so that optional ops writing them fall into one symmetry class.
void AbstractValues(std::vector<LinOp>* ops) {
  std::set<int32_t> compared = {kAbsent};  // the initial state
  for (const LinOp& op : *ops) {
    if (op.kind != OpKind::kWrite && op.kind != OpKind::kDelete) {
      compared.insert(op.a);
    }
  }
  for (LinOp& op : *ops) {
    if (compared.count(op.a) == 0) op.a = kOther;
    if (compared.count(op.b) == 0) op.b = kOther;
  }
}

// Without kCasMismatch ops, an optional op whose resulting value nobody
// observes (no ok read returns it, no cas expects it) can be left out of
// any linearization: drop it. (A "!=" constraint could depend on it.)
void DropUnobserved(std::vector<LinOp>* ops) {
  std::set<int32_t> observed;
  for (const LinOp& op : *ops) {
    if ((op.kind == OpKind::kRead && op.required) || op.kind == OpKind::kCas) {
      observed.insert(op.a);
    }
  }
  auto unobserved = [&](const LinOp& op) {
    if (op.required) return false;
    switch (op.kind) {
      case OpKind::kWrite:
        return observed.count(op.a) == 0;
      case OpKind::kDelete:
        return observed.count(kAbsent) == 0;
      case OpKind::kCas:
        return observed.count(op.b) == 0;
      default:
        return false;
    }
  };
  ops->erase(std::remove_if(ops->begin(), ops->end(), unobserved), ops->end());
}

// The search problem of one key, restricted to the events of the history
// before index `limit` (operations completing later are pending, i.e.
// optional, and operations invoked later do not exist).
std::vector<LinOp> BuildProblem(const std::vector<const Operation*>& ops,
                                size_t limit,
                                const LinearizabilityOptions& options) {
  ValueTable values;
  std::vector<LinOp> out;
  bool any_mismatch = false;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Operation& op = *ops[i];
    if (op.invoke_index >= limit) continue;
    bool completed = op.complete_index < limit;
    EventType outcome = completed ? op.outcome : EventType::kInfo;
    LinOp lin;
    lin.source = i;
    lin.call = op.invoke_ns;
    lin.required = outcome == EventType::kOk;
    if (op.f == "read") {
      if (outcome != EventType::kOk) continue;
      lin.kind = OpKind::kRead;
      lin.a = values.Intern(op.result);
    } else if (outcome == EventType::kFail) {
      if (op.f != "cas" || !options.cas_fail_means_mismatch) continue;
      lin.kind = OpKind::kCasMismatch;
      lin.required = true;
      lin.a = values.Intern(op.value);
      any_mismatch = true;
    } else if (op.f == "write") {
      lin.kind = OpKind::kWrite;
      lin.a = values.Intern(op.value);
    } else if (op.f == "delete") {
      lin.kind = OpKind::kDelete;
    } else if (op.f == "cas") {
      lin.kind = OpKind::kCas;
      lin.a = values.Intern(op.value);
      lin.b = values.Intern(op.value2);
      if (!lin.required && lin.a == lin.b) continue;  // a no-op either way
    } else {
      continue;  // unsupported f: reported by the caller
    }
    lin.ret = lin.required ? op.complete_ns : kNoCompletion;
    out.push_back(lin);
  }
  AbstractValues(&out);
  if (!any_mismatch) DropUnobserved(&out);
  return out;
}

// ---------------------------------------------------------------------------
// Memo of explored configurations: (set of linearized ops, register value).

class ConfigSet {
 public:
  explicit ConfigSet(size_t words) : words_(words) { slots_.resize(1024, 0); }

  // Inserts; false if the configuration was already there.
  bool Insert(const std::vector<uint64_t>& bits, int32_t state, uint64_t hash) {
    if ((entries_.size() + 1) * 2 > slots_.size()) Grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      uint32_t slot = slots_[i];
      if (slot == 0) {
        slots_[i] = static_cast<uint32_t>(entries_.size() + 1);
        entries_.push_back({hash, state});
        arena_.insert(arena_.end(), bits.begin(), bits.end());
        return true;
      }
      const Entry& e = entries_[slot - 1];
      if (e.hash == hash && e.state == state &&
          std::memcmp(&arena_[(slot - 1) * words_], bits.data(),
                      words_ * sizeof(uint64_t)) == 0) {
        return false;
      }
    }
  }

  size_t size() const { return entries_.size(); }
  // Memory held, counting the spare capacity of the vectors.
  size_t bytes() const {
    return slots_.capacity() * sizeof(uint32_t) +
           entries_.capacity() * sizeof(Entry) +
           arena_.capacity() * sizeof(uint64_t);
  }

 private:
  struct Entry {
    uint64_t hash;
    int32_t state;
  };

  void Grow() {
    std::vector<uint32_t> slots(slots_.size() * 2, 0);
    size_t mask = slots.size() - 1;
    for (size_t e = 0; e < entries_.size(); ++e) {
      size_t i = entries_[e].hash & mask;
      while (slots[i] != 0) i = (i + 1) & mask;
      slots[i] = static_cast<uint32_t>(e + 1);
    }
    slots_.swap(slots);
  }

  size_t words_;
  std::vector<uint32_t> slots_;  // entry index + 1; 0 = empty
  std::vector<Entry> entries_;
  std::vector<uint64_t> arena_;  // entries_[i]'s bits at i * words_
};

uint64_t Mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

enum class SearchOutcome { kLinearizable, kNotLinearizable, kCutOff };

// The Wing-Gong/Lowe depth-first search over one key's operations. One
// Run() per object; not thread-safe.
class Search {
 public:
  Search(const std::vector<LinOp>& ops, const LinearizabilityOptions& options,
         Clock::time_point deadline)
      : ops_(ops),
        options_(options),
        bits_((ops.size() + 63) / 64, 0),
        memo_(bits_.size()),
        deadline_(deadline) {}

  SearchOutcome Run();

 private:
  // Events in time order; a call sorts before a return at the same time
  // (such ops are treated as concurrent). Optional ops have no return node.
  void BuildList();
  void Unlink(int32_t node) {
    next_[prev_[node]] = next_[node];
    prev_[next_[node]] = prev_[node];
  }
  void Relink(int32_t node) {
    next_[prev_[node]] = node;
    prev_[next_[node]] = node;
  }
  void Lift(int32_t op) {
    Unlink(call_node_[op]);
    if (ret_node_[op] >= 0) Unlink(ret_node_[op]);
  }
  void Unlift(int32_t op) {
    if (ret_node_[op] >= 0) Relink(ret_node_[op]);
    Relink(call_node_[op]);
  }
  void Flip(int32_t op) {
    bits_[op / 64] ^= uint64_t{1} << (op % 64);
    hash_ ^= Mix64(static_cast<uint64_t>(op) + 1);
  }
  // Pushes a frame whose candidates are the ops invoked before the first
  // pending return: ok ops first, then optional ones.
  void PushFrame(int32_t via, int32_t state_before);
  bool OverBudget();

  struct Frame {
    size_t begin, pos, end;  // candidates in cands_[begin, end)
    int32_t via;             // op linearized to reach this frame, or -1
    int32_t state_before;    // register value before `via`
    bool must_observe;       // `via` is optional: the next op must read it
  };
  // Whether the reductions (see the header) allow `op` next in `frame`.
  bool Admissible(const Frame& frame, const LinOp& op) const;
  enum class Advanced { kDeeper, kExhausted, kAllLinearized, kCutOff };
  // Linearizes the top frame's next admissible candidate that reaches a new
  // configuration, and pushes the frame of that configuration.
  Advanced Advance();
  // Pops the top frame and undoes the op that led to it.
  void Backtrack();

  // Memo key of a register value and the must-observe restriction (a
  // restricted configuration explores less, so the two are distinct).
  static uint64_t MemoKey(int32_t state, bool must_observe) {
    return Mix64((static_cast<uint64_t>(static_cast<uint32_t>(state)) << 1) |
                 (must_observe ? 1 : 0));
  }
  static int32_t MemoState(int32_t state, bool must_observe) {
    return state * 2 + (must_observe ? 1 : 0);
  }
  // A necessary condition: every value an ok op observes was written by an
  // op invoked before that observer completed.
  bool ObservesUnwrittenValue() const;

  const std::vector<LinOp>& ops_;
  const LinearizabilityOptions& options_;
  // The event list: per node its op and whether it is the op's call; the
  // two sentinels head_ and tail_; each op's call and return node (-1).
  std::vector<int32_t> node_op_;
  std::vector<bool> node_is_call_;
  std::vector<int32_t> next_, prev_, call_node_, ret_node_;
  int32_t head_ = 0, tail_ = 0;
  // Optional ops by effect (kind and values), for PushFrame's symmetry
  // reduction: class id per op, and the frame that last used each class.
  std::vector<int32_t> class_of_;
  std::vector<uint64_t> class_stamp_;
  uint64_t stamp_ = 0;
  std::vector<uint64_t> bits_;
  uint64_t hash_ = 0;
  int32_t state_ = kAbsent;   // the register after the linearized ops
  size_t required_left_ = 0;  // ok ops not linearized yet
  ConfigSet memo_;
  std::vector<Frame> frames_;
  std::vector<int32_t> cands_;
  Clock::time_point deadline_;
  uint64_t budget_checks_ = 0;
};

void Search::BuildList() {
  struct Node {
    int64_t time;
    bool is_call;
    int32_t op;
  };
  std::vector<Node> nodes;
  for (size_t i = 0; i < ops_.size(); ++i) {
    auto op = static_cast<int32_t>(i);
    nodes.push_back({ops_[i].call, true, op});
    if (ops_[i].required) nodes.push_back({ops_[i].ret, false, op});
  }
  std::sort(nodes.begin(), nodes.end(), [](const Node& x, const Node& y) {
    if (x.time != y.time) return x.time < y.time;
    if (x.is_call != y.is_call) return x.is_call;
    return x.op < y.op;
  });
  auto n = static_cast<int32_t>(nodes.size());
  head_ = n;
  tail_ = n + 1;
  next_.assign(n + 2, 0);
  prev_.assign(n + 2, 0);
  node_op_.assign(n, 0);
  node_is_call_.assign(n, false);
  call_node_.assign(ops_.size(), -1);
  ret_node_.assign(ops_.size(), -1);
  std::map<std::tuple<OpKind, int32_t, int32_t>, int32_t> classes;
  class_of_.assign(ops_.size(), -1);
  for (size_t i = 0; i < ops_.size(); ++i) {
    auto id = static_cast<int32_t>(classes.size());
    class_of_[i] =
        classes.emplace(std::make_tuple(ops_[i].kind, ops_[i].a, ops_[i].b), id)
            .first->second;
  }
  class_stamp_.assign(classes.size(), 0);
  int32_t last = head_;
  for (int32_t i = 0; i < n; ++i) {
    node_op_[i] = nodes[i].op;
    node_is_call_[i] = nodes[i].is_call;
    (nodes[i].is_call ? call_node_ : ret_node_)[nodes[i].op] = i;
    next_[last] = i;
    prev_[i] = last;
    last = i;
  }
  next_[last] = tail_;
  prev_[tail_] = last;
}

void Search::PushFrame(int32_t via, int32_t state_before) {
  size_t begin = cands_.size();
  ++stamp_;
  for (int pass = 0; pass < 2; ++pass) {
    bool want_required = pass == 0;
    for (int32_t node = next_[head_]; node != tail_ && node_is_call_[node];
         node = next_[node]) {
      int32_t op = node_op_[node];
      if (ops_[op].required != want_required) continue;
      if (!want_required) {
        // Invoked optional ops with the same effect are interchangeable
        // (none has a deadline): trying the earliest one is enough.
        uint64_t& seen = class_stamp_[class_of_[op]];
        if (seen == stamp_) continue;
        seen = stamp_;
      }
      cands_.push_back(op);
    }
  }
  bool must_observe = via >= 0 && !ops_[via].required;
  frames_.push_back(
      {begin, begin, cands_.size(), via, state_before, must_observe});
}

bool Search::OverBudget() {
  if (options_.max_states_per_key > 0 &&
      memo_.size() > options_.max_states_per_key) {
    return true;
  }
  constexpr uint64_t kCheckEvery = 1024;
  if (++budget_checks_ % kCheckEvery != 0) return false;
  if (options_.max_memo_bytes_per_key > 0 &&
      memo_.bytes() > options_.max_memo_bytes_per_key) {
    return true;
  }
  return deadline_ != Clock::time_point::max() && Clock::now() > deadline_;
}

bool Search::ObservesUnwrittenValue() const {
  std::unordered_map<int32_t, int64_t> first_write;  // value -> earliest call
  for (const LinOp& op : ops_) {
    int32_t v = op.a;
    if (op.kind == OpKind::kCas && op.a != op.b) {
      v = op.b;
    } else if (op.kind != OpKind::kWrite) {
      continue;
    }
    auto [it, inserted] = first_write.emplace(v, op.call);
    it->second = std::min(it->second, op.call);
  }
  for (const LinOp& op : ops_) {
    bool observer =
        op.kind == OpKind::kRead || (op.kind == OpKind::kCas && op.required);
    if (!observer || op.a == kAbsent) continue;
    auto it = first_write.find(op.a);
    if (it == first_write.end() || it->second > op.ret) return true;
  }
  return false;
}

bool Search::Admissible(const Frame& frame, const LinOp& op) const {
  // An optional cas that would find another value is a no-op: leaving it
  // out is equivalent.
  if (!op.required && op.kind == OpKind::kCas && op.a != state_) return false;
  // After an optional op only an op observing its result may follow (a
  // read of it, a cas expecting it, a failed cas it makes fail): otherwise
  // the optional op could be left out altogether.
  if (!frame.must_observe) return true;
  if (op.kind == OpKind::kCasMismatch) return op.a != state_;
  return (op.kind == OpKind::kRead || op.kind == OpKind::kCas) &&
         op.a == state_;
}

Search::Advanced Search::Advance() {
  while (frames_.back().pos < frames_.back().end) {
    int32_t op = cands_[frames_.back().pos++];
    const LinOp& lin = ops_[op];
    int32_t next = kAbsent;
    if (!Admissible(frames_.back(), lin) || !Step(lin, state_, &next)) {
      continue;
    }
    bool must_observe = !lin.required;
    Flip(op);
    if (!memo_.Insert(bits_, MemoState(next, must_observe),
                      hash_ ^ MemoKey(next, must_observe))) {
      Flip(op);  // explored before
      continue;
    }
    if (OverBudget()) return Advanced::kCutOff;
    Lift(op);
    if (lin.required && --required_left_ == 0) return Advanced::kAllLinearized;
    PushFrame(op, state_);
    state_ = next;
    return Advanced::kDeeper;
  }
  return Advanced::kExhausted;
}

void Search::Backtrack() {
  Frame done = frames_.back();
  frames_.pop_back();
  cands_.resize(done.begin);
  Unlift(done.via);
  Flip(done.via);
  state_ = done.state_before;
  if (ops_[done.via].required) ++required_left_;
}

SearchOutcome Search::Run() {
  for (const LinOp& op : ops_) required_left_ += op.required ? 1 : 0;
  if (required_left_ == 0) return SearchOutcome::kLinearizable;
  if (ObservesUnwrittenValue()) return SearchOutcome::kNotLinearizable;
  BuildList();
  memo_.Insert(bits_, MemoState(state_, false), hash_ ^ MemoKey(state_, false));
  PushFrame(-1, state_);
  while (true) {
    switch (Advance()) {
      case Advanced::kDeeper:
        break;
      case Advanced::kAllLinearized:
        return SearchOutcome::kLinearizable;
      case Advanced::kCutOff:
        return SearchOutcome::kCutOff;
      case Advanced::kExhausted:  // every candidate here leads nowhere
        if (frames_.size() == 1) return SearchOutcome::kNotLinearizable;
        Backtrack();
        break;
    }
  }
}

// Searches the events before `limit` of one key's operations, within the
// per-search budget and the whole check's deadline.
SearchOutcome CheckPrefix(const std::vector<const Operation*>& ops,
                          size_t limit, const LinearizabilityOptions& options,
                          Clock::time_point check_deadline) {
  Clock::time_point deadline = check_deadline;
  if (options.max_ms_per_key > 0) {
    deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(
                                                     options.max_ms_per_key));
  }
  std::vector<LinOp> problem = BuildProblem(ops, limit, options);
  return Search(problem, options, deadline).Run();
}

// ---------------------------------------------------------------------------
// Explaining a violation.

bool IsWriteOf(const Operation& op, const std::optional<std::string>& v) {
  if (op.f == "write") return op.value == v;
  if (op.f == "cas") return op.value2 == v;
  if (op.f == "delete") return !v.has_value();
  return false;
}

// The value `op` observed: what a read returned or what a cas expected.
std::optional<std::optional<std::string>> ObservedValue(const Operation& op) {
  if (op.outcome != EventType::kOk) return std::nullopt;
  if (op.f == "read") return op.result;
  if (op.f == "cas") return op.value;
  return std::nullopt;
}

struct Violation {
  size_t culprit = 0;         // index in the key's operations
  size_t limit = 0;           // the failing prefix: events before this
  std::vector<size_t> extra;  // further ops the diagnosis names
  std::string diagnosis;
};

// The ops that wrote `value` and were invoked before `x` completed, within
// the failing prefix.
struct Writers {
  std::vector<size_t> succeeded;  // ok or info
  std::vector<size_t> failed;
  int64_t last_done = INT64_MIN;  // when the last of `succeeded` completed
};

Writers FindWriters(const std::vector<const Operation*>& ops,
                    const Violation& v,
                    const std::optional<std::string>& value) {
  const Operation& x = *ops[v.culprit];
  Writers w;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Operation& op = *ops[i];
    if (i == v.culprit || op.invoke_index >= v.limit ||
        op.invoke_ns > x.complete_ns || !IsWriteOf(op, value)) {
      continue;
    }
    if (op.outcome == EventType::kFail) {
      w.failed.push_back(i);
      continue;
    }
    w.succeeded.push_back(i);
    bool done = op.outcome == EventType::kOk && op.complete_index < v.limit;
    w.last_done = std::max(w.last_done, done ? op.complete_ns : kNoCompletion);
  }
  return w;
}

// The latest ok op that overwrote `value` after every write of it had
// completed (`last_done`) and completed before the culprit began.
std::optional<size_t> FindOverwrite(const std::vector<const Operation*>& ops,
                                    const Violation& v,
                                    const std::optional<std::string>& value,
                                    int64_t last_done) {
  const Operation& x = *ops[v.culprit];
  std::optional<size_t> overwrite;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Operation& op = *ops[i];
    if (op.outcome != EventType::kOk || op.complete_index >= v.limit ||
        op.f == "read" || IsWriteOf(op, value) || op.invoke_ns <= last_done ||
        op.complete_ns >= x.invoke_ns) {
      continue;
    }
    if (!overwrite || op.complete_ns > ops[*overwrite]->complete_ns) {
      overwrite = i;
    }
  }
  return overwrite;
}

// Why the culprit cannot be linearized, in words, for the usual cases: a
// value nobody wrote, written only by failed ops, or overwritten (stale).
// Every sentence is a fact of the history; the verdict is the search's.
void Diagnose(const std::vector<const Operation*>& ops, Violation* v) {
  const Operation& x = *ops[v->culprit];
  auto observed = ObservedValue(x);
  if (!observed) return;
  const std::optional<std::string>& value = *observed;
  bool initial = !value.has_value();  // the register starts absent
  std::string it = "It " + std::string(x.f == "read" ? "read" : "expected") +
                   " " + Quoted(value);
  Writers writers = FindWriters(ops, *v, value);
  if (writers.succeeded.empty() && !initial) {
    if (writers.failed.empty()) {
      v->diagnosis =
          it + ", which no operation invoked before it completed ever wrote.";
      return;
    }
    v->extra.push_back(writers.failed.back());
    v->diagnosis = it + ", which only failed operations tried to write (" +
                   DescribeOp(*ops[writers.failed.back()]) +
                   "): a failed operation took effect.";
    return;
  }
  if (!writers.succeeded.empty()) v->extra.push_back(writers.succeeded.back());
  std::optional<size_t> overwrite =
      FindOverwrite(ops, *v, value, writers.last_done);
  if (!overwrite) return;
  v->extra.push_back(*overwrite);
  v->diagnosis = it + ", but " + DescribeOp(*ops[*overwrite]) +
                 " overwrote it after every write of " + Quoted(value) +
                 (initial ? " (including the initial absent state)" : "") +
                 " had completed and before this operation began: a stale "
                 "value.";
}

// The operations of the slice: the culprit, those concurrent with it, the
// last ones completed before it (the frontier that fixes the register's
// value), and those the diagnosis names.
std::vector<size_t> SliceOps(const std::vector<const Operation*>& ops,
                             const Violation& v) {
  const Operation& x = *ops[v.culprit];
  std::set<size_t> chosen(v.extra.begin(), v.extra.end());
  chosen.insert(v.culprit);
  int64_t frontier_start = INT64_MIN;
  for (const Operation* op : ops) {
    if (op->outcome == EventType::kOk && op->complete_index < v.limit &&
        op->complete_ns < x.invoke_ns) {
      frontier_start = std::max(frontier_start, op->invoke_ns);
    }
  }
  int64_t window_start = std::min(x.invoke_ns, frontier_start);
  for (size_t i = 0; i < ops.size(); ++i) {
    const Operation& op = *ops[i];
    if (op.invoke_index >= v.limit) continue;
    bool frontier =
        op.outcome == EventType::kOk && op.complete_index < v.limit &&
        op.complete_ns < x.invoke_ns && op.complete_ns >= frontier_start;
    bool concurrent = op.invoke_ns >= window_start &&
                      op.invoke_ns <= x.complete_ns &&
                      op.complete_ns >= x.invoke_ns;
    if (frontier || concurrent) chosen.insert(i);
  }
  return {chosen.begin(), chosen.end()};
}

Anomaly BuildAnomaly(const History& history, const std::string& key,
                     const std::vector<const Operation*>& ops,
                     const Violation& v) {
  std::vector<size_t> chosen = SliceOps(ops, v);
  std::set<size_t> events;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (size_t i : chosen) {
    const Operation& op = *ops[i];
    events.insert(op.invoke_index);
    lo = std::min(lo, op.invoke_ns);
    hi = std::max(hi, op.invoke_ns);
    if (op.complete_index != kNoEvent) {
      events.insert(op.complete_index);
      hi = std::max(hi, op.complete_ns);
    }
  }
  for (size_t i = 0; i < history.size(); ++i) {
    const Event& e = history[i];
    if (e.is_nemesis() && e.time_ns >= lo && e.time_ns <= hi) events.insert(i);
  }
  Anomaly a;
  a.kind = "nonlinearizable";
  a.key = key;
  std::vector<size_t> marked;
  for (size_t i : events) {
    if (i == ops[v.culprit]->invoke_index) marked.push_back(a.slice.size());
    a.slice.push_back(history[i]);
  }
  size_t prefix_ops = 0;
  for (const Operation* op : ops) prefix_ops += op->invoke_index < v.limit;
  a.description = "Key " + QuoteForText(key) +
                  " is not linearizable. The shortest non-linearizable "
                  "prefix of its history (" +
                  std::to_string(prefix_ops) + " operations) ends with " +
                  DescribeOp(*ops[v.culprit]) +
                  ": no order of the operations consistent with their "
                  "real-time order explains it with a register that starts "
                  "absent. ";
  a.description += v.diagnosis.empty()
                       ? "The slice shows it, the operations concurrent with "
                         "it and the last ones completed before it."
                       : v.diagnosis;
  a.rendering =
      "key " + QuoteForText(key) + "\n" + RenderTimeline(a.slice, marked);
  return a;
}

// The shortest failing prefix, by bisection over the key's events
// (linearizability is prefix-closed, so failure is monotone in the prefix).
Violation Minimize(const std::vector<const Operation*>& ops,
                   const LinearizabilityOptions& options,
                   Clock::time_point check_deadline) {
  std::vector<size_t> events;
  for (const Operation* op : ops) {
    events.push_back(op->invoke_index);
    if (op->complete_index != kNoEvent) events.push_back(op->complete_index);
  }
  std::sort(events.begin(), events.end());
  size_t lo = 0, hi = events.size();  // prefix lo passes, hi fails
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (CheckPrefix(ops, events[mid - 1] + 1, options, check_deadline) ==
        SearchOutcome::kNotLinearizable) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  Violation v;
  v.limit = events[hi - 1] + 1;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i]->complete_index == events[hi - 1] ||
        ops[i]->invoke_index == events[hi - 1]) {
      v.culprit = i;
    }
  }
  Diagnose(ops, &v);
  return v;
}

bool IsRegisterOp(const std::string& f) {
  return f == "read" || f == "write" || f == "cas" || f == "delete";
}

void CountOutcomes(const std::vector<Operation>& ops, CheckResult* result) {
  for (const Operation& op : ops) {
    ++result->ops;
    switch (op.outcome) {
      case EventType::kOk:
        ++result->ok;
        break;
      case EventType::kFail:
        ++result->fail;
        break;
      default:
        ++result->info;
    }
  }
}

std::string KeyList(const std::vector<std::string>& keys) {
  constexpr size_t kMaxListed = 5;
  std::string s;
  for (size_t i = 0; i < keys.size() && i < kMaxListed; ++i) {
    s += (i ? ", " : "") + keys[i];
  }
  if (keys.size() > kMaxListed) s += ", ...";
  return s;
}

// The register keys of a history and their operations (in invocation
// order); keys of the set workload (any "add") are left out.
struct RegisterKeys {
  std::map<std::string, std::vector<const Operation*>> ops;
  std::set<std::string> unsupported;  // f values that are not register ops
};

RegisterKeys GroupByKey(const std::vector<Operation>& all) {
  std::set<std::string> set_keys;
  for (const Operation& op : all) {
    if (op.f == "add") set_keys.insert(op.key);
  }
  RegisterKeys keys;
  for (const Operation& op : all) {
    if (set_keys.count(op.key) != 0) continue;
    if (IsRegisterOp(op.f)) {
      keys.ops[op.key].push_back(&op);
    } else {
      keys.unsupported.insert(op.f);
    }
  }
  return keys;
}

struct KeyVerdicts {
  std::vector<std::string> invalid, cut_off;
};

// Sets the validity and the one-line summary.
void Summarize(const RegisterKeys& keys, const KeyVerdicts& verdicts,
               double secs, CheckResult* result) {
  char tail[96];
  std::snprintf(tail, sizeof(tail), "%zu keys, %llu ops, checked in %.2f s",
                keys.ops.size(), static_cast<unsigned long long>(result->ops),
                secs);
  if (!verdicts.invalid.empty()) {
    result->validity = Validity::kInvalid;
    result->summary =
        "not linearizable: " + std::to_string(verdicts.invalid.size()) +
        " of " + tail + " (" + KeyList(verdicts.invalid) + ")";
    return;
  }
  if (verdicts.cut_off.empty() && keys.unsupported.empty()) {
    result->validity = Validity::kValid;
    result->summary = "linearizable: " + std::string(tail);
    return;
  }
  result->validity = Validity::kUnknown;
  result->summary = "unknown: " + std::string(tail);
  if (!verdicts.cut_off.empty()) {
    result->summary += "; search budget exceeded on " +
                       std::to_string(verdicts.cut_off.size()) + " keys (" +
                       KeyList(verdicts.cut_off) + ")";
  }
  if (!keys.unsupported.empty()) {
    result->summary += "; not register operations: " +
                       KeyList(std::vector<std::string>(
                           keys.unsupported.begin(), keys.unsupported.end()));
  }
}

}  // namespace

StatusOr<std::vector<Operation>> PairOperations(const History& history) {
  std::vector<Operation> ops;
  std::map<int64_t, size_t> pending;  // process -> index in ops
  for (size_t i = 0; i < history.size(); ++i) {
    const Event& e = history[i];
    if (e.is_nemesis() || e.is_observation()) continue;
    auto it = pending.find(e.process);
    if (e.type == EventType::kInvoke) {
      if (it != pending.end()) {
        return Status::InvalidArgument(
            "event " + std::to_string(i) + ": process " +
            std::to_string(e.process) +
            " invoked while its previous operation is pending: " +
            ToJsonLine(e));
      }
      Operation op;
      op.process = e.process;
      op.f = e.f;
      op.key = e.key;
      op.value = e.value;
      op.value2 = e.value2;
      op.invoke_ns = e.time_ns;
      op.complete_ns = kNoCompletion;
      op.invoke_index = i;
      op.complete_index = kNoEvent;
      pending[e.process] = ops.size();
      ops.push_back(std::move(op));
      continue;
    }
    if (it == pending.end()) {
      return Status::InvalidArgument(
          "event " + std::to_string(i) +
          ": completion without invocation: " + ToJsonLine(e));
    }
    Operation& op = ops[it->second];
    pending.erase(it);
    if (op.f != e.f || op.key != e.key) {
      return Status::InvalidArgument(
          "event " + std::to_string(i) +
          ": completion does not match its invocation's f and key: " +
          ToJsonLine(e));
    }
    op.outcome = e.type;
    op.complete_ns = e.time_ns;
    op.complete_index = i;
    if (e.type == EventType::kOk) op.result = e.value;
  }
  return ops;
}

CheckResult CheckRegisters(const History& history,
                           const LinearizabilityOptions& options) {
  Clock::time_point start = Clock::now();
  CheckResult result;
  StatusOr<std::vector<Operation>> paired = PairOperations(history);
  if (!paired.ok()) return MalformedHistory(paired.status().message());
  CountOutcomes(paired.value(), &result);
  RegisterKeys keys = GroupByKey(paired.value());
  Clock::time_point deadline =
      options.max_total_ms > 0
          ? start + std::chrono::milliseconds(options.max_total_ms)
          : Clock::time_point::max();
  KeyVerdicts verdicts;
  for (const auto& [key, ops] : keys.ops) {
    SearchOutcome outcome = Clock::now() > deadline
                                ? SearchOutcome::kCutOff
                                : CheckPrefix(ops, kNoEvent, options, deadline);
    if (outcome == SearchOutcome::kCutOff) verdicts.cut_off.push_back(key);
    if (outcome != SearchOutcome::kNotLinearizable) continue;
    verdicts.invalid.push_back(key);
    result.anomalies.push_back(
        BuildAnomaly(history, key, ops, Minimize(ops, options, deadline)));
  }
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  Summarize(keys, verdicts, secs, &result);
  return result;
}

// ---------------------------------------------------------------------------
// Timeline rendering.

namespace {

struct TimelineRow {
  int64_t process = 0;
  std::string label;
  std::string outcome;  // ok, fail, info, "" (never completed), or nemesis
  int64_t start = 0;
  int64_t end = kNoCompletion;  // nemesis rows: == start
  bool marked = false;
  bool nemesis = false;
};

std::vector<TimelineRow> TimelineRows(const History& slice,
                                      const std::vector<size_t>& marked) {
  std::vector<TimelineRow> rows;
  std::map<int64_t, size_t> pending;  // process -> row
  for (size_t i = 0; i < slice.size(); ++i) {
    const Event& e = slice[i];
    TimelineRow row;
    row.process = e.process;
    row.start = e.time_ns;
    if (e.is_nemesis()) {
      row.nemesis = true;
      row.label = OpLabel(e.f, e.value, e.value2, std::nullopt, false);
      row.end = e.time_ns;
      row.outcome = EventTypeName(e.type);
      rows.push_back(row);
      continue;
    }
    auto it = pending.find(e.process);
    if (e.type == EventType::kInvoke || it == pending.end()) {
      row.label = OpLabel(e.f, e.value, e.value2, std::nullopt, false);
      row.marked = std::find(marked.begin(), marked.end(), i) != marked.end();
      if (e.type != EventType::kInvoke) {  // completion alone in the slice
        row.outcome = EventTypeName(e.type);
        row.end = e.time_ns;
      } else {
        pending[e.process] = rows.size();
      }
      rows.push_back(row);
      continue;
    }
    TimelineRow& open = rows[it->second];
    pending.erase(it);
    open.outcome = EventTypeName(e.type);
    open.end = e.time_ns;
    if (e.type == EventType::kOk && e.f == "read") {
      open.label = OpLabel(e.f, std::nullopt, std::nullopt, e.value, true);
    }
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const TimelineRow& a, const TimelineRow& b) {
                     if (a.nemesis != b.nemesis) return b.nemesis;
                     if (a.process != b.process) return a.process < b.process;
                     return a.start < b.start;
                   });
  return rows;
}

std::string Pad(std::string s, size_t width) {
  if (s.size() > width) return s.substr(0, width - 3) + "...";
  s.resize(width, ' ');
  return s;
}

}  // namespace

std::string RenderTimeline(const History& slice,
                           const std::vector<size_t>& marked) {
  if (slice.empty()) return "(empty slice)\n";
  std::vector<TimelineRow> rows = TimelineRows(slice, marked);
  int64_t t0 = INT64_MAX, t1 = INT64_MIN;
  for (const Event& e : slice) {
    t0 = std::min(t0, e.time_ns);
    t1 = std::max(t1, e.time_ns);
  }
  constexpr int kBarWidth = 48;
  int64_t span = std::max<int64_t>(t1 - t0, 1);
  auto column = [&](int64_t t) {
    t = std::min(std::max(t, t0), t1);
    return static_cast<int>(static_cast<double>(t - t0) * (kBarWidth - 1) /
                            static_cast<double>(span));
  };
  std::string out = "times in ms after t0 = " + FormatSeconds(t0) +
                    " (test time); [==] invoke..completion, ? info "
                    "(indeterminate), > never completed, ^ nemesis, * the "
                    "operation in question\n";
  int64_t last_process = INT64_MIN;
  for (const TimelineRow& row : rows) {
    std::string bar(kBarWidth, ' ');
    int a = column(row.start);
    if (row.nemesis) {
      bar[a] = '^';
    } else {
      int b = row.end == kNoCompletion ? kBarWidth - 1 : column(row.end);
      for (int c = a; c <= b; ++c) bar[c] = '=';
      bar[a] = '[';
      bar[b] = row.end == kNoCompletion ? '>'
               : row.outcome == "info"  ? '?'
                                        : ']';
      if (a == b && row.end != kNoCompletion) bar[a] = '|';
    }
    bool first = row.process != last_process;
    last_process = row.process;
    std::string times = FormatMs(row.start - t0);
    if (!row.nemesis) {
      times +=
          " .. " + (row.end == kNoCompletion ? "?" : FormatMs(row.end - t0));
    }
    out += std::string(row.marked ? "* " : "  ") +
           Pad(first ? ProcessName(row.process) : "", 8) + " " +
           Pad(row.label, 30) + " " + Pad(row.outcome, 6) + "|" + bar + "| " +
           times + "\n";
  }
  return out;
}

}  // namespace raftkv::jepsen
