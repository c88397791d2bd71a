// Authentication and authorisation with real raftkvd processes
// (docs/api.md, "Authentication"): auth enabled on a three-node cluster,
// root allowed everything, a user with a read-only prefix refused writes
// and reads outside it, a token valid on every member and after the
// leader is killed (-9), the client re-authenticating by itself once its
// token is outdated, denials in the server log, and raftkvctl's etcdctl
// syntax and output. Must never signal a process that LocalCluster did
// not start.
#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>

#include "client/blocking_frames.h"
#include "client/kv.pb.h"
#include "tests/integration/log_text.h"
#include "tests/integration/raftkvctl_run.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using integration::Count;
using integration::Ctl;
using integration::Join;
using integration::ReadFile;
using std::chrono::seconds;

// One request on a connection of its own to `address`, as sent: the test
// controls the token exactly (the client library would renew it).
kv::ClientResponse Raw(const std::string& address, kv::ClientRequest request) {
  kv::ClientResponse response;
  auto fd = wire::Dial(address, "", std::chrono::seconds(10));
  if (!fd.ok()) {
    response.set_error(kv::UNAVAILABLE);
    response.set_error_message(fd.status().ToString());
    return response;
  }
  request.set_request_id(1);
  std::string pending;
  std::string payload;
  Status s = wire::WriteFrame(*fd, request.SerializeAsString(), "test");
  if (s.ok()) s = wire::ReadFrame(*fd, &pending, 64 << 20, &payload, "test");
  ::close(*fd);
  if (!s.ok() || !response.ParseFromString(payload)) {
    response.set_error(kv::UNAVAILABLE);
    response.set_error_message(s.ToString());
  }
  return response;
}

std::string Token(const std::string& address, const std::string& user,
                  const std::string& password) {
  kv::ClientRequest r;
  r.mutable_authenticate()->set_name(user);
  r.mutable_authenticate()->set_password(password);
  kv::ClientResponse answer = Raw(address, r);
  EXPECT_EQ(answer.error(), kv::OK) << answer.error_message();
  return answer.authenticate().token();
}

kv::ClientRequest RangeWith(const std::string& token, const std::string& key,
                            bool serializable) {
  kv::ClientRequest r;
  r.set_auth_token(token);
  r.mutable_range()->set_key(key);
  r.mutable_range()->set_serializable(serializable);
  return r;
}

// root (with role root), role reader (READ on prefix /app/), alice
// (reader), /app/config and /other written; then auth enabled.
void SetUpUsers(Client& admin) {
  ASSERT_TRUE(admin.UserAdd("root", "rootpw").ok());
  ASSERT_TRUE(admin.UserGrantRole("root", "root").ok());
  ASSERT_TRUE(admin.RoleAdd("reader").ok());
  ASSERT_TRUE(
      admin
          .RoleGrantPermission("reader", {Permission::Type::kRead, "/app/",
                                          PrefixRangeEnd("/app/")})
          .ok());
  ASSERT_TRUE(admin.UserAdd("alice", "alicepw").ok());
  ASSERT_TRUE(admin.UserGrantRole("alice", "reader").ok());
  ASSERT_TRUE(admin.Put("/app/config", "v1").ok());
  ASSERT_TRUE(admin.Put("/other", "o1").ok());
  Status s = admin.AuthEnable();
  ASSERT_TRUE(s.ok()) << s.ToString();
}

std::unique_ptr<Client> ClientAs(const LocalCluster& cluster,
                                 const std::string& user,
                                 const std::string& password) {
  ClientOptions options = cluster.client_options();
  options.deadline = seconds(10);
  options.user = user;
  options.password = password;
  return std::move(Client::Create(options)).value();
}

TEST(AuthTest, EnforcedOnEveryMemberAndAcrossAFailover) {
  LocalCluster cluster(3);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  auto admin = cluster.NewClient();
  SetUpUsers(*admin);

  // Without credentials: etcd's answer.
  Status anonymous = admin->Put("/app/config", "x").status();
  EXPECT_EQ(anonymous.message(), "etcdserver: user name is empty");

  // root may do everything.
  auto root = ClientAs(cluster, "root", "rootpw");
  ASSERT_TRUE(root->Put("/app/config", "v2").ok());
  auto rev = root->Put("/other", "o2");
  ASSERT_TRUE(rev.ok()) << rev.status().ToString();
  EXPECT_TRUE(root->Get("/other").ok());
  EXPECT_TRUE(root->MemberList().ok());
  EXPECT_TRUE(root->Compact(*rev - 1).ok());
  auto users = root->UserList();
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  EXPECT_EQ(*users, (std::vector<std::string>{"alice", "root"}));
  auto status = root->AuthStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->enabled);

  // alice reads her prefix, nothing else, and writes nothing.
  auto alice = ClientAs(cluster, "alice", "alicepw");
  auto got = alice->Get("/app/config");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "v2");
  Status write = alice->Put("/app/config", "mine").status();
  EXPECT_EQ(write.code(), Status::Code::kPermissionDenied) << write.ToString();
  EXPECT_EQ(write.message(), "etcdserver: permission denied");
  EXPECT_EQ(alice->Get("/other").status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(alice->GetPrefix("/").status().code(),
            Status::Code::kPermissionDenied);
  EXPECT_EQ(alice->UserList().status().code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(alice->Compact(1).code(), Status::Code::kPermissionDenied);
  auto wrong = ClientAs(cluster, "alice", "nope");
  Status refused = wrong->Get("/app/config").status();
  EXPECT_EQ(refused.code(), Status::Code::kUnauthenticated);
  EXPECT_EQ(refused.message(),
            "etcdserver: authentication failed, invalid user ID or password");

  // One token, issued by one member, valid on every member.
  const std::string token =
      Token(cluster.client_address(1), "alice", "alicepw");
  const std::string root_token =
      Token(cluster.client_address(2), "root", "rootpw");
  for (int id = 1; id <= 3; ++id) {
    kv::ClientResponse r =
        Raw(cluster.client_address(id), RangeWith(token, "/app/config", true));
    EXPECT_EQ(r.error(), kv::OK) << id << ": " << r.error_message();
  }
  kv::ClientResponse forged = Raw(cluster.client_address(1),
                                  RangeWith(token + "0", "/app/config", true));
  EXPECT_EQ(forged.error(), kv::INVALID_AUTH_TOKEN);

  // The leader dies; the tokens work on the new one.
  cluster.Kill(leader);
  int next = 0;
  for (int i = 0; i < 50 && (next == 0 || next == leader); ++i) {
    next = cluster.WaitForLeader();
  }
  ASSERT_NE(next, 0);
  ASSERT_NE(next, leader);
  kv::ClientResponse read =
      Raw(cluster.client_address(next), RangeWith(token, "/app/config", false));
  EXPECT_EQ(read.error(), kv::OK) << read.error_message();
  ASSERT_EQ(read.range().kvs_size(), 1);
  EXPECT_EQ(read.range().kvs(0).value(), "v2");
  kv::ClientRequest put;
  put.set_auth_token(root_token);
  put.mutable_command()->mutable_put()->set_key("/app/config");
  put.mutable_command()->mutable_put()->set_value("v3");
  kv::ClientResponse written = Raw(cluster.client_address(next), put);
  EXPECT_EQ(written.error(), kv::OK) << written.error_message();
  put.set_auth_token(token);
  kv::ClientResponse denied = Raw(cluster.client_address(next), put);
  EXPECT_EQ(denied.error(), kv::PERMISSION_DENIED);
  EXPECT_EQ(denied.error_message(), "etcdserver: permission denied");
  got = alice->Get("/app/config");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "v3");

  // Every denial was logged by the member that refused it.
  size_t logged = 0;
  for (int id = 1; id <= 3; ++id) {
    const std::string log = ReadFile(cluster.log_path(id));
    logged +=
        Count(log, "denied put (write key '/app/config') to user 'alice'");
  }
  EXPECT_GE(logged, 2u);
  EXPECT_GE(Count(ReadFile(cluster.log_path(next)),
                  "denied put (write key '/app/config') to user 'alice': "
                  "etcdserver: permission denied"),
            1u);
}

TEST(AuthTest, ChangesTakeEffectOnTheNextRequestAndClientsReauthenticate) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto admin = cluster.NewClient();
  SetUpUsers(*admin);
  auto root = ClientAs(cluster, "root", "rootpw");
  auto alice = ClientAs(cluster, "alice", "alicepw");
  ASSERT_TRUE(alice->Get("/app/config").ok());

  // Watches need READ on their range.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> seen;
  Status refusal;
  WatchOptions prefix;
  prefix.range_end = PrefixRangeEnd("/app/");
  auto watch = alice->Watch("/app/", prefix, [&](StatusOr<WatchUpdate> u) {
    std::lock_guard<std::mutex> lock(mu);
    if (u.ok()) {
      for (const WatchEvent& e : u->events) seen.push_back(e.kv.value);
    }
    cv.notify_all();
  });
  auto refused = alice->Watch("/other", {}, [&](StatusOr<WatchUpdate> u) {
    std::lock_guard<std::mutex> lock(mu);
    if (!u.ok()) refusal = u.status();
    cv.notify_all();
  });
  ASSERT_TRUE(root->Put("/app/config", "watched").ok());
  {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, seconds(10),
                            [&] { return !seen.empty() && !refusal.ok(); }));
    EXPECT_EQ(seen, std::vector<std::string>{"watched"});
    EXPECT_EQ(refusal.code(), Status::Code::kPermissionDenied)
        << refusal.ToString();
  }
  refused.reset();
  watch.reset();

  // A revoked role: refused at once, with the same token.
  ASSERT_TRUE(root->UserRevokeRole("alice", "reader").ok());
  EXPECT_EQ(alice->Get("/app/config").status().code(),
            Status::Code::kPermissionDenied);
  ASSERT_TRUE(root->UserGrantRole("alice", "reader").ok());
  EXPECT_TRUE(alice->Get("/app/config").ok());

  // Re-enabling makes a new secret: every token is outdated, and the
  // clients authenticate again by themselves.
  const std::string old = Token(cluster.client_address(1), "alice", "alicepw");
  ASSERT_TRUE(root->AuthDisable().ok());
  ASSERT_TRUE(root->AuthEnable().ok());
  EXPECT_EQ(Raw(cluster.client_address(1), RangeWith(old, "/app/config", false))
                .error(),
            kv::INVALID_AUTH_TOKEN);
  auto got = alice->Get("/app/config");
  EXPECT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(root->Put("/other", "after").ok());

  // A deleted user's client is refused for good.
  ASSERT_TRUE(root->UserDelete("alice").ok());
  Status gone = alice->Get("/app/config").status();
  EXPECT_EQ(gone.code(), Status::Code::kUnauthenticated) << gone.ToString();
}

void CtlRunCheck(const integration::CtlRun& run, const std::string& want) {
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_NE(run.out.find(want), std::string::npos) << run.out;
}

TEST(AuthTest, RaftkvctlSpeaksEtcdctl) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  const std::string e = Join(cluster.endpoints());
  EXPECT_EQ(Ctl(e, "user add root:pw").out, "User root created\n");
  // As etcdctl: the missing root role is added and granted first.
  EXPECT_EQ(Ctl(e, "auth enable").out, "Authentication Enabled\n");
  const std::string as_root = "--user=root:pw ";
  EXPECT_EQ(Ctl(e, as_root + "role add r1").out, "Role r1 created\n");
  EXPECT_EQ(Ctl(e, as_root + "role grant-permission r1 read /a/ --prefix").out,
            "Role r1 updated\n");
  EXPECT_EQ(Ctl(e, as_root + "role grant-permission r1 readwrite k1").out,
            "Role r1 updated\n");
  EXPECT_EQ(Ctl(e, as_root + "role grant-permission --from-key r1 write x").out,
            "Role r1 updated\n");
  EXPECT_EQ(Ctl(e, as_root + "role get r1").out,
            "Role r1\nKV Read:\n\t[/a/, /a0) (prefix /a/)\n\tk1\n"
            "KV Write:\n\tk1\n\t[x, <open ended>\n");
  EXPECT_EQ(Ctl(e, as_root + "user add alice:apw").out, "User alice created\n");
  EXPECT_EQ(Ctl(e, as_root + "user grant-role alice r1").out,
            "Role r1 is granted to user alice\n");
  EXPECT_EQ(Ctl(e, as_root + "user get alice").out, "User: alice\nRoles: r1\n");
  EXPECT_EQ(Ctl(e, as_root + "user list").out, "alice\nroot\n");
  EXPECT_EQ(Ctl(e, as_root + "role list").out, "r1\nroot\n");
  EXPECT_EQ(Ctl(e, "--user=alice:apw get k1").exit_code, 1);      // not found
  EXPECT_EQ(Ctl(e, "--user=alice:apw put /a/x 1").exit_code, 4);  // denied
  EXPECT_EQ(Ctl(e, "get k1").exit_code, 4);                       // no user
  EXPECT_EQ(Ctl(e, as_root + "user delete bob").exit_code, 4);
  EXPECT_EQ(Ctl(e, as_root + "role revoke-permission r1 /a/ --prefix").out,
            "Permission of range [/a/, /a0) is revoked from role r1\n");
  EXPECT_EQ(Ctl(e, as_root + "role revoke-permission r1 k1").out,
            "Permission of key k1 is revoked from role r1\n");
  EXPECT_EQ(Ctl(e, as_root + "user revoke-role alice r1").out,
            "Role r1 is revoked from user alice\n");
  EXPECT_EQ(Ctl(e, as_root + "auth status").out,
            "Authentication Status: true\nAuthRevision: 13\n");
  // A backup needs role root.
  const std::string backup = cluster.data_dir(1) + "/../auth-backup.rkv";
  EXPECT_NE(Ctl(e, "--user=alice:apw snapshot save " + backup).exit_code, 0);
  EXPECT_NE(Ctl(e, "snapshot save " + backup).exit_code, 0);
  CtlRunCheck(Ctl(e, as_root + "snapshot save " + backup), "Snapshot saved");
  EXPECT_EQ(Ctl(e, as_root + "auth disable").out, "Authentication Disabled\n");
}

}  // namespace
}  // namespace raftkv
