// The retained history (storage/history.h) through the KvStateMachine:
// the events every put, delete and txn records (revision, kv, prev_kv; one
// revision per txn), reads at an old revision (also inside a txn, after the
// txn's own writes, and within one apply batch), the revision bounds
// (future, compacted), the compaction command, ReadHistory's batching
// (never inside a revision) and compaction across a reopen. Must never
// touch anything outside its temp dir.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "storage/coding.h"
#include "storage/engine_rep.h"
#include "tests/storage/mvcc_fixture.h"

namespace raftkv::storage {
namespace {

using testing::CompactCommand;
using testing::DeleteCommand;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::MvccTest;
using ::testing::Pair;
using testing::PutCommand;
using testing::RangeAt;

using HistoryTest = MvccTest;

// The revision of every record in "kv_history", read directly.
std::vector<int64_t> RecordRevisions(const Engine& engine) {
  std::vector<int64_t> out;
  std::unique_ptr<rocksdb::Iterator> it(engine.rep()->db->NewIterator(
      rocksdb::ReadOptions(), engine.rep()->kv_history));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    EXPECT_EQ(it->key().size(), 12u);
    out.push_back(static_cast<int64_t>(GetBigEndian64(it->key().data())));
  }
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  return out;
}

kv::Command TxnOf(std::vector<kv::RequestOp> success) {
  kv::Command c;
  for (auto& op : success) *c.mutable_txn()->add_success() = std::move(op);
  return c;
}
kv::RequestOp PutOp(const std::string& key, const std::string& value) {
  kv::RequestOp op;
  op.mutable_request_put()->set_key(key);
  op.mutable_request_put()->set_value(value);
  return op;
}
kv::RequestOp DeleteOp(const std::string& key) {
  kv::RequestOp op;
  op.mutable_request_delete_range()->set_key(key);
  return op;
}
kv::RequestOp RangeOp(const std::string& key, const std::string& range_end,
                      int64_t revision) {
  kv::RequestOp op;
  *op.mutable_request_range() = RangeAt(key, range_end, revision);
  return op;
}

TEST_F(HistoryTest, EveryPutAndDeleteRecordsItsEvent) {
  ApplyEffects effects;
  Put("a", "1");
  Put("a", "2");
  Put("b", "x");
  ASSERT_EQ(Run(DeleteCommand("a"), &effects).error(), kv::CommandResult::OK);
  ASSERT_EQ(sm_->revision(), 4);

  const auto events = History(1, 4);
  ASSERT_EQ(events.size(), 4u);
  // A create: no prev_kv.
  EXPECT_EQ(events[0].type(), kv::Event::PUT);
  EXPECT_EQ(events[0].kv().key(), "a");
  EXPECT_EQ(events[0].kv().value(), "1");
  EXPECT_EQ(events[0].kv().mod_revision(), 1);
  EXPECT_EQ(events[0].kv().create_revision(), 1);
  EXPECT_EQ(events[0].kv().version(), 1);
  EXPECT_FALSE(events[0].has_prev_kv());
  // An update: the key before it.
  EXPECT_EQ(events[1].type(), kv::Event::PUT);
  EXPECT_EQ(events[1].kv().value(), "2");
  EXPECT_EQ(events[1].kv().mod_revision(), 2);
  EXPECT_EQ(events[1].kv().create_revision(), 1);
  EXPECT_EQ(events[1].kv().version(), 2);
  ASSERT_TRUE(events[1].has_prev_kv());
  EXPECT_EQ(events[1].prev_kv().key(), "a");
  EXPECT_EQ(events[1].prev_kv().value(), "1");
  EXPECT_EQ(events[1].prev_kv().mod_revision(), 1);
  EXPECT_EQ(events[1].prev_kv().version(), 1);
  EXPECT_EQ(events[2].kv().key(), "b");
  EXPECT_EQ(events[2].kv().mod_revision(), 3);
  EXPECT_FALSE(events[2].has_prev_kv());
  // A delete: the key, the deletion's revision, the last state.
  EXPECT_EQ(events[3].type(), kv::Event::DELETE);
  EXPECT_EQ(events[3].kv().key(), "a");
  EXPECT_EQ(events[3].kv().mod_revision(), 4);
  ASSERT_TRUE(events[3].has_prev_kv());
  EXPECT_EQ(events[3].prev_kv().value(), "2");
  EXPECT_EQ(events[3].prev_kv().mod_revision(), 2);
  EXPECT_EQ(events[3].prev_kv().version(), 2);
  // The apply reported the same delete.
  ASSERT_EQ(effects.events.size(), 1u);
  EXPECT_EQ(effects.events[0].SerializeAsString(),
            events[3].SerializeAsString());

  // A delete of nothing records nothing and takes no revision.
  Delete("missing");
  EXPECT_EQ(sm_->revision(), 4);
  EXPECT_EQ(History(1, 10).size(), 4u);
}

TEST_F(HistoryTest, ATxnsEventsShareOneRevisionInOpOrder) {
  Put("z", "old");
  ApplyEffects effects;
  // As etcd, a branch writes a key once: a second put of x is refused.
  auto dup = Run(
      TxnOf({PutOp("x", "1"), DeleteOp("z"), PutOp("y", "2"), PutOp("x", "3")}),
      &effects);
  EXPECT_EQ(dup.error(), kv::CommandResult::INVALID);
  EXPECT_THAT(dup.error_message(), HasSubstr("duplicate key"));
  EXPECT_EQ(sm_->revision(), 1);
  auto r = Run(
      TxnOf({PutOp("x", "1"), DeleteOp("z"), PutOp("y", "2"), PutOp("w", "3")}),
      &effects);
  ASSERT_EQ(r.error(), kv::CommandResult::OK) << r.error_message();
  EXPECT_EQ(sm_->revision(), 2);
  const auto events = History(2, 2);
  ASSERT_EQ(events.size(), 4u);
  std::vector<std::string> seen;
  for (const kv::Event& e : events) {
    EXPECT_EQ(e.kv().mod_revision(), 2) << e.ShortDebugString();
    seen.push_back((e.type() == kv::Event::PUT ? "put " : "del ") +
                   e.kv().key() + "=" + e.kv().value());
  }
  EXPECT_THAT(seen, ElementsAre("put x=1", "del z=", "put y=2", "put w=3"));
  EXPECT_EQ(events[1].prev_kv().value(), "old");
  EXPECT_EQ(events[3].kv().version(), 1);
  EXPECT_EQ(effects.events.size(), 4u);

  // A delete of a prefix: one revision, one event per key.
  Put("p/1", "a");
  Put("p/2", "b");
  Put("p/3", "c");
  Delete("p/", "p0");
  const auto deletes = History(6, 6);
  ASSERT_EQ(deletes.size(), 3u);
  for (const kv::Event& e : deletes) {
    EXPECT_EQ(e.type(), kv::Event::DELETE);
    EXPECT_EQ(e.kv().mod_revision(), 6);
  }
}

TEST_F(HistoryTest, RangeAtAnOldRevisionSeesTheOldState) {
  Put("a", "1");    // 1
  Put("b", "1");    // 2
  Put("a", "2");    // 3
  Delete("b");      // 4
  Put("c", "1");    // 5
  Put("b", "new");  // 6: b again, a new incarnation
  ASSERT_EQ(sm_->revision(), 6);

  EXPECT_THAT(ValuesAt("a", "d", 1), ElementsAre(Pair("a", "1")));
  EXPECT_THAT(ValuesAt("a", "d", 2),
              ElementsAre(Pair("a", "1"), Pair("b", "1")));
  EXPECT_THAT(ValuesAt("a", "d", 3),
              ElementsAre(Pair("a", "2"), Pair("b", "1")));
  EXPECT_THAT(ValuesAt("a", "d", 4), ElementsAre(Pair("a", "2")));
  EXPECT_THAT(ValuesAt("a", "d", 5),
              ElementsAre(Pair("a", "2"), Pair("c", "1")));
  EXPECT_THAT(ValuesAt("a", "d", 6),
              ElementsAre(Pair("a", "2"), Pair("b", "new"), Pair("c", "1")));

  bool found = false;
  kv::KeyValue b = KeyAt("b", 3, &found);
  ASSERT_TRUE(found);
  EXPECT_EQ(b.value(), "1");
  EXPECT_EQ(b.create_revision(), 2);
  EXPECT_EQ(b.mod_revision(), 2);
  EXPECT_EQ(b.version(), 1);
  KeyAt("b", 5, &found);
  EXPECT_FALSE(found);
  b = KeyAt("b", 6, &found);
  ASSERT_TRUE(found);
  EXPECT_EQ(b.create_revision(), 6);
  EXPECT_EQ(b.version(), 1);
  kv::KeyValue a = KeyAt("a", 2, &found);
  ASSERT_TRUE(found);
  EXPECT_EQ(a.version(), 1);
  EXPECT_EQ(a.mod_revision(), 1);

  // Count, limit and the header at an old revision.
  kv::RangeRequest limited = RangeAt("a", "d", 3);
  limited.set_limit(1);
  auto got = sm_->Range(limited);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->kvs(0).key(), "a");
  EXPECT_EQ(got->count(), 2);
  EXPECT_TRUE(got->more());
  EXPECT_EQ(got->header().revision(), 6);  // the store's, as in etcd
}

TEST_F(HistoryTest, ARangeInATxnAtARevisionIgnoresTheTxnsOwnWrites) {
  Put("k", "old");  // 1
  Put("k", "mid");  // 2
  auto r = Run(TxnOf({PutOp("k", "new"), PutOp("j", "new"), RangeOp("k", "", 1),
                      RangeOp("k", "", 2), RangeOp("k", "", 0),
                      RangeOp("a", "z", 2), RangeOp("a", "z", 0)}));
  ASSERT_EQ(r.error(), kv::CommandResult::OK) << r.error_message();
  const auto& ops = r.txn().responses();
  ASSERT_EQ(ops.size(), 7);
  auto values = [](const kv::RangeResponse& range) {
    std::vector<std::string> out;
    for (const auto& kv : range.kvs())
      out.push_back(kv.key() + "=" + kv.value());
    return out;
  };
  EXPECT_THAT(values(ops[2].response_range()), ElementsAre("k=old"));
  // At the current revision, not the txn's write.
  EXPECT_THAT(values(ops[3].response_range()), ElementsAre("k=mid"));
  EXPECT_EQ(ops[3].response_range().kvs(0).version(), 2);
  // Revision 0: the txn's own writes so far.
  EXPECT_THAT(values(ops[4].response_range()), ElementsAre("k=new"));
  EXPECT_THAT(values(ops[5].response_range()), ElementsAre("k=mid"));
  EXPECT_THAT(values(ops[6].response_range()), ElementsAre("j=new", "k=new"));
  EXPECT_EQ(sm_->revision(), 3);
}

// The entries of one apply batch see each other's history: a txn reading
// at a revision that an earlier entry of the same batch has since changed.
TEST_F(HistoryTest, ARangeAtARevisionSeesTheHistoryOfItsOwnBatch) {
  Put("k", "v1");                                  // 1
  auto results = RunBatch({PutCommand("k", "v2"),  // 2
                           PutCommand("k", "v3"),  // 3
                           TxnOf({RangeOp("k", "", 1), RangeOp("k", "", 2)})});
  ASSERT_EQ(results.size(), 3u);
  ASSERT_EQ(results[2].error(), kv::CommandResult::OK)
      << results[2].error_message();
  const auto& ops = results[2].txn().responses();
  ASSERT_EQ(ops.size(), 2);
  ASSERT_EQ(ops[0].response_range().kvs_size(), 1);
  EXPECT_EQ(ops[0].response_range().kvs(0).value(), "v1");
  ASSERT_EQ(ops[1].response_range().kvs_size(), 1);
  EXPECT_EQ(ops[1].response_range().kvs(0).value(), "v2");
}

TEST_F(HistoryTest, RevisionsAboveCurrentOrBelowCompactedAreRefused) {
  for (int i = 1; i <= 5; ++i) Put("k", "v" + std::to_string(i));
  auto future = sm_->Range(RangeAt("k", "", 6));
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(future.status().message(), HasSubstr("future revision"));

  ASSERT_EQ(Run(CompactCommand(3)).error(), kv::CommandResult::OK);
  auto compacted = sm_->Range(RangeAt("k", "", 2));
  ASSERT_FALSE(compacted.ok());
  EXPECT_TRUE(compacted.status().IsCompacted())
      << compacted.status().ToString();
  EXPECT_THAT(compacted.status().message(), HasSubstr("compacted"));
  // The compacted revision itself is still readable (etcd: below it is not).
  EXPECT_THAT(ValuesAt("k", "", 3), ElementsAre(Pair("k", "v3")));
  EXPECT_THAT(ValuesAt("k", "", 4), ElementsAre(Pair("k", "v4")));

  // In a txn the same bounds refuse the whole command: nothing written.
  auto r = Run(TxnOf({PutOp("w", "1"), RangeOp("k", "", 6)}));
  EXPECT_EQ(r.error(), kv::CommandResult::FUTURE_REVISION);
  r = Run(TxnOf({PutOp("w", "1"), RangeOp("k", "", 2)}));
  EXPECT_EQ(r.error(), kv::CommandResult::COMPACTED);
  // Even in the branch that would not run.
  kv::Command c = TxnOf({PutOp("w", "1")});
  *c.mutable_txn()->add_failure() = RangeOp("k", "", 2);
  EXPECT_EQ(Run(c).error(), kv::CommandResult::COMPACTED);
  EXPECT_EQ(sm_->revision(), 5);
  EXPECT_TRUE(ValuesAt("w", "", 0).empty());
}

TEST_F(HistoryTest, TheCompactionCommand) {
  for (int i = 1; i <= 5; ++i) Put("k" + std::to_string(i), "v");
  auto r = Run(CompactCommand(6));
  EXPECT_EQ(r.error(), kv::CommandResult::FUTURE_REVISION);
  EXPECT_THAT(r.error_message(), HasSubstr("future revision"));
  EXPECT_EQ(sm_->compacted_revision(), 0);

  r = Run(CompactCommand(3));
  ASSERT_EQ(r.error(), kv::CommandResult::OK) << r.error_message();
  ASSERT_TRUE(r.has_compact());
  EXPECT_EQ(r.compact().header().revision(), 5);
  EXPECT_EQ(sm_->compacted_revision(), 3);
  EXPECT_EQ(sm_->revision(), 5);  // a compaction is not a write
  EXPECT_EQ(CompactedRevision(*engine_), 3);

  r = Run(CompactCommand(3));
  EXPECT_EQ(r.error(), kv::CommandResult::COMPACTED);
  r = Run(CompactCommand(2));
  EXPECT_EQ(r.error(), kv::CommandResult::COMPACTED);
  EXPECT_EQ(sm_->compacted_revision(), 3);

  r = Run(CompactCommand(5));  // up to the current revision
  EXPECT_EQ(r.error(), kv::CommandResult::OK) << r.error_message();
  EXPECT_EQ(sm_->compacted_revision(), 5);
  // The current state is untouched.
  EXPECT_EQ(ValuesAt("k", "l", 0).size(), 5u);
  EXPECT_EQ(ValuesAt("k", "l", 5).size(), 5u);
}

TEST_F(HistoryTest, ReadHistoryAfterCompactionNamesTheOldestAvailable) {
  for (int i = 1; i <= 5; ++i) Put("k", "v" + std::to_string(i));
  ASSERT_EQ(Run(CompactCommand(3)).error(), kv::CommandResult::OK);
  for (int64_t from : {1, 3}) {
    std::vector<kv::Event> events;
    int64_t next = 0;
    Status s = ReadHistory(*engine_, from, 5, 100, &events, &next);
    EXPECT_TRUE(s.IsCompacted()) << from << ": " << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr("the oldest available is 4"));
    EXPECT_TRUE(events.empty());
  }
  std::vector<kv::Event> events;
  int64_t next = 0;
  ASSERT_TRUE(ReadHistory(*engine_, 4, 5, 100, &events, &next).ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kv().mod_revision(), 4);
  EXPECT_EQ(events[1].kv().mod_revision(), 5);
  EXPECT_EQ(next, 6);
  EXPECT_THAT(RecordRevisions(*engine_), ElementsAre(4, 5));
}

TEST_F(HistoryTest, ReadHistoryNeverSplitsARevision) {
  Run(TxnOf({PutOp("a", "1"), PutOp("b", "1"), PutOp("c", "1")}));  // 1
  Put("a", "2");                                                    // 2
  Put("b", "2");                                                    // 3
  Run(TxnOf({PutOp("a", "3"), PutOp("b", "3")}));                   // 4
  Put("c", "5");                                                    // 5

  struct Read {
    std::vector<int64_t> revisions;
    int64_t next;
  };
  auto read = [&](int64_t from, int64_t to, size_t max) {
    std::vector<kv::Event> events;
    Read out{{}, -1};
    Status s = ReadHistory(*engine_, from, to, max, &events, &out.next);
    EXPECT_TRUE(s.ok()) << s.ToString();
    for (const auto& e : events) out.revisions.push_back(e.kv().mod_revision());
    return out;
  };
  // The whole first revision though it is over the limit.
  Read r = read(1, 5, 2);
  EXPECT_THAT(r.revisions, ElementsAre(1, 1, 1));
  EXPECT_EQ(r.next, 2);
  r = read(2, 5, 2);
  EXPECT_THAT(r.revisions, ElementsAre(2, 3));
  EXPECT_EQ(r.next, 4);
  r = read(4, 5, 1);
  EXPECT_THAT(r.revisions, ElementsAre(4, 4));
  EXPECT_EQ(r.next, 5);
  // The limit reached inside revision 4: it is finished, 5 is not begun.
  r = read(2, 5, 3);
  EXPECT_THAT(r.revisions, ElementsAre(2, 3, 4, 4));
  EXPECT_EQ(r.next, 5);
  // `to` bounds the read; everything read: next is to + 1.
  r = read(1, 2, 100);
  EXPECT_THAT(r.revisions, ElementsAre(1, 1, 1, 2));
  EXPECT_EQ(r.next, 3);
  r = read(1, 5, 100);
  EXPECT_EQ(r.revisions.size(), 8u);
  EXPECT_EQ(r.next, 6);
  // Every revision has an event: a revision without one (past the end
  // here; in a server, history being replaced by a snapshot install) is
  // never taken for "nothing happened".
  std::vector<kv::Event> events;
  int64_t next = 0;
  EXPECT_TRUE(ReadHistory(*engine_, 6, 9, 100, &events, &next).IsUnavailable());
  EXPECT_TRUE(ReadHistory(*engine_, 4, 9, 100, &events, &next).IsUnavailable());
}

TEST_F(HistoryTest, CompactionSurvivesReopenAndItsRecordsAreGone) {
  for (int i = 1; i <= 6; ++i) Put("k", "v" + std::to_string(i));
  ASSERT_EQ(Run(CompactCommand(4)).error(), kv::CommandResult::OK);
  Reopen();
  EXPECT_EQ(sm_->compacted_revision(), 4);
  EXPECT_EQ(CompactedRevision(*engine_), 4);
  EXPECT_EQ(sm_->revision(), 6);
  EXPECT_THAT(RecordRevisions(*engine_), ElementsAre(5, 6));
  EXPECT_TRUE(sm_->Range(RangeAt("k", "", 3)).status().IsCompacted());
  EXPECT_THAT(ValuesAt("k", "", 4), ElementsAre(Pair("k", "v4")));
  EXPECT_THAT(ValuesAt("k", "", 5), ElementsAre(Pair("k", "v5")));
  std::vector<kv::Event> events;
  int64_t next = 0;
  EXPECT_TRUE(ReadHistory(*engine_, 4, 6, 10, &events, &next).IsCompacted());
  EXPECT_EQ(Run(CompactCommand(4)).error(), kv::CommandResult::COMPACTED);
}

// Records at or below the compacted revision that came back (a range
// deletion lost, or a snapshot's records) are removed when the state
// machine opens, so nothing below the compaction can be read as history.
TEST_F(HistoryTest, RecordsBelowTheCompactionAreRemovedAtOpen) {
  for (int i = 1; i <= 6; ++i) Put("k", "v" + std::to_string(i));
  ASSERT_EQ(Run(CompactCommand(4)).error(), kv::CommandResult::OK);
  // Put records of revisions 2 and 4 back behind the state machine's back.
  kv::Event stale;
  stale.set_type(kv::Event::PUT);
  stale.mutable_kv()->set_key("k");
  stale.mutable_kv()->set_value("stale");
  for (int64_t rev : {2, 4}) {
    stale.mutable_kv()->set_mod_revision(rev);
    ASSERT_TRUE(engine_->rep()
                    ->db
                    ->Put(rocksdb::WriteOptions(), engine_->rep()->kv_history,
                          HistoryKey(rev, 0), stale.SerializeAsString())
                    .ok());
  }
  ASSERT_THAT(RecordRevisions(*engine_), ElementsAre(2, 4, 5, 6));
  Reopen();
  EXPECT_THAT(RecordRevisions(*engine_), ElementsAre(5, 6));
  EXPECT_THAT(ValuesAt("k", "", 4), ElementsAre(Pair("k", "v4")));
}

}  // namespace
}  // namespace raftkv::storage
