// Ranges far larger than one request: 20,000 keys of 1 KiB (about 21 MB
// of answer) read whole through the native client and through etcd's v3
// API (gRPC, as etcdctl and every etcd client do), values and keys only:
// every key comes back once, in order, with the right count, and the
// cluster still serves writes and small reads after. A client that accepts
// less than the answer gets a clear error and the server keeps serving.
// (The answer used to be refused by the client's frame limit, retried
// until the deadline, and encoded on the event loop: docs/server.md,
// "Large reads".)
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>

#include "client/client.h"
#include "client/kv.pb.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

constexpr int kKeys = 20000;
const std::string kValue(1024, 'v');

std::string KeyOf(int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "big/%06d", i);
  return buf;
}

class LargeRangeTest : public ::testing::Test {
 protected:
  static LocalClusterOptions Options() {
    LocalClusterOptions options;
    options.nodes = 3;
    options.etcd_api = true;
    return options;
  }

  void SetUp() override {
    ASSERT_NE(cluster_.WaitForLeader(), 0);
    auto client = cluster_.NewClient(std::chrono::seconds(30));
    std::mutex mu;
    std::condition_variable cv;
    int answered = 0, failed = 0;
    std::atomic<int> next{0};
    std::function<void()> issue = [&] {
      const int i = next++;
      if (i >= kKeys) return;
      client->PutAsync(KeyOf(i), kValue, [&](StatusOr<int64_t> r) {
        issue();
        std::lock_guard<std::mutex> lock(mu);
        if (!r.ok()) ++failed;
        if (++answered == kKeys) cv.notify_all();
      });
    };
    for (int i = 0; i < 64; ++i) issue();
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(120),
                            [&] { return answered == kKeys; }));
    ASSERT_EQ(failed, 0);
  }

  LocalCluster cluster_{Options()};
};

TEST_F(LargeRangeTest, NativeClientReadsEveryKey) {
  auto client = cluster_.NewClient(std::chrono::seconds(60));
  for (bool keys_only : {false, true}) {
    kv::RangeRequest request;
    request.set_key("big/");
    request.set_range_end("big0");
    request.set_keys_only(keys_only);
    auto got = client->Range(request);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->kvs_size(), kKeys);
    EXPECT_EQ(got->count(), kKeys);
    EXPECT_FALSE(got->more());
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_EQ(got->kvs(i).key(), KeyOf(i));
      ASSERT_EQ(got->kvs(i).value(), keys_only ? "" : kValue);
    }
  }
  // Still serving.
  ASSERT_TRUE(client->Put("after", "x").ok());
  auto after = client->Get("after");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->value, "x");
}

TEST_F(LargeRangeTest, EtcdApiReadsEveryKey) {
  for (int id = 1; id <= 3; ++id) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);  // as etcd's clients: up to 2 GiB
    auto stub = etcdserverpb::KV::NewStub(grpc::CreateCustomChannel(
        cluster_.etcd_address(id), grpc::InsecureChannelCredentials(), args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(60));
    etcdserverpb::RangeRequest request;
    request.set_key("big/");
    request.set_range_end("big0");
    request.set_serializable(id == 2);  // both kinds of read
    etcdserverpb::RangeResponse response;
    const grpc::Status s = stub->Range(&ctx, request, &response);
    ASSERT_TRUE(s.ok()) << "member " << id << ": " << s.error_message();
    ASSERT_EQ(response.kvs_size(), kKeys) << "member " << id;
    EXPECT_EQ(response.count(), kKeys);
    for (int i = 0; i < kKeys; ++i) {
      ASSERT_EQ(response.kvs(i).key(), KeyOf(i));
      ASSERT_EQ(response.kvs(i).value(), kValue);
    }
  }
}

TEST_F(LargeRangeTest, ClientAcceptingLessGetsAClearError) {
  ClientOptions options = cluster_.client_options();
  options.deadline = std::chrono::seconds(3);
  options.max_response_bytes = 1 << 20;
  auto small = Client::Create(options);
  ASSERT_TRUE(small.ok());
  auto got = (*small)->GetPrefix("big/");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().ToString().find("too large"), std::string::npos)
      << got.status().ToString();
  // The servers keep serving everyone else.
  auto client = cluster_.NewClient(std::chrono::seconds(30));
  EXPECT_TRUE(client->Put("still", "serving").ok());
  auto few = client->GetPrefix("big/", 10);
  ASSERT_TRUE(few.ok()) << few.status().ToString();
  EXPECT_EQ(few->kvs.size(), 10u);
  EXPECT_TRUE(few->more);
}

}  // namespace
}  // namespace raftkv
