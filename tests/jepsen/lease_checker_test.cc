// Tests of the lease workload checker (jepsen/lease_checker.h) on hand-made
// histories: a valid one must pass (keys read while their leases were
// certainly alive, gone after a revoke, a key missing only after its last
// proof of life, a clean end on every node, a lock and its counter); a
// kept-alive key missing, a revoked lease's key read later, a dead lease's
// key at the end (linearizable or on one node), a non-increasing fencing
// token, a lost increment and a write under a stale token must each be
// flagged. Hand-made histories only: must never depend on timing.
#include "jepsen/lease_checker.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

namespace raftkv::jepsen {
namespace {

constexpr EventType kOk = EventType::kOk;
constexpr EventType kFail = EventType::kFail;
constexpr EventType kInfo = EventType::kInfo;
constexpr EventType kInvoke = EventType::kInvoke;

// Builds a lease history; times in ms, calls in time order.
class LeaseHistory {
 public:
  LeaseHistory& Grant(int64_t p, int64_t lease, int64_t ttl, int64_t start,
                      int64_t end) {
    Push(p, kInvoke, "grant", Key(p), std::to_string(ttl), 0, 0, start);
    return Push(p, kOk, "grant", Key(p), std::to_string(ttl), lease, 0, end);
  }
  LeaseHistory& Put(int64_t p, int64_t lease, int64_t revision, int64_t start,
                    int64_t end) {
    Push(p, kInvoke, "put", Key(p), std::to_string(lease), lease, 0, start);
    return Push(p, kOk, "put", Key(p), std::to_string(lease), lease, revision,
                end);
  }
  LeaseHistory& Probe(int64_t p, int64_t lease, int64_t left, int64_t start,
                      int64_t end) {
    Push(p, kInvoke, "ttl", Key(p), std::nullopt, lease, 0, start);
    return Push(p, kOk, "ttl", Key(p), std::to_string(left), lease, 0, end);
  }
  LeaseHistory& Read(int64_t p, const std::string& keys, int64_t revision,
                     int64_t start, int64_t end) {
    Push(p, kInvoke, "read", "reg/", std::nullopt, 0, 0, start);
    return Push(p, kOk, "read", "reg/", keys, 0, revision, end);
  }
  LeaseHistory& Revoke(int64_t p, const std::string& key, int64_t lease,
                       int64_t start, int64_t end) {
    Push(p, kInvoke, "revoke", key, std::nullopt, lease, 0, start);
    return Push(p, kOk, "revoke", key, std::nullopt, lease, 0, end);
  }
  LeaseHistory& Abandon(int64_t p, const std::string& key, int64_t lease,
                        int64_t at) {
    Push(p, kInvoke, "abandon", key, std::nullopt, lease, 0, at);
    return Push(p, kOk, "abandon", key, std::nullopt, lease, 0, at);
  }
  LeaseHistory& Lost(int64_t p, int64_t lease, int64_t at) {
    return Push(p, kOk, "lost", Key(p), "expired", lease, 0, at);
  }
  LeaseHistory& FinalRead(int64_t p, const std::string& keys, int64_t revision,
                          int64_t start, int64_t end,
                          const std::string& node = "") {
    Push(p, kInvoke, "read", "*", std::nullopt, 0, 0, start, node);
    return Push(p, kOk, "read", "*", keys, 0, revision, end, node);
  }
  LeaseHistory& Session(int64_t p, int64_t lease, int64_t start, int64_t end) {
    Push(p, kInvoke, "session", "lock/m", std::nullopt, 0, 0, start);
    return Push(p, kOk, "session", "lock/m", std::nullopt, lease, 0, end);
  }
  LeaseHistory& Lock(int64_t p, int64_t lease, int64_t token, int64_t start,
                     int64_t end) {
    Push(p, kInvoke, "lock", "lock/m", std::nullopt, lease, 0, start);
    return Push(p, kOk, "lock", "lock/m", "lock/m/" + std::to_string(lease),
                lease, token, end);
  }
  LeaseHistory& Incr(int64_t p, int64_t token, EventType outcome, int64_t value,
                     int64_t revision, int64_t start, int64_t end) {
    Push(p, kInvoke, "incr", "lock-counter", std::nullopt, 0, token, start);
    return Push(p, outcome, "incr", "lock-counter",
                outcome == kFail ? "stale" : std::to_string(value), 0,
                outcome == kOk ? revision : 0, end);
  }
  LeaseHistory& CounterRead(int64_t p, int64_t value, int64_t start,
                            int64_t end) {
    Push(p, kInvoke, "read", "lock-counter", std::nullopt, 0, 0, start);
    return Push(p, kOk, "read", "lock-counter", std::to_string(value), 0, 0,
                end);
  }
  const History& history() const { return h_; }

 private:
  static std::string Key(int64_t p) { return "reg/" + std::to_string(p); }
  LeaseHistory& Push(int64_t p, EventType type, const std::string& f,
                     const std::string& key, std::optional<std::string> v,
                     int64_t lease, int64_t revision, int64_t at_ms,
                     const std::string& node = "") {
    Event e;
    e.process = p;
    e.type = type;
    e.f = f;
    e.key = key;
    e.value = std::move(v);
    e.lease = lease;
    e.revision = revision;
    e.node = node;
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
  for (const std::string& c : r.checks) s += "\n  " + c;
  return s;
}

// Holders p0 (lease 1, revoked at 2.5 s) and p1 (lease 2, abandoned at
// 1 s: certainly alive until its grant + 3 s = 3.01 s only). Reader p5.
LeaseHistory Registrations() {
  LeaseHistory h;
  h.Grant(0, 1, 3, 10, 20).Grant(1, 2, 3, 10, 20);
  h.Put(0, 1, 2, 30, 40).Put(1, 2, 3, 30, 40);
  h.Read(5, "reg/0@1,reg/1@2", 3, 100, 110);
  h.Probe(0, 1, 3, 1000, 1010);  // alive until 1.0 + 2 s at least
  h.Abandon(1, "reg/1", 2, 1000);
  h.Read(5, "reg/0@1,reg/1@2", 4, 2000, 2010);
  h.Revoke(0, "reg/0", 1, 2500, 2510);
  h.Read(5, "reg/1@2", 5, 2600, 2610);
  h.Read(5, "", 6, 3500, 3510);  // reg/1 expired after 3.01 s: fine
  return h;
}

LeaseHistory CleanEnd(LeaseHistory h, int64_t at = 5000) {
  h.FinalRead(9, "", 7, at, at + 10);
  h.FinalRead(10, "", 7, at + 20, at + 30, "n1");
  h.FinalRead(11, "", 8, at + 40, at + 50, "n2");
  return h;
}

TEST(LeaseCheckerTest, AValidHistoryPasses) {
  const CheckResult r = CheckLease(CleanEnd(Registrations()).history());
  EXPECT_EQ(r.validity, Validity::kValid) << Kinds(r);
  std::map<std::string, int64_t> f(r.figures.begin(), r.figures.end());
  // reg/0 is required in the reads at 0.1 and 2.0 s (not at 2.6 s: its
  // revoke was invoked), reg/1 in those and at 2.6 s (all before its
  // grant + 3 s = 3.01 s), neither at 3.5 s: 5 presence checks.
  EXPECT_EQ(f["presence checks"], 5) << Kinds(r);
  EXPECT_EQ(f["nodes read at the end"], 2);
}

TEST(LeaseCheckerTest, AKeptAliveKeyMissingIsFlagged) {
  LeaseHistory h;
  h.Grant(0, 1, 3, 10, 20).Put(0, 1, 2, 30, 40);
  h.Probe(0, 1, 3, 2000, 2010);  // alive until 4.0 s at least
  h.Read(5, "", 3, 3500, 3600);  // reg/0 missing before 4.0 s
  h.Abandon(0, "reg/0", 1, 3700);
  const CheckResult r = CheckLease(CleanEnd(h).history());
  EXPECT_EQ(r.validity, Validity::kInvalid) << Kinds(r);
  ASSERT_TRUE(HasAnomaly(r, "kept-alive-key-missing")) << Kinds(r);
  EXPECT_NE(r.anomalies.front().description.find("ttl invoked at 2.000 s"),
            std::string::npos)
      << Kinds(r);
  // The same read after 4.0 s is no anomaly: nothing proves the lease
  // alive then (it may have expired with its keeper cut off).
  LeaseHistory later;
  later.Grant(0, 1, 3, 10, 20).Put(0, 1, 2, 30, 40);
  later.Probe(0, 1, 3, 2000, 2010);
  later.Read(5, "", 3, 3990, 4000);
  later.Lost(0, 1, 4100);
  EXPECT_EQ(CheckLease(CleanEnd(later).history()).validity, Validity::kValid);
}

TEST(LeaseCheckerTest, AKeyOfARevokedLeaseReadLaterIsFlagged) {
  LeaseHistory h = Registrations();
  h.Read(5, "reg/0@1", 7, 3600, 3610);  // revoked at 2.51 s
  const CheckResult r = CheckLease(CleanEnd(h).history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "revoked-key-present")) << Kinds(r);
  // A read that began before the revoke was acknowledged may hold it.
  LeaseHistory overlapping;
  overlapping.Grant(0, 1, 3, 10, 20).Put(0, 1, 2, 30, 40);
  overlapping.Revoke(0, "reg/0", 1, 500, 600);
  overlapping.Read(5, "reg/0@1", 3, 590, 700);
  EXPECT_EQ(CheckLease(CleanEnd(overlapping).history()).validity,
            Validity::kValid);
}

TEST(LeaseCheckerTest, ADeadLeasesKeyAtTheEndIsFlagged) {
  LeaseHistory h = Registrations();
  h.FinalRead(9, "reg/1@2", 7, 5000, 5010);
  const CheckResult r = CheckLease(h.history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "dead-lease-key-present")) << Kinds(r);
  // On one node only (serializable), at the final revision.
  LeaseHistory node = Registrations();
  node.FinalRead(9, "", 7, 5000, 5010);
  node.FinalRead(10, "reg/1@2", 7, 5020, 5030, "n1");
  const CheckResult n = CheckLease(node.history());
  EXPECT_EQ(n.validity, Validity::kInvalid);
  ASSERT_TRUE(HasAnomaly(n, "dead-lease-key-present")) << Kinds(n);
  EXPECT_NE(n.anomalies.front().description.find("on node n1"),
            std::string::npos);
}

TEST(LeaseCheckerTest, ANodeBehindTheFinalRevisionIsUnknown) {
  LeaseHistory h = Registrations();
  h.FinalRead(9, "", 7, 5000, 5010);
  h.FinalRead(10, "reg/1@2", 4, 5020, 5030, "n1");  // stale: not judged
  const CheckResult r = CheckLease(h.history());
  EXPECT_EQ(r.validity, Validity::kUnknown) << Kinds(r);
  EXPECT_TRUE(r.anomalies.empty());
}

TEST(LeaseCheckerTest, AKeyNoPutMadeIsFlagged) {
  LeaseHistory h = Registrations();
  h.Read(5, "reg/7@9", 7, 3600, 3610);
  EXPECT_TRUE(HasAnomaly(CheckLease(CleanEnd(h).history()), "unexpected-key"));
}

// Lockers p20 (session lease 30) and p21 (lease 31).
LeaseHistory Locks() {
  LeaseHistory h;
  h.Session(20, 30, 0, 10).Session(21, 31, 0, 10);
  h.Lock(20, 30, 12, 20, 30);
  h.Incr(20, 12, kOk, 1, 14, 40, 50).Incr(20, 12, kOk, 2, 15, 60, 70);
  h.Lock(21, 31, 13, 25, 100);  // waited for p20
  h.Incr(21, 13, kOk, 3, 16, 110, 120);
  h.Incr(21, 13, kInfo, 4, 0, 130, 140);
  h.Incr(21, 13, kFail, 0, 0, 150, 160);
  return h;
}

TEST(LeaseCheckerTest, AValidLockHistoryPasses) {
  LeaseHistory h = Locks();
  h.CounterRead(9, 4, 300, 310);
  const CheckResult r = CheckLease(CleanEnd(h).history());
  EXPECT_EQ(r.validity, Validity::kValid) << Kinds(r);
  std::map<std::string, int64_t> f(r.figures.begin(), r.figures.end());
  EXPECT_EQ(f["locks acquired"], 2);
  EXPECT_EQ(f["increments ok"], 3);
  EXPECT_EQ(f["final counter"], 4);
  // Two Lock calls that overlap may complete in either order.
  LeaseHistory overlap;
  overlap.Session(20, 30, 0, 10).Session(21, 31, 0, 10);
  overlap.Lock(21, 31, 13, 20, 40);
  overlap.Lock(20, 30, 12, 15, 60);  // invoked before the other completed
  overlap.CounterRead(9, 0, 300, 310);
  EXPECT_EQ(CheckLease(CleanEnd(overlap).history()).validity, Validity::kValid);
}

TEST(LeaseCheckerTest, ANonIncreasingFencingTokenIsFlagged) {
  LeaseHistory h;
  h.Session(20, 30, 0, 10).Session(21, 31, 0, 10);
  h.Lock(20, 30, 14, 20, 30);
  h.Lock(21, 31, 12, 40, 50);  // invoked after a lock with token 14
  h.CounterRead(9, 0, 300, 310);
  const CheckResult r = CheckLease(CleanEnd(h).history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "non-increasing-token")) << Kinds(r);
}

TEST(LeaseCheckerTest, ALostIncrementIsFlagged) {
  LeaseHistory h;
  h.Session(20, 30, 0, 10).Session(21, 31, 0, 10);
  h.Lock(20, 30, 12, 20, 30).Lock(21, 31, 13, 20, 35);
  // Both read 0 and wrote 1: one increment is lost.
  h.Incr(20, 12, kOk, 1, 14, 40, 50).Incr(21, 13, kOk, 1, 15, 41, 52);
  h.CounterRead(9, 1, 300, 310);
  const CheckResult r = CheckLease(CleanEnd(h).history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "lost-increment")) << Kinds(r);
  // The final counter below an acknowledged increment is one as well.
  LeaseHistory back = Locks();
  back.CounterRead(9, 2, 300, 310);
  EXPECT_TRUE(
      HasAnomaly(CheckLease(CleanEnd(back).history()), "lost-increment"));
}

TEST(LeaseCheckerTest, AWriteUnderAStaleTokenIsFlagged) {
  LeaseHistory h;
  h.Session(20, 30, 0, 10).Session(21, 31, 0, 10);
  h.Lock(20, 30, 12, 20, 30).Lock(21, 31, 13, 20, 35);
  h.Incr(21, 13, kOk, 1, 14, 40, 50);
  h.Incr(20, 12, kOk, 2, 15, 60, 70);  // the older holder wrote after
  h.CounterRead(9, 2, 300, 310);
  const CheckResult r = CheckLease(CleanEnd(h).history());
  EXPECT_EQ(r.validity, Validity::kInvalid);
  EXPECT_TRUE(HasAnomaly(r, "stale-token-write")) << Kinds(r);
}

}  // namespace
}  // namespace raftkv::jepsen
