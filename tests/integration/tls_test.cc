// TLS on raftkvd's client listener and between its peers, as etcd does it:
// real processes, certificates made by the test (test_certs.h). A cluster
// with mutual peer TLS and client TLS serves the client library and
// raftkvctl (backups too); a peer with a certificate from another CA is
// shut out while the others go on; client certificate authentication
// refuses clients without one; a renewed certificate is served to new
// connections without a restart and a broken one is not; a follower
// catches up by a snapshot over TLS; a malformed frame under TLS closes
// only its connection.
#include "client/tls.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "client/blocking_frames.h"
#include "tests/integration/log_text.h"
#include "tests/integration/raftkvctl_run.h"
#include "tests/integration/test_certs.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using ::raftkv::integration::Count;
using ::raftkv::integration::Ctl;
using ::raftkv::integration::CtlRun;
using ::raftkv::integration::Join;
using ::raftkv::integration::ReadFile;
using ::raftkv::integration::TestCerts;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Copies `from` over `to` atomically (a new file renamed into place).
void Replace(const std::string& from, const std::string& to) {
  std::filesystem::copy_file(from, to + ".new",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(to + ".new", to);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(certs_.dir().empty());
    ASSERT_TRUE(certs_.MakeCa("ca"));
    ASSERT_TRUE(certs_.MakeCa("evil"));
    ASSERT_TRUE(certs_.MakeCert("node", "ca", 1001));
    ASSERT_TRUE(certs_.MakeCert("client", "ca", 2001));
    ASSERT_TRUE(certs_.MakeCert("intruder", "evil", 3001));
    ASSERT_TRUE(certs_.MakeCert("renewed", "ca", 4242));
  }

  // Client TLS on every node (etcd's spellings, with dashes), with
  // certificate `name`.
  std::vector<std::string> ClientFlags(bool client_cert_auth,
                                       const std::string& name = "node") {
    std::vector<std::string> flags = {"--cert-file=" + certs_.cert(name),
                                      "--key-file=" + certs_.key(name),
                                      "--trusted-ca-file=" + certs_.cert("ca")};
    if (client_cert_auth) flags.push_back("--client-cert-auth");
    return flags;
  }
  // Mutual TLS between peers (underscores: both spellings work).
  std::vector<std::string> PeerFlags(const std::string& name = "node") {
    return {"--peer_cert_file=" + certs_.cert(name),
            "--peer_key_file=" + certs_.key(name),
            "--peer_trusted_ca_file=" + certs_.cert("ca")};
  }
  std::vector<std::string> AllFlags(bool client_cert_auth) {
    std::vector<std::string> flags = ClientFlags(client_cert_auth);
    for (auto& f : PeerFlags()) flags.push_back(f);
    return flags;
  }
  ClientTlsOptions ClientTls(bool with_cert, const std::string& ca = "ca") {
    ClientTlsOptions tls;
    tls.enabled = true;
    tls.ca_file = certs_.cert(ca);
    if (with_cert) {
      tls.cert_file = certs_.cert("client");
      tls.key_file = certs_.key("client");
    }
    return tls;
  }
  std::string CtlTlsFlags() {
    return "--cacert=" + certs_.cert("ca") +
           " --cert=" + certs_.cert("client") +
           " --key=" + certs_.key("client") + " ";
  }
  std::unique_ptr<Client> NewClient(const std::vector<std::string>& endpoints,
                                    ClientTlsOptions tls,
                                    milliseconds deadline = seconds(10)) {
    ClientOptions options;
    options.endpoints = endpoints;
    options.tls = std::move(tls);
    options.deadline = deadline;
    auto client = Client::Create(options);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client).value() : nullptr;
  }
  // The certificate a new TLS connection to `address` is shown
  // ("CN=..., serial ..."), or the error.
  std::string ServerCertificate(const std::string& address) {
    auto fd = wire::Dial(address, "", seconds(5));
    if (!fd.ok()) return fd.status().ToString();
    wire::TlsConfig config;
    config.ca_file = certs_.cert("ca");
    config.cert_file = certs_.cert("client");
    config.key_file = certs_.key("client");
    std::string result;
    auto context = wire::TlsContext::Load(config);
    if (context.ok()) {
      auto session = wire::TlsSession::Create(**context, *fd, "127.0.0.1");
      Status s = session.ok() ? (*session)->HandshakeBlocking("probe")
                              : session.status();
      result = s.ok() ? (*session)->PeerCertificate() : s.ToString();
    } else {
      result = context.status().ToString();
    }
    ::close(*fd);
    return result;
  }

  TestCerts certs_;
};

TEST_F(TlsTest, MutualPeerTlsAndClientTlsServeTheClientLibraryAndRaftkvctl) {
  LocalClusterOptions options;
  options.extra_flags = AllFlags(/*client_cert_auth=*/true);
  options.client_tls = ClientTls(/*with_cert=*/true);
  LocalCluster cluster(options);
  ASSERT_NE(cluster.WaitForLeader(seconds(30)), 0);

  auto client = cluster.NewClient();
  ASSERT_TRUE(client->Put("color", "blue").ok());
  auto got = client->Get("color");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "blue");

  const std::string endpoints = Join(cluster.endpoints());
  CtlRun put = Ctl(endpoints, CtlTlsFlags() + "put shape round");
  EXPECT_EQ(put.exit_code, 0) << put.out;
  EXPECT_EQ(Ctl(endpoints, CtlTlsFlags() + "get shape").out, "round\n");
  EXPECT_EQ(Ctl(endpoints, CtlTlsFlags() + "get color").out, "blue\n");
  // etcdctl's https:// endpoints.
  EXPECT_EQ(
      Ctl("https://" + cluster.client_address(1), CtlTlsFlags() + "get shape")
          .out,
      "round\n");
  // A backup: the connection the node takes over keeps its TLS session.
  const std::string backup = certs_.dir() + "/backup.rkv";
  CtlRun save = Ctl(endpoints, CtlTlsFlags() + "snapshot save " + backup);
  EXPECT_EQ(save.exit_code, 0) << save.out;
  EXPECT_GT(std::filesystem::file_size(backup), 0u);

  // Without TLS, or without a client certificate: refused.
  EXPECT_EQ(Ctl(endpoints, "--deadline_ms=1500 get shape").exit_code, 3);
  EXPECT_EQ(Ctl(endpoints, "--deadline_ms=1500 --cacert=" + certs_.cert("ca") +
                               " get shape")
                .exit_code,
            3);
  // No peer connection was ever refused.
  for (int id = 1; id <= 3; ++id) {
    const std::string log = ReadFile(cluster.log_path(id));
    EXPECT_EQ(Count(log, "refusing a peer connection"), 0u) << log;
    EXPECT_EQ(Count(log, "cannot connect to peer"), 0u) << log;
  }
}

TEST_F(TlsTest, PeerWithACertificateFromAnotherCaIsShutOut) {
  LocalClusterOptions options;
  options.extra_flags = AllFlags(/*client_cert_auth=*/false);
  options.client_tls = ClientTls(/*with_cert=*/false);
  LocalCluster cluster(options);
  ASSERT_NE(cluster.WaitForLeader(seconds(30)), 0);
  ASSERT_EQ(cluster.Stop(3), 0);
  cluster.Start(3, {"--peer-cert-file=" + certs_.cert("intruder"),
                    "--peer-key-file=" + certs_.key("intruder")});

  // Nodes 1 and 2 go on: writes commit.
  auto client = NewClient(
      {cluster.client_address(1), cluster.client_address(2)}, ClientTls(false));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client->Put("k" + std::to_string(i), "v").ok()) << i;
  }
  // Node 3 hears nobody: it cannot serve a linearizable read.
  std::this_thread::sleep_for(seconds(2));
  auto alone =
      NewClient({cluster.client_address(3)}, ClientTls(false), seconds(3));
  EXPECT_FALSE(alone->Get("k19").ok());
  ASSERT_TRUE(cluster.running(3));

  // Both ways were refused, and logged with the address.
  std::string logs =
      ReadFile(cluster.log_path(1)) + ReadFile(cluster.log_path(2));
  EXPECT_GE(Count(logs,
                  "cannot connect to peer 3: Unavailable: TLS handshake "
                  "with 127.0.0.1:"),
            1u)
      << logs;
  EXPECT_GE(Count(logs,
                  "refusing a peer connection: Unavailable: TLS "
                  "handshake with 127.0.0.1:"),
            1u)
      << logs;
  EXPECT_GE(Count(logs, "certificate verify failed"), 1u) << logs;
}

TEST_F(TlsTest, ClientCertAuthRefusesClientsWithoutACertificate) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.extra_flags = ClientFlags(/*client_cert_auth=*/true);
  options.client_tls = ClientTls(/*with_cert=*/true);
  LocalCluster cluster(options);
  ASSERT_NE(cluster.WaitForLeader(seconds(30)), 0);
  const std::vector<std::string> endpoints = cluster.endpoints();

  auto with_cert = NewClient(endpoints, ClientTls(true));
  ASSERT_TRUE(with_cert->Put("a", "1").ok());
  auto without = NewClient(endpoints, ClientTls(false), seconds(2));
  EXPECT_FALSE(without->Put("a", "2").ok());
  auto untrusting = NewClient(endpoints, ClientTls(true, "evil"), seconds(2));
  Status refused = untrusting->Put("a", "3").status();
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.ToString().find("certificate verify failed"),
            std::string::npos)
      << refused.ToString();
  auto plain = NewClient(endpoints, ClientTlsOptions(), seconds(2));
  EXPECT_FALSE(plain->Put("a", "4").ok());

  // The server went on serving, and logged the refusals.
  auto got = with_cert->Get("a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->value, "1");
  const std::string log = ReadFile(cluster.log_path(1));
  EXPECT_GE(Count(log,
                  "client connection refused: Unavailable: TLS handshake "
                  "with 127.0.0.1:"),
            1u)
      << log;
}

TEST_F(TlsTest, WithoutClientCertAuthAnyTlsClientIsServed) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.extra_flags = ClientFlags(/*client_cert_auth=*/false);
  options.client_tls = ClientTls(/*with_cert=*/false);
  LocalCluster cluster(options);
  ASSERT_NE(cluster.WaitForLeader(seconds(30)), 0);
  auto client = NewClient(cluster.endpoints(), ClientTls(false));
  EXPECT_TRUE(client->Put("a", "1").ok());
  // The server's name is checked: a certificate for 127.0.0.1 is not one
  // for another name.
  ClientTlsOptions other_name = ClientTls(false);
  other_name.server_name = "db.example.com";
  auto wrong = NewClient(cluster.endpoints(), other_name, seconds(2));
  EXPECT_FALSE(wrong->Put("a", "2").ok());
  ClientTlsOptions skip = other_name;
  skip.insecure_skip_verify = true;
  auto skipping = NewClient(cluster.endpoints(), skip);
  EXPECT_TRUE(skipping->Put("a", "3").ok());
}

TEST_F(TlsTest, RenewedCertificateIsServedWithoutARestart) {
  const std::string live_cert = certs_.dir() + "/live.crt";
  const std::string live_key = certs_.dir() + "/live.key";
  Replace(certs_.cert("node"), live_cert);
  Replace(certs_.key("node"), live_key);
  LocalClusterOptions options;
  options.nodes = 1;
  options.extra_flags = {"--cert-file=" + live_cert, "--key-file=" + live_key,
                         "--trusted-ca-file=" + certs_.cert("ca")};
  options.client_tls = ClientTls(/*with_cert=*/false);
  LocalCluster cluster(options);
  ASSERT_NE(cluster.WaitForLeader(seconds(30)), 0);
  const pid_t pid = cluster.pid(1);
  const std::string address = cluster.client_address(1);
  auto client = cluster.NewClient();
  ASSERT_TRUE(client->Put("before", "1").ok());
  EXPECT_EQ(ServerCertificate(address), "CN=node, serial 03E9");  // 1001

  Replace(certs_.key("renewed"), live_key);
  Replace(certs_.cert("renewed"), live_cert);
  std::string seen;
  const auto until = std::chrono::steady_clock::now() + seconds(20);
  while (std::chrono::steady_clock::now() < until) {
    seen = ServerCertificate(address);
    if (seen == "CN=renewed, serial 1092") break;  // 4242
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_EQ(seen, "CN=renewed, serial 1092");
  EXPECT_EQ(cluster.pid(1), pid);
  EXPECT_TRUE(client->Put("after", "2").ok());  // the old client goes on

  // A broken file keeps the working certificate, loudly.
  {
    std::FILE* f = std::fopen((live_cert + ".new").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("-----BEGIN CERTIFICATE-----\nnot a certificate\n", f);
    std::fclose(f);
    std::filesystem::rename(live_cert + ".new", live_cert);
  }
  std::this_thread::sleep_for(milliseconds(2500));
  EXPECT_EQ(ServerCertificate(address), "CN=renewed, serial 1092");
  EXPECT_TRUE(client->Put("broken", "3").ok());
  const std::string log = ReadFile(cluster.log_path(1));
  EXPECT_GE(Count(log, "changed: reloaded"), 1u) << log;
  EXPECT_GE(Count(log,
                  "changed but do not load; still using the previous "
                  "certificate"),
            1u)
      << log;
}

TEST_F(TlsTest, FollowerCatchesUpBySnapshotOverPeerTls) {
  LocalClusterOptions options;
  options.extra_flags = AllFlags(/*client_cert_auth=*/false);
  options.extra_flags.push_back("--snapshot_entries=100");
  options.extra_flags.push_back("--log_entries_kept=20");
  options.client_tls = ClientTls(/*with_cert=*/false);
  LocalCluster cluster(options);
  const int leader = cluster.WaitForLeader(seconds(30));
  ASSERT_NE(leader, 0);
  const int behind = leader == 3 ? 1 : 3;
  cluster.Kill(behind);
  auto client = cluster.NewClient();
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(client->Put("key" + std::to_string(i), "v").ok()) << i;
  }
  cluster.Start(behind);
  auto direct =
      NewClient({cluster.client_address(behind)}, ClientTls(false), seconds(2));
  const auto until = std::chrono::steady_clock::now() + seconds(60);
  bool caught_up = false;
  while (!caught_up && std::chrono::steady_clock::now() < until) {
    auto got = direct->Get("key399");
    caught_up = got.ok() && got->value == "v";
  }
  EXPECT_TRUE(caught_up);
  const std::string log = ReadFile(cluster.log_path(behind));
  EXPECT_GE(Count(log, " staged: "), 1u) << log;
}

TEST_F(TlsTest, MalformedFrameUnderTlsClosesOnlyItsConnection) {
  LocalClusterOptions options;
  options.nodes = 1;
  options.extra_flags = ClientFlags(/*client_cert_auth=*/false);
  options.client_tls = ClientTls(/*with_cert=*/false);
  LocalCluster cluster(options);
  ASSERT_NE(cluster.WaitForLeader(seconds(30)), 0);
  auto client = cluster.NewClient();
  ASSERT_TRUE(client->Put("a", "1").ok());

  auto fd = wire::Dial(cluster.client_address(1), "", seconds(10));
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  wire::TlsConfig config;
  config.ca_file = certs_.cert("ca");
  auto context = wire::TlsContext::Load(config);
  ASSERT_TRUE(context.ok()) << context.status().ToString();
  auto created = wire::TlsSession::Create(**context, *fd, "127.0.0.1");
  ASSERT_TRUE(created.ok());
  std::unique_ptr<wire::TlsSession> session = std::move(created).value();
  ASSERT_TRUE(session->HandshakeBlocking("raw").ok());
  const wire::Channel channel(*fd, session.get());
  // Field 1 with wire type 7: no protobuf message parses from it.
  ASSERT_TRUE(
      wire::WriteFrame(channel, std::string("\x0f\x0f\x0f", 3), "raw").ok());
  std::string pending, frame;
  Status read = wire::ReadFrame(channel, &pending, 1 << 20, &frame, "raw");
  EXPECT_TRUE(read.IsUnavailable()) << read.ToString();  // closed on us
  session.reset();
  ::close(*fd);

  EXPECT_TRUE(client->Put("b", "2").ok());
  auto got = client->Get("a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value, "1");
  const std::string log = ReadFile(cluster.log_path(1));
  EXPECT_EQ(Count(log, "malformed request frame from client 127.0.0.1:"), 1u)
      << log;
}

TEST_F(TlsTest, ReloadingContextKeepsTheOldContextWhenNewFilesAreBroken) {
  const std::string cert = certs_.dir() + "/r.crt";
  const std::string key = certs_.dir() + "/r.key";
  Replace(certs_.cert("node"), cert);
  Replace(certs_.key("node"), key);
  wire::TlsConfig config;
  config.role = wire::TlsConfig::Role::kServer;
  config.cert_file = cert;
  config.key_file = key;
  config.verify_peer = false;
  auto reloading =
      wire::ReloadingTlsContext::Create(config, "test", milliseconds(0));
  ASSERT_TRUE(reloading.ok()) << reloading.status().ToString();
  auto first = (*reloading)->Current();
  EXPECT_EQ((*reloading)->Current(), first);  // unchanged files: same one
  Replace(certs_.key("renewed"), key);        // key without its cert
  EXPECT_EQ((*reloading)->Current(), first);
  Replace(certs_.cert("renewed"), cert);
  auto second = (*reloading)->Current();
  EXPECT_NE(second, first);
  EXPECT_EQ((*reloading)->reloads(), 1u);
  EXPECT_FALSE(
      wire::ReloadingTlsContext::Create(
          wire::TlsConfig{wire::TlsConfig::Role::kServer, certs_.cert("node"),
                          certs_.key("renewed"), "", false},
          "mismatched")
          .ok());
}

// raftkvd refuses half a TLS configuration, in either spelling.
TEST_F(TlsTest, IncompleteTlsFlagsAreRefused) {
  const std::string raftkvd =
      std::filesystem::path(integration::RaftkvctlPath()).parent_path() /
      "raftkvd";
  auto run = [&](const std::string& flags) {
    const std::string cmd = raftkvd +
                            " --id=1 --cluster=1=127.0.0.1:1 "
                            "--listen_client=127.0.0.1:2 --data_dir=" +
                            certs_.dir() + "/never " + flags + " 2>&1";
    std::string out;
    FILE* pipe = ::popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
    const int status = ::pclose(pipe);
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
  };
  auto [code, out] = run("--cert-file=" + certs_.cert("node"));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--cert-file and --key-file go together"),
            std::string::npos)
      << out;
  std::tie(code, out) = run("--peer_cert_file=" + certs_.cert("node") +
                            " --peer_key_file=" + certs_.key("node"));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--peer-trusted-ca-file must be set"), std::string::npos)
      << out;
  std::tie(code, out) =
      run("--client-cert-auth --cert-file=" + certs_.cert("node") +
          " --key-file=" + certs_.key("node"));
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--trusted-ca-file must be set"), std::string::npos)
      << out;
  EXPECT_FALSE(std::filesystem::exists(certs_.dir() + "/never"));
}

}  // namespace
}  // namespace raftkv
