// KvStateMachine tests against an on-disk RocksDB: every command (put, get,
// delete, compare-and-swap on value and version, delete-range/prefix,
// range scans with limit), etcd revisions, exactly-once sessions with
// first_outstanding and log-time expiry, the applied index across
// restarts (snapshots: snapshot_test.cc). Must never touch anything
// outside its temp dirs.
#include "storage/kv_state_machine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "storage/coding.h"
#include "storage/engine_rep.h"
#include "storage/raft_log.h"
#include "tests/storage/test_util.h"

namespace raftkv::storage {
namespace {

using testing::CommandEntry;
using ::testing::HasSubstr;
using testing::MakeEntry;
using testing::PutCommand;
using testing::TempDir;

class KvStateMachineTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    sm_.reset();
    log_.reset();
    engine_.reset();
    EngineOptions o;
    o.memory_budget_bytes = 8 << 20;
    o.write_buffer_bytes = 1 << 20;
    auto engine = Engine::Open(tmp_.Sub("node"), o);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    auto log = RaftLog::Open(engine_.get());
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = std::move(log).value();
    auto sm = KvStateMachine::Open(engine_.get(), options_);
    ASSERT_TRUE(sm.ok()) << sm.status().ToString();
    sm_ = std::move(sm).value();
  }

  // Applies `command` as the next entry; its result.
  kv::CommandResult Run(kv::Command command, uint64_t time_ms = 0) {
    command.set_proposed_at_ms(time_ms);
    auto r = sm_->Apply(CommandEntry(sm_->applied_index() + 1, 1, command));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : kv::CommandResult();
  }
  kv::CommandResult Put(const std::string& key, const std::string& value) {
    return Run(PutCommand(key, value));
  }
  kv::CommandResult Delete(const std::string& key,
                           const std::string& range_end = "",
                           bool prev_kv = false) {
    kv::Command c;
    c.mutable_delete_range()->set_key(key);
    c.mutable_delete_range()->set_range_end(range_end);
    c.mutable_delete_range()->set_prev_kv(prev_kv);
    return Run(c);
  }
  kv::RangeResponse Get(const std::string& key,
                        const std::string& range_end = "", int64_t limit = 0) {
    kv::RangeRequest r;
    r.set_key(key);
    r.set_range_end(range_end);
    r.set_limit(limit);
    auto resp = sm_->Range(r);
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    return resp.ok() ? *resp : kv::RangeResponse();
  }
  // Compare-and-swap: put key=value iff `compare` holds.
  kv::CommandResult Cas(const kv::Compare& compare, const std::string& key,
                        const std::string& value) {
    kv::Command c;
    *c.mutable_txn()->add_compare() = compare;
    auto* put = c.mutable_txn()->add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    c.mutable_txn()->add_failure()->mutable_request_range()->set_key(key);
    return Run(c);
  }
  uint64_t Register(uint64_t time_ms = 0) {
    kv::Command c;
    c.mutable_register_client();
    auto r = Run(c, time_ms);
    EXPECT_EQ(r.error(), kv::CommandResult::OK);
    return r.register_client().client_id();
  }
  kv::CommandResult SessionPut(uint64_t client, uint64_t seq,
                               uint64_t first_outstanding,
                               const std::string& key, const std::string& value,
                               uint64_t time_ms = 0) {
    kv::Command c = PutCommand(key, value, client, seq);
    c.set_first_outstanding(first_outstanding);
    return Run(c, time_ms);
  }

  TempDir tmp_;
  KvStateMachineOptions options_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<RaftLog> log_;
  std::unique_ptr<KvStateMachine> sm_;
};

TEST_F(KvStateMachineTest, PutGetAndRevisions) {
  EXPECT_EQ(sm_->revision(), 0);
  auto r = Put("a", "1");
  ASSERT_EQ(r.error(), kv::CommandResult::OK);
  EXPECT_EQ(r.put().header().revision(), 1);
  Put("b", "2");
  r = Run([] {
    kv::Command c = PutCommand("a", "3");
    c.mutable_put()->set_prev_kv(true);
    return c;
  }());
  EXPECT_EQ(r.put().prev_kv().value(), "1");
  EXPECT_EQ(r.put().prev_kv().mod_revision(), 1);
  EXPECT_EQ(sm_->revision(), 3);

  auto got = Get("a");
  ASSERT_EQ(got.kvs_size(), 1);
  const kv::KeyValue& kv = got.kvs(0);
  EXPECT_EQ(kv.key(), "a");
  EXPECT_EQ(kv.value(), "3");
  EXPECT_EQ(kv.create_revision(), 1);
  EXPECT_EQ(kv.mod_revision(), 3);
  EXPECT_EQ(kv.version(), 2);
  EXPECT_EQ(got.header().revision(), 3);
  EXPECT_EQ(got.count(), 1);
  EXPECT_EQ(Get("missing").kvs_size(), 0);
}

TEST_F(KvStateMachineTest, DeleteResetsVersionAndCreateRevision) {
  Put("a", "1");
  Put("a", "2");
  auto r = Delete("a", "", /*prev_kv=*/true);
  EXPECT_EQ(r.delete_range().deleted(), 1);
  EXPECT_EQ(r.delete_range().prev_kvs(0).value(), "2");
  EXPECT_EQ(sm_->revision(), 3);
  EXPECT_EQ(Get("a").kvs_size(), 0);
  r = Delete("a");  // nothing to delete: no new revision
  EXPECT_EQ(r.delete_range().deleted(), 0);
  EXPECT_EQ(sm_->revision(), 3);
  Put("a", "3");
  auto kv = Get("a").kvs(0);
  EXPECT_EQ(kv.version(), 1);
  EXPECT_EQ(kv.create_revision(), 4);
}

TEST_F(KvStateMachineTest, RangeAndDeletePrefix) {
  for (const char* k : {"app/1", "app/2", "app/3", "apq", "b", "ap"}) {
    Put(k, std::string("v-") + k);
  }
  auto all = Get("app/", "app0");  // prefix "app/"
  ASSERT_EQ(all.kvs_size(), 3);
  EXPECT_EQ(all.kvs(0).key(), "app/1");
  EXPECT_EQ(all.kvs(2).key(), "app/3");
  EXPECT_FALSE(all.more());

  auto limited = Get("a", std::string(1, '\0'), 2);  // every key >= "a"
  ASSERT_EQ(limited.kvs_size(), 2);
  EXPECT_EQ(limited.kvs(0).key(), "ap");
  EXPECT_EQ(limited.count(), 6);
  EXPECT_TRUE(limited.more());

  kv::RangeRequest keys_only;
  keys_only.set_key("a");
  keys_only.set_range_end("c");
  keys_only.set_keys_only(true);
  auto ko = sm_->Range(keys_only);
  ASSERT_TRUE(ko.ok());
  EXPECT_EQ(ko->kvs_size(), 6);
  EXPECT_EQ(ko->kvs(0).value(), "");
  keys_only.set_count_only(true);
  auto co = sm_->Range(keys_only);
  EXPECT_EQ(co->kvs_size(), 0);
  EXPECT_EQ(co->count(), 6);

  EXPECT_EQ(Get("b", "a").kvs_size(), 0);  // range_end before key: empty

  const int64_t rev = sm_->revision();
  auto d = Delete("app/", "app0");
  EXPECT_EQ(d.delete_range().deleted(), 3);
  EXPECT_EQ(sm_->revision(), rev + 1);  // one revision for the whole delete
  EXPECT_EQ(Get("a", "c").count(), 3);
}

TEST_F(KvStateMachineTest, CompareAndSwapOnValue) {
  Put("k", "old");
  kv::Compare c;
  c.set_key("k");
  c.set_target(kv::Compare::VALUE);
  c.set_result(kv::Compare::EQUAL);
  c.set_value("wrong");
  auto r = Cas(c, "k", "new");
  EXPECT_FALSE(r.txn().succeeded());
  EXPECT_EQ(r.txn().responses(0).response_range().kvs(0).value(), "old");
  EXPECT_EQ(sm_->revision(), 1);  // a failed CAS writes nothing
  c.set_value("old");
  r = Cas(c, "k", "new");
  EXPECT_TRUE(r.txn().succeeded());
  EXPECT_EQ(r.txn().header().revision(), 2);
  EXPECT_EQ(Get("k").kvs(0).value(), "new");

  c.set_key("absent");  // VALUE against a missing key never holds
  c.set_result(kv::Compare::NOT_EQUAL);
  EXPECT_FALSE(Cas(c, "absent", "x").txn().succeeded());
}

TEST_F(KvStateMachineTest, CompareAndSwapOnVersion) {
  kv::Compare create;  // "create if absent": version == 0
  create.set_key("lock");
  create.set_target(kv::Compare::VERSION);
  create.set_result(kv::Compare::EQUAL);
  create.set_version(0);
  EXPECT_TRUE(Cas(create, "lock", "me").txn().succeeded());
  EXPECT_FALSE(Cas(create, "lock", "you").txn().succeeded());
  kv::Compare v1 = create;
  v1.set_version(1);
  EXPECT_TRUE(Cas(v1, "lock", "me2").txn().succeeded());
  EXPECT_FALSE(Cas(v1, "lock", "me3").txn().succeeded());
  kv::Compare mod;
  mod.set_key("lock");
  mod.set_target(kv::Compare::MOD);
  mod.set_result(kv::Compare::LESS);
  mod.set_mod_revision(100);
  EXPECT_TRUE(Cas(mod, "lock", "me4").txn().succeeded());
  EXPECT_EQ(Get("lock").kvs(0).version(), 3);
}

TEST_F(KvStateMachineTest, TxnSeesItsOwnWritesAndIsOneRevision) {
  Run(PutCommand("w", "0"));
  const int64_t before = sm_->revision();
  kv::Command c;
  auto* txn = c.mutable_txn();
  txn->add_success()->mutable_request_put()->set_key("x");
  txn->mutable_success(0)->mutable_request_put()->set_value("1");
  txn->add_success()->mutable_request_put()->set_key("y");
  txn->mutable_success(1)->mutable_request_put()->set_value("2");
  txn->add_success()->mutable_request_range()->set_key("x");
  txn->add_success()->mutable_request_delete_range()->set_key("w");
  auto r = Run(c);
  ASSERT_TRUE(r.txn().succeeded());
  EXPECT_EQ(r.txn().responses(2).response_range().kvs(0).value(), "1");
  EXPECT_EQ(r.txn().responses(3).response_delete_range().deleted(), 1);
  EXPECT_EQ(sm_->revision(), before + 1);  // the whole txn: one revision
  EXPECT_EQ(Get("x").kvs(0).mod_revision(), before + 1);
  EXPECT_EQ(Get("y").kvs(0).mod_revision(), before + 1);
  EXPECT_EQ(Get("w").kvs_size(), 0);
}

TEST_F(KvStateMachineTest, InvalidCommandsWriteNothing) {
  auto r = Put("", "v");
  EXPECT_EQ(r.error(), kv::CommandResult::INVALID);
  EXPECT_THAT(r.error_message(), HasSubstr("key is empty"));
  kv::Command txn;  // valid first op, invalid second: nothing happens
  txn.mutable_txn()->add_success()->mutable_request_put()->set_key("ok");
  txn.mutable_txn()->add_success()->mutable_request_put()->set_key("");
  EXPECT_EQ(Run(txn).error(), kv::CommandResult::INVALID);
  EXPECT_EQ(Get("ok").kvs_size(), 0);
  // A command without an operation (an empty one would be a no-op entry).
  EXPECT_EQ(Run(kv::Command(), /*time_ms=*/5).error(),
            kv::CommandResult::INVALID);
  auto garbage = sm_->Apply(MakeEntry(sm_->applied_index() + 1, 1, "\xff\xff"));
  ASSERT_TRUE(garbage.ok());
  EXPECT_EQ(garbage->error(), kv::CommandResult::INVALID);
  EXPECT_EQ(sm_->revision(), 0);
  EXPECT_EQ(sm_->applied_index(), 4u);  // every entry still counts
  kv::RangeRequest bad;
  EXPECT_EQ(sm_->Range(bad).status().code(), Status::Code::kInvalidArgument);
}

TEST_F(KvStateMachineTest, NoOpsAndConfChangesAdvanceTheAppliedIndex) {
  ASSERT_TRUE(sm_->Apply(MakeEntry(1, 1)).ok());
  raft::Entry cc = MakeEntry(2, 1, "membership");
  cc.set_type(raft::ENTRY_CONF_CHANGE);
  ASSERT_TRUE(sm_->Apply(cc).ok());
  EXPECT_EQ(sm_->applied_index(), 2u);
  EXPECT_EQ(sm_->applied_term(), 1u);
  EXPECT_EQ(sm_->revision(), 0);
}

TEST_F(KvStateMachineTest, RefusesToSkipOrReapply) {
  Put("a", "1");
  auto skip = sm_->Apply(CommandEntry(3, 1, PutCommand("a", "x")));
  EXPECT_EQ(skip.status().code(), Status::Code::kFailedPrecondition);
  auto again = sm_->Apply(CommandEntry(1, 1, PutCommand("a", "x")));
  EXPECT_EQ(again.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(Get("a").kvs(0).value(), "1");
  EXPECT_TRUE(sm_->Apply(CommandEntry(2, 1, PutCommand("a", "2"))).ok());
}

TEST_F(KvStateMachineTest, AppliedIndexAndDataSurviveRestart) {
  std::vector<raft::Entry> batch;
  for (uint64_t i = 1; i <= 5; ++i) {
    batch.push_back(CommandEntry(
        i, 2, PutCommand("k" + std::to_string(i), std::to_string(i))));
  }
  std::vector<kv::CommandResult> results;
  ASSERT_TRUE(sm_->ApplyBatch(batch, &results).ok());
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results[4].put().header().revision(), 5);
  Reopen();
  EXPECT_EQ(sm_->applied_index(), 5u);
  EXPECT_EQ(sm_->applied_term(), 2u);
  EXPECT_EQ(sm_->revision(), 5);
  EXPECT_EQ(Get("k", "l").count(), 5);
  auto next = sm_->Apply(CommandEntry(6, 2, PutCommand("k6", "6")));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->put().header().revision(), 6);
}

TEST_F(KvStateMachineTest, RetriedCommandIsAnsweredFromTheSessionTable) {
  const uint64_t client = Register(1000);
  EXPECT_EQ(client, 1u);  // the entry's index
  EXPECT_EQ(sm_->session_count(), 1u);
  auto first = SessionPut(client, 1, 1, "counter", "a", 1001);
  ASSERT_EQ(first.error(), kv::CommandResult::OK);
  const int64_t rev = sm_->revision();
  auto retry = SessionPut(client, 1, 1, "counter", "b", 1002);
  EXPECT_EQ(retry.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(sm_->revision(), rev);  // not applied twice
  EXPECT_EQ(Get("counter").kvs(0).value(), "a");
  Reopen();  // the table is durable with the data
  retry = SessionPut(client, 1, 1, "counter", "c", 1003);
  EXPECT_EQ(retry.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(Get("counter").kvs(0).version(), 1);
}

TEST_F(KvStateMachineTest, ManyInFlightAndFirstOutstanding) {
  const uint64_t client = Register();
  // Sequences 1..5 arrive out of order (pipelined requests).
  std::map<uint64_t, int64_t> revision_of;
  for (uint64_t seq : {2, 1, 4, 3, 5}) {
    auto r = SessionPut(client, seq, 1, "k" + std::to_string(seq), "v");
    EXPECT_EQ(r.error(), kv::CommandResult::OK);
    revision_of[seq] = r.put().header().revision();
  }
  EXPECT_EQ(sm_->revision(), 5);
  // Every unacknowledged result is still there.
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    EXPECT_EQ(
        SessionPut(client, seq, 1, "other", "x").put().header().revision(),
        revision_of[seq]);
  }
  EXPECT_EQ(sm_->revision(), 5);
  // The client has the results below 4: they are dropped.
  SessionPut(client, 6, 4, "k6", "v");
  auto stale = SessionPut(client, 2, 4, "k2", "again");
  EXPECT_EQ(stale.error(), kv::CommandResult::SESSION_EXPIRED);
  EXPECT_THAT(stale.error_message(), HasSubstr("acknowledged"));
  EXPECT_EQ(SessionPut(client, 5, 4, "k5", "again").put().header().revision(),
            revision_of[5]);
  EXPECT_EQ(Get("k", "l").count(), 6);
}

TEST_F(KvStateMachineTest, UnknownSessionIsExpired) {
  auto r = SessionPut(77, 1, 1, "k", "v");
  EXPECT_EQ(r.error(), kv::CommandResult::SESSION_EXPIRED);
  EXPECT_EQ(Get("k").kvs_size(), 0);
  kv::Command no_session = PutCommand("k", "v");  // client 0: no session
  EXPECT_EQ(Run(no_session).error(), kv::CommandResult::OK);
  EXPECT_EQ(Run(no_session).put().header().revision(), 2);  // applied twice
}

TEST_F(KvStateMachineTest, SessionsExpireByLogTime) {
  options_.session_expiry_ms = 1000;
  Reopen();
  const uint64_t idle = Register(10'000);
  const uint64_t busy = Register(10'000);
  SessionPut(busy, 1, 1, "a", "1", 10'800);
  // Log time runs backwards in a proposal from a lagging leader clock: the
  // state machine keeps it monotonic.
  SessionPut(busy, 2, 1, "a", "2", 9'000);
  EXPECT_EQ(sm_->log_time_ms(), 10'800u);
  SessionPut(busy, 3, 1, "a", "3", 11'001);  // idle: 1001 ms > expiry
  EXPECT_EQ(sm_->session_count(), 1u);
  EXPECT_EQ(SessionPut(idle, 1, 1, "b", "1", 11'002).error(),
            kv::CommandResult::SESSION_EXPIRED);
  EXPECT_EQ(SessionPut(busy, 4, 1, "a", "4", 11'700).error(),
            kv::CommandResult::OK);
  Reopen();  // expiry state is durable and deterministic
  EXPECT_EQ(sm_->session_count(), 1u);
  EXPECT_EQ(sm_->log_time_ms(), 11'700u);
}

TEST_F(KvStateMachineTest, SessionLimits) {
  options_.max_sessions = 2;
  options_.max_results_per_session = 2;
  Reopen();
  const uint64_t a = Register(1);
  const uint64_t b = Register(2);
  SessionPut(a, 1, 1, "x", "1", 3);  // a is now more recent than b
  const uint64_t c = Register(4);    // evicts b, the least recently active
  EXPECT_EQ(sm_->session_count(), 2u);
  EXPECT_EQ(SessionPut(b, 1, 1, "x", "b", 5).error(),
            kv::CommandResult::SESSION_EXPIRED);
  EXPECT_EQ(SessionPut(c, 1, 1, "x", "c", 5).error(), kv::CommandResult::OK);
  EXPECT_EQ(SessionPut(a, 2, 1, "x", "2", 6).error(), kv::CommandResult::OK);
  auto over = SessionPut(a, 3, 1, "x", "3", 7);
  EXPECT_EQ(over.error(), kv::CommandResult::INVALID);
  EXPECT_THAT(over.error_message(), HasSubstr("unacknowledged"));
  EXPECT_EQ(SessionPut(a, 3, 2, "x", "3", 8).error(), kv::CommandResult::OK);
}

// The kv_sessions records on disk, as "client" (header) and "client/seq"
// (remembered result), in key order.
std::vector<std::string> SessionRecords(Engine* engine) {
  std::vector<std::string> out;
  std::unique_ptr<rocksdb::Iterator> it(engine->rep()->db->NewIterator(
      rocksdb::ReadOptions(), engine->rep()->kv_sessions));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string key = it->key().ToString();
    std::string name = std::to_string(GetBigEndian64(key.data()));
    if (key.size() == 16) {
      name += "/" + std::to_string(GetBigEndian64(key.data() + 8));
    }
    out.push_back(name);
  }
  EXPECT_TRUE(it->status().ok());
  return out;
}

// One apply batch may touch a session many times; its header and the
// deletion of acknowledged results are written once, at the batch's end
// (SessionTable::Flush). What is on disk must still be exactly the table:
// every unacknowledged result, no acknowledged one, nothing of a session
// evicted or expired in the same batch, and a header that a restart reads
// back.
TEST_F(KvStateMachineTest, SessionRecordsOnDiskFollowTheTableAcrossABatch) {
  options_.max_sessions = 2;
  options_.session_expiry_ms = 1000;
  Reopen();
  const uint64_t a = Register(100);  // index 1
  const uint64_t b = Register(100);  // index 2
  SessionPut(b, 1, 1, "b", "1", 200);
  SessionPut(b, 2, 1, "b", "2", 200);  // b keeps results 1 and 2
  EXPECT_THAT(SessionRecords(engine_.get()),
              ::testing::ElementsAre("1", "2", "2/1", "2/2"));

  auto command = [](uint64_t client, uint64_t seq, uint64_t first,
                    uint64_t time_ms) {
    kv::Command c = PutCommand("k" + std::to_string(seq), "v", client, seq);
    c.set_first_outstanding(first);
    c.set_proposed_at_ms(time_ms);
    return c;
  };
  kv::Command register_c;
  register_c.mutable_register_client();
  register_c.set_proposed_at_ms(300);
  uint64_t index = sm_->applied_index();
  std::vector<raft::Entry> batch = {
      CommandEntry(++index, 1, command(a, 1, 1, 300)),
      CommandEntry(++index, 1, command(a, 2, 1, 300)),
      CommandEntry(++index, 1, command(a, 3, 2, 300)),  // acknowledges 1
      CommandEntry(++index, 1, command(a, 4, 4, 300)),  // and 2, 3
      CommandEntry(++index, 1, command(a, 5, 4, 300)),
      // Evicts b, the least recently active (200), with its two results.
      CommandEntry(++index, 1, register_c),
      CommandEntry(++index, 1, command(a, 6, 5, 400)),  // acknowledges 4
  };
  const uint64_t c = index - 1;
  std::vector<kv::CommandResult> results;
  ASSERT_TRUE(sm_->ApplyBatch(batch, &results).ok());
  for (const auto& r : results) EXPECT_EQ(r.error(), kv::CommandResult::OK);
  EXPECT_THAT(SessionRecords(engine_.get()),
              ::testing::ElementsAre("1", "1/5", "1/6", std::to_string(c)));

  Reopen();  // the headers say what the table said
  EXPECT_EQ(sm_->session_count(), 2u);
  EXPECT_EQ(SessionPut(a, 4, 5, "k4", "again", 500).error(),
            kv::CommandResult::SESSION_EXPIRED);  // first_outstanding 5
  EXPECT_EQ(SessionPut(a, 5, 5, "k5", "again", 500).put().header().revision(),
            results[4].put().header().revision());
  EXPECT_EQ(SessionPut(b, 3, 1, "b", "3", 500).error(),
            kv::CommandResult::SESSION_EXPIRED);

  // Expiry in the middle of a batch: c has been idle since 300; at 1,400
  // it is removed, with its header, while a goes on in the same batch.
  index = sm_->applied_index();
  ASSERT_TRUE(
      sm_->ApplyBatch({CommandEntry(++index, 1, command(a, 7, 6, 1400)),
                       CommandEntry(++index, 1, command(a, 8, 8, 1400))},
                      &results)
          .ok());
  EXPECT_THAT(SessionRecords(engine_.get()),
              ::testing::ElementsAre("1", "1/8"));
  Reopen();
  EXPECT_EQ(sm_->session_count(), 1u);

  // Many results acknowledged at once go as one range deletion.
  batch.clear();
  index = sm_->applied_index();
  for (uint64_t seq = 9; seq <= 14; ++seq) {
    batch.push_back(CommandEntry(++index, 1, command(a, seq, 8, 1500)));
  }
  ASSERT_TRUE(sm_->ApplyBatch(batch, &results).ok());
  EXPECT_THAT(SessionRecords(engine_.get()),
              ::testing::ElementsAre("1", "1/8", "1/9", "1/10", "1/11", "1/12",
                                     "1/13", "1/14"));
  ASSERT_TRUE(
      sm_->ApplyBatch({CommandEntry(++index, 1, command(a, 15, 15, 1500))},
                      &results)
          .ok());
  EXPECT_THAT(SessionRecords(engine_.get()),
              ::testing::ElementsAre("1", "1/15"));
}

}  // namespace
}  // namespace raftkv::storage
