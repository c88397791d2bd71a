// Bad input against real raftkvd processes: malformed and oversized frames
// on client and peer ports, peers that are not of this cluster, oversized
// keys and values. Each must get a clear
// error or a closed connection, while the server keeps serving and loses
// nothing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>

#include "client/frame.h"
#include "raft/raft.pb.h"
#include "server/cluster_identity.h"
#include "tests/integration/log_text.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

// A blocking loopback socket with a receive timeout.
class RawSocket {
 public:
  explicit RawSocket(const std::string& address) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    const size_t colon = address.rfind(':');
    addr.sin_port = htons(std::stoi(address.substr(colon + 1)));
    ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
    connected_ =
        ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~RawSocket() { ::close(fd_); }
  bool connected() const { return connected_; }
  void Write(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // True if the server closed the connection (EOF or reset) within 5 s.
  bool ClosedByPeer() {
    char buf[256];
    while (true) {
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string Frame(const std::string& payload) {
  std::string out;
  wire::AppendFrame(payload, &out);
  return out;
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(cluster_.WaitForLeader(), 0);
    client_ = cluster_.NewClient();
    ASSERT_TRUE(client_->Put("canary", "alive").ok());
  }
  void ExpectStillServing() {
    auto r = client_->Get("canary");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->value, "alive");
    EXPECT_TRUE(client_->Put("after", "ok").ok());
  }

  LocalCluster cluster_{3};
  std::unique_ptr<Client> client_;
};

TEST_F(BadInputTest, MalformedClientFrameClosesOnlyThatConnection) {
  RawSocket s(cluster_.client_address(1));
  ASSERT_TRUE(s.connected());
  s.Write(
      Frame(std::string("\xff\xff\xff\xff garbage that is no protobuf", 33)));
  EXPECT_TRUE(s.ClosedByPeer());
  ExpectStillServing();
}

TEST_F(BadInputTest, OversizedClientFrameIsRejected) {
  RawSocket s(cluster_.client_address(2));
  ASSERT_TRUE(s.connected());
  s.Write(std::string("\x7f\xff\xff\xff", 4));  // announces ~2 GiB
  EXPECT_TRUE(s.ClosedByPeer());
  ExpectStillServing();
}

TEST_F(BadInputTest, GarbageOnPeerPortsIsRejected) {
  for (int id = 1; id <= 3; ++id) {
    RawSocket garbage(cluster_.peer_address(id));
    ASSERT_TRUE(garbage.connected());
    garbage.Write(Frame(std::string(1000, '\x07')));
    EXPECT_TRUE(garbage.ClosedByPeer()) << "node " << id;
    RawSocket huge(cluster_.peer_address(id));
    ASSERT_TRUE(huge.connected());
    huge.Write(std::string("\xff\xff\xff\xff", 4));
    EXPECT_TRUE(huge.ClosedByPeer()) << "node " << id;
  }
  ExpectStillServing();
}

// A heartbeat from "node 2" in term 1000: accepted, it would make the node
// that takes it step up to term 1000 and disrupt the cluster.
std::string DisruptiveHeartbeat(int to) {
  raft::Message m;
  m.set_type(raft::MSG_HEARTBEAT);
  m.set_from(to == 2 ? 3 : 2);
  m.set_to(to);
  m.set_term(1000);
  return Frame(m.SerializeAsString());
}

uint64_t HighestTerm(Client& client) {
  uint64_t term = 0;
  for (const NodeInfo& n : client.ClusterStatus())
    term = std::max(term, n.term);
  return term;
}

TEST_F(BadInputTest, APeerOfAnotherClusterIsRefused) {
  const uint64_t term = HighestTerm(*client_);
  const std::vector<NodeInfo> nodes = client_->ClusterStatus();
  ASSERT_EQ(nodes.size(), 3u);
  const uint64_t ours = nodes[0].cluster_id;
  ASSERT_NE(ours, 0u);
  for (const NodeInfo& n : nodes) EXPECT_EQ(n.cluster_id, ours);
  for (int id = 1; id <= 3; ++id) {
    RawSocket s(cluster_.peer_address(id));
    ASSERT_TRUE(s.connected());
    s.Write(Frame(server::EncodePeerHello(ours + 1, id == 2 ? 3 : 2, "")) +
            DisruptiveHeartbeat(id));
    EXPECT_TRUE(s.ClosedByPeer()) << "node " << id;
  }
  EXPECT_EQ(HighestTerm(*client_), term);
  EXPECT_TRUE(integration::ReadFile(cluster_.log_path(1))
                  .find("belongs to cluster " +
                        server::ClusterIdText(ours + 1)) != std::string::npos);
  ExpectStillServing();
}

TEST_F(BadInputTest, AMessageBeforeAHelloIsRefused) {
  const uint64_t term = HighestTerm(*client_);
  for (int id = 1; id <= 3; ++id) {
    RawSocket s(cluster_.peer_address(id));
    ASSERT_TRUE(s.connected());
    s.Write(DisruptiveHeartbeat(id));
    EXPECT_TRUE(s.ClosedByPeer()) << "node " << id;
  }
  EXPECT_EQ(HighestTerm(*client_), term);
  ExpectStillServing();
}

TEST_F(BadInputTest, OversizedValueGetsTooLargeFromTheServer) {
  ClientOptions options = cluster_.client_options();
  options.max_value_bytes = 8 << 20;  // let it through the client's check
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Put("big", std::string((1 << 20) + 1, 'x'));
  EXPECT_EQ(r.status().code(), Status::Code::kTooLarge)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("exceeds the limit"), std::string::npos);
  // Exactly at the limit is accepted.
  auto ok = (*client)->Put("big", std::string(1 << 20, 'y'));
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  auto got = client_->Get("big");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value.size(), 1u << 20);
  ExpectStillServing();
}

TEST_F(BadInputTest, OversizedKeyIsRefused) {
  ClientOptions options = cluster_.client_options();
  options.max_key_bytes = 1 << 20;
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Put(std::string(5000, 'k'), "v");
  EXPECT_EQ(r.status().code(), Status::Code::kTooLarge);
  // The client library refuses it locally with its default limits.
  auto local = client_->Put(std::string(5000, 'k'), "v");
  EXPECT_EQ(local.status().code(), Status::Code::kTooLarge);
  ExpectStillServing();
}

}  // namespace
}  // namespace raftkv
