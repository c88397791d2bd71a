// Benchmark-style tests of the register linearizability checker: a
// generated history the size of a real run (60 s, 10 clients, ~200 ops/s,
// many keys, some indeterminate ops), produced by simulating linearizable
// registers from a fixed seed, must be checked valid, and become invalid
// when one read is corrupted: to a value never written (refuted before any
// search), and to a stale value, written before the read and overwritten
// (which only the full search can refute). Prints the time taken; never
// asserts on it.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "jepsen/linearizability.h"

namespace raftkv::jepsen {
namespace {

struct WorkloadShape {
  uint64_t seed = 1;
  int clients = 10;
  int64_t duration_ms = 60'000;
  int64_t mean_cycle_ms = 40;  // per client, plus info timeouts: ~200 ops/s
  int keys = 40;
  int value_range = 5;      // values "0".."4", as in Jepsen's cas-register
  double info_rate = 0.02;  // indeterminate ops (timeouts)
  int64_t info_timeout_ms = 500;
};

// One simulated operation before its results are known.
struct SimOp {
  int64_t process;
  std::string f, key;
  std::optional<std::string> a, b, result;
  int64_t invoke_ns, complete_ns, effect_ns;  // effect: linearization point
  bool info, takes_effect;
  EventType outcome = EventType::kOk;
};

int64_t Uniform(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

std::vector<SimOp> GenerateOps(const WorkloadShape& shape,
                               std::mt19937_64& rng) {
  constexpr int64_t kMs = 1'000'000;
  std::vector<SimOp> ops;
  for (int c = 0; c < shape.clients; ++c) {
    int64_t process = c;
    int64_t t = Uniform(rng, 0, shape.mean_cycle_ms * kMs);
    while (t < shape.duration_ms * kMs) {
      SimOp op;
      op.process = process;
      op.key = "r" + std::to_string(Uniform(rng, 0, shape.keys - 1));
      auto value = [&] {
        return std::to_string(Uniform(rng, 0, shape.value_range - 1));
      };
      int64_t dice = Uniform(rng, 0, 99);
      if (dice < 45) {
        op.f = "read";
      } else if (dice < 75) {
        op.f = "write";
        op.a = value();
      } else if (dice < 90) {
        op.f = "cas";
        op.a = value();
        op.b = value();
      } else {
        op.f = "delete";
      }
      int64_t latency = Uniform(rng, 1 * kMs, 40 * kMs);
      op.invoke_ns = t;
      op.info = std::bernoulli_distribution(shape.info_rate)(rng);
      if (op.info) {
        // Timed out; it may still take effect, even after the timeout.
        op.complete_ns = t + shape.info_timeout_ms * kMs;
        op.takes_effect = std::bernoulli_distribution(0.5)(rng);
        op.effect_ns = t + Uniform(rng, 1, 3 * shape.info_timeout_ms * kMs);
        process += shape.clients;  // a crashed process is never reused
      } else {
        op.complete_ns = t + latency;
        op.takes_effect = true;
        op.effect_ns = Uniform(rng, t + 1, t + latency - 1);
      }
      ops.push_back(op);
      t = op.complete_ns +
          Uniform(rng, 1, 2 * (shape.mean_cycle_ms - 20) * kMs);
    }
  }
  return ops;
}

// Applies the operations to one register per key at their linearization
// points, which fixes every result; then lays out the events in time order.
History Simulate(const WorkloadShape& shape) {
  std::mt19937_64 rng(shape.seed);
  std::vector<SimOp> ops = GenerateOps(shape, rng);
  std::vector<SimOp*> by_effect;
  for (SimOp& op : ops) by_effect.push_back(&op);
  std::sort(by_effect.begin(), by_effect.end(),
            [](const SimOp* x, const SimOp* y) {
              return x->effect_ns < y->effect_ns;
            });
  std::map<std::string, std::optional<std::string>> registers;
  for (SimOp* op : by_effect) {
    if (!op->takes_effect) continue;
    std::optional<std::string>& reg = registers[op->key];
    if (op->f == "read") {
      op->result = reg;
    } else if (op->f == "write") {
      reg = op->a;
    } else if (op->f == "delete") {
      reg.reset();
    } else if (reg == op->a) {
      reg = op->b;
    } else {
      op->outcome = EventType::kFail;  // cas: comparison failed
    }
  }
  struct Timed {
    int64_t time;
    size_t seq;
    Event event;
  };
  std::vector<Timed> events;
  for (const SimOp& op : ops) {
    Event e;
    e.process = op.process;
    e.f = op.f;
    e.key = op.key;
    e.value = op.a;
    e.value2 = op.b;
    e.type = EventType::kInvoke;
    e.time_ns = op.invoke_ns;
    events.push_back({e.time_ns, events.size(), e});
    e.type = op.info ? EventType::kInfo : op.outcome;
    e.time_ns = op.complete_ns;
    if (op.f == "read") e.value = op.info ? std::nullopt : op.result;
    events.push_back({e.time_ns, events.size(), e});
  }
  std::sort(events.begin(), events.end(), [](const Timed& x, const Timed& y) {
    return x.time != y.time ? x.time < y.time : x.seq < y.seq;
  });
  History h;
  for (const Timed& t : events) h.push_back(t.event);
  return h;
}

CheckResult TimedCheck(const History& h, const char* name,
                       LinearizabilityOptions options = {}) {
  auto start = std::chrono::steady_clock::now();
  CheckResult r = CheckRegisters(h, options);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf("[ %s ] %zu events: %s (%.3f s)\n", name, h.size(),
              r.summary.c_str(), secs);
  return r;
}

TEST(LinearizabilityBenchTest, SixtySecondsTenClientsIsValid) {
  WorkloadShape shape;
  History h = Simulate(shape);
  CheckResult r = TimedCheck(h, "60s x 10 clients, 40 keys, values 0..4");
  EXPECT_EQ(r.validity, Validity::kValid) << r.summary;
  EXPECT_GT(r.ops, 10'000u);
  EXPECT_GT(r.info, 100u);
  EXPECT_GT(r.fail, 100u);
}

TEST(LinearizabilityBenchTest, FailedCasAsMismatchIsValid) {
  // The runner's setting: a failed cas means the comparison failed, which
  // the simulated registers honour.
  LinearizabilityOptions options;
  options.cas_fail_means_mismatch = true;
  WorkloadShape shape;
  History h = Simulate(shape);
  CheckResult r =
      TimedCheck(h, "60s x 10 clients, failed cas = mismatch", options);
  EXPECT_EQ(r.validity, Validity::kValid) << r.summary;
  shape.keys = 1;
  shape.value_range = 1'000'000;
  shape.info_rate = 0.05;
  r = TimedCheck(Simulate(shape), "... 1 key, unique values", options);
  EXPECT_EQ(r.validity, Validity::kValid) << r.summary;
}

TEST(LinearizabilityBenchTest, TwoHotKeysAreValid) {
  WorkloadShape shape;
  shape.seed = 2;
  shape.keys = 2;  // ~5000 ops and ~25 pending info ops at a time per key
  shape.info_rate = 0.03;
  History h = Simulate(shape);
  CheckResult r = TimedCheck(h, "60s x 10 clients, 2 keys, values 0..4");
  EXPECT_EQ(r.validity, Validity::kValid) << r.summary;
}

TEST(LinearizabilityBenchTest, OneKeyWithUniqueValuesIsValid) {
  WorkloadShape shape;
  shape.seed = 2;
  shape.keys = 1;
  shape.value_range = 1'000'000;
  shape.info_rate = 0.05;
  History h = Simulate(shape);
  CheckResult r = TimedCheck(h, "60s x 10 clients, 1 key, unique values");
  EXPECT_EQ(r.validity, Validity::kValid) << r.summary;
}

TEST(LinearizabilityBenchTest, OneCorruptedReadIsFoundWithItsKey) {
  WorkloadShape shape;
  shape.seed = 3;
  History h = Simulate(shape);
  // Corrupt an ok read in the middle of the run to a value never written.
  size_t target = h.size() / 2;
  while (h[target].type != EventType::kOk || h[target].f != "read") ++target;
  h[target].value = "never-written";
  CheckResult r = TimedCheck(h, "60s x 10 clients, one corrupted read");
  ASSERT_EQ(r.validity, Validity::kInvalid) << r.summary;
  ASSERT_EQ(r.anomalies.size(), 1u);
  const Anomaly& a = r.anomalies[0];
  EXPECT_EQ(a.key, h[target].key);
  EXPECT_TRUE(std::any_of(a.slice.begin(), a.slice.end(), [&](const Event& e) {
    return e.time_ns == h[target].time_ns && e.process == h[target].process;
  })) << a.rendering;
  EXPECT_LT(a.slice.size(), 40u) << a.rendering;
  std::printf("%s\n%s", a.description.c_str(), a.rendering.c_str());
}

// Whether `op` writes `value` (write, or the new value of a cas), whatever
// its outcome.
bool Writes(const Operation& op, const std::string& value) {
  return (op.f == "write" && op.value == value) ||
         (op.f == "cas" && op.value2 == value);
}

// An ok write of a value no other operation of its key ever writes.
bool IsOnlyWriteOfItsValue(const std::vector<Operation>& ops,
                           const Operation& w) {
  if (w.f != "write" || w.outcome != EventType::kOk) return false;
  int writers = 0;
  for (const Operation& op : ops) {
    writers += op.key == w.key && Writes(op, *w.value);
  }
  return writers == 1;
}

// For the ok read `read`: the value of an ok write that completed before an
// ok write or cas (`newer`) began, which itself completed before the read
// began, and that no other operation writes. Reading it is a stale read.
// The latest such pair (the value most recently overwritten); nullopt if
// there is none.
std::optional<std::string> StaleValueFor(const std::vector<Operation>& ops,
                                         const Operation& read) {
  for (auto newer = ops.rbegin(); newer != ops.rend(); ++newer) {
    if (newer->key != read.key || newer->outcome != EventType::kOk ||
        (newer->f != "write" && newer->f != "cas") ||
        newer->complete_ns >= read.invoke_ns) {
      continue;
    }
    for (auto older = ops.rbegin(); older != ops.rend(); ++older) {
      if (older->key == read.key && older->complete_ns < newer->invoke_ns &&
          IsOnlyWriteOfItsValue(ops, *older) && older->value != read.result &&
          !Writes(*newer, *older->value)) {
        return older->value;
      }
    }
  }
  return std::nullopt;
}

// Corrupts the first ok read after the middle of `h` that StaleValueFor
// finds a stale value for: it now returns that value. Returns the index of
// the read's completion event, or nullopt.
std::optional<size_t> MakeOneReadStale(History* h) {
  StatusOr<std::vector<Operation>> ops = PairOperations(*h);
  if (!ops.ok()) return std::nullopt;
  const int64_t middle = h->back().time_ns / 2;
  for (const Operation& read : *ops) {
    if (read.f != "read" || read.outcome != EventType::kOk ||
        read.invoke_ns < middle) {
      continue;
    }
    std::optional<std::string> stale = StaleValueFor(*ops, read);
    if (!stale) continue;
    (*h)[read.complete_index].value = *stale;
    return read.complete_index;
  }
  return std::nullopt;
}

TEST(LinearizabilityBenchTest, OneStaleReadInTwoHotKeysIsFoundByTheSearch) {
  // Two keys of 60 s x 10 clients: about 6,000 operations in each search,
  // unique values, 2% of them info (pending to the end). The stale value was
  // written by an operation invoked long before the read, so the quick
  // refutation (a value nobody wrote) cannot see it: only the search can.
  // (One key of 9,000 operations with 5% info took 50 s to refute, and one
  // of 12,000 with 2% info hit the search budget: see docs/jepsen.md.)
  WorkloadShape shape;
  shape.seed = 4;
  shape.keys = 2;
  shape.value_range = 1'000'000;
  shape.info_rate = 0.02;
  History h = Simulate(shape);
  ASSERT_EQ(CheckRegisters(h, {}).validity, Validity::kValid);
  std::optional<size_t> target = MakeOneReadStale(&h);
  ASSERT_TRUE(target.has_value()) << "no read to make stale";
  CheckResult r = TimedCheck(h, "60s x 10 clients, 2 keys, one stale read");
  ASSERT_EQ(r.validity, Validity::kInvalid) << r.summary;
  ASSERT_EQ(r.anomalies.size(), 1u);
  const Anomaly& a = r.anomalies[0];
  EXPECT_NE(a.description.find("a stale value"), std::string::npos)
      << a.description;
  EXPECT_TRUE(std::any_of(a.slice.begin(), a.slice.end(), [&](const Event& e) {
    return e.time_ns == h[*target].time_ns && e.process == h[*target].process;
  })) << a.rendering;
  std::printf("%s\n%s", a.description.c_str(), a.rendering.c_str());
}

TEST(LinearizabilityBenchTest, OneStaleReadAmongManyKeysIsFoundWithItsKey) {
  WorkloadShape shape;
  shape.seed = 5;
  shape.value_range = 1'000'000;
  History h = Simulate(shape);
  ASSERT_EQ(CheckRegisters(h, {}).validity, Validity::kValid);
  std::optional<size_t> target = MakeOneReadStale(&h);
  ASSERT_TRUE(target.has_value()) << "no read to make stale";
  CheckResult r = TimedCheck(h, "60s x 10 clients, 40 keys, one stale read");
  ASSERT_EQ(r.validity, Validity::kInvalid) << r.summary;
  ASSERT_EQ(r.anomalies.size(), 1u);
  EXPECT_EQ(r.anomalies[0].key, h[*target].key);
  EXPECT_NE(r.anomalies[0].description.find("a stale value"), std::string::npos)
      << r.anomalies[0].description;
}

}  // namespace
}  // namespace raftkv::jepsen
