// A KvStateMachine on an on-disk RocksDB in a temp dir, with builders for
// the commands of the retained history and leases (compaction, lease grant
// and revoke, puts with leases, reads at a revision), shared by
// history_test.cc and leases_test.cc. Must never touch anything outside its
// temp dir.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "storage/engine.h"
#include "storage/history.h"
#include "storage/kv_state_machine.h"
#include "tests/storage/test_util.h"

namespace raftkv::storage::testing {

inline kv::Command CompactCommand(int64_t revision) {
  kv::Command c;
  c.mutable_compact()->set_revision(revision);
  return c;
}

inline kv::Command GrantCommand(int64_t id, int64_t ttl) {
  kv::Command c;
  c.mutable_lease_grant()->set_id(id);
  c.mutable_lease_grant()->set_ttl(ttl);
  return c;
}

inline kv::Command RevokeCommand(int64_t id) {
  kv::Command c;
  c.mutable_lease_revoke()->set_id(id);
  return c;
}

inline kv::Command LeasedPut(const std::string& key, const std::string& value,
                             int64_t lease) {
  kv::Command c = PutCommand(key, value);
  c.mutable_put()->set_lease(lease);
  return c;
}

inline kv::Command DeleteCommand(const std::string& key,
                                 const std::string& range_end = "") {
  kv::Command c;
  c.mutable_delete_range()->set_key(key);
  c.mutable_delete_range()->set_range_end(range_end);
  return c;
}

inline kv::RangeRequest RangeAt(const std::string& key,
                                const std::string& range_end,
                                int64_t revision) {
  kv::RangeRequest r;
  r.set_key(key);
  r.set_range_end(range_end);
  r.set_revision(revision);
  return r;
}

class MvccTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    sm_.reset();
    engine_.reset();
    EngineOptions o;
    o.memory_budget_bytes = 8 << 20;
    o.write_buffer_bytes = 1 << 20;
    auto engine = Engine::Open(tmp_.Sub("node"), o);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    auto sm = KvStateMachine::Open(engine_.get());
    ASSERT_TRUE(sm.ok()) << sm.status().ToString();
    sm_ = std::move(sm).value();
  }

  // Applies `commands` as the next entries, in one batch; their results.
  std::vector<kv::CommandResult> RunBatch(
      const std::vector<kv::Command>& commands,
      ApplyEffects* effects = nullptr) {
    std::vector<raft::Entry> entries;
    for (const kv::Command& c : commands) {
      entries.push_back(
          CommandEntry(sm_->applied_index() + 1 + entries.size(), 1, c));
    }
    std::vector<kv::CommandResult> results;
    Status s = sm_->ApplyBatch(entries, &results, effects);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return results;
  }
  kv::CommandResult Run(const kv::Command& command,
                        ApplyEffects* effects = nullptr) {
    auto results = RunBatch({command}, effects);
    return results.empty() ? kv::CommandResult() : results.front();
  }
  kv::CommandResult Put(const std::string& key, const std::string& value,
                        int64_t lease = 0) {
    return Run(LeasedPut(key, value, lease));
  }
  kv::CommandResult Delete(const std::string& key,
                           const std::string& range_end = "") {
    return Run(DeleteCommand(key, range_end));
  }
  int64_t Grant(int64_t id, int64_t ttl = 10) {
    auto r = Run(GrantCommand(id, ttl));
    EXPECT_EQ(r.error(), kv::CommandResult::OK) << r.error_message();
    return r.lease_grant().id();
  }

  // key -> value of the range [key, range_end) at `revision` (0: now);
  // "<error: ...>" as the only entry when the read fails.
  std::map<std::string, std::string> ValuesAt(const std::string& key,
                                              const std::string& range_end,
                                              int64_t revision) {
    auto got = sm_->Range(RangeAt(key, range_end, revision));
    if (!got.ok()) return {{"<error>", got.status().ToString()}};
    std::map<std::string, std::string> out;
    for (const kv::KeyValue& kv : got->kvs()) out[kv.key()] = kv.value();
    return out;
  }
  // The single key `key` at `revision`; found = false when absent.
  kv::KeyValue KeyAt(const std::string& key, int64_t revision, bool* found) {
    auto got = sm_->Range(RangeAt(key, "", revision));
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    *found = got.ok() && got->kvs_size() == 1;
    return *found ? got->kvs(0) : kv::KeyValue();
  }

  // Every retained event with a revision in [from, to] (to at most the
  // current revision).
  std::vector<kv::Event> History(int64_t from, int64_t to) {
    std::vector<kv::Event> events;
    int64_t next = 0;
    to = std::min(to, sm_->revision());
    Status s = ReadHistory(*engine_, from, to, 1 << 20, &events, &next);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return events;
  }

  std::vector<std::string> KeysOf(int64_t lease) {
    auto keys = sm_->LeaseKeys(lease);
    EXPECT_TRUE(keys.ok()) << keys.status().ToString();
    return keys.ok() ? *keys : std::vector<std::string>{"<error>"};
  }

  TempDir tmp_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<KvStateMachine> sm_;
};

}  // namespace raftkv::storage::testing
