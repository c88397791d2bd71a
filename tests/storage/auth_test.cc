// The replicated auth store (storage/auth.h): etcd 3.4's rules for users,
// roles and permissions; the permission check at range boundaries; the
// auth state applied by the state machine, kept across a reopen and
// carried by a snapshot; the lease-key rule checked at apply. Must never
// touch anything outside its temp dirs.
#include "storage/auth.h"

#include <gtest/gtest.h>

#include "storage/raft_log.h"
#include "storage/snapshot.h"
#include "storage/snapshot_install.h"
#include "storage/snapshot_stager.h"
#include "tests/storage/mvcc_fixture.h"

namespace raftkv::storage {
namespace {

using testing::CommandEntry;
using testing::LeasedPut;
using testing::RevokeCommand;
using testing::TempDir;

kv::Command UserAdd(const std::string& name) {
  kv::Command c;
  c.mutable_auth_user_add()->set_name(name);
  c.mutable_auth_user_add()->set_hashed_password(std::string(32, 'h'));
  c.mutable_auth_user_add()->set_salt("salt");
  c.mutable_auth_user_add()->set_iterations(1);
  return c;
}
kv::Command RoleAdd(const std::string& name) {
  kv::Command c;
  c.mutable_auth_role_add()->set_name(name);
  return c;
}
kv::Command GrantRole(const std::string& user, const std::string& role) {
  kv::Command c;
  c.mutable_auth_user_grant_role()->set_user(user);
  c.mutable_auth_user_grant_role()->set_role(role);
  return c;
}
kv::Command Revoke(const std::string& user, const std::string& role) {
  kv::Command c;
  c.mutable_auth_user_revoke_role()->set_name(user);
  c.mutable_auth_user_revoke_role()->set_role(role);
  return c;
}
kv::Command Perm(const std::string& role, kv::Permission::Type type,
                 const std::string& key, const std::string& range_end) {
  kv::Command c;
  kv::Permission* p = c.mutable_auth_role_grant_permission()->mutable_perm();
  c.mutable_auth_role_grant_permission()->set_name(role);
  p->set_perm_type(type);
  p->set_key(key);
  p->set_range_end(range_end);
  return c;
}
kv::Command RevokePerm(const std::string& role, const std::string& key,
                       const std::string& range_end) {
  kv::Command c;
  c.mutable_auth_role_revoke_permission()->set_role(role);
  c.mutable_auth_role_revoke_permission()->set_key(key);
  c.mutable_auth_role_revoke_permission()->set_range_end(range_end);
  return c;
}
kv::Command Enable() {
  kv::Command c;
  c.mutable_auth_enable()->set_token_secret(std::string(32, 's'));
  return c;
}
kv::Command UserDelete(const std::string& name) {
  kv::Command c;
  c.mutable_auth_user_delete()->set_name(name);
  return c;
}
kv::Command RoleDelete(const std::string& name) {
  kv::Command c;
  c.mutable_auth_role_delete()->set_role(name);
  return c;
}

// Applies commands to a state, one by one; the code of the last.
kv::ErrorCode Apply(kv::AuthState* state,
                    const std::vector<kv::Command>& commands) {
  kv::ErrorCode code = kv::OK;
  for (const kv::Command& c : commands) {
    kv::CommandResult result;
    code = ApplyAuthCommand(c, state, &result);
  }
  return code;
}

TEST(AuthStoreTest, EnableNeedsRootWithRootRole) {
  kv::AuthState state;
  EXPECT_EQ(Apply(&state, {Enable()}), kv::ROOT_USER_NOT_EXIST);
  EXPECT_EQ(Apply(&state, {UserAdd("root"), Enable()}),
            kv::ROOT_ROLE_NOT_EXIST);
  EXPECT_FALSE(state.enabled());
  // Granting role root needs no role record (etcd).
  EXPECT_EQ(Apply(&state, {GrantRole("root", "root"), Enable()}), kv::OK);
  EXPECT_TRUE(state.enabled());
  EXPECT_EQ(state.token_secret(), std::string(32, 's'));
  EXPECT_EQ(AuthErrorMessage(kv::ROOT_ROLE_NOT_EXIST),
            "etcdserver: root user does not have root role");
}

TEST(AuthStoreTest, EtcdErrorsAndNoOps) {
  kv::AuthState state;
  ASSERT_EQ(
      Apply(&state, {UserAdd("root"), GrantRole("root", "root"), Enable()}),
      kv::OK);
  const uint64_t rev = state.revision();
  EXPECT_EQ(rev, 3u);
  // Each error leaves the state as it was.
  EXPECT_EQ(Apply(&state, {UserAdd("root")}), kv::USER_ALREADY_EXISTS);
  EXPECT_EQ(Apply(&state, {UserAdd("")}), kv::USER_EMPTY);
  EXPECT_EQ(Apply(&state, {RoleAdd("")}), kv::ROLE_EMPTY);
  EXPECT_EQ(Apply(&state, {UserDelete("root")}), kv::INVALID_AUTH_MGMT);
  EXPECT_EQ(Apply(&state, {Revoke("root", "root")}), kv::INVALID_AUTH_MGMT);
  EXPECT_EQ(Apply(&state, {RoleDelete("root")}), kv::INVALID_AUTH_MGMT);
  EXPECT_EQ(Apply(&state, {UserDelete("bob")}), kv::USER_NOT_FOUND);
  EXPECT_EQ(Apply(&state, {GrantRole("bob", "r")}), kv::USER_NOT_FOUND);
  EXPECT_EQ(Apply(&state, {GrantRole("root", "r")}), kv::ROLE_NOT_FOUND);
  EXPECT_EQ(Apply(&state, {Revoke("root", "r")}), kv::ROLE_NOT_GRANTED);
  EXPECT_EQ(Apply(&state, {RevokePerm("r", "k", "")}), kv::ROLE_NOT_FOUND);
  EXPECT_EQ(Apply(&state, {Enable()}), kv::OK);  // already: a no-op
  EXPECT_EQ(Apply(&state, {GrantRole("root", "root")}), kv::OK);  // held
  EXPECT_EQ(state.revision(), rev);
  // Changes count one each.
  EXPECT_EQ(Apply(&state, {RoleAdd("r"), RoleAdd("r")}),
            kv::ROLE_ALREADY_EXISTS);
  EXPECT_EQ(Apply(&state, {RevokePerm("r", "k", "")}),
            kv::PERMISSION_NOT_GRANTED);
  EXPECT_EQ(AuthErrorMessage(kv::PERMISSION_NOT_GRANTED),
            "etcdserver: permission is not granted to the role");
  EXPECT_EQ(state.revision(), rev + 1);
}

TEST(AuthStoreTest, DeletingARoleRevokesItAndPermissionsReplace) {
  kv::AuthState state;
  ASSERT_EQ(Apply(&state, {UserAdd("u"), RoleAdd("b"), RoleAdd("a"),
                           GrantRole("u", "b"), GrantRole("u", "a"),
                           Perm("a", kv::Permission::READ, "k", ""),
                           Perm("a", kv::Permission::WRITE, "k", "")}),
            kv::OK);
  ASSERT_EQ(state.roles_size(), 2);
  EXPECT_EQ(state.roles(0).name(), "a");      // sorted by name
  ASSERT_EQ(state.roles(0).perms_size(), 1);  // same range: replaced
  EXPECT_EQ(state.roles(0).perms(0).perm_type(), kv::Permission::WRITE);
  EXPECT_EQ(FindUser(state, "u")->roles(0), "a");  // sorted
  ASSERT_EQ(Apply(&state, {RoleDelete("a")}), kv::OK);
  ASSERT_EQ(FindUser(state, "u")->roles_size(), 1);
  EXPECT_EQ(FindUser(state, "u")->roles(0), "b");
}

class CheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(Apply(&state_, {UserAdd("root"), GrantRole("root", "root"),
                              UserAdd("u"), RoleAdd("r"), GrantRole("u", "r"),
                              // prefix /a/ (= [/a/, /a0)), read only
                              Perm("r", kv::Permission::READ, "/a/", "/a0"),
                              // [m, p) write only, [p, s) readwrite: adjacent
                              Perm("r", kv::Permission::WRITE, "m", "p"),
                              Perm("r", kv::Permission::READWRITE, "p", "s"),
                              // one key
                              Perm("r", kv::Permission::READ, "solo", ""),
                              // every key >= z
                              Perm("r", kv::Permission::READ, "z",
                                   std::string(1, '\0'))}),
              kv::OK);
  }
  bool Can(kv::Permission::Type type, const std::string& key,
           const std::string& end = "") {
    AuthChecker checker(std::make_shared<const kv::AuthState>(state_));
    return checker.Permitted("u", type, key, end);
  }
  kv::AuthState state_;
};

TEST_F(CheckerTest, PrefixPermission) {
  EXPECT_TRUE(Can(kv::Permission::READ, "/a/"));
  EXPECT_TRUE(Can(kv::Permission::READ, "/a/x"));
  EXPECT_TRUE(Can(kv::Permission::READ, "/a/", "/a0"));  // the whole prefix
  EXPECT_TRUE(Can(kv::Permission::READ, "/a/b", "/a/c"));
  EXPECT_FALSE(Can(kv::Permission::READ, "/a0"));  // exactly at range_end
  EXPECT_FALSE(Can(kv::Permission::READ, "/a"));   // just before the prefix
  EXPECT_FALSE(Can(kv::Permission::READ, "/a/", "/a1"));  // past its end
  EXPECT_FALSE(Can(kv::Permission::READ, "/", "/a0"));    // before its start
  EXPECT_FALSE(Can(kv::Permission::WRITE, "/a/x"));       // read only
  EXPECT_FALSE(Can(kv::Permission::READ, "/a/", std::string(1, '\0')));
}

TEST_F(CheckerTest, AdjacentPermissionsCoverARangeTogether) {
  EXPECT_TRUE(Can(kv::Permission::WRITE, "m", "s"));  // [m,p) + [p,s)
  EXPECT_TRUE(Can(kv::Permission::WRITE, "o", "q"));
  EXPECT_FALSE(Can(kv::Permission::WRITE, "m", "s\x01"));
  EXPECT_FALSE(Can(kv::Permission::WRITE, "s"));  // exactly at range_end
  EXPECT_TRUE(Can(kv::Permission::READ, "p", "s"));
  EXPECT_FALSE(Can(kv::Permission::READ, "o", "q"));  // [m,p) is write only
}

TEST_F(CheckerTest, SingleKeyAndOpenEndedPermissions) {
  EXPECT_TRUE(Can(kv::Permission::READ, "solo"));
  EXPECT_FALSE(Can(kv::Permission::READ, "solo2"));
  EXPECT_FALSE(Can(kv::Permission::READ, "solo", "solp"));  // a range
  EXPECT_TRUE(Can(kv::Permission::READ, "z"));
  EXPECT_TRUE(Can(kv::Permission::READ, "zzz\xff"));
  EXPECT_TRUE(Can(kv::Permission::READ, "z", std::string(1, '\0')));
  EXPECT_TRUE(Can(kv::Permission::READ, "za", std::string(1, '\0')));
  EXPECT_FALSE(Can(kv::Permission::READ, "y", std::string(1, '\0')));
  EXPECT_FALSE(Can(kv::Permission::READ, "y"));
}

TEST_F(CheckerTest, RootMayDoEverythingAndStrangersNothing) {
  AuthChecker checker(std::make_shared<const kv::AuthState>(state_));
  EXPECT_TRUE(checker.IsRoot("root"));
  EXPECT_FALSE(checker.IsRoot("u"));
  EXPECT_TRUE(checker.Permitted("root", kv::Permission::WRITE, "\x01",
                                std::string(1, '\0')));
  EXPECT_FALSE(checker.Permitted("nobody", kv::Permission::READ, "/a/x", ""));
}

TEST_F(CheckerTest, ARevokedRoleTakesItsPermissionsAlong) {
  ASSERT_TRUE(Can(kv::Permission::READ, "/a/x"));
  ASSERT_EQ(Apply(&state_, {Revoke("u", "r")}), kv::OK);
  EXPECT_FALSE(Can(kv::Permission::READ, "/a/x"));
}

class AuthStateMachineTest : public testing::MvccTest {};

TEST_F(AuthStateMachineTest, AppliedStateSurvivesAReopen) {
  ApplyEffects effects;
  EXPECT_EQ(Run(UserAdd("root"), &effects).error(), kv::CommandResult::OK);
  EXPECT_TRUE(effects.auth_changed);
  kv::CommandResult refused = Run(UserAdd("root"));
  EXPECT_EQ(refused.error(), kv::CommandResult::AUTH);
  EXPECT_EQ(refused.auth_error(), kv::USER_ALREADY_EXISTS);
  EXPECT_EQ(refused.error_message(), "etcdserver: user name already exists");
  Run(GrantRole("root", "root"));
  kv::CommandResult enabled = Run(Enable());
  ASSERT_EQ(enabled.error(), kv::CommandResult::OK);
  EXPECT_TRUE(enabled.has_auth_enable());
  EXPECT_TRUE(sm_->auth().enabled());
  const int64_t revision = sm_->revision();
  Reopen();
  EXPECT_TRUE(sm_->auth().enabled());
  EXPECT_EQ(sm_->auth().revision(), 3u);
  EXPECT_EQ(sm_->revision(), revision);  // auth changes are no key revision
  ApplyEffects none;
  Run(Enable(), &none);
  EXPECT_FALSE(none.auth_changed);
}

TEST_F(AuthStateMachineTest, LeaseKeysNeedWriteAtApply) {
  Run(UserAdd("root"));
  Run(GrantRole("root", "root"));
  Run(UserAdd("u"));
  Run(RoleAdd("r"));
  Run(GrantRole("u", "r"));
  Run(Perm("r", kv::Permission::READWRITE, "mine/", "mine0"));
  const int64_t lease = Grant(0, 100);
  ASSERT_EQ(Put("other/k", "v", lease).error(), kv::CommandResult::OK);
  ASSERT_EQ(Run(Enable()).error(), kv::CommandResult::OK);

  kv::Command put = LeasedPut("mine/k", "v", lease);
  put.set_auth_user("u");
  kv::CommandResult denied = Run(put);
  EXPECT_EQ(denied.error(), kv::CommandResult::AUTH);
  EXPECT_EQ(denied.auth_error(), kv::PERMISSION_DENIED);
  EXPECT_EQ(denied.error_message(), "etcdserver: permission denied");
  kv::Command revoke = RevokeCommand(lease);
  revoke.set_auth_user("u");
  EXPECT_EQ(Run(revoke).auth_error(), kv::PERMISSION_DENIED);
  EXPECT_EQ(ValuesAt("other/k", "", 0).size(), 1u);  // nothing applied
  revoke.set_auth_user("root");
  EXPECT_EQ(Run(revoke).error(), kv::CommandResult::OK);
  EXPECT_EQ(ValuesAt("other/k", "", 0).size(), 0u);
}

TEST(AuthSnapshotTest, TheSnapshotCarriesTheAuthState) {
  TempDir tmp;
  auto open = [&](const std::string& dir, std::unique_ptr<Engine>* engine,
                  std::unique_ptr<RaftLog>* log,
                  std::unique_ptr<KvStateMachine>* sm) {
    sm->reset();
    log->reset();
    engine->reset();
    EngineOptions o;
    o.memory_budget_bytes = 8 << 20;
    o.write_buffer_bytes = 1 << 20;
    *engine = std::move(Engine::Open(dir, o)).value();
    *log = std::move(RaftLog::Open(engine->get())).value();
    *sm = std::move(KvStateMachine::Open(engine->get())).value();
  };
  std::unique_ptr<Engine> le, fe;
  std::unique_ptr<RaftLog> ll, fl;
  std::unique_ptr<KvStateMachine> lsm, fsm;
  open(tmp.Sub("leader"), &le, &ll, &lsm);
  open(tmp.Sub("follower"), &fe, &fl, &fsm);
  auto run = [](RaftLog* log, KvStateMachine* sm, const kv::Command& c) {
    const raft::Entry e = CommandEntry(sm->applied_index() + 1, 1, c);
    ASSERT_TRUE(log->Append({e}).ok());
    std::vector<kv::CommandResult> results;
    ASSERT_TRUE(sm->ApplyBatch({e}, &results).ok());
  };
  for (const kv::Command& c :
       {UserAdd("root"), GrantRole("root", "root"), UserAdd("u"), RoleAdd("r"),
        Perm("r", kv::Permission::READ, "/a/", "/a0"), GrantRole("u", "r"),
        Enable()}) {
    run(ll.get(), lsm.get(), c);
  }
  run(fl.get(), fsm.get(), UserAdd("stale"));  // replaced by the snapshot

  auto source = SnapshotSource::Create(*lsm);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  const std::string staging =
      StagingDir(tmp.Sub("follower"), (*source)->term(), (*source)->index());
  auto stager = SnapshotStager::Create(staging, "test");
  ASSERT_TRUE(stager.ok());
  ASSERT_TRUE(
      (*source)
          ->Stream(128, [&](std::string_view c) { return (*stager)->Add(c); })
          .ok());
  ASSERT_TRUE((*stager)->Finish().ok());
  raft::SnapshotMetadata meta;
  meta.set_index((*source)->index());
  meta.set_term((*source)->term());
  meta.mutable_conf_state()->add_voters(1);
  Status s = InstallStagedSnapshot(staging, meta, fl.get(), fsm.get());
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto same = [&](const char* when) {
    SCOPED_TRACE(when);
    EXPECT_EQ(fsm->auth().SerializeAsString(), lsm->auth().SerializeAsString());
    EXPECT_TRUE(fsm->auth().enabled());
    EXPECT_EQ(FindUser(fsm->auth(), "stale"), nullptr);
    AuthChecker checker(std::make_shared<const kv::AuthState>(fsm->auth()));
    EXPECT_TRUE(checker.Permitted("u", kv::Permission::READ, "/a/x", ""));
    EXPECT_FALSE(checker.Permitted("u", kv::Permission::WRITE, "/a/x", ""));
  };
  same("installed");
  open(tmp.Sub("follower"), &fe, &fl, &fsm);
  same("reopened");
}

}  // namespace
}  // namespace raftkv::storage
