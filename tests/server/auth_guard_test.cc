// AuthGuard and the auth cryptography (server/auth_guard.h,
// server/auth_crypto.h): password hashes, tokens (expiry, forged or
// foreign signatures, deleted or changed users, a new secret after
// re-enabling), and etcd's permission rule for each kind of request,
// with the current roles of the user. No processes, no sockets.
#include "server/auth_guard.h"

#include <gtest/gtest.h>

#include "server/auth_crypto.h"

namespace raftkv::server {
namespace {

constexpr uint64_t kNow = 1'700'000'000'000;  // wall clock, ms

kv::Command Add(const std::string& name, const std::string& password) {
  kv::Command c;
  PasswordHash hash = HashPassword(password, 1000);
  kv::AuthUserAddRequest* r = c.mutable_auth_user_add();
  r->set_name(name);
  r->set_hashed_password(hash.hashed_password);
  r->set_salt(hash.salt);
  r->set_iterations(hash.iterations);
  return c;
}

kv::Command Grant(const std::string& user, const std::string& role) {
  kv::Command c;
  c.mutable_auth_user_grant_role()->set_user(user);
  c.mutable_auth_user_grant_role()->set_role(role);
  return c;
}

class AuthGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kv::Command role;
    role.mutable_auth_role_add()->set_name("reader");
    kv::Command perm;
    perm.mutable_auth_role_grant_permission()->set_name("reader");
    kv::Permission* p =
        perm.mutable_auth_role_grant_permission()->mutable_perm();
    p->set_perm_type(kv::Permission::READ);
    p->set_key("/app/");
    p->set_range_end("/app0");
    kv::Command enable;
    enable.mutable_auth_enable()->set_token_secret(RandomBytes(32));
    for (const kv::Command& c :
         {Add("root", "rootpw"), Grant("root", "root"), Add("alice", "alicepw"),
          role, perm, Grant("alice", "reader"), enable}) {
      ApplyCommand(c);
    }
  }
  void ApplyCommand(const kv::Command& c) {
    kv::CommandResult result;
    ASSERT_EQ(storage::ApplyAuthCommand(c, &state_, &result), kv::OK)
        << c.ShortDebugString();
    guard_.SetState(std::make_shared<const kv::AuthState>(state_), ++index_);
  }
  kv::ErrorCode Check(const kv::ClientRequest& request, std::string* user) {
    return guard_.Authorize(request, kNow, user);
  }
  kv::ClientRequest Put(const std::string& key, const std::string& token) {
    kv::ClientRequest r;
    r.set_auth_token(token);
    r.mutable_command()->mutable_put()->set_key(key);
    return r;
  }
  kv::ClientRequest Get(const std::string& key, const std::string& end,
                        const std::string& token) {
    kv::ClientRequest r;
    r.set_auth_token(token);
    r.mutable_range()->set_key(key);
    r.mutable_range()->set_range_end(end);
    return r;
  }

  kv::AuthState state_;
  uint64_t index_ = 0;
  AuthGuard guard_{1};
};

TEST(AuthCryptoTest, PasswordHashesAreSaltedAndChecked) {
  PasswordHash a = HashPassword("secret", 1000);
  PasswordHash b = HashPassword("secret", 1000);
  EXPECT_NE(a.salt, b.salt);
  EXPECT_NE(a.hashed_password, b.hashed_password);
  kv::AuthUser user;
  user.set_hashed_password(a.hashed_password);
  user.set_salt(a.salt);
  user.set_iterations(a.iterations);
  EXPECT_TRUE(CheckPassword("secret", user));
  EXPECT_FALSE(CheckPassword("Secret", user));
  EXPECT_FALSE(CheckPassword("", user));
  user.set_no_password(true);
  EXPECT_FALSE(CheckPassword("secret", user));
}

TEST(AuthCryptoTest, TokensVerifyOnlyWithTheirSecretAndUnchanged) {
  const std::string secret = RandomBytes(32);
  TokenClaims claims{"a:b.c", 7, kNow};
  const std::string token = SignToken(secret, claims);
  TokenClaims got;
  ASSERT_TRUE(VerifyToken(secret, token, &got));
  EXPECT_EQ(got.user, "a:b.c");
  EXPECT_EQ(got.auth_revision, 7u);
  EXPECT_EQ(got.expires_at_ms, kNow);
  EXPECT_FALSE(VerifyToken(RandomBytes(32), token, &got));
  EXPECT_FALSE(VerifyToken("", token, &got));
  // One changed character anywhere breaks it.
  for (size_t i = 0; i < token.size(); ++i) {
    std::string bad = token;
    bad[i] = bad[i] == '0' ? '1' : '0';
    EXPECT_FALSE(VerifyToken(secret, bad, &got)) << i;
  }
  EXPECT_FALSE(VerifyToken(secret, "", &got));
  EXPECT_FALSE(VerifyToken(secret, "zz.zz", &got));
  // A longer expiry under the same MAC is a forgery.
  const std::string other = SignToken(secret, TokenClaims{"a", 7, kNow + 1});
  EXPECT_FALSE(VerifyToken(
      secret, other.substr(0, other.find('.')) + token.substr(token.find('.')),
      &got));
}

TEST_F(AuthGuardTest, TokenExpires) {
  const std::string token = guard_.IssueToken("alice", kNow);
  std::string user;
  EXPECT_EQ(guard_.CheckToken(token, kNow + 1, &user), kv::OK);
  EXPECT_EQ(user, "alice");
  EXPECT_EQ(guard_.CheckToken(token, kNow + 5 * 60 * 1000 - 1, &user), kv::OK);
  EXPECT_EQ(guard_.CheckToken(token, kNow + 5 * 60 * 1000, &user),
            kv::INVALID_AUTH_TOKEN);
}

TEST_F(AuthGuardTest, TokenOfADeletedOrChangedUserIsRejected) {
  const std::string token = guard_.IssueToken("alice", kNow);
  std::string user;
  ASSERT_EQ(Check(Get("/app/x", "", token), &user), kv::OK);
  // A role change keeps the token (permissions are checked as they are now).
  kv::Command role;
  role.mutable_auth_role_add()->set_name("extra");
  ApplyCommand(role);
  EXPECT_EQ(Check(Get("/app/x", "", token), &user), kv::OK);
  // A new password invalidates it.
  kv::Command passwd;
  PasswordHash hash = HashPassword("new", 1000);
  passwd.mutable_auth_user_change_password()->set_name("alice");
  passwd.mutable_auth_user_change_password()->set_hashed_password(
      hash.hashed_password);
  passwd.mutable_auth_user_change_password()->set_salt(hash.salt);
  passwd.mutable_auth_user_change_password()->set_iterations(1000);
  ApplyCommand(passwd);
  EXPECT_EQ(Check(Get("/app/x", "", token), &user), kv::INVALID_AUTH_TOKEN);
  const std::string second = guard_.IssueToken("alice", kNow);
  EXPECT_EQ(Check(Get("/app/x", "", second), &user), kv::OK);
  // Deleted, then re-created under the same name: still invalid.
  kv::Command del;
  del.mutable_auth_user_delete()->set_name("alice");
  ApplyCommand(del);
  EXPECT_EQ(Check(Get("/app/x", "", second), &user), kv::INVALID_AUTH_TOKEN);
  ApplyCommand(Add("alice", "again"));
  ApplyCommand(Grant("alice", "reader"));
  EXPECT_EQ(Check(Get("/app/x", "", second), &user), kv::INVALID_AUTH_TOKEN);
  EXPECT_GE(guard_.denials(), 2u);
}

TEST_F(AuthGuardTest, ReEnablingChangesTheSecret) {
  const std::string token = guard_.IssueToken("root", kNow);
  std::string user;
  ASSERT_EQ(Check(Put("k", token), &user), kv::OK);
  kv::Command disable;
  disable.mutable_auth_disable();
  ApplyCommand(disable);
  EXPECT_EQ(Check(Put("k", ""), &user), kv::OK);  // no auth: all pass
  EXPECT_EQ(user, "");
  kv::Command enable;
  enable.mutable_auth_enable()->set_token_secret(RandomBytes(32));
  ApplyCommand(enable);
  EXPECT_EQ(Check(Put("k", token), &user), kv::INVALID_AUTH_TOKEN);
}

TEST_F(AuthGuardTest, WhatEachRequestNeeds) {
  const std::string alice = guard_.IssueToken("alice", kNow);
  const std::string root = guard_.IssueToken("root", kNow);
  std::string user;
  // No token: etcd's "user name is empty"; some requests need none.
  EXPECT_EQ(Check(Get("/app/x", "", ""), &user), kv::USER_EMPTY);
  kv::ClientRequest status;
  status.mutable_status();
  EXPECT_EQ(Check(status, &user), kv::OK);
  kv::ClientRequest auth;
  auth.mutable_authenticate()->set_name("alice");
  EXPECT_EQ(Check(auth, &user), kv::OK);
  kv::ClientRequest reg;
  reg.mutable_command()->mutable_register_client();
  EXPECT_EQ(Check(reg, &user), kv::OK);
  // Reads of her prefix only; no writes.
  EXPECT_EQ(Check(Get("/app/x", "", alice), &user), kv::OK);
  EXPECT_EQ(user, "alice");
  EXPECT_EQ(Check(Get("/app/", "/app0", alice), &user), kv::OK);
  EXPECT_EQ(Check(Get("/app0", "", alice), &user), kv::PERMISSION_DENIED);
  EXPECT_EQ(Check(Get("/", std::string(1, '\0'), alice), &user),
            kv::PERMISSION_DENIED);
  EXPECT_EQ(Check(Put("/app/x", alice), &user), kv::PERMISSION_DENIED);
  EXPECT_EQ(Check(Put("/app/x", root), &user), kv::OK);
  // A txn: compares and ranges need READ, puts WRITE, in both branches.
  kv::ClientRequest txn;
  txn.set_auth_token(alice);
  kv::TxnRequest* t = txn.mutable_command()->mutable_txn();
  t->add_compare()->set_key("/app/a");
  t->add_success()->mutable_request_range()->set_key("/app/b");
  EXPECT_EQ(Check(txn, &user), kv::OK);
  t->add_failure()->mutable_request_put()->set_key("/app/c");
  EXPECT_EQ(Check(txn, &user), kv::PERMISSION_DENIED);
  t->clear_failure();
  t->add_compare()->set_key("/other");
  EXPECT_EQ(Check(txn, &user), kv::PERMISSION_DENIED);
  // Watches need READ on their range.
  kv::ClientRequest watch;
  watch.set_auth_token(alice);
  watch.mutable_watch_create()->set_key("/app/");
  watch.mutable_watch_create()->set_range_end("/app0");
  EXPECT_EQ(Check(watch, &user), kv::OK);
  watch.mutable_watch_create()->set_range_end(std::string(1, '\0'));
  EXPECT_EQ(Check(watch, &user), kv::PERMISSION_DENIED);
  // Leases: any user; compaction, members, auth management: root.
  kv::ClientRequest grant;
  grant.set_auth_token(alice);
  grant.mutable_command()->mutable_lease_grant()->set_ttl(10);
  EXPECT_EQ(Check(grant, &user), kv::OK);
  kv::ClientRequest compact;
  compact.set_auth_token(alice);
  compact.mutable_command()->mutable_compact()->set_revision(1);
  EXPECT_EQ(Check(compact, &user), kv::PERMISSION_DENIED);
  compact.set_auth_token(root);
  EXPECT_EQ(Check(compact, &user), kv::OK);
  kv::ClientRequest users;
  users.set_auth_token(alice);
  users.mutable_auth_user_list();
  EXPECT_EQ(Check(users, &user), kv::PERMISSION_DENIED);
  users.set_auth_token(root);
  EXPECT_EQ(Check(users, &user), kv::OK);
  kv::ClientRequest member;
  member.set_auth_token(alice);
  member.mutable_member_remove()->set_id(2);
  EXPECT_EQ(Check(member, &user), kv::PERMISSION_DENIED);
  kv::ClientRequest backup;
  backup.set_auth_token(alice);
  backup.mutable_snapshot_save();
  EXPECT_EQ(Check(backup, &user), kv::PERMISSION_DENIED);
}

TEST_F(AuthGuardTest, ARevokedRoleTakesEffectOnTheNextRequest) {
  const std::string alice = guard_.IssueToken("alice", kNow);
  std::string user;
  ASSERT_EQ(Check(Get("/app/x", "", alice), &user), kv::OK);
  kv::Command revoke;
  revoke.mutable_auth_user_revoke_role()->set_name("alice");
  revoke.mutable_auth_user_revoke_role()->set_role("reader");
  ApplyCommand(revoke);
  EXPECT_EQ(Check(Get("/app/x", "", alice), &user), kv::PERMISSION_DENIED);
  ApplyCommand(Grant("alice", "reader"));
  EXPECT_EQ(Check(Get("/app/x", "", alice), &user), kv::OK);
}

TEST_F(AuthGuardTest, AFloodOfDenialsDoesNotFloodTheLog) {
  const std::string alice = guard_.IssueToken("alice", kNow);
  std::string user;
  const uint64_t before = guard_.denials_logged();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(Check(Put("/app/x", alice), &user), kv::PERMISSION_DENIED);
  }
  EXPECT_GE(guard_.denials(), 1000u);
  // At most 10 a second: this loop takes well under a few seconds.
  EXPECT_GE(guard_.denials_logged() - before, 1u);
  EXPECT_LE(guard_.denials_logged() - before, 40u);
}

TEST_F(AuthGuardTest, AnOlderStateDoesNotReplaceANewerOne) {
  const kv::AuthState newer = state_;
  kv::AuthState older;  // auth disabled, applied "before"
  guard_.SetState(std::make_shared<const kv::AuthState>(older), index_ - 1);
  EXPECT_TRUE(guard_.enabled());
  guard_.SetState(std::make_shared<const kv::AuthState>(older), index_ + 1);
  EXPECT_FALSE(guard_.enabled());
}

}  // namespace
}  // namespace raftkv::server
