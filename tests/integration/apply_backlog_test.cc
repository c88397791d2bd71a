// Integration tests with real raftkvd processes for a node whose applier
// cannot keep up with what the cluster commits (a test fault of raftkvd
// sleeps before each applied batch): the log entries it holds unapplied
// must stay within its share of the memory budget. A slow follower drops
// appends until it has caught up (the others commit meanwhile); a slow
// leader holds new writes back, and keeps in its log what the slow
// follower still needs. Either way every write is acknowledged,
// nothing is lost, and no election happens. Timeouts are generous on
// purpose. Must never signal a process that LocalCluster did not start.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "tests/integration/log_text.h"
#include "tests/integration/metrics_scrape.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using ::raftkv::integration::Count;
using ::raftkv::integration::Get;
using ::raftkv::integration::Got;
using ::raftkv::integration::MetricsPort;
using ::raftkv::integration::ReadFile;
using ::raftkv::integration::Sample;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// 32 MB is the smallest budget: 8 MB for the in-memory log, of which 4 MB
// may be unapplied.
const std::vector<std::string> kSmallBudget = {"--memory_budget_mb=32"};
constexpr uint64_t kLogShare = 8ull << 20;
// What a follower may hold beyond it: the log is compacted only after an
// applied batch, and appends already in flight when it paused land first
// (at most the peer queue's share of the budget, 10% over two peers, plus
// the one message a heartbeat lets the leader send: 128 KB, 1 MB allowed).
constexpr uint64_t kInFlightAppends = (32ull << 20) / 10 / 2 + (1u << 20);
// A slow applier: 50 entries a second, whatever the machine's load (the
// delay is a sleep), so that the writers, even on a busy machine, outpace
// it and the backlog fills.
const std::string kSlowFollower = "--testonly_apply_delay_us=20000";
constexpr int kWriters = 4;
constexpr int kWritesEach = 125;
constexpr size_t kValueBytes = 32000;  // 16 MB in all, twice the log share

// Polls every node's status until stopped; remembers the most log bytes
// each held.
class LogWatcher {
 public:
  explicit LogWatcher(const LocalCluster& cluster)
      : client_(cluster.NewClient()), max_(cluster.size() + 1, 0) {
    thread_ = std::thread([this] {
      while (!stop_) {
        for (const NodeInfo& n : client_->ClusterStatus()) {
          if (!n.error.ok() || n.id == 0 || n.id >= max_.size()) continue;
          std::lock_guard<std::mutex> lock(mu_);
          max_[n.id] = std::max(max_[n.id], n.log_cache_bytes);
        }
        std::this_thread::sleep_for(milliseconds(50));
      }
    });
  }
  ~LogWatcher() { StopAndJoin(); }
  void StopAndJoin() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t max_bytes(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    return max_[id];
  }

 private:
  std::unique_ptr<Client> client_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<uint64_t> max_;
};

// kWriters clients, each writing kWritesEach distinct keys; returns the
// errors.
std::vector<std::string> WriteAll(const LocalCluster& cluster) {
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      auto client = cluster.NewClient(std::chrono::seconds(60));
      for (int i = 0; i < kWritesEach; ++i) {
        const std::string key =
            "w" + std::to_string(w) + "-" + std::to_string(i);
        auto r = client->Put(key, std::string(kValueBytes, 'a' + w));
        if (!r.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          errors.push_back(key + ": " + r.status().ToString());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

// Waits until node `id` has applied `index`; returns its status.
NodeInfo WaitApplied(const LocalCluster& cluster, int id, uint64_t index) {
  ClientOptions options = cluster.client_options();
  options.endpoints = {cluster.client_address(id)};
  auto direct = std::move(Client::Create(options)).value();
  NodeInfo info;
  for (auto until = Clock::now() + std::chrono::seconds(120);
       Clock::now() < until;) {
    info = direct->ClusterStatus()[0];
    if (info.error.ok() && info.applied_index >= index) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return info;
}

// Every key written is there, read on node `id` itself.
void ExpectAllWritten(const LocalCluster& cluster, int id) {
  ClientOptions options = cluster.client_options();
  options.endpoints = {cluster.client_address(id)};
  auto direct = std::move(Client::Create(options)).value();
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < kWritesEach; i += 50) {
      const std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
      auto got = direct->Get(key, ReadOptions{true});
      ASSERT_TRUE(got.ok())
          << key << " on node " << id << ": " << got.status().ToString();
      EXPECT_EQ(got->value, std::string(kValueBytes, 'a' + w)) << key;
    }
  }
}

// Restarts a follower of `leader` with a slow applier; returns its id (0 if
// the cluster did not keep its leader meanwhile).
int RestartAFollowerSlow(LocalCluster& cluster, int leader,
                         const std::string& slow_flag = kSlowFollower) {
  const int slow = leader == 3 ? 2 : 3;
  EXPECT_EQ(cluster.Stop(slow), 0);
  cluster.Start(slow, {slow_flag});
  return cluster.WaitForLeader() == leader ? slow : 0;
}

TEST(ApplyBacklogTest, ASlowFollowerKeepsItsLogWithinBudget) {
  LocalCluster cluster(3, kSmallBudget);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  const int slow = RestartAFollowerSlow(cluster, leader);
  ASSERT_NE(slow, 0);
  auto client = cluster.NewClient();
  const uint64_t term = client->ClusterStatus()[leader - 1].term;

  LogWatcher watcher(cluster);
  const std::vector<std::string> errors = WriteAll(cluster);
  EXPECT_TRUE(errors.empty())
      << errors.size() << " errors, first: " << errors[0];
  const NodeInfo at_leader = client->ClusterStatus()[leader - 1];
  const NodeInfo info = WaitApplied(cluster, slow, at_leader.commit_index);
  watcher.StopAndJoin();

  EXPECT_GE(info.applied_index, at_leader.commit_index)
      << "node " << slow << " never caught up";
  // The entries it held never outgrew the log's share of the budget, but
  // for appends in flight.
  EXPECT_LE(watcher.max_bytes(slow), kLogShare + kInFlightAppends);
  // It did hold back: without that it would have held most of the 16 MB.
  const std::string log = ReadFile(cluster.log_path(slow));
  EXPECT_GE(Count(log, "holding back new entries"), 1u) << log;
  EXPECT_GE(Count(log, "applier caught up"), 1u);
  // No election: the same leader in the same term.
  const NodeInfo after = client->ClusterStatus()[leader - 1];
  EXPECT_EQ(after.role, "leader");
  EXPECT_EQ(after.term, term);
  ExpectAllWritten(cluster, slow);
}

// The same by the count of entries, with a log the leader compacts often:
// the leader must keep what the slow follower still needs (it is in
// touch, only behind) rather than send it snapshot after snapshot.
TEST(ApplyBacklogTest, TheLeaderKeepsWhatASlowFollowerNeeds) {
  LocalCluster cluster(3, {"--max_unapplied_entries=100",
                           "--snapshot_entries=400", "--log_entries_kept=50"});
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  // 100 entries a second: more than 100 behind within a second of writing.
  const int slow =
      RestartAFollowerSlow(cluster, leader, "--testonly_apply_delay_us=10000");
  ASSERT_NE(slow, 0);
  auto client = cluster.NewClient();

  std::vector<std::thread> writers;
  std::atomic<int> errors{0};
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto c = cluster.NewClient(std::chrono::seconds(60));
      for (int i = 0; i < 200; ++i) {
        if (!c->Put("s" + std::to_string(w) + "-" + std::to_string(i), "v")
                 .ok()) {
          ++errors;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  const NodeInfo at_leader = client->ClusterStatus()[leader - 1];
  const NodeInfo info = WaitApplied(cluster, slow, at_leader.commit_index);

  EXPECT_EQ(errors, 0);
  EXPECT_GE(info.applied_index, at_leader.commit_index);
  const std::string log = ReadFile(cluster.log_path(slow));
  EXPECT_GE(Count(log, "holding back new entries"), 1u) << log;
  EXPECT_EQ(Count(log, "installed snapshot"), 0u)
      << "the leader dropped entries the slow follower still needed";
}

TEST(ApplyBacklogTest, ASlowLeaderHoldsWritesBack) {
  // Every node is slow, so the leader too (200 entries a second, a sleep:
  // commits outpace it however busy the machine is); 128 writes in flight
  // against a limit of 32 committed entries unapplied. Each applied entry
  // answers a client, whose next write then arrives while the backlog is
  // still full. A trickle of writes that do not wait for answers makes
  // sure some arrive while it is full, however the applier batches (a
  // batch of all 128 answers every client at once, when it is empty).
  std::vector<std::string> flags = kSmallBudget;
  flags.push_back("--listen_metrics=127.0.0.1:0");
  flags.push_back("--testonly_apply_delay_us=5000");
  flags.push_back("--max_unapplied_entries=32");
  LocalCluster cluster(3, flags);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient();
  const uint64_t term = client->ClusterStatus()[leader - 1].term;

  constexpr int kClients = 4, kInFlight = 32, kWrites = 300;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  std::vector<std::string> errors;
  std::atomic<bool> stop{false};
  std::vector<std::atomic<int>> issued(kClients);
  std::vector<std::unique_ptr<Client>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(cluster.NewClient(std::chrono::seconds(60)));
  }
  // Each client keeps kInFlight puts going until it issued kWrites.
  std::function<void(int)> issue = [&](int c) {
    const int i = issued[c]++;
    if (stop || i >= kWrites) return;
    const std::string key = "a" + std::to_string(c) + "-" + std::to_string(i);
    clients[c]->PutAsync(key, "v" + key, [&, c, key](StatusOr<int64_t> r) {
      issue(c);  // first: once the last is counted, the test moves on
      std::lock_guard<std::mutex> lock(mu);
      if (!r.ok()) errors.push_back(key + ": " + r.status().ToString());
      ++done;
      cv.notify_all();
    });
  };
  for (int c = 0; c < kClients; ++c) {
    for (int k = 0; k < kInFlight; ++k) issue(c);
  }
  constexpr int kTrickle = 100;
  auto trickler = cluster.NewClient(std::chrono::seconds(60));
  std::thread trickle([&] {
    for (int i = 0; i < kTrickle && !stop; ++i) {
      const std::string key = "t-" + std::to_string(i);
      trickler->PutAsync(key, "v" + key, [&, key](StatusOr<int64_t> r) {
        std::lock_guard<std::mutex> lock(mu);
        if (!r.ok()) errors.push_back(key + ": " + r.status().ToString());
        ++done;
        cv.notify_all();
      });
      std::this_thread::sleep_for(milliseconds(10));
    }
  });
  constexpr int kAll = kClients * kWrites + kTrickle;
  bool all_answered = false;
  {
    std::unique_lock<std::mutex> lock(mu);
    all_answered = cv.wait_for(lock, std::chrono::seconds(180),
                               [&] { return done == kAll; });
  }
  // Whatever happened, no callback may outlive what it uses.
  stop = true;
  trickle.join();
  trickler.reset();
  clients.clear();
  ASSERT_TRUE(all_answered) << done << " of " << kAll << " answered";
  EXPECT_TRUE(errors.empty())
      << errors.size() << " errors, first: " << errors[0];

  // The leader held writes back (logged it, counted them), and they all
  // landed.
  const std::string log = ReadFile(cluster.log_path(leader));
  EXPECT_GE(Count(log, "holding back new entries"), 1u) << log;
  const int port = MetricsPort(cluster, leader);
  ASSERT_NE(port, 0) << log;
  const Got metrics = Get(port, "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_GE(Sample(metrics.body, "raftkv_apply_backlog_episodes_total"), 1)
      << metrics.body;
  EXPECT_GT(Sample(metrics.body, "raftkv_writes_held_back_total"), 0)
      << metrics.body;
  // Retries of writes still waiting joined them instead of adding entries
  // (the overloaded leader once wrote 10x its writes, answering none).
  EXPECT_LT(Sample(metrics.body, "raftkv_raft_applied_index"), 2 * kAll)
      << "retries: "
      << Sample(metrics.body, "raftkv_write_retries_joined_total");
  const NodeInfo after = client->ClusterStatus()[leader - 1];
  EXPECT_EQ(after.role, "leader");
  EXPECT_EQ(after.term, term);
  for (int c = 0; c < kClients; ++c) {
    for (int i = 0; i < kWrites; i += 100) {
      const std::string key = "a" + std::to_string(c) + "-" + std::to_string(i);
      auto got = client->Get(key);
      ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
      EXPECT_EQ(got->value, "v" + key);
    }
  }
}

}  // namespace
}  // namespace raftkv
