// Tests of the set workload checker (jepsen/set_checker.h) on hand-made
// histories: lost, unexpected, duplicated, failed-add-present and recovered
// elements, each with its exact count, and the cases that must not count as
// anomalies. A failed add that is read is judged as the register checker
// judges a read of a failed write: invalid (both tested here). Hand-made
// histories only: must never depend on timing or a real cluster.
#include "jepsen/set_checker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "jepsen/linearizability.h"

namespace raftkv::jepsen {
namespace {

// Appends invoke/completion pairs in call order; calls must be made in time
// order of their events (the tests keep each op's events adjacent unless
// they say otherwise).
class SetHistory {
 public:
  SetHistory& Add(int64_t p, const std::string& set, const std::string& e,
                  EventType outcome, int64_t start, int64_t end) {
    Push(p, EventType::kInvoke, "add", set, e, start);
    if (end >= 0) Push(p, outcome, "add", set, e, end);
    return *this;
  }
  SetHistory& Read(int64_t p, const std::string& set,
                   std::optional<std::string> elements, int64_t start,
                   int64_t end) {
    Push(p, EventType::kInvoke, "read", set, std::nullopt, start);
    Push(p, EventType::kOk, "read", set, std::move(elements), end);
    return *this;
  }
  SetHistory& Invoke(int64_t p, const std::string& f, const std::string& set,
                     std::optional<std::string> v, int64_t at) {
    return Push(p, EventType::kInvoke, f, set, std::move(v), at);
  }
  SetHistory& Complete(int64_t p, EventType type, const std::string& f,
                       const std::string& set, std::optional<std::string> v,
                       int64_t at) {
    return Push(p, type, f, set, std::move(v), at);
  }
  const History& history() const { return h_; }

 private:
  SetHistory& Push(int64_t p, EventType type, const std::string& f,
                   const std::string& set, std::optional<std::string> v,
                   int64_t at_ms) {
    Event e;
    e.process = p;
    e.type = type;
    e.f = f;
    e.key = set;
    e.value = std::move(v);
    e.time_ns = at_ms * 1'000'000;
    h_.push_back(e);
    return *this;
  }
  History h_;
};

constexpr EventType kOk = EventType::kOk;
constexpr EventType kFail = EventType::kFail;
constexpr EventType kInfo = EventType::kInfo;

SetTally OnlyTally(const History& h) {
  StatusOr<std::vector<SetTally>> t = TallySets(h);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->size(), 1u);
  return t->front();
}

const Anomaly* FindAnomaly(const CheckResult& r, const std::string& kind) {
  for (const Anomaly& a : r.anomalies) {
    if (a.kind == kind) return &a;
  }
  return nullptr;
}

using Elements = std::vector<std::string>;

TEST(SetCheckerTest, EveryAcknowledgedAddReadIsValid) {
  SetHistory s;
  for (int i = 0; i < 5; ++i) {
    s.Add(i, "s", std::to_string(i), kOk, 10 * i, 10 * i + 5);
  }
  s.Read(9, "s", "4,0,3,1,2", 100, 110);
  CheckResult r = CheckSet(s.history());
  EXPECT_EQ(r.validity, Validity::kValid) << r.summary;
  EXPECT_TRUE(r.anomalies.empty());
  EXPECT_EQ(r.ops, 6u);
  EXPECT_EQ(r.ok, 6u);
  SetTally t = OnlyTally(s.history());
  EXPECT_EQ(t.attempted, 5u);
  EXPECT_EQ(t.acknowledged, 5u);
  EXPECT_EQ(t.final_read_size, 5u);
}

TEST(SetCheckerTest, LostElementsAreCounted) {
  SetHistory s;
  for (int i = 0; i < 12; ++i) {
    s.Add(0, "s", std::to_string(i), kOk, 10 * i, 10 * i + 5);
  }
  s.Read(1, "s", "0,1,2,4,5,6,7,8,9", 200, 210);  // 3, 10, 11 lost
  CheckResult r = CheckSet(s.history());
  ASSERT_EQ(r.validity, Validity::kInvalid) << r.summary;
  SetTally t = OnlyTally(s.history());
  EXPECT_EQ(t.lost, (Elements{"3", "10", "11"}));
  EXPECT_TRUE(t.unexpected.empty());
  EXPECT_TRUE(t.duplicated.empty());
  const Anomaly* a = FindAnomaly(r, "lost");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->key, "s");
  EXPECT_NE(a->description.find("3 of 12"), std::string::npos)
      << a->description;
  EXPECT_NE(a->description.find("3, 10, 11"), std::string::npos)
      << a->description;
  EXPECT_EQ(a->slice.size(), 8u);  // three adds and the read
  EXPECT_NE(a->rendering.find("* p0"), std::string::npos) << a->rendering;
  EXPECT_NE(r.summary.find("lost 3"), std::string::npos) << r.summary;
}

TEST(SetCheckerTest, AddConcurrentWithTheFinalReadIsNotLost) {
  SetHistory s;
  s.Add(0, "s", "1", kOk, 0, 5);
  s.Invoke(0, "add", "s", "2", 10);
  s.Invoke(1, "read", "s", std::nullopt, 12);
  s.Complete(0, kOk, "add", "s", "2", 14);
  s.Complete(1, kOk, "read", "s", "1", 16);
  CheckResult r = CheckSet(s.history());
  EXPECT_EQ(r.validity, Validity::kValid) << r.summary;
  EXPECT_TRUE(OnlyTally(s.history()).lost.empty());
}

TEST(SetCheckerTest, UnexpectedElementsAreCounted) {
  SetHistory s;
  s.Add(0, "s", "1", kOk, 0, 5);
  s.Read(1, "s", "1,99,,x", 10, 20);
  CheckResult r = CheckSet(s.history());
  ASSERT_EQ(r.validity, Validity::kInvalid) << r.summary;
  SetTally t = OnlyTally(s.history());
  EXPECT_EQ(t.unexpected, (Elements{"", "x", "99"}));
  EXPECT_TRUE(t.lost.empty());
  const Anomaly* a = FindAnomaly(r, "unexpected");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->slice.size(), 2u);
  EXPECT_NE(r.summary.find("unexpected 3"), std::string::npos) << r.summary;
}

TEST(SetCheckerTest, DuplicatedElementsAreCounted) {
  SetHistory s;
  s.Add(0, "s", "1", kOk, 0, 5);
  s.Add(0, "s", "2", kOk, 6, 8);
  s.Read(1, "s", "1,2,1,2,2", 10, 20);
  CheckResult r = CheckSet(s.history());
  ASSERT_EQ(r.validity, Validity::kInvalid) << r.summary;
  SetTally t = OnlyTally(s.history());
  EXPECT_EQ(t.duplicated, (Elements{"1", "2"}));
  EXPECT_EQ(t.final_read_size, 5u);
  EXPECT_TRUE(t.lost.empty());
  EXPECT_TRUE(t.unexpected.empty());
  EXPECT_NE(FindAnomaly(r, "duplicated"), nullptr);
  EXPECT_EQ(FindAnomaly(r, "lost"), nullptr);
}

TEST(SetCheckerTest, RecoveredElementsAreCountedNotAnomalies) {
  SetHistory s;
  s.Add(0, "s", "1", kOk, 0, 5);
  s.Add(1, "s", "2", kInfo, 6, 8);    // present: recovered
  s.Add(3, "s", "4", kInfo, 11, 12);  // absent: fine
  s.Add(4, "s", "5", kFail, 13, 14);  // absent: fine
  s.Add(5, "s", "6", kOk, 15, -1);    // never completed, present
  s.Read(9, "s", "1,2,6", 20, 30);
  CheckResult r = CheckSet(s.history());
  EXPECT_EQ(r.validity, Validity::kValid) << r.summary;
  EXPECT_TRUE(r.anomalies.empty());
  SetTally t = OnlyTally(s.history());
  EXPECT_EQ(t.recovered, (Elements{"2", "6"}));
  EXPECT_TRUE(t.failed_present.empty());
  EXPECT_EQ(t.acknowledged, 1u);
  EXPECT_EQ(t.attempted, 5u);
  EXPECT_EQ(r.info, 3u);
  EXPECT_EQ(r.fail, 1u);
  EXPECT_NE(r.summary.find("failed but present 0, recovered 2"),
            std::string::npos)
      << r.summary;
}

// fail means "definitely not applied" (jepsen/history.h; the workload
// records it only for a refused request), so reading the element is an
// anomaly, in any ok read, not only the final one.
TEST(SetCheckerTest, AFailedAddThatIsReadIsAnAnomaly) {
  SetHistory s;
  s.Add(0, "s", "1", kOk, 0, 5);
  s.Add(1, "s", "3", kFail, 9, 10);
  s.Add(2, "s", "7", kFail, 11, 12);
  s.Add(3, "s", "8", kFail, 13, 14);  // absent everywhere: fine
  s.Read(9, "s", "1,7", 20, 30);      // 7 read once, not in the final read
  s.Read(9, "s", "1,3", 40, 50);      // final
  CheckResult r = CheckSet(s.history());
  ASSERT_EQ(r.validity, Validity::kInvalid) << r.summary;
  SetTally t = OnlyTally(s.history());
  EXPECT_EQ(t.failed_present, (Elements{"3", "7"}));
  EXPECT_TRUE(t.recovered.empty());
  EXPECT_TRUE(t.lost.empty());
  EXPECT_TRUE(t.unexpected.empty());
  ASSERT_EQ(r.anomalies.size(), 1u);
  const Anomaly* a = FindAnomaly(r, "failed-add-present");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->key, "s");
  EXPECT_NE(a->description.find("2 elements"), std::string::npos)
      << a->description;
  EXPECT_NE(a->description.find("3, 7"), std::string::npos) << a->description;
  EXPECT_EQ(a->slice.size(), 6u);  // the two failed adds and the first read
  EXPECT_NE(r.summary.find("failed but present 2"), std::string::npos)
      << r.summary;
}

TEST(SetCheckerTest, AnElementWithAFailedAndAnInfoAddIsRecovered) {
  SetHistory s;
  s.Add(0, "s", "3", kFail, 0, 5);
  s.Add(1, "s", "3", kInfo, 6, 8);  // this one may have taken effect
  s.Read(9, "s", "3", 20, 30);
  CheckResult r = CheckSet(s.history());
  EXPECT_EQ(r.validity, Validity::kValid) << r.summary;
  SetTally t = OnlyTally(s.history());
  EXPECT_EQ(t.recovered, (Elements{"3"}));
  EXPECT_TRUE(t.failed_present.empty());
}

// The register checker's verdict on the same situation: a read of a value
// that only a failed write wrote is not linearizable. The two checkers
// agree.
TEST(SetCheckerTest, TheRegisterCheckerAlsoRejectsAFailedWriteThatIsRead) {
  SetHistory s;
  s.Invoke(0, "write", "r", "3", 0).Complete(0, kFail, "write", "r", "3", 5);
  s.Read(1, "r", "3", 10, 20);
  CheckResult r = CheckRegisters(s.history(), {});
  EXPECT_EQ(r.validity, Validity::kInvalid) << r.summary;
  ASSERT_EQ(r.anomalies.size(), 1u);
  EXPECT_NE(r.anomalies[0].description.find("a failed operation took effect"),
            std::string::npos)
      << r.anomalies[0].description;
}

TEST(SetCheckerTest, OnlyTheLastReadDecidesLostButEveryReadIsChecked) {
  SetHistory s;
  s.Add(0, "s", "1", kOk, 0, 5);
  s.Read(1, "s", "", 10, 20);     // misses 1, but is not the final read
  s.Read(1, "s", "1,1", 30, 40);  // duplicated in an earlier read
  s.Read(1, "s", "1", 50, 60);    // final
  SetTally t = OnlyTally(s.history());
  EXPECT_TRUE(t.lost.empty());
  EXPECT_EQ(t.duplicated, (Elements{"1"}));
  EXPECT_EQ(t.final_read_size, 1u);
}

TEST(SetCheckerTest, NoReadIsUnknown) {
  SetHistory s;
  s.Add(0, "s", "1", kOk, 0, 5);
  CheckResult r = CheckSet(s.history());
  EXPECT_EQ(r.validity, Validity::kUnknown) << r.summary;
}

TEST(SetCheckerTest, NullOrEmptyReadIsTheEmptySet) {
  SetHistory s;
  s.Add(0, "s", "1", kFail, 0, 5);
  s.Read(1, "s", std::nullopt, 10, 20);
  s.Add(0, "t", "1", kOk, 0, 5);
  s.Read(1, "t", "", 10, 20);
  StatusOr<std::vector<SetTally>> t = TallySets(s.history());
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[0].set, "s");
  EXPECT_EQ((*t)[0].final_read_size, 0u);
  EXPECT_TRUE((*t)[0].lost.empty());
  EXPECT_EQ((*t)[1].lost, (Elements{"1"}));
  CheckResult r = CheckSet(s.history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  ASSERT_EQ(r.anomalies.size(), 1u);
  EXPECT_EQ(r.anomalies[0].key, "t");
}

TEST(SetCheckerTest, RegisterKeysAreIgnored) {
  SetHistory s;
  s.Invoke(0, "write", "r", "5", 0).Complete(0, kOk, "write", "r", "5", 1);
  s.Read(1, "r", "7", 2, 3);
  s.Add(0, "s", "1", kOk, 4, 5);
  s.Read(1, "s", "1", 6, 7);
  CheckResult r = CheckSet(s.history());
  EXPECT_EQ(r.validity, Validity::kValid) << r.summary;
  EXPECT_EQ(OnlyTally(s.history()).set, "s");
}

TEST(SetCheckerTest, MalformedHistoryIsUnknown) {
  SetHistory s;
  s.Complete(0, kOk, "add", "s", "1", 5);
  CheckResult r = CheckSet(s.history());
  EXPECT_EQ(r.validity, Validity::kUnknown);
  EXPECT_FALSE(TallySets(s.history()).ok());
}

}  // namespace
}  // namespace raftkv::jepsen
