// ReadSnapshot (storage/read_snapshot.h): a read at a snapshot sees exactly
// the state machine as it was when the snapshot was taken, whatever is
// applied afterwards (puts, deletions, a compaction, lease changes), and it
// may run on another thread while the applier keeps applying. Must never
// touch anything outside its temp dir.
#include "storage/read_snapshot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/storage/mvcc_fixture.h"

namespace raftkv::storage {
namespace {

using testing::CompactCommand;
using ::testing::ElementsAre;
using testing::MvccTest;
using ::testing::Pair;
using testing::RangeAt;

using ReadSnapshotTest = MvccTest;

std::map<std::string, std::string> Values(const ReadSnapshot& at,
                                          const kv::RangeRequest& request) {
  auto got = at.Range(request);
  if (!got.ok()) return {{"<error>", got.status().ToString()}};
  std::map<std::string, std::string> out;
  for (const kv::KeyValue& kv : got->kvs()) out[kv.key()] = kv.value();
  return out;
}

TEST_F(ReadSnapshotTest, SeesTheStateWhenTakenNotWhatIsAppliedAfter) {
  Put("a", "1");
  Put("b", "1");
  const int64_t taken_at = sm_->revision();
  ReadSnapshot at(*sm_);
  Put("a", "2");
  Delete("b");
  Put("c", "1");

  EXPECT_EQ(at.revision(), taken_at);
  EXPECT_THAT(Values(at, RangeAt("a", "z", 0)),
              ElementsAre(Pair("a", "1"), Pair("b", "1")));
  auto got = at.Range(RangeAt("a", "z", 0));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->header().revision(), taken_at);
  // The state machine itself has moved on.
  EXPECT_THAT(ValuesAt("a", "z", 0),
              ElementsAre(Pair("a", "2"), Pair("c", "1")));
}

TEST_F(ReadSnapshotTest, ReadsHistoryCompactedAfterwardsAndRefusesLater) {
  Put("k", "1");
  const int64_t first = sm_->revision();
  Put("k", "2");
  ReadSnapshot at(*sm_);
  Run(CompactCommand(sm_->revision()));
  Put("k", "3");
  // The compaction came after the snapshot: its history is still there.
  EXPECT_THAT(Values(at, RangeAt("k", "", first)), ElementsAre(Pair("k", "1")));
  // A revision after the snapshot's is in its future.
  auto future = at.Range(RangeAt("k", "", sm_->revision()));
  EXPECT_EQ(future.status().code(), Status::Code::kFailedPrecondition)
      << future.status().ToString();
  // While the state machine itself refuses the compacted revision.
  EXPECT_EQ(ValuesAt("k", "", first).begin()->first, "<error>");
}

TEST_F(ReadSnapshotTest, LeaseKeysAsWhenTaken) {
  const int64_t lease = Grant(7);
  Put("x", "1", lease);
  ReadSnapshot at(*sm_);
  Put("y", "1", lease);
  auto keys = at.LeaseKeys(lease);
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_THAT(*keys, ElementsAre("x"));
  EXPECT_EQ(at.LeaseKeys(99).status().code(), Status::Code::kNotFound);
}

TEST_F(ReadSnapshotTest, ReadsOnAnotherThreadWhileApplying) {
  for (int i = 0; i < 100; ++i) Put("key" + std::to_string(100 + i), "old");
  ReadSnapshot at(*sm_);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, wrong{0};
  std::thread reader([&] {
    while (!done || reads == 0) {
      auto got = at.Range(RangeAt("key", "kez", 0));
      bool same = got.ok() && got->kvs_size() == 100;
      for (int i = 0; same && i < got->kvs_size(); ++i) {
        same = got->kvs(i).value() == "old";
      }
      if (!same) ++wrong;
      ++reads;
    }
  });
  for (int round = 0; round < 20; ++round) {
    std::vector<kv::Command> batch;
    for (int i = 0; i < 100; ++i) {
      batch.push_back(testing::PutCommand(
          "key" + std::to_string(100 + (i + round) % 150), "new"));
    }
    RunBatch(batch);
  }
  done = true;
  reader.join();
  EXPECT_GT(reads, 0);
  EXPECT_EQ(wrong, 0) << "of " << reads << " reads";
}

}  // namespace
}  // namespace raftkv::storage
