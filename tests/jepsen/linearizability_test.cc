// Tests of the register linearizability checker (jepsen/linearizability.h)
// on small hand-made histories, each with one expected verdict: concurrent
// overlapping ops, stale reads, lost cas, values never written,
// indeterminate ops that take effect late or never, failed ops observed,
// deletes, budgets, minimal slices and their rendering. Must never depend on
// timing.
#include "jepsen/linearizability.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace raftkv::jepsen {
namespace {

// Hand-made histories: each operation is one call with its interval in ms;
// Build() turns them into invoke/completion events in time order.
using Value = std::optional<std::string>;

// Completion time of an operation that never completed.
constexpr int64_t kNever = -1;

struct TestOp {
  int64_t process = 0;
  std::string f;
  std::string key;
  Value value, value2;  // invocation arguments
  Value result;         // an ok read's value
  EventType outcome = EventType::kOk;
  int64_t start_ms = 0;
  int64_t end_ms = kNever;
};

class HistoryBuilder {
 public:
  explicit HistoryBuilder(std::string key = "x") : key_(std::move(key)) {}

  HistoryBuilder& Key(std::string key) {
    key_ = std::move(key);
    return *this;
  }
  HistoryBuilder& Write(int64_t p, Value v, int64_t start, int64_t end,
                        EventType outcome = EventType::kOk) {
    return Add(
        {p, "write", key_, v, std::nullopt, std::nullopt, outcome, start, end});
  }
  HistoryBuilder& Read(int64_t p, Value result, int64_t start, int64_t end,
                       EventType outcome = EventType::kOk) {
    return Add({p, "read", key_, std::nullopt, std::nullopt, result, outcome,
                start, end});
  }
  HistoryBuilder& Cas(int64_t p, Value expected, Value next, int64_t start,
                      int64_t end, EventType outcome = EventType::kOk) {
    return Add(
        {p, "cas", key_, expected, next, std::nullopt, outcome, start, end});
  }
  HistoryBuilder& Delete(int64_t p, int64_t start, int64_t end,
                         EventType outcome = EventType::kOk) {
    return Add({p, "delete", key_, std::nullopt, std::nullopt, std::nullopt,
                outcome, start, end});
  }
  HistoryBuilder& Nemesis(std::string f, Value v, int64_t at) {
    nemesis_.push_back({std::move(f), std::move(v), at});
    return *this;
  }
  HistoryBuilder& Add(TestOp op) {
    ops_.push_back(std::move(op));
    return *this;
  }

  // Events sorted by time; at equal times, completions before invocations
  // (so back-to-back ops of one process pair up), then in call order.
  History Build() const {
    std::vector<std::tuple<int64_t, int, size_t, Event>> timed;
    size_t seq = 0;
    for (const TestOp& op : ops_) {
      Event e;
      e.process = op.process;
      e.f = op.f;
      e.key = op.key;
      e.value = op.value;
      e.value2 = op.value2;
      e.time_ns = op.start_ms * kNsPerMs;
      e.type = EventType::kInvoke;
      if (op.f == "read") e.value.reset();
      timed.emplace_back(e.time_ns, 1, seq++, e);
      if (op.end_ms == kNever) continue;
      e.type = op.outcome;
      e.time_ns = op.end_ms * kNsPerMs;
      if (op.f == "read") e.value = op.result;
      timed.emplace_back(e.time_ns, 0, seq++, e);
    }
    for (const auto& [f, v, at] : nemesis_) {
      Event e;
      e.process = kNemesis;
      e.type = EventType::kInfo;
      e.f = f;
      e.value = v;
      e.time_ns = at * kNsPerMs;
      timed.emplace_back(e.time_ns, 0, seq++, e);
    }
    std::sort(timed.begin(), timed.end(), [](const auto& a, const auto& b) {
      return std::tie(std::get<0>(a), std::get<1>(a), std::get<2>(a)) <
             std::tie(std::get<0>(b), std::get<1>(b), std::get<2>(b));
    });
    History h;
    for (const auto& t : timed) h.push_back(std::get<3>(t));
    return h;
  }

 private:
  static constexpr int64_t kNsPerMs = 1'000'000;
  std::string key_;
  std::vector<TestOp> ops_;
  std::vector<std::tuple<std::string, Value, int64_t>> nemesis_;
};

constexpr EventType kOk = EventType::kOk;
constexpr EventType kFail = EventType::kFail;
constexpr EventType kInfo = EventType::kInfo;

CheckResult Check(const History& h, LinearizabilityOptions options = {}) {
  return CheckRegisters(h, options);
}

std::string Explain(const CheckResult& r) {
  std::string s = r.summary + "\n";
  for (const Anomaly& a : r.anomalies) {
    s += a.kind + " " + a.key + ": " + a.description + "\n" + a.rendering;
  }
  return s;
}

bool SliceHas(const Anomaly& a, const std::string& f, EventType type,
              int64_t time_ms) {
  return std::any_of(a.slice.begin(), a.slice.end(), [&](const Event& e) {
    return e.f == f && e.type == type && e.time_ns == time_ms * 1'000'000;
  });
}

TEST(LinearizabilityTest, EmptyHistoryIsValid) {
  CheckResult r = Check({});
  EXPECT_EQ(r.validity, Validity::kValid);
  EXPECT_EQ(r.ops, 0u);
}

TEST(LinearizabilityTest, ConcurrentOverlappingOpsLinearize) {
  // w1 [0,10] and w2 [5,15] overlap; read->1 [12,20] and read->2 [16,25]
  // overlap both. Only w2, w1, read 1 (before 15), ... fails; the order
  // w1, read 1, w2, read 2 (w2 as late as 15) explains everything.
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Write(1, "2", 5, 15)
                  .Read(2, "1", 12, 20)
                  .Read(3, "2", 16, 25)
                  .Build();
  CheckResult r = Check(h);
  EXPECT_EQ(r.validity, Validity::kValid) << Explain(r);
  EXPECT_TRUE(r.anomalies.empty());
  EXPECT_EQ(r.ops, 4u);
  EXPECT_EQ(r.ok, 4u);
}

TEST(LinearizabilityTest, ReadsMustAgreeOnOneOrder) {
  // Two writes overlap, but two later sequential reads see 1 then 2 and a
  // third sees 1 again: no single order of the writes explains that.
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Write(1, "2", 0, 10)
                  .Read(2, "1", 20, 30)
                  .Read(2, "2", 40, 50)
                  .Read(2, "1", 60, 70)
                  .Build();
  CheckResult r = Check(h);
  EXPECT_EQ(r.validity, Validity::kInvalid) << Explain(r);
}

TEST(LinearizabilityTest, StaleReadIsInvalid) {
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Write(1, "2", 20, 30)
                  .Read(2, "1", 40, 50)
                  .Build();
  CheckResult r = Check(h);
  ASSERT_EQ(r.validity, Validity::kInvalid) << Explain(r);
  ASSERT_EQ(r.anomalies.size(), 1u);
  const Anomaly& a = r.anomalies[0];
  EXPECT_EQ(a.kind, "nonlinearizable");
  EXPECT_EQ(a.key, "x");
  EXPECT_NE(a.description.find("stale"), std::string::npos) << a.description;
  EXPECT_TRUE(SliceHas(a, "read", kOk, 50)) << Explain(r);
  EXPECT_TRUE(SliceHas(a, "write", kOk, 30)) << Explain(r);
  EXPECT_NE(r.summary.find("not linearizable: 1 of 1 keys"), std::string::npos)
      << r.summary;
}

TEST(LinearizabilityTest, LostCasIsInvalid) {
  // The cas 1 -> 2 was acknowledged, yet a later read shows 1.
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Cas(1, "1", "2", 20, 30)
                  .Read(2, "1", 40, 50)
                  .Build();
  CheckResult r = Check(h);
  ASSERT_EQ(r.validity, Validity::kInvalid) << Explain(r);
  ASSERT_EQ(r.anomalies.size(), 1u);
  EXPECT_TRUE(SliceHas(r.anomalies[0], "cas", kOk, 30)) << Explain(r);
  EXPECT_NE(r.anomalies[0].description.find("cas \"1\" -> \"2\""),
            std::string::npos)
      << r.anomalies[0].description;
}

TEST(LinearizabilityTest, CasAgainstAStaleValueIsInvalid) {
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Write(0, "2", 20, 30)
                  .Cas(1, "1", "3", 40, 50)
                  .Build();
  EXPECT_EQ(Check(h).validity, Validity::kInvalid);
}

TEST(LinearizabilityTest, ReadOfANeverWrittenValueIsInvalid) {
  History h = HistoryBuilder().Write(0, "1", 0, 10).Read(1, "7", 5, 15).Build();
  CheckResult r = Check(h);
  ASSERT_EQ(r.validity, Validity::kInvalid) << Explain(r);
  ASSERT_EQ(r.anomalies.size(), 1u);
  EXPECT_NE(r.anomalies[0].description.find("ever wrote"), std::string::npos)
      << r.anomalies[0].description;
}

TEST(LinearizabilityTest, ReadOfAValueBeforeItsWriteBeganIsInvalid) {
  History h =
      HistoryBuilder().Read(1, "1", 0, 10).Write(0, "1", 20, 30).Build();
  EXPECT_EQ(Check(h).validity, Validity::kInvalid);
}

TEST(LinearizabilityTest, IndeterminateWriteTakingEffectLateIsValid) {
  // w2 timed out (info) at 30 ms but took effect between 50 and 60 ms.
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Write(1, "2", 20, 30, kInfo)
                  .Read(2, "1", 40, 50)
                  .Read(2, "2", 60, 70)
                  .Build();
  CheckResult r = Check(h);
  EXPECT_EQ(r.validity, Validity::kValid) << Explain(r);
  EXPECT_EQ(r.info, 1u);
  EXPECT_EQ(r.ok, 3u);
}

TEST(LinearizabilityTest, IndeterminateWriteThatNeverTakesEffectIsValid) {
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Write(1, "2", 20, 30, kInfo)
                  .Write(3, "3", 20, kNever)  // never completed at all
                  .Read(2, "1", 40, 50)
                  .Read(2, "1", 60, 70)
                  .Build();
  CheckResult r = Check(h);
  EXPECT_EQ(r.validity, Validity::kValid) << Explain(r);
  EXPECT_EQ(r.info, 2u);
}

TEST(LinearizabilityTest, IndeterminateWriteCannotTakeEffectTwice) {
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Write(1, "2", 20, 30, kInfo)
                  .Read(2, "2", 40, 50)
                  .Write(0, "3", 60, 70)
                  .Read(2, "2", 80, 90)
                  .Build();
  EXPECT_EQ(Check(h).validity, Validity::kInvalid);
}

TEST(LinearizabilityTest, IndeterminateWriteCannotTakeEffectBeforeInvoke) {
  History h =
      HistoryBuilder().Read(2, "2", 0, 10).Write(1, "2", 20, 30, kInfo).Build();
  EXPECT_EQ(Check(h).validity, Validity::kInvalid);
}

TEST(LinearizabilityTest, IndeterminateCasMayTakeEffect) {
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Cas(1, "1", "2", 20, 30, kInfo)
                  .Read(2, "2", 40, 50)
                  .Build();
  EXPECT_EQ(Check(h).validity, Validity::kValid);
}

TEST(LinearizabilityTest, FailedWriteObservedIsInvalid) {
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Write(1, "2", 20, 30, kFail)
                  .Read(2, "2", 40, 50)
                  .Build();
  CheckResult r = Check(h);
  ASSERT_EQ(r.validity, Validity::kInvalid) << Explain(r);
  EXPECT_EQ(r.fail, 1u);
  ASSERT_EQ(r.anomalies.size(), 1u);
  EXPECT_NE(r.anomalies[0].description.find("failed"), std::string::npos)
      << r.anomalies[0].description;
  EXPECT_TRUE(SliceHas(r.anomalies[0], "write", kFail, 30)) << Explain(r);
}

TEST(LinearizabilityTest, FailedCasObservedIsInvalid) {
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Cas(1, "1", "2", 20, 30, kFail)
                  .Read(2, "2", 40, 50)
                  .Build();
  EXPECT_EQ(Check(h).validity, Validity::kInvalid);
}

TEST(LinearizabilityTest, DeleteThenReadNullIsValid) {
  History h = HistoryBuilder()
                  .Read(2, std::nullopt, 0, 5)
                  .Write(0, "1", 10, 20)
                  .Read(2, "1", 25, 30)
                  .Delete(1, 40, 50)
                  .Read(2, std::nullopt, 60, 70)
                  .Write(0, "1", 80, 90)
                  .Read(2, "1", 100, 110)
                  .Build();
  CheckResult r = Check(h);
  EXPECT_EQ(r.validity, Validity::kValid) << Explain(r);
}

TEST(LinearizabilityTest, ReadOfDeletedValueIsInvalid) {
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Delete(1, 20, 30)
                  .Read(2, "1", 40, 50)
                  .Build();
  EXPECT_EQ(Check(h).validity, Validity::kInvalid);
}

TEST(LinearizabilityTest, NullReadAfterWriteIsStale) {
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Read(2, std::nullopt, 20, 30)
                  .Build();
  CheckResult r = Check(h);
  ASSERT_EQ(r.validity, Validity::kInvalid);
  EXPECT_NE(r.anomalies[0].description.find("initial absent state"),
            std::string::npos)
      << r.anomalies[0].description;
}

TEST(LinearizabilityTest, KeysAreIndependent) {
  // Interleaved on the same processes, "x" is fine and "y" has a stale read;
  // a single register over both keys would not be the model.
  History h = HistoryBuilder("x")
                  .Write(0, "1", 0, 10)
                  .Key("y")
                  .Write(1, "1", 0, 10)
                  .Write(1, "2", 20, 30)
                  .Key("x")
                  .Read(2, "1", 40, 50)
                  .Key("y")
                  .Read(2, "1", 60, 70)
                  .Build();
  CheckResult r = Check(h);
  ASSERT_EQ(r.validity, Validity::kInvalid) << Explain(r);
  ASSERT_EQ(r.anomalies.size(), 1u);
  EXPECT_EQ(r.anomalies[0].key, "y");
  EXPECT_NE(r.summary.find("1 of 2 keys"), std::string::npos) << r.summary;
  for (const Event& e : r.anomalies[0].slice) {
    if (!e.is_nemesis()) {
      EXPECT_EQ(e.key, "y");
    }
  }
}

TEST(LinearizabilityTest, SliceIsTheShortestFailingPrefixNeighbourhood) {
  // Forty good operations, then a stale read, then forty more.
  HistoryBuilder b;
  int64_t t = 0;
  for (int i = 0; i < 20; ++i, t += 40) {
    b.Write(0, std::to_string(i), t, t + 10)
        .Read(1, std::to_string(i), t + 15, t + 25);
  }
  b.Write(0, "a", t, t + 10).Write(0, "b", t + 20, t + 30);
  b.Read(1, "a", t + 40, t + 50);  // stale: the culprit
  int64_t culprit_end = t + 50;
  t += 60;
  for (int i = 0; i < 20; ++i, t += 40) {
    b.Write(0, "z" + std::to_string(i), t, t + 10)
        .Read(1, "z" + std::to_string(i), t + 15, t + 25);
  }
  CheckResult r = Check(b.Build());
  ASSERT_EQ(r.validity, Validity::kInvalid) << Explain(r);
  ASSERT_EQ(r.anomalies.size(), 1u);
  const Anomaly& a = r.anomalies[0];
  EXPECT_TRUE(SliceHas(a, "read", kOk, culprit_end)) << Explain(r);
  EXPECT_LE(a.slice.size(), 6u) << Explain(r);
  for (const Event& e : a.slice) {
    EXPECT_GE(e.time_ns, (culprit_end - 50) * 1'000'000) << Explain(r);
    EXPECT_LE(e.time_ns, culprit_end * 1'000'000) << Explain(r);
  }
  EXPECT_NE(a.description.find("(43 operations)"), std::string::npos)
      << a.description;
}

TEST(LinearizabilityTest, SliceIncludesConcurrentOpsAndNemesisEvents) {
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Write(0, "2", 20, 30)
                  .Nemesis("partition", "isolate 1", 35)
                  .Read(1, "1", 40, 60)
                  .Write(3, "9", 45, 55)
                  .Build();
  CheckResult r = Check(h);
  ASSERT_EQ(r.validity, Validity::kInvalid) << Explain(r);
  const Anomaly& a = r.anomalies[0];
  EXPECT_TRUE(SliceHas(a, "write", kOk, 55)) << Explain(r);
  EXPECT_TRUE(SliceHas(a, "partition", kInfo, 35)) << Explain(r);
  // The rendering is a timeline: one row per op, the culprit flagged.
  EXPECT_NE(a.rendering.find("* p1"), std::string::npos) << a.rendering;
  EXPECT_NE(a.rendering.find("read -> \"1\""), std::string::npos)
      << a.rendering;
  EXPECT_NE(a.rendering.find("nemesis"), std::string::npos) << a.rendering;
  EXPECT_NE(a.rendering.find("^"), std::string::npos) << a.rendering;
}

TEST(LinearizabilityTest, StateBudgetGivesUnknownNeverValid) {
  HistoryBuilder b;
  // Eight concurrent writes: the search must order them to end on "7".
  for (int i = 0; i < 8; ++i) b.Write(i, std::to_string(i), 0, 100);
  b.Read(10, "7", 200, 210);
  History h = b.Build();
  ASSERT_EQ(Check(h).validity, Validity::kValid);
  LinearizabilityOptions tight;
  tight.max_states_per_key = 3;
  CheckResult r = Check(h, tight);
  EXPECT_EQ(r.validity, Validity::kUnknown) << Explain(r);
  EXPECT_NE(r.summary.find("budget"), std::string::npos) << r.summary;
}

TEST(LinearizabilityTest, FailedCasMeansMismatchOnlyWhenAsked) {
  // The register is certainly "1" while the cas 1 -> 2 runs, yet it failed.
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Cas(1, "1", "2", 20, 30, kFail)
                  .Read(2, "1", 40, 50)
                  .Build();
  EXPECT_EQ(Check(h).validity, Validity::kValid);
  LinearizabilityOptions strict;
  strict.cas_fail_means_mismatch = true;
  EXPECT_EQ(Check(h, strict).validity, Validity::kInvalid);
  History ok = HistoryBuilder()
                   .Write(0, "3", 0, 10)
                   .Cas(1, "1", "2", 20, 30, kFail)
                   .Build();
  EXPECT_EQ(Check(ok, strict).validity, Validity::kValid);
}

TEST(LinearizabilityTest, IndeterminateWriteCanExplainAFailedCas) {
  // Only the info write of "2" (read by nobody) can make the cas fail.
  LinearizabilityOptions strict;
  strict.cas_fail_means_mismatch = true;
  History h = HistoryBuilder()
                  .Write(0, "1", 0, 10)
                  .Write(1, "2", 20, kNever, kInfo)
                  .Cas(2, "1", "3", 40, 50, kFail)
                  .Build();
  EXPECT_EQ(Check(h, strict).validity, Validity::kValid);
  History before = HistoryBuilder()
                       .Write(0, "1", 0, 10)
                       .Cas(2, "1", "3", 40, 50, kFail)
                       .Write(1, "2", 60, kNever, kInfo)
                       .Build();
  EXPECT_EQ(Check(before, strict).validity, Validity::kInvalid);
}

TEST(LinearizabilityTest, MalformedHistoryIsUnknown) {
  History h = HistoryBuilder().Write(0, "1", 0, 10).Build();
  h.push_back(h.back());  // a second completion without invocation
  CheckResult r = Check(h);
  EXPECT_EQ(r.validity, Validity::kUnknown);
  ASSERT_EQ(r.anomalies.size(), 1u);
  EXPECT_EQ(r.anomalies[0].kind, "malformed-history");
}

TEST(LinearizabilityTest, UnknownOperationsGiveUnknown) {
  HistoryBuilder b;
  b.Write(0, "1", 0, 10);
  b.Add({1, "increment", "x", "1", std::nullopt, std::nullopt, kOk, 20, 30});
  CheckResult r = Check(b.Build());
  EXPECT_EQ(r.validity, Validity::kUnknown) << Explain(r);
  EXPECT_NE(r.summary.find("increment"), std::string::npos) << r.summary;
}

TEST(LinearizabilityTest, SetKeysAreLeftToTheSetChecker) {
  HistoryBuilder b("s");
  b.Add({0, "add", "s", "1", std::nullopt, std::nullopt, kOk, 0, 10});
  b.Read(1, "1", 20, 30);
  b.Key("x").Write(0, "1", 40, 50).Read(1, "1", 60, 70);
  CheckResult r = Check(b.Build());
  EXPECT_EQ(r.validity, Validity::kValid) << Explain(r);
  EXPECT_NE(r.summary.find("1 keys"), std::string::npos) << r.summary;
}

TEST(LinearizabilityTest, PairOperationsRejectsOverlappingInvocations) {
  History h =
      HistoryBuilder().Write(0, "1", 0, 10).Write(0, "2", 5, 20).Build();
  StatusOr<std::vector<Operation>> ops = PairOperations(h);
  ASSERT_FALSE(ops.ok());
  EXPECT_EQ(ops.status().code(), Status::Code::kInvalidArgument);
}

// The definition, by exhaustive search and without memo or pruning: some
// order of all ok ops and any subset of the indeterminate ones, in which an
// op comes after every op that completed before it was invoked, is legal
// for a register.
class BruteForce {
 public:
  BruteForce(const std::vector<Operation>& ops, bool cas_fail_is_mismatch) {
    for (const Operation& op : ops) {
      bool ok = op.outcome == EventType::kOk;
      if (op.f == "read" && !ok) continue;
      bool mismatch = op.outcome == EventType::kFail && op.f == "cas" &&
                      cas_fail_is_mismatch;
      if (op.outcome == EventType::kFail && !mismatch) continue;
      ops_.push_back({&op, ok || mismatch, mismatch,
                      ok || mismatch ? op.complete_ns : INT64_MAX});
    }
  }
  bool Linearizable() {
    std::vector<bool> used(ops_.size(), false);
    return Dfs(&used, std::nullopt);
  }

 private:
  struct Op {
    const Operation* op;
    bool required, mismatch;
    int64_t ret;
  };
  bool Dfs(std::vector<bool>* used, const Value& state) {
    bool done = true;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (!(*used)[i] && ops_[i].required) done = false;
    }
    if (done) return true;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if ((*used)[i] || !MayGoNext(*used, i)) continue;
      std::optional<Value> next = Apply(ops_[i], state);
      if (!next) continue;
      (*used)[i] = true;
      bool found = Dfs(used, *next);
      (*used)[i] = false;
      if (found) return true;
    }
    return false;
  }
  bool MayGoNext(const std::vector<bool>& used, size_t i) const {
    for (size_t j = 0; j < ops_.size(); ++j) {
      if (!used[j] && j != i && ops_[j].ret < ops_[i].op->invoke_ns) {
        return false;
      }
    }
    return true;
  }
  static std::optional<Value> Apply(const Op& o, const Value& state) {
    const Operation& op = *o.op;
    if (op.f == "read") {
      if (state != op.result) return std::nullopt;
      return state;
    }
    if (op.f == "write") return op.value;
    if (op.f == "delete") return Value();
    if (o.mismatch) {
      if (state == op.value) return std::nullopt;
      return state;
    }
    if (state == op.value) return op.value2;
    if (o.required) return std::nullopt;
    return state;  // an indeterminate cas that found another value
  }
  std::vector<Op> ops_;
};

TEST(LinearizabilityTest, AgreesWithBruteForceOnSmallRandomHistories) {
  std::mt19937_64 rng(20261123);
  auto pick = [&](int n) {
    return static_cast<int>(std::uniform_int_distribution<int>(0, n - 1)(rng));
  };
  const Value kValues[] = {std::nullopt, "1", "2", "3"};
  int verdicts[2] = {0, 0};
  for (int round = 0; round < 4000; ++round) {
    HistoryBuilder b;
    int n = 1 + pick(7);
    for (int i = 0; i < n; ++i) {
      int64_t start = pick(60), end = start + 1 + pick(30);
      int outcome_dice = pick(10);
      EventType outcome = outcome_dice < 7   ? kOk
                          : outcome_dice < 9 ? kInfo
                                             : kFail;
      if (outcome == kInfo && pick(2) == 0) end = kNever;
      Value v = kValues[1 + pick(3)];
      switch (pick(4)) {
        case 0:
          b.Read(i, kValues[pick(4)], start, end, outcome);
          break;
        case 1:
          b.Write(i, v, start, end, outcome);
          break;
        case 2:
          b.Cas(i, kValues[pick(4)], v, start, end, outcome);
          break;
        default:
          b.Delete(i, start, end, outcome);
      }
    }
    History h = b.Build();
    StatusOr<std::vector<Operation>> ops = PairOperations(h);
    ASSERT_TRUE(ops.ok()) << ops.status().ToString();
    for (bool mismatch : {false, true}) {
      LinearizabilityOptions options;
      options.cas_fail_means_mismatch = mismatch;
      bool expected = BruteForce(ops.value(), mismatch).Linearizable();
      CheckResult r = Check(h, options);
      ASSERT_EQ(r.validity, expected ? Validity::kValid : Validity::kInvalid)
          << "round " << round << " mismatch " << mismatch << "\n"
          << Explain(r) << RenderTimeline(h);
      ++verdicts[expected ? 1 : 0];
    }
  }
  // Both verdicts are common, so the comparison means something.
  EXPECT_GT(verdicts[0], 1000);
  EXPECT_GT(verdicts[1], 1000);
}

TEST(LinearizabilityTest, ValidityNames) {
  EXPECT_STREQ(ValidityName(Validity::kValid), "true");
  EXPECT_STREQ(ValidityName(Validity::kInvalid), "false");
  EXPECT_STREQ(ValidityName(Validity::kUnknown), "unknown");
}

}  // namespace
}  // namespace raftkv::jepsen
