// ReadPool (server/read_pool.h): reads handed over at a snapshot are
// answered with the snapshot's state, each under its own id; a read the
// loop has abandoned is never answered; Stop() answers what is queued and
// nothing after. Must never touch anything outside its temp dir.
#include "server/read_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>

#include "storage/read_snapshot.h"
#include "tests/storage/mvcc_fixture.h"

namespace raftkv::server {
namespace {

using storage::testing::MvccTest;

class ReadPoolTest : public MvccTest {
 protected:
  void Served(ReadsServed served) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, response] : served.responses) {
      answers_[id] = std::move(response);
    }
    cv_.notify_all();
  }
  // Waits (up to 30 s) for `n` answers.
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30),
                        [&] { return answers_.size() >= n; });
  }
  static ReadRequest Read(uint64_t id, const std::string& key,
                          const std::string& range_end = "") {
    ReadRequest r;
    r.id = id;
    r.request.set_key(key);
    r.request.set_range_end(range_end);
    r.abandoned = std::make_shared<std::atomic<bool>>(false);
    return r;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, kv::ClientResponse> answers_;  // guarded by mu_
};

TEST_F(ReadPoolTest, AnswersEachReadAtItsSnapshot) {
  Put("a", "1");
  Put("b", "1");
  auto at = std::make_shared<storage::ReadSnapshot>(*sm_);
  Put("a", "2");
  ReadPool pool(2, [this](ReadsServed s) { Served(std::move(s)); });
  std::vector<ReadRequest> reads;
  reads.push_back(Read(10, "a"));
  reads.push_back(Read(11, "a", "c"));
  reads.push_back(Read(12, "a"));
  reads.back().request.set_revision(1000);  // not reached: an error
  pool.Serve(at, std::move(reads));
  ASSERT_TRUE(WaitFor(3));
  std::lock_guard<std::mutex> lock(mu_);
  ASSERT_EQ(answers_[10].range().kvs_size(), 1);
  EXPECT_EQ(answers_[10].range().kvs(0).value(), "1");
  EXPECT_EQ(answers_[11].range().kvs_size(), 2);
  EXPECT_EQ(answers_[11].range().count(), 2);
  EXPECT_EQ(answers_[12].error(), kv::FUTURE_REVISION);
}

TEST_F(ReadPoolTest, AnAbandonedReadIsNeverAnswered) {
  Put("a", "1");
  auto at = std::make_shared<storage::ReadSnapshot>(*sm_);
  ReadPool pool(1, [this](ReadsServed s) { Served(std::move(s)); });
  std::vector<ReadRequest> reads;
  reads.push_back(Read(1, "a"));
  reads.push_back(Read(2, "a"));
  *reads.back().abandoned = true;
  reads.push_back(Read(3, "a"));
  pool.Serve(at, std::move(reads));
  pool.Stop();  // serves what is queued first
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(answers_.size(), 2u);
  EXPECT_EQ(answers_.count(1), 1u);
  EXPECT_EQ(answers_.count(2), 0u);
  EXPECT_EQ(answers_.count(3), 1u);
}

TEST_F(ReadPoolTest, NothingIsAnsweredAfterStop) {
  Put("a", "1");
  auto at = std::make_shared<storage::ReadSnapshot>(*sm_);
  ReadPool pool(2, [this](ReadsServed s) { Served(std::move(s)); });
  pool.Stop();
  std::vector<ReadRequest> reads;
  reads.push_back(Read(1, "a"));
  pool.Serve(at, std::move(reads));
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_TRUE(answers_.empty());
}

}  // namespace
}  // namespace raftkv::server
