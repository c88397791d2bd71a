// Integration tests with real raftkvd processes: the cluster survives the
// loss of any single node, a client never sees an error while it does, and
// no acknowledged write is lost. Timeouts here are generous on purpose
// (CI machines are noisy); the failover time itself is measured by
// raftkv-bench failover and reported in docs/failover.md. Fast
// failover is checked by what the followers do, not by a clock: when the
// leader's process dies, a follower campaigns because its connection broke
// (the "connection to leader N lost; campaigning" line of server/node.cc),
// and with --fast_failover=false none does.
// Must never signal a process that LocalCluster did not start.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "tests/integration/log_text.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using ::raftkv::integration::Count;
using ::raftkv::integration::ReadFile;

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Waits up to `timeout` until node `id` serves `value` for `key` from its
// own state (a serializable read): it has caught up that far.
bool WaitForLocalValue(const LocalCluster& cluster, int id,
                       const std::string& key, const std::string& value,
                       std::chrono::seconds timeout) {
  auto direct = cluster.NewClientOf(id);
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until) {
    auto r = direct->Get(key, ReadOptions{true});
    if (r.ok() && r->value == value) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return false;
}

// Writes key-N = value-N in a loop and remembers what was acknowledged.
class Writer {
 public:
  Writer(Client* client, std::string prefix)
      : client_(client), prefix_(std::move(prefix)) {}
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void StopAndJoin() {
    stop_ = true;
    thread_.join();
  }
  std::map<std::string, std::string> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  std::vector<Status> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }
  // Acked writes whose acknowledgement arrived after `t`.
  int AckedAfter(Clock::time_point t) {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (auto at : ack_times_) n += at > t;
    return n;
  }
  Clock::time_point FirstAckAfter(Clock::time_point t) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto at : ack_times_) {
      if (at > t) return at;
    }
    return Clock::time_point::max();
  }
  // The acknowledgement of the first write issued after `t` (a write in
  // flight at `t` may be acknowledged at once: the leader had answered).
  Clock::time_point FirstAckOfAWriteIssuedAfter(Clock::time_point t) {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < invoke_times_.size(); ++i) {
      if (invoke_times_[i] > t) return ack_times_[i];
    }
    return Clock::time_point::max();
  }

 private:
  void Loop() {
    for (int i = 0; !stop_ && i < 1000000; ++i) {
      const std::string key = prefix_ + std::to_string(i);
      const std::string value = "value-" + std::to_string(i);
      const auto invoked = Clock::now();
      auto r = client_->Put(key, value);
      std::lock_guard<std::mutex> lock(mu_);
      if (r.ok()) {
        acked_[key] = value;
        invoke_times_.push_back(invoked);
        ack_times_.push_back(Clock::now());
      } else {
        errors_.push_back(r.status());
      }
    }
  }

  Client* client_;
  std::string prefix_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, std::string> acked_;
  std::vector<Clock::time_point> ack_times_;
  std::vector<Clock::time_point> invoke_times_;  // of the write acked there
  std::vector<Status> errors_;
};

void ExpectAllReadable(Client& client,
                       const std::map<std::string, std::string>& acked) {
  for (const auto& [key, value] : acked) {
    auto r = client.Get(key);
    ASSERT_TRUE(r.ok()) << key << ": " << r.status().ToString();
    EXPECT_EQ(r->value, value) << key;
  }
}

TEST(FailoverTest, LeaderKillIsInvisibleToAWriter) {
  LocalCluster cluster(3);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient(std::chrono::seconds(10));
  Writer writer(client.get(), "k");
  writer.Start();
  std::this_thread::sleep_for(milliseconds(500));
  const auto kill_time = Clock::now();
  cluster.Kill(leader);
  std::this_thread::sleep_for(milliseconds(1500));
  writer.StopAndJoin();

  EXPECT_TRUE(writer.errors().empty())
      << "first error: " << writer.errors().front().ToString();
  EXPECT_GT(writer.AckedAfter(kill_time), 0) << "no write after the kill";
  const auto resumed = writer.FirstAckAfter(kill_time) - kill_time;
  // Generous bound for noisy machines; typical figures are in
  // docs/failover.md.
  EXPECT_LT(resumed, std::chrono::seconds(3));
  ExpectAllReadable(*client, writer.acked());

  // The killed node catches up after a restart.
  cluster.Start(leader);
  const std::map<std::string, std::string> acked = writer.acked();
  ASSERT_FALSE(acked.empty());
  auto last = acked.rbegin();
  EXPECT_TRUE(WaitForLocalValue(cluster, leader, last->first, last->second,
                                std::chrono::seconds(10)))
      << "restarted node did not catch up";
}

// The leader hangs (SIGSTOP: its connections stay open, nothing answers).
// The writer's client must leave it once the other nodes follow a new
// leader, long before its attempt timeout (20 s here): the leader probe of
// client/client_impl.cc. Returns the time from the pause to the
// acknowledgement of the first write issued after it (max() if none within
// 10 s).
Clock::duration FirstWriteAfterLeaderPause(std::chrono::milliseconds probe) {
  LocalCluster cluster(3);
  const int leader = cluster.WaitForLeader();
  EXPECT_NE(leader, 0);
  if (leader == 0) return Clock::duration::max();
  ClientOptions options = cluster.client_options();
  options.deadline = std::chrono::seconds(40);
  options.attempt_timeout = std::chrono::seconds(20);
  options.leader_probe_after = probe;
  auto client = std::move(Client::Create(options)).value();
  Writer writer(client.get(), "p");
  writer.Start();
  std::this_thread::sleep_for(milliseconds(500));
  const auto pause_time = Clock::now();
  cluster.Pause(leader);
  auto first = Clock::time_point::max();
  while (first == Clock::time_point::max() &&
         Clock::now() - pause_time < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(milliseconds(10));
    first = writer.FirstAckOfAWriteIssuedAfter(pause_time);
  }
  cluster.Resume(leader);
  writer.StopAndJoin();
  EXPECT_TRUE(writer.errors().empty())
      << "first error: " << writer.errors().front().ToString();
  ExpectAllReadable(*client, writer.acked());
  return first == Clock::time_point::max() ? Clock::duration::max()
                                           : first - pause_time;
}

TEST(FailoverTest, AHungLeaderIsLeftOnceItsPeersFollowAnother) {
  const auto resumed = FirstWriteAfterLeaderPause(milliseconds(100));
  EXPECT_LT(resumed, std::chrono::seconds(10))
      << "the writer waited for its attempt timeout";
}

// The control: without the probe the same writer waits out its attempt
// timeout, so the test above can fail.
TEST(FailoverTest, WithoutTheProbeAHungLeaderHoldsTheWriter) {
  const auto resumed = FirstWriteAfterLeaderPause(milliseconds(0));
  EXPECT_GE(resumed, std::chrono::seconds(10));
}

// How many times the followers of `leader` logged that they campaign
// because their connection to it broke (server/node.cc, Node::OnPeerDown).
int LostLeaderCampaigns(const LocalCluster& cluster, int leader) {
  const std::string line =
      "connection to leader " + std::to_string(leader) + " lost; campaigning";
  int n = 0;
  for (int id = 1; id <= cluster.size(); ++id) {
    if (id != leader) n += Count(ReadFile(cluster.log_path(id)), line);
  }
  return n;
}

// Kills the leader of a fresh 3-node cluster started with `flags`, waits
// (up to 10 s) until another leader is elected, and returns how many
// lost-connection campaigns its followers logged (-1 if the test failed
// before that).
int CampaignsAfterLeaderDeath(const std::vector<std::string>& flags) {
  LocalCluster cluster(3, flags);
  const int leader = cluster.WaitForLeader();
  EXPECT_NE(leader, 0);
  if (leader == 0) return -1;
  // The followers hear from the leader (a write commits through them).
  EXPECT_TRUE(cluster.NewClient()->Put("before", "1").ok());
  EXPECT_EQ(LostLeaderCampaigns(cluster, leader), 0);
  cluster.Kill(leader);
  // Until their election timeout the followers may still name the dead
  // leader: wait for another one.
  int next = 0;
  const auto until = Clock::now() + std::chrono::seconds(10);
  for (int i = 0; i < 200 && (next == 0 || next == leader); ++i) {
    if (Clock::now() > until) break;
    next = cluster.WaitForLeader(milliseconds(500));
    if (next == leader) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_NE(next, 0) << "no leader after the kill";
  EXPECT_NE(next, leader) << "no new leader after the kill";
  // The line is logged before the campaign that elected `next`; poll a
  // little anyway in case the log is written late.
  int campaigns = 0;
  for (int i = 0; i < 20 && campaigns == 0; ++i) {
    campaigns = LostLeaderCampaigns(cluster, leader);
    if (campaigns == 0) std::this_thread::sleep_for(milliseconds(50));
  }
  return campaigns;
}

TEST(FailoverTest, FollowersCampaignWhenTheDeadLeadersConnectionBreaks) {
  EXPECT_GE(CampaignsAfterLeaderDeath({}), 1)
      << "no follower campaigned on the broken connection: fast failover "
         "(server/node.cc OnPeerDown) did not act";
}

// The control: the same check must see nothing when fast failover is off
// (the followers wait for their election timeout), or it proves nothing.
TEST(FailoverTest,
     WithoutFastFailoverNoFollowerCampaignsOnTheBrokenConnection) {
  EXPECT_EQ(CampaignsAfterLeaderDeath({"--fast_failover=false"}), 0);
}

TEST(FailoverTest, FollowerKillIsInvisibleToAWriter) {
  LocalCluster cluster(3);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  const int follower = leader % 3 + 1;
  auto client = cluster.NewClient();
  Writer writer(client.get(), "f");
  writer.Start();
  std::this_thread::sleep_for(milliseconds(300));
  const auto kill_time = Clock::now();
  cluster.Kill(follower);
  std::this_thread::sleep_for(milliseconds(700));
  writer.StopAndJoin();
  EXPECT_TRUE(writer.errors().empty());
  EXPECT_GT(writer.AckedAfter(kill_time), 0);
  ExpectAllReadable(*client, writer.acked());
}

TEST(FailoverTest, FullClusterRestartKeepsData) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  std::map<std::string, std::string> written;
  {
    auto client = cluster.NewClient();
    for (int i = 0; i < 50; ++i) {
      const std::string key = "r" + std::to_string(i);
      ASSERT_TRUE(client->Put(key, "v" + std::to_string(i)).ok());
      written[key] = "v" + std::to_string(i);
    }
    ASSERT_EQ(*client->Delete("r7"), 1);
    written.erase("r7");
  }
  for (int id = 1; id <= 3; ++id) cluster.Kill(id);
  for (int id = 1; id <= 3; ++id) cluster.Start(id);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  ExpectAllReadable(*client, written);
  EXPECT_TRUE(client->Get("r7").status().IsNotFound());
  auto range = client->GetPrefix("r");
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->kvs.size(), written.size());
}

// SIGTERM is a clean shutdown: exit code 0 (under --asan, also no
// sanitizer report at teardown), and the data is there after a restart.
TEST(FailoverTest, SigtermStopsEveryNodeCleanly) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  ASSERT_TRUE(cluster.NewClient()->Put("stopped", "cleanly").ok());
  for (int id = 1; id <= 3; ++id) {
    EXPECT_EQ(cluster.Stop(id), 0) << "see " << cluster.log_path(id);
  }
  for (int id = 1; id <= 3; ++id) cluster.Start(id);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto kv = cluster.NewClient()->Get("stopped");
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  EXPECT_EQ(kv->value, "cleanly");
}

TEST(FailoverTest, MajorityLossFailsWritesAfterTheDeadline) {
  LocalCluster cluster(3);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient(milliseconds(1500));
  ASSERT_TRUE(client->Put("before", "1").ok());
  // One node down: still available.
  cluster.Kill(leader % 3 + 1);
  EXPECT_TRUE(client->Put("one-down", "1").ok());
  // Two down: unavailable, and the call returns at its deadline.
  cluster.Kill(leader);
  const auto start = Clock::now();
  auto r = client->Put("two-down", "1");
  const auto took = Clock::now() - start;
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(5));
  auto read = client->Get("before");
  EXPECT_TRUE(read.status().IsUnavailable()) << read.status().ToString();
  // Quorum back: everything acknowledged is there.
  cluster.Start(leader);
  client->set_deadline(std::chrono::seconds(10));
  auto before = client->Get("before");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_TRUE(client->Get("one-down").ok());
}

TEST(FailoverTest, LaggingNodeCatchesUpFromASnapshot) {
  // Snapshot and compact every 50 entries, keeping 10: a node that misses
  // 300 writes can only catch up by installing a snapshot.
  LocalCluster cluster(3, {"--snapshot_entries=50", "--log_entries_kept=10"});
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  const int lagging = leader % 3 + 1;
  cluster.Kill(lagging);
  auto client = cluster.NewClient();
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(client->Put("s" + std::to_string(i), std::to_string(i)).ok());
  }
  ASSERT_EQ(*client->Delete("s5"), 1);
  cluster.Start(lagging);
  ASSERT_TRUE(WaitForLocalValue(cluster, lagging, "s299", "299",
                                std::chrono::seconds(10)))
      << "lagging node never caught up";
  auto direct = cluster.NewClientOf(lagging);
  // Its state is the snapshot's plus what followed, key for key.
  auto range = direct->GetPrefix("s", 0, ReadOptions{true});
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->kvs.size(), 299u);
  EXPECT_TRUE(direct->Get("s5", ReadOptions{true}).status().IsNotFound());
  // And it did install a snapshot.
  EXPECT_NE(ReadFile(cluster.log_path(lagging)).find("installed snapshot"),
            std::string::npos);
}

TEST(FailoverTest, ANodeDownFor100000WritesCatchesUpBySnapshot) {
  // Compaction keeps 1,000 entries: 100,000 writes later, only a snapshot
  // can bring the node back.
  LocalCluster cluster(3,
                       {"--snapshot_entries=20000", "--log_entries_kept=1000"});
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  const int down = leader % 3 + 1;
  cluster.Kill(down);
  auto client = cluster.NewClient(std::chrono::seconds(30));
  // 100,000 writes, 64 in flight.
  constexpr int kWrites = 100000;
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0, done = 0, failed = 0;
  for (int i = 0; i < kWrites; ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < 64; });
      ++in_flight;
    }
    client->PutAsync("d" + std::to_string(i), std::to_string(i),
                     [&](StatusOr<int64_t> r) {
                       std::lock_guard<std::mutex> lock(mu);
                       --in_flight;
                       ++done;
                       failed += r.ok() ? 0 : 1;
                       cv.notify_all();
                     });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == kWrites; });
  }
  ASSERT_EQ(failed, 0);
  cluster.Start(down);
  ASSERT_TRUE(WaitForLocalValue(cluster, down, "d99999", "99999",
                                std::chrono::seconds(60)))
      << "the node never caught up";
  auto direct = cluster.NewClientOf(down);
  auto range = direct->GetPrefix("d", 0, ReadOptions{true});
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->kvs.size(), static_cast<size_t>(kWrites));
  EXPECT_NE(ReadFile(cluster.log_path(down)).find("installed snapshot"),
            std::string::npos);
}

}  // namespace
}  // namespace raftkv
