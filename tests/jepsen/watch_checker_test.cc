// Tests of the watch workload checker (jepsen/watch_checker.h) on hand-made
// histories: valid ones (unknown writes seen or not, deletes of nothing,
// watchers ending at different revisions) must pass; a lost, duplicated,
// out-of-order, divergent, wrong, unexpected or too early event, a reused
// revision and a replay that misses the final read must each be flagged
// with its kind. Hand-made histories only: must never depend on timing or
// a real cluster.
#include "jepsen/watch_checker.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

namespace raftkv::jepsen {
namespace {

constexpr EventType kOk = EventType::kOk;
constexpr EventType kFail = EventType::kFail;
constexpr EventType kInfo = EventType::kInfo;

// Builds a watch history; times are in ms and calls must come in time order.
class WatchHistory {
 public:
  WatchHistory& Put(int64_t p, const std::string& key, const std::string& v,
                    EventType outcome, int64_t revision, int64_t start,
                    int64_t end) {
    Push(p, EventType::kInvoke, "put", key, v, 0, start);
    return Push(p, outcome, "put", key, v, outcome == kOk ? revision : 0, end);
  }
  WatchHistory& Delete(int64_t p, const std::string& key, EventType outcome,
                       bool deleted, int64_t revision, int64_t start,
                       int64_t end) {
    Push(p, EventType::kInvoke, "delete", key, std::nullopt, 0, start);
    return Push(p, outcome, "delete", key,
                outcome == kOk ? std::optional<std::string>(deleted ? "1" : "0")
                               : std::nullopt,
                outcome == kOk ? revision : 0, end);
  }
  WatchHistory& StartWatch(int64_t p, int64_t at) {
    return Push(p, EventType::kInvoke, "watch", "w/", std::nullopt, 1, at);
  }
  WatchHistory& Seen(int64_t p, const std::string& key,
                     std::optional<std::string> v, int64_t revision,
                     int64_t at) {
    return Push(p, kOk, "event", key, std::move(v), revision, at);
  }
  WatchHistory& EndWatch(int64_t p, int64_t through, int64_t at) {
    return Push(p, kOk, "watch", "w/", std::nullopt, through, at);
  }
  WatchHistory& FinalRead(int64_t p, const std::string& state, int64_t revision,
                          int64_t start, int64_t end) {
    Push(p, EventType::kInvoke, "read", "w/", std::nullopt, 0, start);
    return Push(p, kOk, "read", "w/", state, revision, end);
  }
  const History& history() const { return h_; }

 private:
  WatchHistory& Push(int64_t p, EventType type, const std::string& f,
                     const std::string& key, std::optional<std::string> v,
                     int64_t revision, int64_t at_ms) {
    Event e;
    e.process = p;
    e.type = type;
    e.f = f;
    e.key = key;
    e.value = std::move(v);
    e.revision = revision;
    e.time_ns = at_ms * 1'000'000;
    h_.push_back(e);
    return *this;
  }
  History h_;
};

bool HasAnomaly(const CheckResult& r, const std::string& kind) {
  for (const Anomaly& a : r.anomalies) {
    if (a.kind == kind) return true;
  }
  return false;
}

std::string Kinds(const CheckResult& r) {
  std::string s = r.summary;
  for (const Anomaly& a : r.anomalies)
    s += "\n" + a.kind + ": " + a.description;
  return s;
}

// Two watchers (p0, p1), writers p2 and p3. Revision 1 is a write outside
// the prefix (not watched); the prefix changes at 2, 3, 4 and 6.
WatchHistory Valid() {
  WatchHistory h;
  h.StartWatch(0, 0).StartWatch(1, 0);
  h.Put(2, "w/1", "10", kOk, 2, 10, 20);
  h.Seen(0, "w/1", "10", 2, 21).Seen(1, "w/1", "10", 2, 22);
  h.Put(3, "w/2", "11", kOk, 3, 30, 40);
  h.Seen(1, "w/2", "11", 3, 41).Seen(0, "w/2", "11", 3, 42);
  h.Delete(2, "w/1", kOk, true, 4, 50, 60);
  h.Seen(0, "w/1", std::nullopt, 4, 61).Seen(1, "w/1", std::nullopt, 4, 62);
  h.Delete(3, "w/7", kOk, false, 4, 70, 80);  // nothing to delete
  // An unknown put that took effect (at 6), one that never did.
  h.Put(2, "w/3", "12", kInfo, 0, 90, 100);
  h.Put(4, "w/4", "13", kInfo, 0, 95, 105);
  h.Seen(0, "w/3", "12", 6, 110).Seen(1, "w/3", "12", 6, 111);
  h.FinalRead(5, "w/2=11,w/3=12", 6, 120, 130);
  h.EndWatch(0, 7, 140).EndWatch(1, 6, 141);
  return h;
}

TEST(WatchCheckerTest, AValidHistoryPasses) {
  const CheckResult r = CheckWatch(Valid().history());
  EXPECT_EQ(r.validity, Validity::kValid) << Kinds(r);
  EXPECT_TRUE(r.anomalies.empty());
  EXPECT_EQ(r.ok, 7u);  // 4 writes, the final read, 2 watches
  EXPECT_EQ(r.info, 2u);
  EXPECT_NE(r.summary.find("1 of those seen"), std::string::npos) << r.summary;
}

TEST(WatchCheckerTest, ALostEventIsFlagged) {
  WatchHistory h;
  h.StartWatch(0, 0).StartWatch(1, 0);
  h.Put(2, "w/1", "10", kOk, 2, 10, 20);
  h.Seen(0, "w/1", "10", 2, 21).Seen(1, "w/1", "10", 2, 22);
  h.Put(2, "w/2", "11", kOk, 3, 30, 40);
  h.Seen(0, "w/2", "11", 3, 41);  // p1 never gets revision 3
  h.Put(2, "w/1", "12", kOk, 4, 50, 60);
  h.Seen(0, "w/1", "12", 4, 61).Seen(1, "w/1", "12", 4, 62);
  h.FinalRead(5, "w/1=12,w/2=11", 4, 70, 80);
  h.EndWatch(0, 4, 90).EndWatch(1, 4, 91);
  const CheckResult r = CheckWatch(h.history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "lost-event")) << Kinds(r);
  // And the lost put is missing from p1's replay too.
  EXPECT_TRUE(HasAnomaly(r, "replay-mismatch")) << Kinds(r);
  EXPECT_NE(r.anomalies.front().description.find("revision 3"),
            std::string::npos)
      << Kinds(r);
}

TEST(WatchCheckerTest, AnUnknownWriteOneWatcherSawIsLostForTheOther) {
  WatchHistory h;
  h.StartWatch(0, 0).StartWatch(1, 0);
  h.Put(2, "w/1", "10", kInfo, 0, 10, 20);
  h.Seen(0, "w/1", "10", 2, 21);  // p1's window covers 2, it has nothing
  h.Put(3, "w/2", "11", kOk, 3, 30, 40);
  h.Seen(0, "w/2", "11", 3, 41).Seen(1, "w/2", "11", 3, 42);
  h.FinalRead(5, "w/1=10,w/2=11", 3, 50, 60);
  h.EndWatch(0, 3, 70).EndWatch(1, 3, 71);
  const CheckResult r = CheckWatch(h.history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "lost-event")) << Kinds(r);
}

TEST(WatchCheckerTest, ADuplicatedEventIsFlagged) {
  WatchHistory h = Valid();
  h.Seen(0, "w/3", "12", 6, 150);  // after its end, but still a repeat
  const CheckResult r = CheckWatch(h.history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "duplicated")) << Kinds(r);
}

TEST(WatchCheckerTest, AnOutOfOrderEventIsFlagged) {
  WatchHistory h;
  h.StartWatch(0, 0);
  h.Put(2, "w/1", "10", kOk, 2, 10, 20);
  h.Put(3, "w/2", "11", kOk, 3, 11, 21);
  h.Seen(0, "w/2", "11", 3, 22).Seen(0, "w/1", "10", 2, 23);
  h.FinalRead(5, "w/1=10,w/2=11", 3, 30, 40);
  h.EndWatch(0, 3, 50);
  const CheckResult r = CheckWatch(h.history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "out-of-order")) << Kinds(r);
}

TEST(WatchCheckerTest, EventsNoWriteExplainsAreFlagged) {
  WatchHistory h;
  h.StartWatch(0, 0);
  h.Put(2, "w/1", "10", kOk, 2, 10, 20);
  h.Seen(0, "w/1", "10", 2, 21);
  h.Seen(0, "w/1", "99", 3, 22);  // never written
  h.Put(3, "w/2", "11", kFail, 0, 30, 40);
  h.Seen(0, "w/2", "11", 4, 41);  // a failed write took effect
  h.Seen(0, "w/1", "10", 5, 42);  // the put acknowledged at 2, again at 5
  h.FinalRead(5, "w/1=10,w/2=11", 5, 50, 60);
  h.EndWatch(0, 5, 70);
  const CheckResult r = CheckWatch(h.history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  ASSERT_TRUE(HasAnomaly(r, "unexpected-event")) << Kinds(r);
  for (const Anomaly& a : r.anomalies) {
    if (a.kind != "unexpected-event") continue;
    EXPECT_NE(a.description.find("(3)"), std::string::npos) << a.description;
    EXPECT_NE(a.description.find("failed"), std::string::npos);
    EXPECT_NE(a.description.find("acknowledged otherwise"), std::string::npos);
  }
}

TEST(WatchCheckerTest, AnEventUnlikeItsAcknowledgedWriteIsFlagged) {
  WatchHistory h;
  h.StartWatch(0, 0).StartWatch(1, 0);
  h.Put(2, "w/1", "10", kOk, 2, 10, 20);
  h.Seen(0, "w/1", "10", 2, 21).Seen(1, "w/9", "10", 2, 22);
  h.FinalRead(5, "w/1=10", 2, 30, 40);
  h.EndWatch(0, 2, 50).EndWatch(1, 2, 51);
  const CheckResult r = CheckWatch(h.history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "divergent")) << Kinds(r);
  EXPECT_TRUE(HasAnomaly(r, "replay-mismatch")) << Kinds(r);
  WatchHistory wrong;
  wrong.StartWatch(0, 0);
  wrong.Put(2, "w/1", "10", kOk, 2, 10, 20);
  wrong.Seen(0, "w/1", std::nullopt, 2, 21);  // a delete at a put's revision
  wrong.FinalRead(5, "w/1=10", 2, 30, 40);
  wrong.EndWatch(0, 2, 50);
  const CheckResult w = CheckWatch(wrong.history());
  EXPECT_TRUE(HasAnomaly(w, "wrong-event")) << Kinds(w);
}

TEST(WatchCheckerTest, AnEventBeforeItsWriteIsFlagged) {
  WatchHistory h;
  h.StartWatch(0, 0);
  h.Seen(0, "w/1", "10", 2, 5);
  h.Put(2, "w/1", "10", kOk, 2, 10, 20);
  h.FinalRead(5, "w/1=10", 2, 30, 40);
  h.EndWatch(0, 2, 50);
  const CheckResult r = CheckWatch(h.history());
  EXPECT_TRUE(HasAnomaly(r, "event-before-write")) << Kinds(r);
  // Whichever watcher got it first: here p1, whose id comes second.
  WatchHistory two;
  two.StartWatch(0, 0).StartWatch(1, 0);
  two.Seen(1, "w/1", "10", 2, 5);
  two.Put(2, "w/1", "10", kOk, 2, 10, 20);
  two.Seen(0, "w/1", "10", 2, 25);
  two.FinalRead(5, "w/1=10", 2, 30, 40);
  two.EndWatch(0, 2, 50).EndWatch(1, 2, 51);
  EXPECT_TRUE(HasAnomaly(CheckWatch(two.history()), "event-before-write"));
  // Of an unknown write, the same is unexplained.
  WatchHistory u;
  u.StartWatch(0, 0);
  u.Seen(0, "w/1", "10", 2, 5);
  u.Put(2, "w/1", "10", kInfo, 0, 10, 20);
  u.FinalRead(5, "w/1=10", 2, 30, 40);
  u.EndWatch(0, 2, 50);
  EXPECT_TRUE(HasAnomaly(CheckWatch(u.history()), "unexpected-event"));
}

TEST(WatchCheckerTest, TwoWritesAcknowledgedAtOneRevisionAreFlagged) {
  WatchHistory h;
  h.StartWatch(0, 0);
  h.Put(2, "w/1", "10", kOk, 2, 10, 20);
  h.Put(3, "w/2", "11", kOk, 2, 11, 21);
  h.Seen(0, "w/1", "10", 2, 22);
  h.FinalRead(5, "w/1=10", 2, 30, 40);
  h.EndWatch(0, 2, 50);
  EXPECT_TRUE(HasAnomaly(CheckWatch(h.history()), "revision-reused"));
}

TEST(WatchCheckerTest, AReplayThatMissesTheFinalReadIsFlagged) {
  WatchHistory h;
  h.StartWatch(0, 0);
  h.Put(2, "w/1", "10", kOk, 2, 10, 20);
  h.Seen(0, "w/1", "10", 2, 21);
  h.FinalRead(5, "w/1=10,w/5=77", 2, 30, 40);  // w/5 was never written
  h.EndWatch(0, 3, 50);
  const CheckResult r = CheckWatch(h.history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "replay-mismatch")) << Kinds(r);
  // A delete of a key the replay does not have.
  WatchHistory d;
  d.StartWatch(0, 0);
  d.Delete(2, "w/1", kOk, true, 2, 10, 20);
  d.Seen(0, "w/1", std::nullopt, 2, 21);
  d.FinalRead(5, "", 2, 30, 40);
  d.EndWatch(0, 2, 50);
  EXPECT_TRUE(HasAnomaly(CheckWatch(d.history()), "replay-mismatch"));
}

TEST(WatchCheckerTest, AWatcherShortOfTheFinalReadIsUnknownNotValid) {
  WatchHistory h;
  h.StartWatch(0, 0).StartWatch(1, 0);
  h.Put(2, "w/1", "10", kOk, 2, 10, 20);
  h.Seen(0, "w/1", "10", 2, 21).Seen(1, "w/1", "10", 2, 22);
  h.Put(2, "w/2", "11", kOk, 3, 30, 40);
  h.Seen(0, "w/2", "11", 3, 41);
  h.FinalRead(5, "w/1=10,w/2=11", 3, 50, 60);
  h.EndWatch(0, 3, 70).EndWatch(1, 2, 71);  // p1 stalled at 2: no gap
  const CheckResult r = CheckWatch(h.history());
  EXPECT_EQ(r.validity, Validity::kUnknown) << Kinds(r);
  EXPECT_TRUE(r.anomalies.empty()) << Kinds(r);
  // Without a final read: unknown too.
  WatchHistory n;
  n.StartWatch(0, 0);
  n.Put(2, "w/1", "10", kOk, 2, 10, 20);
  n.Seen(0, "w/1", "10", 2, 21);
  n.EndWatch(0, 2, 30);
  EXPECT_EQ(CheckWatch(n.history()).validity, Validity::kUnknown);
}

TEST(WatchCheckerTest, FiguresAndChecksAreReported) {
  const CheckResult r = CheckWatch(Valid().history());
  ASSERT_FALSE(r.figures.empty());
  std::map<std::string, int64_t> f(r.figures.begin(), r.figures.end());
  EXPECT_EQ(f["watchers"], 2);
  EXPECT_EQ(f["events"], 8);
  EXPECT_EQ(f["final revision"], 6);
  EXPECT_EQ(f["revisions that changed the prefix"], 4);
  EXPECT_EQ(r.checks.size(), 2u);
}

}  // namespace
}  // namespace raftkv::jepsen
