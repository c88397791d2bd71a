// Integration tests of watches and the retained history with real raftkvd
// processes (docs/api.md): events carry what etcd's do; a watch resumes
// from the revision after the last one delivered across a leader change
// without losing or repeating one; a slow reader's watch is cancelled with
// the revision to resume from while writes go on; reads at an old revision;
// compaction and the Compacted error. Timeouts are generous on purpose.
// Must never signal a process that LocalCluster did not start.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "client/blocking_frames.h"
#include "client/kv.pb.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Collects what a watch delivers, for the test thread to wait on.
class Collector {
 public:
  std::function<void(StatusOr<WatchUpdate>)> Callback() {
    return [this](StatusOr<WatchUpdate> u) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!u.ok()) {
        ended_ = u.status();
      } else {
        last_revision_ = std::max(last_revision_, u->revision);
        for (const WatchEvent& e : u->events) events_.push_back(e);
      }
      cv_.notify_all();
    };
  }
  // Waits until `n` events arrived (false on timeout).
  bool WaitForEvents(size_t n,
                     std::chrono::seconds timeout = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return events_.size() >= n; });
  }
  bool WaitForEnd(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return !ended_.ok(); });
  }
  std::vector<WatchEvent> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  Status ended() {
    std::lock_guard<std::mutex> lock(mu_);
    return ended_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchEvent> events_;
  int64_t last_revision_ = 0;
  Status ended_;
};

TEST(WatchTest, EventsCarryKindRevisionsVersionAndPreviousValue) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  Collector got;
  WatchOptions options;
  options.range_end = PrefixRangeEnd("svc/");
  options.prev_kv = true;
  auto watch = client->Watch("svc/", options, got.Callback());
  // The watch starts at "now": wait until it is created before writing.
  std::this_thread::sleep_for(milliseconds(300));
  auto r1 = client->Put("svc/a", "1");
  auto r2 = client->Put("svc/a", "2");
  ASSERT_TRUE(client->Put("other", "x").ok());  // outside the prefix
  auto r3 = client->Delete("svc/a");
  ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok());
  ASSERT_TRUE(got.WaitForEvents(3));
  std::this_thread::sleep_for(milliseconds(200));
  const std::vector<WatchEvent> events = got.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, WatchEvent::Type::kPut);
  EXPECT_EQ(events[0].kv.key, "svc/a");
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_EQ(events[0].kv.mod_revision, *r1);
  EXPECT_EQ(events[0].kv.create_revision, *r1);
  EXPECT_EQ(events[0].kv.version, 1);
  EXPECT_FALSE(events[0].has_prev_kv);
  EXPECT_EQ(events[1].kv.value, "2");
  EXPECT_EQ(events[1].kv.version, 2);
  EXPECT_EQ(events[1].kv.create_revision, *r1);
  ASSERT_TRUE(events[1].has_prev_kv);
  EXPECT_EQ(events[1].prev_kv.value, "1");
  EXPECT_EQ(events[2].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(events[2].kv.key, "svc/a");
  ASSERT_TRUE(events[2].has_prev_kv);
  EXPECT_EQ(events[2].prev_kv.value, "2");
  EXPECT_GT(events[2].kv.mod_revision, events[1].kv.mod_revision);
}

TEST(WatchTest, AWatchFromAnOldRevisionReplaysTheHistoryThenFollows) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  auto first = client->Put("k", "0");
  ASSERT_TRUE(first.ok());
  for (int i = 1; i < 50; ++i) {
    ASSERT_TRUE(client->Put("k", std::to_string(i)).ok());
  }
  Collector got;
  WatchOptions options;
  options.start_revision = *first;
  auto watch = client->Watch("k", options, got.Callback());
  ASSERT_TRUE(got.WaitForEvents(50));
  for (int i = 50; i < 60; ++i) {
    ASSERT_TRUE(client->Put("k", std::to_string(i)).ok());
  }
  ASSERT_TRUE(got.WaitForEvents(60));
  const auto events = got.events();
  ASSERT_EQ(events.size(), 60u);
  for (int i = 0; i < 60; ++i) {
    EXPECT_EQ(events[i].kv.value, std::to_string(i)) << i;
    EXPECT_EQ(events[i].kv.mod_revision, *first + i) << i;
  }
}

TEST(WatchTest, AWatchResumesAcrossALeaderChangeWithoutLossOrRepeat) {
  LocalCluster cluster(3);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto client = cluster.NewClient(std::chrono::seconds(20));
  Collector got;
  WatchOptions options;
  options.range_end = PrefixRangeEnd("r/");
  auto first = client->Put("r/start", "");
  ASSERT_TRUE(first.ok());
  options.start_revision = *first + 1;
  auto watch = client->Watch("r/", options, got.Callback());
  // Writes before, during and after the leader's death.
  std::vector<int64_t> revisions;
  for (int i = 0; i < 300; ++i) {
    if (i == 100) cluster.Kill(leader);
    auto r = client->Put("r/" + std::to_string(i), std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    revisions.push_back(*r);
  }
  ASSERT_TRUE(got.WaitForEvents(300, std::chrono::seconds(60)));
  std::this_thread::sleep_for(milliseconds(300));
  const auto events = got.events();
  ASSERT_EQ(events.size(), 300u) << "lost or repeated events";
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(events[i].kv.key, "r/" + std::to_string(i));
    EXPECT_EQ(events[i].kv.mod_revision, revisions[i]);
  }
  EXPECT_TRUE(got.ended().ok());
}

TEST(WatchTest, ReadsAtAnOldRevisionAndCompaction) {
  LocalCluster cluster(3, {"--auto_compaction_retention=0"});
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  auto r1 = client->Put("a", "1");
  auto r2 = client->Put("a", "2");
  ASSERT_TRUE(client->Delete("a").ok());
  auto deleted_at = client->GetPrefix("", 1);  // the revision now
  ASSERT_TRUE(r1.ok() && r2.ok() && deleted_at.ok());
  const auto r3 = std::make_optional(deleted_at->revision);
  auto at = [&](int64_t revision) {
    kv::RangeRequest range;
    range.set_key("a");
    range.set_revision(revision);
    return client->Range(range);
  };
  auto v1 = at(*r1);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  ASSERT_EQ(v1->kvs_size(), 1);
  EXPECT_EQ(v1->kvs(0).value(), "1");
  auto v2 = at(*r2);
  ASSERT_TRUE(v2.ok());
  ASSERT_EQ(v2->kvs_size(), 1);
  EXPECT_EQ(v2->kvs(0).value(), "2");
  EXPECT_EQ(v2->kvs(0).version(), 2);
  auto v3 = at(*r3);
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(v3->kvs_size(), 0);
  auto future = at(*r3 + 1000);
  EXPECT_EQ(future.status().code(), Status::Code::kFailedPrecondition);

  ASSERT_TRUE(client->Compact(*r2).ok());
  EXPECT_EQ(at(*r1).status().code(), Status::Code::kCompacted);
  auto still = at(*r2);
  ASSERT_TRUE(still.ok()) << still.status().ToString();
  EXPECT_EQ(still->kvs(0).value(), "2");
  EXPECT_EQ(client->Compact(*r1).code(), Status::Code::kCompacted);

  // A watch from a compacted revision ends with Compacted, naming the
  // oldest revision left.
  Collector got;
  WatchOptions options;
  options.start_revision = *r1;
  auto watch = client->Watch("a", options, got.Callback());
  ASSERT_TRUE(got.WaitForEnd());
  EXPECT_EQ(got.ended().code(), Status::Code::kCompacted);
  EXPECT_NE(got.ended().message().find(std::to_string(*r2 + 1)),
            std::string::npos)
      << got.ended().ToString();
  // Every member compacted (a serializable read on each).
  for (int id = 1; id <= 3; ++id) {
    auto member = cluster.NewClientOf(id);
    kv::RangeRequest range;
    range.set_key("a");
    range.set_revision(*r1);
    range.set_serializable(true);
    const auto until = Clock::now() + std::chrono::seconds(10);
    Status s;
    do {
      s = member->Range(range).status();
    } while (s.ok() && Clock::now() < until);
    EXPECT_EQ(s.code(), Status::Code::kCompacted) << "node " << id;
  }
}

TEST(WatchTest, ASlowReaderIsCancelledWithAResumeRevisionAndWritesGoOn) {
  LocalCluster cluster(3, {"--watch_max_unsent_mb=1"});
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  // A raw connection that creates a watch and then does not read.
  auto fd = wire::Dial(cluster.client_address(leader), "", milliseconds(10000));
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  kv::ClientRequest create;
  create.set_request_id(7);
  create.mutable_watch_create()->set_key("big/");
  create.mutable_watch_create()->set_range_end(PrefixRangeEnd("big/"));
  ASSERT_TRUE(
      wire::WriteFrame(*fd, create.SerializeAsString(), "watch create").ok());
  auto client = cluster.NewClient();
  std::this_thread::sleep_for(milliseconds(300));
  // Far more than a socket buffer plus the 1 MiB limit.
  const std::string value(64 << 10, 'v');
  const auto start = Clock::now();
  int64_t last = 0;
  for (int i = 0; i < 400; ++i) {
    auto r = client->Put("big/" + std::to_string(i % 10), value);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    last = *r;
  }
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(seconds, 60.0) << "writes stalled behind a slow watcher";
  // Now read: created, some events, then the cancellation saying where to
  // resume, and nothing after it.
  int64_t delivered_through = 0;
  bool cancelled = false;
  int64_t resume = 0;
  std::string pending;
  while (!cancelled) {
    std::string frame;
    Status read = wire::ReadFrame(*fd, &pending, 8 << 20, &frame, "watch");
    ASSERT_TRUE(read.ok()) << read.ToString();
    kv::ClientResponse response;
    ASSERT_TRUE(response.ParseFromString(frame));
    ASSERT_EQ(response.request_id(), 7u);
    const kv::WatchResponse& w = response.watch();
    for (const kv::Event& e : w.events()) {
      EXPECT_GT(e.kv().mod_revision(), delivered_through);
      delivered_through = e.kv().mod_revision();
    }
    if (w.canceled()) {
      cancelled = true;
      resume = w.resume_revision();
      EXPECT_NE(w.cancel_reason().find("too far behind"), std::string::npos)
          << w.cancel_reason();
    }
  }
  EXPECT_GT(resume, 0);
  EXPECT_LE(resume, last);
  // Every revision changed a big/ key: the resume revision is exactly the
  // one after the last delivered (lower repeats events, higher loses them).
  EXPECT_EQ(resume, delivered_through + 1);
  ::close(*fd);
  // The cluster is fine: a watch from the resume revision gets the rest.
  Collector got;
  WatchOptions options;
  options.range_end = PrefixRangeEnd("big/");
  options.start_revision = resume;
  auto watch = client->Watch("big/", options, got.Callback());
  ASSERT_TRUE(got.WaitForEvents(static_cast<size_t>(last - resume + 1)));
}

}  // namespace
}  // namespace raftkv
