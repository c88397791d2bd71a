// WatchHub tests (server/watch_hub.h) with a real Engine and KvStateMachine
// in a temp dir: the test plays the applier (applies batches, publishes
// their events, jumps after a "snapshot") and the loop (collects the frames
// the hub delivers, acknowledges history reads). Covers replay from history
// then following without a gap or a duplicate at the switch, start
// revisions in the future and compacted, filters and prev_kv, pacing of
// the replay by acknowledgements, cancel (with a last frame or silent),
// closed connections, progress requests, framing (fragments only for a
// revision too big for one frame) and Jump. The hub runs on its own
// thread: the tests wait for frames (bounded), and prove an absence with a
// probe watch served by the same publication or request, never by sleeping
// alone. Must never touch anything outside its temp dir.
#include "server/watch_hub.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "storage/engine.h"
#include "storage/history.h"
#include "storage/kv_state_machine.h"
#include "tests/storage/test_util.h"

namespace raftkv::server {
namespace {

using storage::testing::CommandEntry;
using storage::testing::PutCommand;
using storage::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr auto kWait = std::chrono::seconds(10);

struct Frame {
  WatchFrame frame;
  kv::WatchResponse response;
};

// The loop's side: every delivered frame, parsed; optionally acknowledges
// every history read at once (as a loop with an idle connection does).
class Collector {
 public:
  void Deliver(std::vector<WatchFrame> frames) {
    std::vector<std::pair<uint64_t, uint64_t>> acks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (WatchFrame& f : frames) {
        kv::ClientResponse response;
        EXPECT_TRUE(response.ParseFromString(f.bytes));
        EXPECT_TRUE(response.has_watch());
        EXPECT_EQ(response.request_id(), f.watch_id);
        if (f.ack_requested) acks.emplace_back(f.connection, f.watch_id);
        frames_.push_back({std::move(f), response.watch()});
      }
    }
    cv_.notify_all();
    if (auto_ack_ && hub_ != nullptr) {
      for (const auto& [connection, id] : acks)
        hub_->Acknowledge(connection, id);
    }
  }
  void AutoAck(WatchHub* hub) {
    hub_ = hub;
    auto_ack_ = true;
  }

  // The frames of one watch so far.
  std::vector<Frame> Of(uint64_t connection, uint64_t watch_id) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Frame> out;
    for (const Frame& f : frames_) {
      if (f.frame.connection == connection && f.frame.watch_id == watch_id) {
        out.push_back(f);
      }
    }
    return out;
  }
  // Waits until `done` holds for the frames of the watch; false on timeout.
  bool WaitFor(uint64_t connection, uint64_t watch_id,
               const std::function<bool(const std::vector<Frame>&)>& done) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kWait, [&] {
      std::vector<Frame> mine;
      for (const Frame& f : frames_) {
        if (f.frame.connection == connection && f.frame.watch_id == watch_id) {
          mine.push_back(f);
        }
      }
      return done(mine);
    });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Frame> frames_;
  std::atomic<bool> auto_ack_{false};
  WatchHub* hub_ = nullptr;
};

std::vector<int64_t> Revisions(const std::vector<Frame>& frames) {
  std::vector<int64_t> out;
  for (const Frame& f : frames) {
    for (const kv::Event& e : f.response.events()) {
      out.push_back(e.kv().mod_revision());
    }
  }
  return out;
}
std::vector<kv::Event> Events(const std::vector<Frame>& frames) {
  std::vector<kv::Event> out;
  for (const Frame& f : frames) {
    for (const kv::Event& e : f.response.events()) out.push_back(e);
  }
  return out;
}
auto HasRevision(int64_t revision) {
  return [revision](const std::vector<Frame>& frames) {
    for (int64_t r : Revisions(frames)) {
      if (r >= revision) return true;
    }
    return false;
  };
}
auto HasCanceled() {
  return [](const std::vector<Frame>& frames) {
    for (const Frame& f : frames) {
      if (f.response.canceled()) return true;
    }
    return false;
  };
}
size_t CountIf(const std::vector<Frame>& frames,
               const std::function<bool(const Frame&)>& pred) {
  size_t n = 0;
  for (const Frame& f : frames) n += pred(f) ? 1 : 0;
  return n;
}
bool IsProgress(const Frame& f) {
  return f.response.events_size() == 0 && !f.response.created() &&
         !f.response.canceled();
}

kv::WatchCreateRequest Watch(const std::string& key,
                             const std::string& range_end = "",
                             int64_t start_revision = 0) {
  kv::WatchCreateRequest r;
  r.set_key(key);
  r.set_range_end(range_end);
  r.set_start_revision(start_revision);
  return r;
}

kv::Command Txn(const std::vector<std::pair<std::string, std::string>>& puts) {
  kv::Command c;
  for (const auto& [key, value] : puts) {
    auto* put = c.mutable_txn()->add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
  }
  return c;
}
kv::Command Del(const std::string& key) {
  kv::Command c;
  c.mutable_delete_range()->set_key(key);
  return c;
}

class WatchHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::EngineOptions o;
    o.memory_budget_bytes = 8 << 20;
    o.write_buffer_bytes = 1 << 20;
    engine_ = std::move(storage::Engine::Open(tmp_.Sub("node"), o)).value();
    sm_ = std::move(storage::KvStateMachine::Open(engine_.get())).value();
  }
  void TearDown() override { hub_.reset(); }

  void StartHub(WatchHubOptions options = WatchHubOptions()) {
    hub_ = std::make_unique<WatchHub>(engine_.get(), options,
                                      [this](std::vector<WatchFrame> frames) {
                                        collector_.Deliver(std::move(frames));
                                      });
    hub_->Start(sm_->revision());
  }

  // Applies `commands` as one batch, as the applier does; publishes the
  // batch's events unless `publish` is false. The store's revision after.
  int64_t Apply(const std::vector<kv::Command>& commands, bool publish = true) {
    std::vector<raft::Entry> entries;
    for (const kv::Command& c : commands) {
      entries.push_back(
          CommandEntry(sm_->applied_index() + 1 + entries.size(), 1, c));
    }
    std::vector<kv::CommandResult> results;
    storage::ApplyEffects effects;
    Status s = sm_->ApplyBatch(entries, &results, &effects);
    EXPECT_TRUE(s.ok()) << s.ToString();
    for (const auto& r : results) {
      EXPECT_EQ(r.error(), kv::CommandResult::OK) << r.error_message();
    }
    if (publish && hub_)
      hub_->Publish(sm_->revision(), std::move(effects.events));
    return sm_->revision();
  }
  int64_t Put(const std::string& key, const std::string& value,
              bool publish = true) {
    return Apply({PutCommand(key, value)}, publish);
  }

  // Creates a watch and waits for its `created` frame.
  void Create(uint64_t connection, uint64_t id, kv::WatchCreateRequest r) {
    hub_->Create(connection, id, std::move(r));
    ASSERT_TRUE(collector_.WaitFor(
        connection, id, [](const auto& frames) { return !frames.empty(); }))
        << "no created frame for watch " << connection << "/" << id;
    const Frame first = collector_.Of(connection, id).front();
    EXPECT_TRUE(first.response.created());
    EXPECT_EQ(first.response.watch_id(), id);
  }

  // The events in [from, to] of keys in [begin, end), as the store's
  // history has them.
  std::vector<int64_t> ExpectedRevisions(int64_t from, int64_t to,
                                         const std::string& begin,
                                         const std::string& end) {
    std::vector<kv::Event> events;
    int64_t next = 0;
    EXPECT_TRUE(
        storage::ReadHistory(*engine_, from, to, 1 << 20, &events, &next).ok());
    std::vector<int64_t> out;
    for (const kv::Event& e : events) {
      if (storage::InRange(e.kv().key(), begin, end)) {
        out.push_back(e.kv().mod_revision());
      }
    }
    return out;
  }

  TempDir tmp_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<storage::KvStateMachine> sm_;
  Collector collector_;
  std::unique_ptr<WatchHub> hub_;  // stopped before the rest goes
};

// The switch from history to the published changes happens while the
// applier keeps publishing: every matching revision arrives exactly once,
// in order.
TEST_F(WatchHubTest, ReplaysHistoryThenFollowsWithoutGapOrDuplicate) {
  for (int i = 1; i <= 20; ++i) Put("k" + std::to_string(i % 7), "old");
  WatchHubOptions options;
  options.history_batch_events = 3;
  StartHub(options);
  collector_.AutoAck(hub_.get());
  Create(1, 1, Watch("k", "l", 5));
  std::thread applier([this] {
    for (int i = 0; i < 60; ++i) {
      if (i % 3 == 0) {
        Apply({PutCommand("k" + std::to_string(i % 5), "new"),
               PutCommand("other", "x")});
      } else {
        Put("k" + std::to_string(i % 5), "new");
      }
    }
  });
  applier.join();
  const int64_t last = sm_->revision();
  ASSERT_TRUE(collector_.WaitFor(1, 1, HasRevision(last)));
  const auto frames = collector_.Of(1, 1);
  const std::vector<int64_t> want = ExpectedRevisions(5, last, "k", "l");
  EXPECT_EQ(want.size(), static_cast<size_t>(last - 5 + 1 - 20));
  EXPECT_EQ(Revisions(frames), want);
  // Each frame says how far it brought the watch, never backwards.
  int64_t through = 0;
  for (const Frame& f : frames) {
    EXPECT_GE(f.frame.through_revision, through);
    EXPECT_EQ(f.response.header().revision(), f.frame.through_revision);
    through = f.frame.through_revision;
    if (f.response.events_size() > 0) {
      EXPECT_EQ(f.frame.first_revision,
                f.response.events(0).kv().mod_revision());
    }
  }
}

TEST_F(WatchHubTest, AFutureStartRevisionGetsEventsFromThereOnly) {
  for (int i = 0; i < 3; ++i) Put("k", "v");
  StartHub();
  Create(1, 1, Watch("k", "", 6));
  for (int i = 4; i <= 8; ++i) Put("k", "v" + std::to_string(i));
  ASSERT_TRUE(collector_.WaitFor(1, 1, HasRevision(8)));
  EXPECT_THAT(Revisions(collector_.Of(1, 1)), ElementsAre(6, 7, 8));
}

// The same for the published changes and for the history replay.
TEST_F(WatchHubTest, FiltersAndPrevKv) {
  StartHub();
  for (const bool replay : {false, true}) {
    SCOPED_TRACE(replay ? "replay" : "follow");
    const uint64_t c = replay ? 2 : 1;
    const int64_t first = sm_->revision() + 1;
    const int64_t start = replay ? first : 0;
    kv::WatchCreateRequest no_put = Watch("k", "", start);
    no_put.add_filters(kv::WatchCreateRequest::NOPUT);
    kv::WatchCreateRequest no_delete = Watch("k", "", start);
    no_delete.add_filters(kv::WatchCreateRequest::NODELETE);
    kv::WatchCreateRequest prev = Watch("k", "", start);
    prev.set_prev_kv(true);
    if (replay) {
      Put("k", "1");
      Put("k", "2");
      Apply({Del("k")});
    }
    Create(c, 1, no_put);
    Create(c, 2, no_delete);
    Create(c, 3, prev);
    Create(c, 4, Watch("k", "", start));
    if (!replay) {
      Put("k", "1");
      Put("k", "2");
      Apply({Del("k")});
    }
    // The delete is in the last publication / the last revision: once a
    // watch has it, every watch has all it will get of these.
    for (uint64_t id : {1, 3, 4}) {
      ASSERT_TRUE(collector_.WaitFor(c, id, HasRevision(first + 2)));
    }
    EXPECT_THAT(Revisions(collector_.Of(c, 1)), ElementsAre(first + 2));
    EXPECT_EQ(Events(collector_.Of(c, 1))[0].type(), kv::Event::DELETE);
    EXPECT_THAT(Revisions(collector_.Of(c, 2)), ElementsAre(first, first + 1));
    const auto with_prev = Events(collector_.Of(c, 3));
    ASSERT_EQ(with_prev.size(), 3u);
    EXPECT_FALSE(with_prev[0].has_prev_kv());  // created
    EXPECT_EQ(with_prev[1].prev_kv().value(), "1");
    EXPECT_EQ(with_prev[2].prev_kv().value(), "2");
    EXPECT_EQ(with_prev[2].type(), kv::Event::DELETE);
    const auto without = Events(collector_.Of(c, 4));
    ASSERT_EQ(without.size(), 3u);
    for (const kv::Event& e : without) EXPECT_FALSE(e.has_prev_kv());
    EXPECT_EQ(without[1].kv().value(), "2");
  }
}

TEST_F(WatchHubTest, ACompactedStartRevisionIsCancelledWithTheOldestAvailable) {
  for (int i = 1; i <= 5; ++i) Put("k", std::to_string(i));
  kv::Command compact;
  compact.mutable_compact()->set_revision(3);
  Apply({compact});
  StartHub();
  for (uint64_t id : {1, 2}) {
    Create(1, id, Watch("k", "", id + 1));  // 2 and 3: compacted
    ASSERT_TRUE(collector_.WaitFor(1, id, HasCanceled()));
    const auto frames = collector_.Of(1, id);
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_TRUE(frames[1].frame.canceled);
    EXPECT_EQ(frames[1].response.compact_revision(), 4);
    EXPECT_THAT(frames[1].response.cancel_reason(), HasSubstr("compacted"));
    EXPECT_EQ(frames[1].response.events_size(), 0);
  }
  Create(1, 3, Watch("k", "", 4));
  ASSERT_TRUE(collector_.WaitFor(1, 3, HasRevision(5)));
  EXPECT_THAT(Revisions(collector_.Of(1, 3)), ElementsAre(4, 5));
  EXPECT_FALSE(HasCanceled()(collector_.Of(1, 3)));
  EXPECT_EQ(hub_->watch_count(), 1u);
}

TEST_F(WatchHubTest, HistoryReplayWaitsForEachAcknowledgement) {
  for (int i = 1; i <= 10; ++i) Put("k", std::to_string(i));
  WatchHubOptions options;
  options.history_batch_events = 2;
  StartHub(options);
  Create(1, 1, Watch("k", "", 1));
  Create(2, 1, Watch("k"));  // a probe following the published changes
  for (int read = 1; read <= 4; ++read) {
    SCOPED_TRACE(read);
    ASSERT_TRUE(collector_.WaitFor(1, 1, [&](const auto& frames) {
      return CountIf(frames, [](const Frame& f) {
               return f.frame.ack_requested;
             }) == static_cast<size_t>(read);
    }));
    // Unacknowledged, the hub reads no further for this watch, even while
    // it serves others: a progress request to the probe is answered in the
    // same turn as a read would be made.
    hub_->RequestProgress(2);
    ASSERT_TRUE(collector_.WaitFor(2, 1, [&](const auto& frames) {
      return CountIf(frames, IsProgress) == static_cast<size_t>(read);
    }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::vector<int64_t> want;
    for (int64_t r = 1; r <= 2 * read; ++r) want.push_back(r);
    EXPECT_EQ(Revisions(collector_.Of(1, 1)), want);
    hub_->Acknowledge(1, 1);
  }
  // From here on the loop acknowledges at once; the watch catches up and
  // follows.
  collector_.AutoAck(hub_.get());
  hub_->Acknowledge(1, 1);
  const int64_t last = Put("k", "last");
  ASSERT_TRUE(collector_.WaitFor(1, 1, HasRevision(last)));
  EXPECT_EQ(Revisions(collector_.Of(1, 1)),
            ExpectedRevisions(1, last, "k", ""));
}

TEST_F(WatchHubTest, CancelSendsALastFrameUnlessSilent) {
  StartHub();
  Create(1, 1, Watch("k"));
  Create(1, 2, Watch("k"));
  Create(2, 1, Watch("k"));  // probe
  ASSERT_EQ(hub_->watch_count(), 3u);
  hub_->Cancel(1, 1, "client asked", /*silent=*/false);
  hub_->Cancel(1, 2, "", /*silent=*/true);
  const int64_t rev = Put("k", "v");
  ASSERT_TRUE(collector_.WaitFor(2, 1, HasRevision(rev)));
  const auto loud = collector_.Of(1, 1);
  ASSERT_EQ(loud.size(), 2u);
  EXPECT_TRUE(loud[1].frame.canceled);
  EXPECT_TRUE(loud[1].response.canceled());
  EXPECT_EQ(loud[1].response.cancel_reason(), "client asked");
  EXPECT_EQ(loud[1].response.events_size(), 0);
  EXPECT_EQ(collector_.Of(1, 2).size(), 1u);  // created only
  EXPECT_EQ(hub_->watch_count(), 1u);
  // Cancelling again is a no-op.
  hub_->Cancel(1, 1, "again", false);
  const int64_t rev2 = Put("k", "v2");
  ASSERT_TRUE(collector_.WaitFor(2, 1, HasRevision(rev2)));
  EXPECT_EQ(collector_.Of(1, 1).size(), 2u);
}

// A second create with an id in use on the connection is refused with a
// canceled frame; the watch that has the id goes on.
TEST_F(WatchHubTest, AWatchIdInUseIsRefusedAndTheWatchStays) {
  StartHub();
  Create(1, 7, Watch("k"));
  hub_->Create(1, 7, Watch("other"));
  ASSERT_TRUE(collector_.WaitFor(1, 7, HasCanceled()));
  const auto refused = collector_.Of(1, 7).back();
  EXPECT_THAT(refused.response.cancel_reason(), HasSubstr("already in use"));
  EXPECT_EQ(hub_->watch_count(), 1u);
  const int64_t rev = Put("k", "v");
  ASSERT_TRUE(collector_.WaitFor(1, 7, HasRevision(rev)));
  EXPECT_THAT(Revisions(collector_.Of(1, 7)), ElementsAre(rev));
}

TEST_F(WatchHubTest, AClosedConnectionDropsAllItsWatches) {
  for (int i = 0; i < 6; ++i) Put("k", "v");
  WatchHubOptions options;
  options.history_batch_events = 1;
  StartHub(options);
  Create(1, 1, Watch("k"));         // following
  Create(1, 2, Watch("k", "", 1));  // replaying, waiting for its ack
  Create(2, 1, Watch("k"));         // another connection's: the probe
  ASSERT_TRUE(collector_.WaitFor(1, 2, [](const auto& frames) {
    return !frames.empty() && frames.back().frame.ack_requested;
  }));
  const size_t replayed = collector_.Of(1, 2).size();
  hub_->ConnectionClosed(1);
  hub_->Acknowledge(1, 2);  // late: the watch is gone
  const int64_t rev = Put("k", "after");
  ASSERT_TRUE(collector_.WaitFor(2, 1, HasRevision(rev)));
  EXPECT_EQ(collector_.Of(1, 1).size(), 1u);  // created; nothing after
  EXPECT_EQ(collector_.Of(1, 2).size(), replayed);
  EXPECT_EQ(hub_->watch_count(), 1u);
  // The ids may be used again on a new connection with the same number.
  hub_->Create(1, 1, Watch("k"));
  ASSERT_TRUE(collector_.WaitFor(
      1, 1, [](const auto& frames) { return frames.size() == 2; }));
  EXPECT_TRUE(collector_.Of(1, 1)[1].response.created());
  EXPECT_EQ(hub_->watch_count(), 2u);
}

TEST_F(WatchHubTest, ProgressGoesToTheFollowingWatchesOfTheConnection) {
  for (int i = 0; i < 4; ++i) Put("k", "v");
  WatchHubOptions options;
  options.history_batch_events = 1;
  StartHub(options);
  Create(1, 1, Watch("a"));         // following, nothing matches
  Create(1, 2, Watch("k", "", 1));  // replaying, waiting for its ack
  Create(2, 1, Watch("a"));         // another connection
  ASSERT_TRUE(collector_.WaitFor(1, 2, [](const auto& frames) {
    return !frames.empty() && frames.back().frame.ack_requested;
  }));
  const int64_t rev = Put("x", "unwatched");
  hub_->RequestProgress(1);
  hub_->RequestProgress(2);
  ASSERT_TRUE(collector_.WaitFor(2, 1, [](const auto& frames) {
    return CountIf(frames, IsProgress) == 1;
  }));
  const auto following = collector_.Of(1, 1);
  ASSERT_EQ(CountIf(following, IsProgress), 1u);
  EXPECT_EQ(following.back().response.header().revision(), rev);
  EXPECT_EQ(following.back().frame.through_revision, rev);
  EXPECT_EQ(collector_.Of(2, 1).back().response.header().revision(), rev);
  EXPECT_EQ(CountIf(collector_.Of(1, 2), IsProgress), 0u);
}

// A revision bigger than frame_bytes is split into fragments; otherwise a
// frame ends at a revision boundary, so a revision is never split.
TEST_F(WatchHubTest, OnlyARevisionTooBigForOneFrameIsFragmented) {
  WatchHubOptions options;
  options.frame_bytes = 1000;
  StartHub(options);
  Create(1, 1, Watch("k", "l"));
  std::vector<std::pair<std::string, std::string>> big;
  std::vector<std::string> big_keys;
  for (int i = 0; i < 12; ++i) {
    big.emplace_back("k" + std::to_string(100 + i), std::string(300, 'a' + i));
    big_keys.push_back(big.back().first);
  }
  const int64_t rev = Apply({Txn(big)});
  ASSERT_TRUE(collector_.WaitFor(1, 1, HasRevision(rev)));
  auto frames = collector_.Of(1, 1);
  frames.erase(frames.begin());  // created
  ASSERT_GE(frames.size(), 3u);  // about 3700 bytes of events
  std::vector<std::string> keys;
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].response.fragment(), i + 1 < frames.size()) << i;
    EXPECT_LE(frames[i].response.ByteSizeLong(), 1000u + 400u) << i;
    for (const kv::Event& e : frames[i].response.events()) {
      EXPECT_EQ(e.kv().mod_revision(), rev);
      keys.push_back(e.kv().key());
    }
  }
  EXPECT_EQ(keys, big_keys);
  // Only the last fragment says the revision was sent.
  EXPECT_EQ(frames.back().frame.through_revision, rev);
  EXPECT_LT(frames.front().frame.through_revision, rev);
}

// Revisions A and B together pass frame_bytes: A ends a frame and B goes
// whole into the next. (Before the fix the first frame held A and half of
// B, marked fragment: a slow reader cancelled after it resumed from B while
// the client dropped the unfinished fragments, A's events with them.)
TEST_F(WatchHubTest, FramesNeverSplitARevisionThatFitsInOne) {
  WatchHubOptions options;
  options.frame_bytes = 1000;
  StartHub(options);
  for (const bool replay : {false, true}) {
    SCOPED_TRACE(replay ? "replay" : "follow");
    const uint64_t c = replay ? 2 : 1;
    const int64_t first = sm_->revision() + 1;
    if (!replay) Create(c, 1, Watch("k", "l"));
    // Revision A (~900 bytes), then B (two puts, ~450 bytes together: it
    // fits in a frame), then C, in one batch: A and B together pass
    // frame_bytes in the middle of B.
    const int64_t last = Apply({PutCommand("k-a", std::string(880, 'a')),
                                Txn({{"k-b1", std::string(200, 'b')},
                                     {"k-b2", std::string(200, 'c')}}),
                                PutCommand("k-c", "small")});
    ASSERT_EQ(last, first + 2);
    if (replay) Create(c, 1, Watch("k", "l", first));
    ASSERT_TRUE(collector_.WaitFor(c, 1, HasRevision(last)));
    const auto frames = collector_.Of(c, 1);
    std::map<int64_t, std::set<size_t>> frames_of_revision;
    for (size_t i = 0; i < frames.size(); ++i) {
      EXPECT_FALSE(frames[i].response.fragment())
          << "frame " << i << ": " << frames[i].response.ShortDebugString();
      for (const kv::Event& e : frames[i].response.events()) {
        frames_of_revision[e.kv().mod_revision()].insert(i);
      }
    }
    EXPECT_THAT(Revisions(frames),
                ElementsAre(first, first + 1, first + 1, first + 2));
    for (const auto& [revision, in] : frames_of_revision) {
      EXPECT_EQ(in.size(), 1u) << "revision " << revision << " is split";
    }
  }
}

// After a snapshot the store jumps ahead; the changes between were never
// published (they came in the snapshot's history): following watches
// replay them from their position.
TEST_F(WatchHubTest, JumpMakesFollowingWatchesReplayFromTheirPosition) {
  Put("k", "0");
  StartHub();
  Create(1, 1, Watch("k", "l"));
  const int64_t before = Put("k1", "published");
  ASSERT_TRUE(collector_.WaitFor(1, 1, HasRevision(before)));
  for (int i = 0; i < 4; ++i) Put("k2", std::to_string(i), /*publish=*/false);
  hub_->Jump(sm_->revision());
  const int64_t after = Put("k3", "published again");
  ASSERT_TRUE(collector_.WaitFor(1, 1, HasRevision(after)));
  EXPECT_EQ(Revisions(collector_.Of(1, 1)),
            ExpectedRevisions(before, after, "k", "l"));
  EXPECT_THAT(Revisions(collector_.Of(1, 1)),
              ElementsAre(before, before + 1, before + 2, before + 3,
                          before + 4, after));
}

TEST_F(WatchHubTest, JumpPastACompactionCancelsTheFollowingWatches) {
  Put("k", "0");
  StartHub();
  Create(1, 1, Watch("k"));
  for (int i = 0; i < 4; ++i) Put("k", std::to_string(i), /*publish=*/false);
  kv::Command compact;
  compact.mutable_compact()->set_revision(4);
  Apply({compact}, /*publish=*/false);
  hub_->Jump(sm_->revision());
  ASSERT_TRUE(collector_.WaitFor(1, 1, HasCanceled()));
  const auto frames = collector_.Of(1, 1);
  EXPECT_THAT(Revisions(frames), IsEmpty());
  EXPECT_EQ(frames.back().response.compact_revision(), 5);
  EXPECT_EQ(hub_->watch_count(), 0u);
}

}  // namespace
}  // namespace raftkv::server
