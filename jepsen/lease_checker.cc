// Lease workload checker (see lease_checker.h for what is asserted and
// why). Must never do I/O, and never assert past what a lease's grant and
// TTL probes prove.
#include "jepsen/lease_checker.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "jepsen/linearizability.h"

namespace raftkv::jepsen {
namespace {

constexpr size_t kMaxExamples = 10;
constexpr size_t kMaxSliceEvents = 24;
constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr const char* kRegPrefix = "reg/";
constexpr const char* kCounter = "lock-counter";
// A keeper's loss this long after a heal still counts as during the fault.
constexpr int64_t kAfterHealNs = 5 * kNanosPerSecond;

std::string Seconds(int64_t ns) {
  if (ns == INT64_MAX) return "never";
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.3f s", static_cast<double>(ns) / 1e9);
  return buf;
}

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
    if (e.lease != 0) out += " lease=" + std::to_string(e.lease);
    if (e.revision != 0) out += " @" + std::to_string(e.revision);
    if (!e.node.empty()) out += " on " + e.node;
    out += "\n";
  }
  return out;
}

// Examples of one anomaly kind, made into one anomaly at the end.
struct Findings {
  size_t count = 0;
  std::vector<std::string> examples;
  std::set<size_t> events;
  void Add(std::string example, std::vector<const Operation*> ops) {
    if (count++ >= kMaxExamples) return;
    examples.push_back(std::move(example));
    for (const Operation* op : ops) {
      for (size_t i : {op->invoke_index, op->complete_index}) {
        if (i != kNoEvent && events.size() < kMaxSliceEvents) events.insert(i);
      }
    }
  }
  void Flush(const History& history, const std::string& kind,
             const std::string& what, std::vector<Anomaly>* out) const {
    if (count == 0) return;
    Anomaly a;
    a.kind = kind;
    a.description = what + " (" + std::to_string(count) + "): ";
    for (size_t i = 0; i < examples.size(); ++i) {
      a.description += (i ? "; " : "") + examples[i];
    }
    if (count > examples.size()) {
      a.description +=
          "; and " + std::to_string(count - examples.size()) + " more";
    }
    a.description += ".";
    for (size_t i : events) a.slice.push_back(history[i]);
    a.rendering = RenderEvents(a.slice);
    out->push_back(std::move(a));
  }
};

// "k@lease,k@lease" -> (key, lease) pairs; false if malformed.
bool ParseLeasedKeys(const std::optional<std::string>& value,
                     std::set<std::pair<std::string, int64_t>>* out) {
  if (!value || value->empty()) return true;
  size_t start = 0;
  while (start <= value->size()) {
    size_t comma = value->find(',', start);
    if (comma == std::string::npos) comma = value->size();
    const std::string item = value->substr(start, comma - start);
    const size_t at = item.rfind('@');
    if (at == std::string::npos || at == 0) return false;
    try {
      out->insert({item.substr(0, at), std::stoll(item.substr(at + 1))});
    } catch (...) {
      return false;
    }
    start = comma + 1;
  }
  return true;
}

std::optional<int64_t> ToInt(const std::optional<std::string>& s) {
  if (!s) return std::nullopt;
  try {
    size_t used = 0;
    const int64_t n = std::stoll(*s, &used);
    if (used != s->size()) return std::nullopt;
    return n;
  } catch (...) {
    return std::nullopt;
  }
}

struct Lease {
  int64_t id = 0;
  const Operation* grant = nullptr;  // the grant or the session
  // Certainly alive before this (test time, ns), and which op says so.
  int64_t alive_until_ns = INT64_MIN;
  const Operation* alive_because = nullptr;
  int64_t revoke_invoked_ns = INT64_MAX;  // first revoke invoked
  const Operation* revoke_ack = nullptr;  // first revoke acknowledged
  int64_t ended_ns = INT64_MAX;           // abandoned, revoke invoked, or lost
  void Alive(int64_t until_ns, const Operation* because) {
    if (until_ns > alive_until_ns) {
      alive_until_ns = until_ns;
      alive_because = because;
    }
  }
};

struct Read {
  const Operation* op = nullptr;
  std::set<std::pair<std::string, int64_t>> keys;
  int64_t revision = 0;
  std::string node;  // empty: linearizable
};

class LeaseCheck {
 public:
  LeaseCheck(const History& history, const std::vector<Operation>& ops)
      : history_(history), ops_(ops) {}
  CheckResult Run();

 private:
  const Event& Done(const Operation& op) const {
    return history_[op.complete_index];
  }
  void Gather();
  void CheckReads();
  void CheckFinal();
  void CheckLock();
  void Finish();
  std::string LeaseName(int64_t id) const;

  const History& history_;
  const std::vector<Operation>& ops_;
  CheckResult result_;
  std::map<int64_t, Lease> leases_;
  // Attempted puts (not failed) of (key, lease): the first invocation.
  std::map<std::pair<std::string, int64_t>, int64_t> puts_;
  std::vector<const Operation*> registrations_;  // ok puts
  std::vector<Read> reads_;
  std::vector<const Operation*> locks_, incrs_, counter_reads_;
  std::vector<std::string> unknown_;
  int64_t probes_ok_ = 0, revokes_ok_ = 0, abandoned_ = 0, lost_ = 0,
          lost_outside_faults_ = 0, presence_checks_ = 0;
  int64_t incrs_info_ = 0;
  std::set<std::string> nodes_checked_;
};

std::string LeaseCheck::LeaseName(int64_t id) const {
  auto it = leases_.find(id);
  if (it == leases_.end() || it->second.grant == nullptr) {
    return "lease " + std::to_string(id) + " (no grant of it recorded)";
  }
  return "lease " + std::to_string(id) + " (" + it->second.grant->f + " by p" +
         std::to_string(it->second.grant->process) + ")";
}

void LeaseCheck::Gather() {
  for (const Operation& op : ops_) {
    ++result_.ops;
    result_.ok += op.outcome == EventType::kOk;
    result_.fail += op.outcome == EventType::kFail;
    result_.info += op.outcome == EventType::kInfo;
    const Event& invoke = history_[op.invoke_index];
    const bool ok = op.outcome == EventType::kOk;
    if (op.f == "grant" || op.f == "session") {
      if (!ok) continue;
      Lease& l = leases_[Done(op).lease];
      l.id = Done(op).lease;
      l.grant = &op;
      if (op.f == "grant") {
        const int64_t ttl = ToInt(op.result).value_or(0);
        l.Alive(op.invoke_ns + ttl * kNanosPerSecond, &op);
      }
    } else if (op.f == "put") {
      if (op.outcome != EventType::kFail) {
        auto [it, inserted] =
            puts_.emplace(std::make_pair(op.key, invoke.lease), op.invoke_ns);
        if (!inserted) it->second = std::min(it->second, op.invoke_ns);
      }
      if (ok) registrations_.push_back(&op);
    } else if (op.f == "ttl") {
      if (!ok) continue;
      ++probes_ok_;
      const int64_t left = ToInt(op.result).value_or(0);
      leases_[invoke.lease].Alive(op.invoke_ns + (left - 1) * kNanosPerSecond,
                                  &op);
    } else if (op.f == "revoke") {
      Lease& l = leases_[invoke.lease];
      l.revoke_invoked_ns = std::min(l.revoke_invoked_ns, op.invoke_ns);
      l.ended_ns = std::min(l.ended_ns, op.invoke_ns);
      if (ok) {
        ++revokes_ok_;
        if (l.revoke_ack == nullptr ||
            op.complete_ns < l.revoke_ack->complete_ns) {
          l.revoke_ack = &op;
        }
      }
    } else if (op.f == "abandon") {
      ++abandoned_;
      Lease& l = leases_[invoke.lease];
      l.ended_ns = std::min(l.ended_ns, op.invoke_ns);
    } else if (op.f == "read") {
      if (!ok) continue;
      if (op.key == kCounter) {
        counter_reads_.push_back(&op);
        continue;
      }
      Read r;
      r.op = &op;
      r.revision = Done(op).revision;
      r.node = invoke.node;
      if (!ParseLeasedKeys(op.result, &r.keys)) {
        unknown_.push_back("a read's value is not k@lease,...: " +
                           QuoteForText(op.result.value_or("")));
        continue;
      }
      reads_.push_back(std::move(r));
    } else if (op.f == "lock") {
      if (ok) locks_.push_back(&op);
    } else if (op.f == "incr") {
      incrs_.push_back(&op);
      incrs_info_ += op.outcome == EventType::kInfo;
    } else if (op.f == "unlock") {
      // Nothing to check by itself.
    } else {
      unknown_.push_back("unsupported operation " + QuoteForText(op.f));
    }
  }
  // Keeper losses (observations), and whether a fault was on then.
  std::vector<std::pair<int64_t, int64_t>> faults;  // [start, heal]
  for (const Event& e : history_) {
    if (!e.is_nemesis()) continue;
    if (e.f != "heal") {
      if (faults.empty() || faults.back().second != INT64_MAX) {
        faults.push_back({e.time_ns, INT64_MAX});
      }
    } else if (!faults.empty() && faults.back().second == INT64_MAX) {
      faults.back().second = e.time_ns;
    }
  }
  for (const Event& e : history_) {
    if (!e.is_observation() || e.f != "lost") continue;
    ++lost_;
    Lease& l = leases_[e.lease];
    l.ended_ns = std::min(l.ended_ns, e.time_ns);
    bool during = false;
    for (const auto& [start, heal] : faults) {
      during =
          during || (e.time_ns >= start &&
                     (heal == INT64_MAX || e.time_ns < heal + kAfterHealNs));
    }
    lost_outside_faults_ += !during;
  }
}

void LeaseCheck::CheckReads() {
  Findings missing, revoked, unexpected;
  for (const Read& r : reads_) {
    if (!r.node.empty()) continue;  // serializable: see CheckFinal
    const Operation& op = *r.op;
    for (const auto& [key, lease] : r.keys) {
      auto l = leases_.find(lease);
      if (l != leases_.end() && l->second.revoke_ack != nullptr &&
          l->second.revoke_ack->complete_ns < op.invoke_ns) {
        revoked.Add(QuoteForText(key) + " on " + LeaseName(lease) +
                        " read by p" + std::to_string(op.process) + " at " +
                        Seconds(op.invoke_ns) + ".." + Seconds(op.complete_ns) +
                        " (revision " + std::to_string(r.revision) +
                        "), after the revoke was acknowledged at " +
                        Seconds(l->second.revoke_ack->complete_ns),
                    {l->second.revoke_ack, &op});
      }
      bool explained;
      if (key.rfind(kRegPrefix, 0) == 0) {
        auto put = puts_.find({key, lease});
        explained = put != puts_.end() && put->second < op.complete_ns;
      } else {
        explained = l != leases_.end() && l->second.grant != nullptr &&
                    l->second.grant->invoke_ns < op.complete_ns;
      }
      if (!explained) {
        unexpected.Add(QuoteForText(key) + " on lease " +
                           std::to_string(lease) + " read by p" +
                           std::to_string(op.process) + " at " +
                           Seconds(op.invoke_ns) +
                           ": no put of it on that lease was attempted",
                       {&op});
      }
    }
    if (op.key != kRegPrefix && op.key != "*") continue;
    for (const Operation* put : registrations_) {
      if (put->complete_ns > op.invoke_ns) continue;
      const int64_t id = history_[put->invoke_index].lease;
      auto found = leases_.find(id);
      if (found == leases_.end()) continue;
      const Lease& l = found->second;
      if (op.complete_ns >= l.alive_until_ns ||
          op.complete_ns >= l.revoke_invoked_ns) {
        continue;
      }
      ++presence_checks_;
      if (r.keys.count({put->key, id}) != 0) continue;
      missing.Add(QuoteForText(put->key) + " (put on " + LeaseName(id) +
                      ", acknowledged at " + Seconds(put->complete_ns) +
                      ") missing from the read by p" +
                      std::to_string(op.process) + " at " +
                      Seconds(op.invoke_ns) + ".." + Seconds(op.complete_ns) +
                      " (revision " + std::to_string(r.revision) +
                      "), though the lease was certainly alive until " +
                      Seconds(l.alive_until_ns) + " (" + l.alive_because->f +
                      " invoked at " + Seconds(l.alive_because->invoke_ns) +
                      ", answered " +
                      QuoteForText(l.alive_because->result.value_or("")) +
                      " s) and no revoke was invoked before",
                  {put, l.alive_because, &op});
    }
  }
  missing.Flush(history_, "kept-alive-key-missing",
                "Keys of leases certainly alive missing from linearizable "
                "reads",
                &result_.anomalies);
  revoked.Flush(history_, "revoked-key-present",
                "Keys of revoked leases read after the revoke was "
                "acknowledged",
                &result_.anomalies);
  unexpected.Flush(history_, "unexpected-key", "Keys no put made",
                   &result_.anomalies);
}

void LeaseCheck::CheckFinal() {
  // The last linearizable read of the whole key space, then each node's
  // last serializable one.
  const Read* final_read = nullptr;
  std::map<std::string, const Read*> by_node;
  for (const Read& r : reads_) {
    if (r.op->key != "*") continue;
    if (r.node.empty()) {
      if (!final_read || r.op->invoke_ns >= final_read->op->invoke_ns) {
        final_read = &r;
      }
    } else if (!by_node[r.node] ||
               r.op->invoke_ns >= by_node[r.node]->op->invoke_ns) {
      by_node[r.node] = &r;
    }
  }
  if (final_read == nullptr) {
    unknown_.push_back("no final linearizable read of the key space");
    return;
  }
  Findings dead;
  auto check = [&](const Read& r, const std::string& where) {
    for (const auto& [key, lease] : r.keys) {
      auto l = leases_.find(lease);
      if (l == leases_.end() ||
          l->second.ended_ns >= final_read->op->invoke_ns) {
        continue;  // unknown lease (unexpected-key) or never ended
      }
      dead.Add(QuoteForText(key) + " on " + LeaseName(lease) + " (ended at " +
                   Seconds(l->second.ended_ns) + ") still there " + where +
                   " at revision " + std::to_string(r.revision),
               {r.op});
    }
  };
  check(*final_read, "in the final linearizable read (" +
                         Seconds(final_read->op->invoke_ns) + ")");
  for (const auto& [node, r] : by_node) {
    if (r->revision < final_read->revision) {
      unknown_.push_back("node " + node + " never answered at revision " +
                         std::to_string(final_read->revision) +
                         " or later (its last: " + std::to_string(r->revision) +
                         ")");
      continue;
    }
    nodes_checked_.insert(node);
    check(*r, "on node " + node + " (serializable)");
  }
  dead.Flush(history_, "dead-lease-key-present",
             "Keys of dead leases present after the final heal",
             &result_.anomalies);
}

void LeaseCheck::CheckLock() {
  Findings tokens, stale, lost, unexpected;
  // Tokens of Lock calls that did not overlap increase.
  std::vector<const Operation*> by_invoke = locks_, by_complete = locks_;
  std::sort(by_invoke.begin(), by_invoke.end(),
            [](auto* a, auto* b) { return a->invoke_ns < b->invoke_ns; });
  std::sort(by_complete.begin(), by_complete.end(),
            [](auto* a, auto* b) { return a->complete_ns < b->complete_ns; });
  const Operation* highest = nullptr;
  size_t j = 0;
  for (const Operation* b : by_invoke) {
    for (; j < by_complete.size() && by_complete[j]->complete_ns < b->invoke_ns;
         ++j) {
      if (!highest ||
          Done(*by_complete[j]).revision > Done(*highest).revision) {
        highest = by_complete[j];
      }
    }
    if (highest && Done(*highest).revision >= Done(*b).revision) {
      tokens.Add("p" + std::to_string(b->process) + " locked at " +
                     Seconds(b->complete_ns) + " with token " +
                     std::to_string(Done(*b).revision) + ", but p" +
                     std::to_string(highest->process) +
                     "'s lock, complete at " + Seconds(highest->complete_ns) +
                     " before it was invoked, had token " +
                     std::to_string(Done(*highest).revision),
                 {highest, b});
    }
  }
  // Increments.
  std::vector<const Operation*> ok;
  std::map<int64_t, int64_t> attempted;  // value -> first invocation
  int64_t ok_count = 0;
  for (const Operation* op : incrs_) {
    if (op->outcome == EventType::kFail) continue;
    auto v =
        ToInt(op->outcome == EventType::kOk ? op->result : Done(*op).value);
    if (op->complete_index == kNoEvent || !v) continue;
    auto [it, inserted] = attempted.emplace(*v, op->invoke_ns);
    if (!inserted) it->second = std::min(it->second, op->invoke_ns);
    if (op->outcome == EventType::kOk) {
      ok.push_back(op);
      ++ok_count;
    }
  }
  std::sort(ok.begin(), ok.end(), [&](auto* a, auto* b) {
    return Done(*a).revision < Done(*b).revision;
  });
  int64_t max_written = 0;
  const Operation* previous = nullptr;
  for (const Operation* op : ok) {
    const int64_t value = ToInt(op->result).value_or(0);
    const int64_t token = history_[op->invoke_index].revision;
    if (previous != nullptr) {
      const int64_t prev_value = ToInt(previous->result).value_or(0);
      const int64_t prev_token = history_[previous->invoke_index].revision;
      if (token < prev_token) {
        stale.Add("p" + std::to_string(op->process) + " wrote " +
                      std::to_string(value) + " at revision " +
                      std::to_string(Done(*op).revision) + " under token " +
                      std::to_string(token) + ", after p" +
                      std::to_string(previous->process) +
                      " wrote at revision " +
                      std::to_string(Done(*previous).revision) +
                      " under the later token " + std::to_string(prev_token),
                  {previous, op});
      }
      if (value <= prev_value) {
        lost.Add("p" + std::to_string(op->process) + " wrote " +
                     std::to_string(value) + " at revision " +
                     std::to_string(Done(*op).revision) + " after p" +
                     std::to_string(previous->process) + " wrote " +
                     std::to_string(prev_value) + " at revision " +
                     std::to_string(Done(*previous).revision) +
                     ": an increment was overwritten",
                 {previous, op});
      }
    }
    const int64_t read = value - 1;
    auto source = attempted.find(read);
    if (read != 0 &&
        (source == attempted.end() || source->second > op->complete_ns)) {
      unexpected.Add("p" + std::to_string(op->process) + " read " +
                         std::to_string(read) +
                         ", which no increment wrote (before it completed)",
                     {op});
    }
    max_written = std::max(max_written, value);
    previous = op;
  }
  const Operation* final_read = nullptr;
  for (const Operation* r : counter_reads_) {
    if (!final_read || r->invoke_ns >= final_read->invoke_ns) final_read = r;
  }
  if (final_read != nullptr) {
    const int64_t f = ToInt(final_read->result).value_or(0);
    if (f < max_written) {
      lost.Add("the final counter read " + std::to_string(f) +
                   ", below the acknowledged increment to " +
                   std::to_string(max_written),
               {final_read});
    }
    if (f > ok_count + incrs_info_ || (f != 0 && attempted.count(f) == 0)) {
      unexpected.Add("the final counter read " + std::to_string(f) + " with " +
                         std::to_string(ok_count) + " ok and " +
                         std::to_string(incrs_info_) + " unknown increments",
                     {final_read});
    }
    result_.figures.push_back({"final counter", f});
  } else if (!incrs_.empty()) {
    unknown_.push_back("no final read of the counter");
  }
  result_.figures.push_back(
      {"locks acquired", static_cast<int64_t>(locks_.size())});
  result_.figures.push_back({"increments ok", ok_count});
  result_.figures.push_back({"increments unknown", incrs_info_});
  tokens.Flush(history_, "non-increasing-token",
               "Fencing tokens not increasing between Lock calls that did "
               "not overlap",
               &result_.anomalies);
  stale.Flush(history_, "stale-token-write",
              "Increments committed under an older token after one under a "
              "newer token",
              &result_.anomalies);
  lost.Flush(history_, "lost-increment", "Lost increments of the counter",
             &result_.anomalies);
  unexpected.Flush(history_, "unexpected-counter-value",
                   "Counter values no increment wrote", &result_.anomalies);
}

void LeaseCheck::Finish() {
  int64_t reads = 0, node_reads = 0;
  for (const Read& r : reads_) (r.node.empty() ? reads : node_reads)++;
  std::vector<std::pair<std::string, int64_t>> figures = {
      {"leases", static_cast<int64_t>(leases_.size())},
      {"registrations", static_cast<int64_t>(registrations_.size())},
      {"linearizable reads", reads},
      {"ttl probes ok", probes_ok_},
      {"presence checks", presence_checks_},
      {"revokes ok", revokes_ok_},
      {"abandoned", abandoned_},
      {"keeper losses", lost_},
      {"keeper losses outside faults", lost_outside_faults_},
      {"nodes read at the end", static_cast<int64_t>(nodes_checked_.size())}};
  figures.insert(figures.end(), result_.figures.begin(), result_.figures.end());
  result_.figures = std::move(figures);
  result_.checks = {
      "(a) " + std::to_string(presence_checks_) +
          " times a linearizable read had to hold a key whose lease was "
          "certainly alive",
      "(b) every read after an acknowledged revoke, the final linearizable "
      "read and " +
          std::to_string(nodes_checked_.size()) +
          " nodes' serializable reads at or past its revision checked for "
          "keys of dead leases",
      "(c) " + std::to_string(locks_.size()) +
          " lock tokens and the counter's "
          "increments checked"};
  for (const std::string& u : unknown_) result_.checks.push_back(u);
  const std::string counts =
      std::to_string(leases_.size()) + " leases, " +
      std::to_string(registrations_.size()) + " registrations, " +
      std::to_string(presence_checks_) + " presence checks, " +
      std::to_string(revokes_ok_) + " revokes, " + std::to_string(lost_) +
      " keeper losses, " + std::to_string(locks_.size()) + " locks";
  if (!result_.anomalies.empty()) {
    result_.validity = Validity::kInvalid;
    result_.summary =
        "lease invalid: " + std::to_string(result_.anomalies.size()) +
        " anomalies; " + counts;
  } else if (!unknown_.empty()) {
    result_.validity = Validity::kUnknown;
    result_.summary = "lease unknown (" + unknown_.front() + "): " + counts;
  } else {
    result_.summary = "lease valid: " + counts;
  }
}

CheckResult LeaseCheck::Run() {
  Gather();
  CheckReads();
  CheckFinal();
  CheckLock();
  Finish();
  return std::move(result_);
}

}  // namespace

CheckResult CheckLease(const History& history) {
  StatusOr<std::vector<Operation>> paired = PairOperations(history);
  if (!paired.ok()) return MalformedHistory(paired.status().message());
  LeaseCheck check(history, paired.value());
  return check.Run();
}

}  // namespace raftkv::jepsen
