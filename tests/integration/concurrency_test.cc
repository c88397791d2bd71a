// Integration tests of client/concurrency.h with real raftkvd processes:
// mutual exclusion and fencing tokens under contention, a holder's lock
// handed over when its session is closed or its keep-alives stop, Lock's
// timeout, and an election followed by an observer. One 3-node cluster
// per process, shared by the tests it runs (ctest runs each alone; each
// test has its own prefix). Timeouts are generous on purpose. Must never
// signal a process that LocalCluster did not start.
#include "client/concurrency.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "client/kv.pb.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

std::string Hex(int64_t lease) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%llx",
                static_cast<unsigned long long>(lease));
  return hex;
}

class ConcurrencyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new LocalCluster(3); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(cluster_->WaitForLeader(), 0); }

  static std::unique_ptr<Session> NewSession(Client* client, int64_t ttl) {
    auto session = Session::Create(client, ttl);
    CHECK(session.ok()) << session.status().ToString();
    return std::move(session).value();
  }

  // The keys under `prefix` now.
  static std::vector<std::string> KeysUnder(Client* client,
                                            const std::string& prefix) {
    auto r = client->GetPrefix(prefix);
    CHECK(r.ok()) << r.status().ToString();
    std::vector<std::string> keys;
    for (const KeyValue& kv : r->kvs) keys.push_back(kv.key);
    return keys;
  }

  static LocalCluster* cluster_;
};

LocalCluster* ConcurrencyTest::cluster_ = nullptr;

TEST_F(ConcurrencyTest, HoldersExcludeEachOtherAndTheirTokensIncrease) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 10;
  auto setup = cluster_->NewClient();
  ASSERT_TRUE(setup->Put("mx/counter", "0").ok());

  std::mutex mu;
  std::vector<int64_t> tokens;  // in the order the lock was held
  std::vector<std::string> errors;
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  auto fail = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    errors.push_back(what);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = cluster_->NewClient(seconds(20));
      auto session = NewSession(client.get(), 10);
      Mutex lock(session.get(), "mx/lock");
      for (int round = 0; round < kRounds; ++round) {
        Status locked = lock.Lock(seconds(60));
        if (!locked.ok()) return fail("lock: " + locked.ToString());
        if (inside.fetch_add(1) != 0) ++overlaps;
        {
          std::lock_guard<std::mutex> guard(mu);
          tokens.push_back(lock.revision());
        }
        // Read-modify-write, correct only under mutual exclusion.
        auto got = client->Get("mx/counter");
        if (!got.ok()) return fail("get: " + got.status().ToString());
        const int next = std::stoi(got->value) + 1;
        auto put = client->Put("mx/counter", std::to_string(next));
        if (!put.ok()) return fail("put: " + put.status().ToString());
        inside.fetch_sub(1);
        Status unlocked = lock.Unlock();
        if (!unlocked.ok()) return fail("unlock: " + unlocked.ToString());
        if (!lock.key().empty() || lock.revision() != 0) {
          return fail("thread " + std::to_string(t) + ": key kept");
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(overlaps, 0);
  auto counter = setup->Get("mx/counter");
  ASSERT_TRUE(counter.ok());
  EXPECT_EQ(counter->value, std::to_string(kThreads * kRounds));
  ASSERT_EQ(tokens.size(), static_cast<size_t>(kThreads * kRounds));
  for (size_t i = 1; i < tokens.size(); ++i) {
    EXPECT_GT(tokens[i], tokens[i - 1]) << "holder " << i;
  }
  // Every session's key is gone (unlocked, then the sessions revoked).
  EXPECT_TRUE(KeysUnder(setup.get(), "mx/lock/").empty());
}

TEST_F(ConcurrencyTest, ClosingTheHoldersSessionHandsTheLockOverAtOnce) {
  auto client_a = cluster_->NewClient();
  auto client_b = cluster_->NewClient();
  auto a = NewSession(client_a.get(), 10);
  auto b = NewSession(client_b.get(), 10);
  Mutex lock_a(a.get(), "close");  // normalised to "close/"
  Mutex lock_b(b.get(), "close/");
  ASSERT_TRUE(lock_a.Lock(seconds(10)).ok());
  EXPECT_EQ(lock_a.key(), "close/" + Hex(a->lease()));
  const int64_t token_a = lock_a.revision();
  EXPECT_GT(token_a, 0);

  std::promise<Status> b_locked;
  auto b_result = b_locked.get_future();
  std::thread waiter([&] { b_locked.set_value(lock_b.Lock(seconds(30))); });
  // Waits while a holds.
  EXPECT_EQ(b_result.wait_for(seconds(1)), std::future_status::timeout);

  const auto closed_at = Clock::now();
  ASSERT_TRUE(a->Close().ok());
  EXPECT_FALSE(a->alive());
  ASSERT_EQ(b_result.wait_for(seconds(10)), std::future_status::ready);
  const auto took = Clock::now() - closed_at;
  waiter.join();
  Status got = b_result.get();
  ASSERT_TRUE(got.ok()) << got.ToString();
  EXPECT_LT(took, seconds(2)) << "not prompt";
  EXPECT_GT(lock_b.revision(), token_a);
  EXPECT_EQ(KeysUnder(client_b.get(), "close/"),
            std::vector<std::string>{lock_b.key()});
  // A closed session cannot lock again.
  EXPECT_EQ(lock_a.Lock(seconds(1)).code(), Status::Code::kAborted);
  EXPECT_TRUE(a->Close().ok());  // once is enough

  // A waiter whose session is closed while it waits gets Aborted at once.
  auto client_c = cluster_->NewClient();
  auto c = NewSession(client_c.get(), 10);
  Mutex lock_c(c.get(), "close/");
  std::promise<Status> c_locked;
  auto c_result = c_locked.get_future();
  std::thread doomed([&] { c_locked.set_value(lock_c.Lock(seconds(30))); });
  EXPECT_EQ(c_result.wait_for(seconds(1)), std::future_status::timeout);
  ASSERT_TRUE(c->Close().ok());
  ASSERT_EQ(c_result.wait_for(seconds(5)), std::future_status::ready);
  doomed.join();
  EXPECT_EQ(c_result.get().code(), Status::Code::kAborted);
  EXPECT_TRUE(lock_c.key().empty());
  EXPECT_EQ(KeysUnder(client_b.get(), "close/"),
            std::vector<std::string>{lock_b.key()});
  EXPECT_TRUE(lock_b.Unlock().ok());
  EXPECT_EQ(lock_b.Unlock().code(), Status::Code::kFailedPrecondition);
}

TEST_F(ConcurrencyTest, AHolderWhoseKeepAlivesStopLosesTheLockWithinItsTtl) {
  auto client_a = cluster_->NewClient();
  auto client_b = cluster_->NewClient();
  auto a = NewSession(client_a.get(), 2);
  auto b = NewSession(client_b.get(), 10);
  Mutex lock_a(a.get(), "ttl/");
  Mutex lock_b(b.get(), "ttl/");
  ASSERT_TRUE(lock_a.Lock(seconds(10)).ok());
  std::promise<Status> b_locked;
  auto b_result = b_locked.get_future();
  std::thread waiter([&] { b_locked.set_value(lock_b.Lock(seconds(30))); });
  EXPECT_EQ(b_result.wait_for(seconds(3)), std::future_status::timeout)
      << "the keep-alives keep a's lock past its TTL";

  // As if a's process had died: no keep-alive, no revoke.
  const auto stopped_at = Clock::now();
  a->Orphan();
  EXPECT_FALSE(a->alive());
  ASSERT_EQ(b_result.wait_for(seconds(a->ttl() + 10)),
            std::future_status::ready);
  const auto took = Clock::now() - stopped_at;
  waiter.join();
  Status got = b_result.get();
  ASSERT_TRUE(got.ok()) << got.ToString();
  // Not at once (the lease had to expire), but within its TTL and slack.
  EXPECT_GT(took, milliseconds(300));
  EXPECT_LT(took, seconds(a->ttl() + 3));
  EXPECT_GT(lock_b.revision(), lock_a.revision());
  EXPECT_EQ(client_b->Get(lock_a.key()).status().code(),
            Status::Code::kNotFound);
  EXPECT_TRUE(lock_b.Unlock().ok());
}

TEST_F(ConcurrencyTest, ALockTimeoutWhileHeldLeavesNoKey) {
  auto client_a = cluster_->NewClient();
  auto client_b = cluster_->NewClient();
  auto a = NewSession(client_a.get(), 10);
  auto b = NewSession(client_b.get(), 10);
  Mutex lock_a(a.get(), "to/");
  Mutex lock_b(b.get(), "to/");
  ASSERT_TRUE(lock_a.Lock(seconds(10)).ok());

  const auto start = Clock::now();
  Status got = lock_b.Lock(seconds(1));
  const auto took = Clock::now() - start;
  EXPECT_EQ(got.code(), Status::Code::kTimeout) << got.ToString();
  EXPECT_GE(took, seconds(1));
  EXPECT_LT(took, seconds(6));
  EXPECT_TRUE(lock_b.key().empty());
  EXPECT_EQ(lock_b.revision(), 0);
  // Only the holder's key is left.
  EXPECT_EQ(KeysUnder(client_b.get(), "to/"),
            std::vector<std::string>{"to/" + Hex(a->lease())});

  // The holder is unaffected; once it unlocks, b gets the lock.
  ASSERT_TRUE(lock_a.Unlock().ok());
  ASSERT_TRUE(lock_b.Lock(seconds(10)).ok());
  EXPECT_GT(lock_b.revision(), 0);
  EXPECT_TRUE(lock_b.Unlock().ok());
  EXPECT_TRUE(KeysUnder(client_b.get(), "to/").empty());
}

// What an observer was told, in order: "key=value", or "none".
class Observed {
 public:
  void Add(const StatusOr<KeyValue>& leader) {
    std::lock_guard<std::mutex> lock(mu_);
    if (leader.ok()) {
      seen_.push_back(leader->key + "=" + leader->value);
    } else {
      seen_.push_back(leader.status().code() == Status::Code::kNotFound
                          ? "none"
                          : leader.status().ToString());
    }
    cv_.notify_all();
  }
  // Waits until `n` things were told; all of them.
  std::vector<std::string> WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, seconds(10), [&] { return seen_.size() >= n; });
    return seen_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> seen_;
};

TEST_F(ConcurrencyTest, AnElectionHasOneLeaderAtATimeAndIsObserved) {
  auto client_1 = cluster_->NewClient();
  auto client_2 = cluster_->NewClient();
  auto client_3 = cluster_->NewClient();
  auto s1 = NewSession(client_1.get(), 10);
  auto s2 = NewSession(client_2.get(), 10);
  auto s3 = NewSession(client_3.get(), 10);
  Election e1(s1.get(), "el");
  Election e2(s2.get(), "el/");
  Election observer(s3.get(), "el");
  EXPECT_EQ(observer.Leader().status().code(), Status::Code::kNotFound);

  ASSERT_TRUE(e1.Campaign("one", seconds(10)).ok());
  const std::string k1 = "el/" + Hex(s1->lease());
  const std::string k2 = "el/" + Hex(s2->lease());
  EXPECT_EQ(e1.key(), k1);
  auto leader = observer.Leader();
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  EXPECT_EQ(leader->key, k1);
  EXPECT_EQ(leader->value, "one");
  EXPECT_EQ(leader->create_revision, e1.revision());

  Observed observed;
  {
    auto watch = observer.Observe(
        [&](StatusOr<KeyValue> leader) { observed.Add(leader); });
    ASSERT_NE(watch, nullptr);
    EXPECT_EQ(observed.WaitFor(1), std::vector<std::string>{k1 + "=one"});

    // Not leading: e2 never campaigned, then its candidacy timed out.
    EXPECT_EQ(e2.Proclaim("mine").code(), Status::Code::kFailedPrecondition);
    EXPECT_EQ(e2.Campaign("two", seconds(1)).code(), Status::Code::kTimeout);
    EXPECT_EQ(e2.Proclaim("mine").code(), Status::Code::kFailedPrecondition);

    ASSERT_TRUE(e1.Proclaim("one-b").ok());
    EXPECT_EQ(observed.WaitFor(2),
              (std::vector<std::string>{k1 + "=one", k1 + "=one-b"}));

    std::promise<Status> campaigned;
    auto result = campaigned.get_future();
    std::thread candidate(
        [&] { campaigned.set_value(e2.Campaign("two", seconds(30))); });
    EXPECT_EQ(result.wait_for(seconds(1)), std::future_status::timeout);
    leader = observer.Leader();
    ASSERT_TRUE(leader.ok());
    EXPECT_EQ(leader->value, "one-b");

    ASSERT_TRUE(e1.Resign().ok());
    ASSERT_EQ(result.wait_for(seconds(10)), std::future_status::ready);
    candidate.join();
    ASSERT_TRUE(result.get().ok());
    EXPECT_EQ(e2.key(), k2);
    EXPECT_GT(e2.revision(), 0);
    leader = observer.Leader();
    ASSERT_TRUE(leader.ok());
    EXPECT_EQ(leader->key, k2);
    EXPECT_EQ(leader->value, "two");
    EXPECT_EQ(e1.Proclaim("again").code(), Status::Code::kFailedPrecondition);

    ASSERT_TRUE(e2.Proclaim("two-b").ok());
    ASSERT_TRUE(e2.Resign().ok());
    // Candidacies that never led (e2's first) were not told.
    EXPECT_EQ(observed.WaitFor(5),
              (std::vector<std::string>{k1 + "=one", k1 + "=one-b", k2 + "=two",
                                        k2 + "=two-b", "none"}));
  }
  EXPECT_EQ(observer.Leader().status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace raftkv
