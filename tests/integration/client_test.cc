// raftkv::Client against real raftkvd processes: one client shared by many
// threads; a retried write is applied exactly once (a proxy drops the first
// answer to every write, so the retry is certain and counted); writes
// across leader kills apply once each; compare-and-swap and prefixes.
// Must never open a socket outside 127.0.0.1, nor signal a process that
// LocalCluster did not start.
#include <gtest/gtest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "client/framed_connection.h"
#include "client/kv.pb.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

// A TCP proxy on 127.0.0.1 between a Client and one node, on its own I/O
// thread. It forwards every request and answer, except that for each write
// (a command with a session sequence number) it drops the node's first
// answer and closes the client's connection instead: the write has been
// applied, but the client does not know, and must retry the same
// (client id, sequence). It records every write attempt it forwards.
// Thread-safe: attempts() and dropped() may be called from any thread.
class AnswerDroppingProxy {
 public:
  struct WriteAttempt {
    uint64_t client_id = 0;
    uint64_t sequence = 0;
    uint64_t request_id = 0;
  };

  explicit AnswerDroppingProxy(const std::string& upstream)
      : upstream_(ParseLoopback(upstream)),
        acceptor_(io_),
        work_(asio::make_work_guard(io_)) {}
  ~AnswerDroppingProxy() {
    asio::post(io_, [this] {
      std::error_code ec;
      acceptor_.close(ec);
      for (Link& link : links_) CloseLink(link);
      work_.reset();
    });
    if (thread_.joinable()) thread_.join();
  }

  // Listens on a free port of 127.0.0.1 and starts the I/O thread.
  Status Start() {
    std::error_code ec;
    const asio::ip::tcp::endpoint any(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(any.protocol(), ec);
    if (!ec) acceptor_.bind(any, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::IOError("proxy listen: " + ec.message());
    address_ = "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return Status::OK();
  }
  const std::string& address() const { return address_; }
  std::vector<WriteAttempt> attempts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }
  int dropped() const { return dropped_.load(); }

 private:
  struct Link {
    std::shared_ptr<wire::FramedConnection> client, node;
  };

  static asio::ip::tcp::endpoint ParseLoopback(const std::string& address) {
    const size_t colon = address.rfind(':');
    return {asio::ip::make_address(address.substr(0, colon)),
            static_cast<uint16_t>(std::stoi(address.substr(colon + 1)))};
  }
  static void CloseLink(Link& link) {
    if (link.client) link.client->Close(Status::Aborted("proxy closed"));
    if (link.node) link.node->Close(Status::Aborted("proxy closed"));
  }

  void Accept() {
    acceptor_.async_accept(
        [this](const std::error_code& ec, asio::ip::tcp::socket socket) {
          if (ec) return;  // closed
          Connect(std::move(socket));
          Accept();
        });
  }

  // Pairs an accepted client connection with a new one to the node
  // (loopback: a blocking connect returns at once).
  void Connect(asio::ip::tcp::socket client_socket) {
    asio::ip::tcp::socket node_socket(io_);
    std::error_code ec;
    node_socket.connect(upstream_, ec);
    if (ec) return;  // the client sees its connection close
    const size_t index = links_.size();
    links_.push_back({std::make_shared<wire::FramedConnection>(
                          std::move(client_socket), wire::ConnectionLimits{}),
                      std::make_shared<wire::FramedConnection>(
                          std::move(node_socket), wire::ConnectionLimits{})});
    auto close_link = [this, index](const Status&) {
      CloseLink(links_[index]);
    };
    links_[index].client->Start(
        [this, index](std::string payload) { FromClient(index, payload); },
        close_link);
    links_[index].node->Start(
        [this, index](std::string payload) { FromNode(index, payload); },
        close_link);
  }

  void FromClient(size_t index, const std::string& payload) {
    kv::ClientRequest request;
    if (request.ParseFromString(payload) && request.has_command() &&
        request.command().sequence() != 0) {
      const kv::Command& c = request.command();
      if (seen_.insert({c.client_id(), c.sequence()}).second) {
        drop_answer_to_.insert(request.request_id());
      }
      std::lock_guard<std::mutex> lock(mu_);
      attempts_.push_back({c.client_id(), c.sequence(), request.request_id()});
    }
    links_[index].node->Send(payload);
  }

  void FromNode(size_t index, const std::string& payload) {
    kv::ClientResponse response;
    if (response.ParseFromString(payload) &&
        drop_answer_to_.erase(response.request_id()) > 0) {
      ++dropped_;
      CloseLink(links_[index]);  // the client retries at once
      return;
    }
    links_[index].client->Send(payload);
  }

  const asio::ip::tcp::endpoint upstream_;
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::string address_;
  // I/O thread only: one link per accepted connection; the writes seen
  // (client id, sequence); the request ids whose answer is to be dropped.
  std::deque<Link> links_;
  std::set<std::pair<uint64_t, uint64_t>> seen_;
  std::set<uint64_t> drop_answer_to_;
  mutable std::mutex mu_;
  std::vector<WriteAttempt> attempts_;  // guarded by mu_
  std::atomic<int> dropped_{0};
};

TEST(ClientTest, OneClientServesManyThreads) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        const std::string key =
            "t" + std::to_string(t) + "/" + std::to_string(i);
        if (!client->Put(key, std::to_string(i)).ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  auto all = client->GetPrefix("t");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->kvs.size(), 800u);
  // Every write of every thread was numbered in the same session.
  EXPECT_NE(client->client_id(), 0u);
}

// Every write's first answer is lost after the write was applied, so the
// client certainly retries it with the same (client id, sequence); the
// node must answer the retry from its session table, not apply it again.
TEST(ClientTest, RetriedWriteIsAppliedExactlyOnce) {
  LocalCluster cluster(3);
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  AnswerDroppingProxy proxy(cluster.client_address(leader));
  ASSERT_TRUE(proxy.Start().ok());
  ClientOptions options = cluster.client_options();
  options.endpoints = {proxy.address()};
  auto client = Client::Create(options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  auto put = (*client)->Put("once", "1");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  // Applied twice, the cas would compare "2" with "1" and answer false.
  auto swapped = (*client)->CompareAndSwap("once", "1", "2");
  ASSERT_TRUE(swapped.ok()) << swapped.status().ToString();
  EXPECT_TRUE(*swapped);

  // Each write was sent twice with the same session number (the retry),
  // under different request ids; each first answer was dropped.
  EXPECT_EQ(proxy.dropped(), 2);
  std::map<std::pair<uint64_t, uint64_t>, std::set<uint64_t>> tries;
  for (const auto& a : proxy.attempts()) {
    EXPECT_EQ(a.client_id, (*client)->client_id());
    tries[{a.client_id, a.sequence}].insert(a.request_id);
  }
  ASSERT_EQ(tries.size(), 2u);
  for (const auto& [session, request_ids] : tries) {
    EXPECT_EQ(request_ids.size(), 2u) << "sequence " << session.second;
  }
  EXPECT_EQ(proxy.attempts().size(), 4u);

  // version counts the writes applied to the key: put and cas, once each.
  auto kv = cluster.NewClient()->Get("once");
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  EXPECT_EQ(kv->value, "2");
  EXPECT_EQ(kv->version, 2);
}

// Whether a given write here is retried depends on timing
// (RetriedWriteIsAppliedExactlyOnce makes the retry certain); whatever
// happens, every put must be applied once.
TEST(ClientTest, WritesAcrossLeaderKillsAreAppliedOnceEach) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient(std::chrono::seconds(20));
  auto observer = cluster.NewClient();
  constexpr int kWrites = 300;
  for (int i = 1; i <= kWrites; ++i) {
    if (i == 100 || i == 200) {
      // Kill the leader while the next write is in flight.
      auto leader = observer->Leader();
      ASSERT_TRUE(leader.ok());
      std::thread killer([&cluster, id = leader->first] {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        cluster.Kill(static_cast<int>(id));
      });
      ASSERT_TRUE(client->Put("counter", std::to_string(i)).ok()) << i;
      killer.join();
      // Restarted from this thread: a node dies with the thread that
      // started it (LocalCluster).
      cluster.Start(static_cast<int>(leader->first));
      continue;
    }
    ASSERT_TRUE(client->Put("counter", std::to_string(i)).ok()) << i;
  }
  auto kv = client->Get("counter");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->value, std::to_string(kWrites));
  // version counts the puts applied to the key: a retry applied twice would
  // make it larger than the number of writes.
  EXPECT_EQ(kv->version, kWrites);
}

TEST(ClientTest, CompareAndSwapAndPrefixes) {
  LocalCluster cluster(3);
  ASSERT_NE(cluster.WaitForLeader(), 0);
  auto client = cluster.NewClient();
  ASSERT_TRUE(client->Put("cfg/a", "1").ok());
  EXPECT_TRUE(*client->CompareAndSwap("cfg/a", "1", "2"));
  EXPECT_FALSE(*client->CompareAndSwap("cfg/a", "1", "3"));
  EXPECT_EQ(client->Get("cfg/a")->value, "2");
  // Version 0 means "must not exist": create-if-absent.
  EXPECT_TRUE(*client->CompareVersionAndSwap("cfg/b", 0, "new"));
  EXPECT_FALSE(*client->CompareVersionAndSwap("cfg/b", 0, "again"));
  ASSERT_TRUE(client->Put("other", "x").ok());
  auto prefix = client->GetPrefix("cfg/");
  ASSERT_TRUE(prefix.ok());
  ASSERT_EQ(prefix->kvs.size(), 2u);
  EXPECT_EQ(prefix->kvs[0].key, "cfg/a");
  EXPECT_EQ(prefix->kvs[1].key, "cfg/b");
  EXPECT_EQ(*client->DeletePrefix("cfg/"), 2);
  EXPECT_TRUE(client->Get("cfg/a").status().IsNotFound());
  EXPECT_TRUE(client->Get("other").ok());
  EXPECT_EQ(PrefixRangeEnd("a\xff"), "b");
  EXPECT_EQ(PrefixRangeEnd(""), std::string(1, '\0'));
}

}  // namespace
}  // namespace raftkv
