// Leases as replicated state (storage/leases.h) through the KvStateMachine:
// grant (id 0: the entry's index or the next free id; a taken id refused),
// puts that attach, move and detach keys (LeaseKeys), puts naming a missing
// lease refused before anything is written (in either branch of a txn),
// ignore_value / ignore_lease, revoke deleting exactly the lease's keys in
// one revision, and what ApplyBatch reports (ApplyEffects). Must never
// touch anything outside its temp dir.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/storage/mvcc_fixture.h"

namespace raftkv::storage {
namespace {

using ::testing::ElementsAre;
using testing::GrantCommand;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::LeasedPut;
using testing::MvccTest;
using ::testing::Pair;
using testing::PutCommand;
using testing::RevokeCommand;

using LeasesTest = MvccTest;

std::vector<std::pair<int64_t, int64_t>> IdsAndTtls(
    const std::vector<LeaseInfo>& leases) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const LeaseInfo& l : leases) out.emplace_back(l.id, l.ttl);
  return out;
}

TEST_F(LeasesTest, GrantWithIdZeroTakesTheEntryIndexOrTheNextFreeId) {
  EXPECT_EQ(Grant(3, 30), 3);  // index 1, id chosen by the client
  EXPECT_EQ(sm_->applied_index(), 1u);
  EXPECT_EQ(Grant(0, 20), 2);         // index 2: free
  EXPECT_EQ(Grant(0, 40), 4);         // index 3: taken, so 4
  auto r = Run(GrantCommand(0, 50));  // index 4: taken, 5 is next
  ASSERT_EQ(r.error(), kv::CommandResult::OK);
  EXPECT_EQ(r.lease_grant().id(), 5);
  EXPECT_EQ(r.lease_grant().ttl(), 50);
  auto leases = sm_->Leases();
  ASSERT_TRUE(leases.ok()) << leases.status().ToString();
  EXPECT_THAT(IdsAndTtls(*leases),
              ElementsAre(std::pair<int64_t, int64_t>{2, 20},
                          std::pair<int64_t, int64_t>{3, 30},
                          std::pair<int64_t, int64_t>{4, 40},
                          std::pair<int64_t, int64_t>{5, 50}));
  EXPECT_EQ(sm_->revision(), 0);  // a grant changes no key

  // A taken id is refused and the lease keeps its TTL.
  r = Run(GrantCommand(3, 99));
  EXPECT_EQ(r.error(), kv::CommandResult::INVALID);
  EXPECT_THAT(r.error_message(), HasSubstr("lease already exists"));
  EXPECT_EQ(IdsAndTtls(*sm_->Leases())[1],
            (std::pair<int64_t, int64_t>{3, 30}));
  EXPECT_EQ(Run(GrantCommand(0, 0)).error(), kv::CommandResult::INVALID);
  EXPECT_EQ(Run(GrantCommand(-1, 10)).error(), kv::CommandResult::INVALID);
  EXPECT_EQ(sm_->Leases()->size(), 4u);

  // Leases are state: they survive a restart.
  Reopen();
  EXPECT_EQ(sm_->Leases()->size(), 4u);
}

TEST_F(LeasesTest, APutNamingAMissingLeaseWritesNothing) {
  Put("k", "v");
  auto r = Run(LeasedPut("k", "changed", 99));
  EXPECT_EQ(r.error(), kv::CommandResult::LEASE_NOT_FOUND);
  EXPECT_THAT(r.error_message(), HasSubstr("lease not found"));
  r = Run(LeasedPut("new", "v", 99));
  EXPECT_EQ(r.error(), kv::CommandResult::LEASE_NOT_FOUND);
  EXPECT_EQ(sm_->revision(), 1);
  bool found = false;
  EXPECT_EQ(KeyAt("k", 0, &found).value(), "v");
  KeyAt("new", 0, &found);
  EXPECT_FALSE(found);
  EXPECT_EQ(History(1, 10).size(), 1u);
  EXPECT_TRUE(sm_->LeaseKeys(99).status().IsNotFound());
}

TEST_F(LeasesTest, APutMovesItsKeyBetweenLeases) {
  const int64_t l1 = Grant(0);
  const int64_t l2 = Grant(0);
  Put("k", "1", l1);
  Put("other", "1", l1);
  EXPECT_THAT(KeysOf(l1), ElementsAre("k", "other"));
  Put("k", "2", l2);
  EXPECT_THAT(KeysOf(l1), ElementsAre("other"));
  EXPECT_THAT(KeysOf(l2), ElementsAre("k"));
  bool found = false;
  EXPECT_EQ(KeyAt("k", 0, &found).lease(), l2);
  // A put without a lease detaches (etcd: the lease is part of the put).
  Put("k", "3");
  EXPECT_THAT(KeysOf(l2), IsEmpty());
  EXPECT_EQ(KeyAt("k", 0, &found).lease(), 0);
  // Revoking the leases the key was once attached to leaves it alone.
  ASSERT_EQ(Run(RevokeCommand(l1)).error(), kv::CommandResult::OK);
  ASSERT_EQ(Run(RevokeCommand(l2)).error(), kv::CommandResult::OK);
  EXPECT_EQ(KeyAt("k", 0, &found).value(), "3");
  KeyAt("other", 0, &found);
  EXPECT_FALSE(found);
}

TEST_F(LeasesTest, ADeleteDetachesItsKeys) {
  const int64_t l = Grant(0);
  Put("a", "1", l);
  Put("b", "1", l);
  Put("c", "1", l);
  Delete("a", "c");  // a and b
  EXPECT_THAT(KeysOf(l), ElementsAre("c"));
  Put("a", "again");  // no lease now
  const int64_t before = sm_->revision();
  ASSERT_EQ(Run(RevokeCommand(l)).error(), kv::CommandResult::OK);
  EXPECT_EQ(sm_->revision(), before + 1);
  bool found = false;
  EXPECT_EQ(KeyAt("a", 0, &found).value(), "again");
  KeyAt("c", 0, &found);
  EXPECT_FALSE(found);
}

TEST_F(LeasesTest, RevokeDeletesExactlyItsKeysInOneRevision) {
  const int64_t l = Grant(0);
  const int64_t other = Grant(0);
  Put("a", "1", l);
  Put("b", "1", l);
  Put("b", "2", l);  // still attached, once
  Put("c", "1", l);
  Put("d", "1");
  Put("e", "1", other);
  const int64_t before = sm_->revision();
  ApplyEffects effects;
  auto r = Run(RevokeCommand(l), &effects);
  ASSERT_EQ(r.error(), kv::CommandResult::OK) << r.error_message();
  ASSERT_TRUE(r.has_lease_revoke());
  EXPECT_EQ(r.lease_revoke().header().revision(), before + 1);
  EXPECT_EQ(sm_->revision(), before + 1);

  EXPECT_THAT(ValuesAt("a", "z", 0),
              ElementsAre(Pair("d", "1"), Pair("e", "1")));
  const auto events = History(before + 1, before + 1);
  std::vector<std::string> deleted;
  for (const kv::Event& e : events) {
    EXPECT_EQ(e.type(), kv::Event::DELETE);
    EXPECT_EQ(e.kv().mod_revision(), before + 1);
    EXPECT_EQ(e.prev_kv().lease(), l);
    deleted.push_back(e.kv().key());
  }
  EXPECT_THAT(deleted, ElementsAre("a", "b", "c"));
  EXPECT_EQ(effects.events.size(), 3u);
  EXPECT_THAT(effects.leases_revoked, ElementsAre(l));
  EXPECT_THAT(effects.leases_granted, IsEmpty());

  EXPECT_TRUE(sm_->LeaseKeys(l).status().IsNotFound());
  ASSERT_EQ(sm_->Leases()->size(), 1u);
  EXPECT_EQ(sm_->Leases()->front().id, other);
  EXPECT_THAT(KeysOf(other), ElementsAre("e"));
  // The old state is still readable at the revision before.
  EXPECT_EQ(ValuesAt("a", "z", before).size(), 5u);

  r = Run(RevokeCommand(l));
  EXPECT_EQ(r.error(), kv::CommandResult::LEASE_NOT_FOUND);
  EXPECT_EQ(Run(RevokeCommand(12345)).error(),
            kv::CommandResult::LEASE_NOT_FOUND);
  EXPECT_EQ(sm_->revision(), before + 1);
  // A key may not be attached to the revoked lease any more.
  EXPECT_EQ(Run(LeasedPut("a", "1", l)).error(),
            kv::CommandResult::LEASE_NOT_FOUND);
}

// etcd checks the leases of both branches: which one runs is not known
// when the command is checked.
TEST_F(LeasesTest, ATxnNamingAMissingLeaseInEitherBranchIsRefused) {
  const int64_t l = Grant(0);
  kv::Command c;
  auto* ok_put = c.mutable_txn()->add_success()->mutable_request_put();
  ok_put->set_key("x");
  ok_put->set_value("1");
  ok_put->set_lease(l);
  auto* bad_put = c.mutable_txn()->add_failure()->mutable_request_put();
  bad_put->set_key("y");
  bad_put->set_value("1");
  bad_put->set_lease(77);
  auto r = Run(c);  // no compare: success runs
  EXPECT_EQ(r.error(), kv::CommandResult::LEASE_NOT_FOUND);
  EXPECT_EQ(sm_->revision(), 0);
  bool found = false;
  KeyAt("x", 0, &found);
  EXPECT_FALSE(found);
  EXPECT_THAT(KeysOf(l), IsEmpty());
  // With the missing lease in the success branch, the same.
  std::swap(*c.mutable_txn()->mutable_success(),
            *c.mutable_txn()->mutable_failure());
  EXPECT_EQ(Run(c).error(), kv::CommandResult::LEASE_NOT_FOUND);
  EXPECT_EQ(sm_->revision(), 0);
}

TEST_F(LeasesTest, IgnoreValueAndIgnoreLease) {
  const int64_t l1 = Grant(0);
  const int64_t l2 = Grant(0);
  Put("k", "v1", l1);
  // ignore_value: the value stays, the lease is the request's.
  kv::Command c = LeasedPut("k", "", l2);
  c.mutable_put()->set_ignore_value(true);
  ASSERT_EQ(Run(c).error(), kv::CommandResult::OK);
  bool found = false;
  kv::KeyValue kv = KeyAt("k", 0, &found);
  EXPECT_EQ(kv.value(), "v1");
  EXPECT_EQ(kv.lease(), l2);
  EXPECT_EQ(kv.version(), 2);
  EXPECT_THAT(KeysOf(l1), IsEmpty());
  EXPECT_THAT(KeysOf(l2), ElementsAre("k"));
  // ignore_lease: the lease stays, the value is the request's.
  c = PutCommand("k", "v2");
  c.mutable_put()->set_ignore_lease(true);
  ASSERT_EQ(Run(c).error(), kv::CommandResult::OK);
  kv = KeyAt("k", 0, &found);
  EXPECT_EQ(kv.value(), "v2");
  EXPECT_EQ(kv.lease(), l2);
  EXPECT_THAT(KeysOf(l2), ElementsAre("k"));
  // Both: a new revision of the same key.
  c.mutable_put()->set_ignore_value(true);
  c.mutable_put()->set_value("ignored");
  ASSERT_EQ(Run(c).error(), kv::CommandResult::OK);
  kv = KeyAt("k", 0, &found);
  EXPECT_EQ(kv.value(), "v2");
  EXPECT_EQ(kv.lease(), l2);
  EXPECT_EQ(kv.version(), 4);

  const int64_t rev = sm_->revision();
  // Refused: a missing key, a lease with ignore_lease.
  c = PutCommand("missing", "v");
  c.mutable_put()->set_ignore_value(true);
  auto r = Run(c);
  EXPECT_EQ(r.error(), kv::CommandResult::INVALID);
  EXPECT_THAT(r.error_message(), HasSubstr("key not found"));
  c = PutCommand("missing", "v");
  c.mutable_put()->set_ignore_lease(true);
  EXPECT_EQ(Run(c).error(), kv::CommandResult::INVALID);
  c = LeasedPut("k", "v", l1);
  c.mutable_put()->set_ignore_lease(true);
  r = Run(c);
  EXPECT_EQ(r.error(), kv::CommandResult::INVALID);
  EXPECT_THAT(r.error_message(), HasSubstr("ignore_lease"));
  EXPECT_EQ(sm_->revision(), rev);
  EXPECT_EQ(KeyAt("k", 0, &found).lease(), l2);
}

// One batch: a grant, a put attaching a key to it (the grant is visible to
// the put's check), a revoke; ApplyEffects says what happened.
TEST_F(LeasesTest, ApplyEffectsReportGrantsRevocationsAndEvents) {
  const int64_t first = static_cast<int64_t>(sm_->applied_index()) + 1;
  ApplyEffects effects;
  auto results = RunBatch({GrantCommand(0, 7), LeasedPut("k", "v", first),
                           GrantCommand(500, 8), RevokeCommand(first)},
                          &effects);
  ASSERT_EQ(results.size(), 4u);
  for (const auto& r : results) {
    EXPECT_EQ(r.error(), kv::CommandResult::OK) << r.error_message();
  }
  EXPECT_EQ(results[0].lease_grant().id(), first);
  ASSERT_EQ(effects.leases_granted.size(), 2u);
  EXPECT_EQ(effects.leases_granted[0].id, first);
  EXPECT_EQ(effects.leases_granted[0].ttl, 7);
  EXPECT_EQ(effects.leases_granted[1].id, 500);
  EXPECT_EQ(effects.leases_granted[1].ttl, 8);
  EXPECT_THAT(effects.leases_revoked, ElementsAre(first));
  ASSERT_EQ(effects.events.size(), 2u);
  EXPECT_EQ(effects.events[0].type(), kv::Event::PUT);
  EXPECT_EQ(effects.events[0].kv().lease(), first);
  EXPECT_EQ(effects.events[0].kv().mod_revision(), 1);
  EXPECT_EQ(effects.events[1].type(), kv::Event::DELETE);
  EXPECT_EQ(effects.events[1].kv().mod_revision(), 2);
  EXPECT_EQ(sm_->revision(), 2);
  ASSERT_EQ(sm_->Leases()->size(), 1u);
  EXPECT_EQ(sm_->Leases()->front().id, 500);

  // A refused command reports nothing.
  ApplyEffects none;
  Run(RevokeCommand(first), &none);
  Run(GrantCommand(500, 1), &none);
  EXPECT_THAT(none.leases_revoked, IsEmpty());
  EXPECT_THAT(none.leases_granted, IsEmpty());
  EXPECT_THAT(none.events, IsEmpty());
}

}  // namespace
}  // namespace raftkv::storage
