// Integration tests of etcd's JSON gateway (raftkvd --listen_etcd_gateway,
// server/etcd/json_gateway.h) on a real raftkvd: base64 keys and values,
// etcd's field names and JSON types (compared, shape for shape, with a real
// etcd 3.4 started here when /usr/bin/etcd exists), a txn, a watch stream
// that gets a put made meanwhile and whose watch goes when its client
// does, lease grant and keep-alive, error statuses and bodies, a malformed
// body (400, the server keeps serving), unknown paths and methods.
// Must never talk to anything but 127.0.0.1, or signal a process it did
// not start (etcd here, by pid; raftkvd through LocalCluster).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "fault/subprocess.h"
#include "tests/integration/metrics_scrape.h"
#include "tests/integration/test_certs.h"
#include "tools/local_cluster.h"
#include "tools/reserved_port.h"

namespace raftkv {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr char kEtcd[] = "/usr/bin/etcd";

struct Answer {
  int status = 0;
  std::string body;
  std::string transfer_encoding;
  std::string content_encoding;
  json Json() const { return json::parse(body, nullptr, false); }
};

Answer Post(int port, const std::string& path, const std::string& body,
            const httplib::Headers& headers = {}) {
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(5);
  http.set_read_timeout(20);
  auto res = http.Post(path, headers, body, "application/json");
  if (!res) return {};
  return {res->status, res->body, res->get_header_value("Transfer-Encoding"),
          res->get_header_value("Content-Encoding")};
}

// The same over HTTP/1.0, read to the end: etcd's error answers end their
// chunked body with trailers, which cpp-httplib's client cannot read.
Answer Post10(int port, const std::string& path, const std::string& body) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  timeval timeout{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string got;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "POST " + path +
                                " HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                                "Content-Type: application/json\r\n"
                                "Content-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body;
    if (write(fd, request.data(), request.size()) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) got.append(buf, n);
    }
  }
  close(fd);
  const size_t space = got.find(' ');
  const size_t end = got.find("\r\n\r\n");
  if (space == std::string::npos || end == std::string::npos) return {};
  return {std::atoi(got.c_str() + space + 1), got.substr(end + 4), "", ""};
}

// A JSON value's shape: objects keep their keys, leaves become their type
// ("string", "number", "boolean"), arrays the shape of their first element.
json Shape(const json& value) {
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      out[it.key()] = Shape(it.value());
    }
    return out;
  }
  if (value.is_array()) {
    return value.empty() ? json::array() : json::array({Shape(value[0])});
  }
  if (value.is_string()) return "string";
  if (value.is_number()) return "number";
  if (value.is_boolean()) return "boolean";
  return "null";
}

// A real etcd 3.4 on reserved loopback ports, with its own data dir, for
// the shapes of its answers; killed (by pid) at the end.
class RealEtcd {
 public:
  static std::unique_ptr<RealEtcd> Start() {
    if (access(kEtcd, X_OK) != 0) return nullptr;
    auto etcd = std::unique_ptr<RealEtcd>(new RealEtcd);
    auto client = ReservedPort::Take();
    auto peer = ReservedPort::Take();
    if (!client.ok() || !peer.ok()) return nullptr;
    char dir[] = "/tmp/raftkv-etcd-gw-XXXXXX";
    if (mkdtemp(dir) == nullptr) return nullptr;
    etcd->dir_ = dir;
    etcd->port_ = client->port();
    const std::string c = "http://127.0.0.1:" + std::to_string(client->port());
    const std::string p = "http://127.0.0.1:" + std::to_string(peer->port());
    fault::SpawnOptions spawn;
    spawn.argv = {kEtcd,
                  "--data-dir=" + etcd->dir_ + "/data",
                  "--listen-client-urls=" + c,
                  "--advertise-client-urls=" + c,
                  "--listen-peer-urls=" + p,
                  "--initial-advertise-peer-urls=" + p,
                  "--initial-cluster=default=" + p};
    spawn.output_path = etcd->dir_ + "/etcd.log";
    auto pid = fault::Spawn(spawn);
    if (!pid.ok()) return nullptr;
    etcd->pid_ = *pid;
    etcd->ports_.push_back(std::move(client).value());
    etcd->ports_.push_back(std::move(peer).value());
    const auto until = Clock::now() + seconds(20);
    while (Clock::now() < until) {
      if (Post(etcd->port_, "/v3/maintenance/status", "{}").status == 200) {
        return etcd;
      }
      std::this_thread::sleep_for(milliseconds(100));
    }
    return nullptr;  // the destructor kills it
  }

  ~RealEtcd() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  int port() const { return port_; }

 private:
  RealEtcd() = default;
  pid_t pid_ = 0;
  int port_ = 0;
  std::string dir_;
  std::vector<ReservedPort> ports_;
};

// One raftkvd with the gateway (and /metrics), shared by the tests.
class EtcdJsonGatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    signal(SIGPIPE, SIG_IGN);  // errors from writes, as raftkvd has them
    auto port = ReservedPort::Take();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = port->port();
    reserved_ = new ReservedPort(std::move(port).value());
    cluster_ = new LocalCluster(
        1, {"--listen_etcd_gateway=127.0.0.1:" + std::to_string(port_),
            "--listen_metrics=127.0.0.1:0"});
    ASSERT_NE(cluster_->WaitForLeader(), 0);
    // The gateway answers once the node has started.
    const auto until = Clock::now() + seconds(20);
    while (Clock::now() < until &&
           Post(port_, "/v3/kv/range", R"({"key":"eA=="})").status != 200) {
      std::this_thread::sleep_for(milliseconds(100));
    }
    // raftkv's store starts at revision 0 and etcd's at 1: one write makes
    // every header carry a non-zero revision on both.
    ASSERT_EQ(Post(port_, "/v3/kv/put", R"({"key":"c2V0dXA=","value":"MQ=="})")
                  .status,
              200);
    etcd_ = RealEtcd::Start().release();
  }

  static void TearDownTestSuite() {
    delete etcd_;
    delete cluster_;
    delete reserved_;
    etcd_ = nullptr;
    cluster_ = nullptr;
    reserved_ = nullptr;
  }

  // The same request to raftkv and (if there) etcd; the answers' shapes
  // and statuses must be equal. Returns raftkv's answer.
  static Answer Both(const std::string& path, const std::string& body) {
    const Answer ours = Post(port_, path, body);
    if (etcd_ != nullptr) {
      const Answer theirs = Post10(etcd_->port(), path, body);
      EXPECT_EQ(ours.status, theirs.status) << path << " " << body;
      EXPECT_EQ(Shape(ours.Json()), Shape(theirs.Json()))
          << path << " " << body << "\nraftkv: " << ours.body
          << "\netcd:   " << theirs.body;
    }
    return ours;
  }

  static int port_;
  static ReservedPort* reserved_;
  static LocalCluster* cluster_;
  static RealEtcd* etcd_;
};

int EtcdJsonGatewayTest::port_ = 0;
ReservedPort* EtcdJsonGatewayTest::reserved_ = nullptr;
LocalCluster* EtcdJsonGatewayTest::cluster_ = nullptr;
RealEtcd* EtcdJsonGatewayTest::etcd_ = nullptr;

void ExpectHeader(const json& answer) {
  const json& h = answer["header"];
  ASSERT_TRUE(h.is_object()) << answer.dump();
  for (const char* field :
       {"cluster_id", "member_id", "revision", "raft_term"}) {
    ASSERT_TRUE(h[field].is_string()) << field << " in " << answer.dump();
    EXPECT_GT(std::stoull(h[field].get<std::string>()), 0u) << field;
  }
}

TEST_F(EtcdJsonGatewayTest, PutAndRangeWithBase64KeysAsEtcd) {
  if (etcd_ == nullptr)
    std::cerr << "no " << kEtcd << ": shapes not compared\n";
  // "Z3cvZm9v" is "gw/foo", "YmFy" "bar", "YmF6" "baz".
  Answer put = Both("/v3/kv/put", R"({"key":"Z3cvZm9v","value":"YmFy"})");
  ASSERT_EQ(put.status, 200) << put.body;
  const json p = put.Json();
  ExpectHeader(p);
  EXPECT_EQ(p.size(), 1u) << put.body;  // nothing but the header

  put =
      Both("/v3/kv/put", R"({"key":"Z3cvZm9v","value":"YmF6","prev_kv":true})");
  ASSERT_EQ(put.status, 200) << put.body;
  const json prev = put.Json()["prev_kv"];
  EXPECT_EQ(prev["key"], "Z3cvZm9v");
  EXPECT_EQ(prev["value"], "YmFy");
  EXPECT_EQ(prev["version"], "1");

  const Answer range = Both("/v3/kv/range", R"({"key":"Z3cvZm9v"})");
  ASSERT_EQ(range.status, 200) << range.body;
  const json r = range.Json();
  ExpectHeader(r);
  ASSERT_EQ(r["kvs"].size(), 1u) << range.body;
  const json& kv = r["kvs"][0];
  EXPECT_EQ(kv["key"], "Z3cvZm9v");
  EXPECT_EQ(kv["value"], "YmF6");
  EXPECT_EQ(kv["version"], "2");
  EXPECT_TRUE(kv["create_revision"].is_string());
  EXPECT_TRUE(kv["mod_revision"].is_string());
  EXPECT_EQ(kv["mod_revision"], r["header"]["revision"]);
  EXPECT_FALSE(kv.contains("lease"));  // defaults are left out
  EXPECT_EQ(r["count"], "1");

  // lowerCamel names are accepted too, unknown fields ignored.
  const Answer count =
      Both("/v3/kv/range", R"({"key":"Z3cvZm9v","countOnly":true,"x":1})");
  ASSERT_EQ(count.status, 200);
  EXPECT_FALSE(count.Json().contains("kvs")) << count.body;
  EXPECT_EQ(count.Json()["count"], "1");

  // A prefix range (range_end "gw0") and a missing key.
  Both("/v3/kv/put", R"({"key":"Z3cvYmFy","value":"eA=="})");
  const Answer prefix =
      Both("/v3/kv/range", R"({"key":"Z3cv","range_end":"Z3cw"})");
  EXPECT_EQ(prefix.Json()["count"], "2") << prefix.body;
  const Answer none = Both("/v3/kv/range", R"({"key":"bm9uZQ=="})");
  ASSERT_EQ(none.status, 200);
  EXPECT_FALSE(none.Json().contains("kvs"));

  const Answer del =
      Both("/v3/kv/deleterange", R"({"key":"Z3cvYmFy","prev_kv":true})");
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(del.Json()["deleted"], "1");
  EXPECT_EQ(del.Json()["prev_kvs"][0]["value"], "eA==");

  // Never compressed, as etcd's answers.
  const Answer plain = Post(port_, "/v3/kv/range", R"({"key":"Z3cvZm9v"})",
                            {{"Accept-Encoding", "gzip, deflate, br"}});
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.content_encoding, "");

  // The older prefixes.
  for (const char* prefix : {"/v3beta", "/v3alpha"}) {
    const Answer old =
        Post(port_, std::string(prefix) + "/kv/range", R"({"key":"Z3cvZm9v"})");
    EXPECT_EQ(old.status, 200) << prefix;
    EXPECT_EQ(old.Json()["kvs"][0]["value"], "YmF6") << prefix;
  }
}

TEST_F(EtcdJsonGatewayTest, TxnAsEtcd) {
  Both("/v3/kv/put", R"({"key":"Z3cvdHhu","value":"YmFy"})");
  const std::string txn = R"({
    "compare":[{"key":"Z3cvdHhu","result":"EQUAL","target":"VALUE",
                "value":"YmFy"}],
    "success":[{"request_put":{"key":"Z3cvdHhu","value":"YmF6"}},
               {"request_range":{"key":"Z3cvdHhu"}}],
    "failure":[{"request_range":{"key":"Z3cvdHhu"}}]})";
  const Answer won = Both("/v3/kv/txn", txn);
  ASSERT_EQ(won.status, 200) << won.body;
  const json w = won.Json();
  ExpectHeader(w);
  EXPECT_EQ(w["succeeded"], true);
  ASSERT_EQ(w["responses"].size(), 2u) << won.body;
  EXPECT_TRUE(
      w["responses"][0]["response_put"]["header"]["revision"].is_string());
  EXPECT_EQ(w["responses"][1]["response_range"]["kvs"][0]["value"], "YmF6");
  // Now the value is "baz": the compare fails, the failure branch runs.
  const Answer lost = Both("/v3/kv/txn", txn);
  ASSERT_EQ(lost.status, 200) << lost.body;
  EXPECT_FALSE(lost.Json().contains("succeeded"));  // false is a default
  EXPECT_EQ(lost.Json()["responses"][0]["response_range"]["count"], "1");
}

TEST_F(EtcdJsonGatewayTest, LeaseGrantKeepAliveTimeToLiveRevoke) {
  const Answer grant = Both("/v3/lease/grant", R"({"TTL":30})");
  ASSERT_EQ(grant.status, 200) << grant.body;
  const json g = grant.Json();
  ExpectHeader(g);
  ASSERT_TRUE(g["ID"].is_string()) << grant.body;
  EXPECT_EQ(g["TTL"], "30");
  const std::string id = g["ID"];

  Answer put =
      Post(port_, "/v3/kv/put",
           R"({"key":"Z3cvbA==","value":"eA==","lease":")" + id + R"("})");
  ASSERT_EQ(put.status, 200) << put.body;

  // One request in the body, one {"result": ...} line back, chunked.
  const Answer keep =
      Post(port_, "/v3/lease/keepalive", R"({"ID":")" + id + R"("})");
  ASSERT_EQ(keep.status, 200) << keep.body;
  EXPECT_EQ(keep.transfer_encoding, "chunked");
  ASSERT_FALSE(keep.body.empty());
  EXPECT_EQ(keep.body.back(), '\n');
  EXPECT_EQ(keep.body.find('\n'), keep.body.size() - 1) << keep.body;
  const json k = json::parse(keep.body, nullptr, false)["result"];
  ExpectHeader(k);
  EXPECT_EQ(k["ID"], id);
  EXPECT_EQ(k["TTL"], "30");
  if (etcd_ != nullptr) {
    const json theirs = json::parse(
        Post(etcd_->port(), "/v3/lease/grant", R"({"TTL":30})").body);
    const Answer etcd_keep =
        Post(etcd_->port(), "/v3/lease/keepalive",
             R"({"ID":")" + theirs["ID"].get<std::string>() + R"("})");
    EXPECT_EQ(Shape(json::parse(keep.body)),
              Shape(json::parse(etcd_keep.body)));
  }

  const Answer ttl = Post(port_, "/v3/lease/timetolive",
                          R"({"ID":")" + id + R"(","keys":true})");
  ASSERT_EQ(ttl.status, 200) << ttl.body;
  EXPECT_EQ(ttl.Json()["grantedTTL"], "30");
  EXPECT_EQ(ttl.Json()["keys"][0], "Z3cvbA==");
  const Answer kv_ttl =
      Post(port_, "/v3/kv/lease/timetolive", R"({"ID":")" + id + R"("})");
  EXPECT_EQ(kv_ttl.Json()["ID"], id) << kv_ttl.body;
  const Answer leases = Post(port_, "/v3/lease/leases", "{}");
  ASSERT_EQ(leases.status, 200) << leases.body;
  bool listed = false;
  const json listing = leases.Json();
  for (const auto& l : listing["leases"]) listed |= l["ID"] == id;
  EXPECT_TRUE(listed) << id << " not in " << leases.body;

  const Answer revoke =
      Post(port_, "/v3/lease/revoke", R"({"ID":")" + id + R"("})");
  ASSERT_EQ(revoke.status, 200) << revoke.body;
  const Answer gone = Post(port_, "/v3/kv/range", R"({"key":"Z3cvbA=="})");
  EXPECT_FALSE(gone.Json().contains("kvs")) << gone.body;
}

TEST_F(EtcdJsonGatewayTest, ErrorsAsGrpcGateway) {
  // NotFound -> 404, with etcd's message and code.
  const Answer lease = Both("/v3/lease/revoke", R"({"ID":"123"})");
  EXPECT_EQ(lease.status, 404) << lease.body;
  EXPECT_EQ(lease.Json(),
            json::parse(R"({"error":"etcdserver: requested lease not found",)"
                        R"("message":"etcdserver: requested lease not found",)"
                        R"("code":5})"));
  // OutOfRange -> 400.
  const Answer future =
      Both("/v3/kv/range", R"({"key":"Z3cvZm9v","revision":"100000000"})");
  EXPECT_EQ(future.status, 400) << future.body;
  EXPECT_EQ(future.Json()["code"], 11) << future.body;
  // InvalidArgument -> 400.
  const Answer no_key = Both("/v3/kv/put", R"({"value":"YmFy"})");
  EXPECT_EQ(no_key.status, 400) << no_key.body;
  EXPECT_EQ(no_key.Json()["code"], 3);
  EXPECT_EQ(no_key.Json()["error"], no_key.Json()["message"]);
}

TEST_F(EtcdJsonGatewayTest, MalformedBodiesAre400AndTheServerKeepsServing) {
  for (const std::string& body :
       {std::string("{bad"), std::string("[]"), std::string(R"({"key":123})"),
        std::string(R"({"key":"Zm9v","limit":"abc"})"),
        std::string("\xff\xfe")}) {
    const Answer bad = Post(port_, "/v3/kv/range", body);
    EXPECT_EQ(bad.status, 400) << body << " -> " << bad.body;
    const json j = bad.Json();
    ASSERT_TRUE(j.is_object()) << bad.body;
    EXPECT_EQ(j["code"], 3) << bad.body;
    EXPECT_NE(j["message"].get<std::string>().find("invalid JSON body"),
              std::string::npos)
        << bad.body;
  }
  const Answer bad_watch = Post(port_, "/v3/watch", "{bad");
  EXPECT_EQ(bad_watch.status, 400) << bad_watch.body;
  // An empty body is an empty request, as etcd's gateway reads it.
  const Answer empty = Post(port_, "/v3/maintenance/status", "");
  EXPECT_EQ(empty.status, 200) << empty.body;
  const Answer put =
      Post(port_, "/v3/kv/put", R"({"key":"Z3cvb2s=","value":"eQ=="})");
  EXPECT_EQ(put.status, 200) << put.body;
}

TEST_F(EtcdJsonGatewayTest, UnknownPathsAre404OtherMethods405) {
  EXPECT_EQ(Post(port_, "/v3/nope", "{}").status, 404);
  EXPECT_EQ(Post(port_, "/v4/kv/range", "{}").status, 404);
  httplib::Client http("127.0.0.1", port_);
  auto get = http.Get("/v3/kv/range");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 405);
  auto get_unknown = http.Get("/nothing");
  ASSERT_TRUE(get_unknown);
  EXPECT_EQ(get_unknown->status, 404);
}

// A /v3/watch request read as it streams, on its own thread, until
// Stop() (the client then goes away).
class WatchClient {
 public:
  WatchClient(int port, std::string body) : http_("127.0.0.1", port) {
    http_.set_read_timeout(60);
    thread_ = std::thread([this, body = std::move(body)] {
      httplib::Request req;
      req.method = "POST";
      req.path = "/v3/watch";
      req.body = body;
      req.set_header("Content-Type", "application/json");
      // As python-requests sends it: the stream must not be compressed
      // (a compressor would hold its lines back).
      req.set_header("Accept-Encoding", "gzip, deflate, br");
      req.content_receiver = [this](const char* data, size_t size, uint64_t,
                                    uint64_t) {
        std::lock_guard<std::mutex> lock(mu_);
        buffer_.append(data, size);
        size_t nl;
        while ((nl = buffer_.find('\n')) != std::string::npos) {
          lines_.push_back(json::parse(buffer_.substr(0, nl), nullptr, false));
          buffer_.erase(0, nl + 1);
        }
        cv_.notify_all();
        return !stop_;
      };
      httplib::Response res;
      httplib::Error error;
      http_.send(req, res, error);
      std::lock_guard<std::mutex> lock(mu_);
      status_ = res.status;
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~WatchClient() { Stop(); }

  // Waits for the n-th line (0-based).
  std::optional<json> Line(size_t n,
                           milliseconds timeout = milliseconds(15000)) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return lines_.size() > n || ended_; });
    if (lines_.size() <= n) return std::nullopt;
    return lines_[n];
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    http_.stop();  // closes the connection even while it waits for data
    if (thread_.joinable()) thread_.join();
  }

 private:
  httplib::Client http_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;
  std::vector<json> lines_;
  bool stop_ = false;
  bool ended_ = false;
  int status_ = 0;
};

TEST_F(EtcdJsonGatewayTest, WatchStreamsAPutMadeMeanwhile) {
  WatchClient watch(port_,
                    R"({"create_request":{"key":"Z3cvdw==","prev_kv":true}})");
  const auto created = watch.Line(0);
  ASSERT_TRUE(created.has_value());
  ExpectHeader((*created)["result"]);
  EXPECT_EQ((*created)["result"]["created"], true) << created->dump();

  Post(port_, "/v3/kv/put", R"({"key":"Z3cvdw==","value":"MQ=="})");
  Post(port_, "/v3/kv/put", R"({"key":"Z3cvdw==","value":"Mg=="})");
  Post(port_, "/v3/kv/deleterange", R"({"key":"Z3cvdw=="})");
  std::vector<json> events;
  for (size_t n = 1; events.size() < 3; ++n) {
    const auto line = watch.Line(n);
    ASSERT_TRUE(line.has_value()) << "event " << events.size();
    for (const auto& e : (*line)["result"]["events"]) events.push_back(e);
  }
  ASSERT_EQ(events.size(), 3u);
  EXPECT_FALSE(events[0].contains("type"));  // PUT is the default
  EXPECT_EQ(events[0]["kv"]["value"], "MQ==");
  EXPECT_EQ(events[0]["kv"]["version"], "1");
  EXPECT_EQ(events[1]["kv"]["value"], "Mg==");
  EXPECT_EQ(events[1]["prev_kv"]["value"], "MQ==");
  EXPECT_EQ(events[2]["type"], "DELETE");
  EXPECT_EQ(events[2]["kv"]["key"], "Z3cvdw==");
  EXPECT_TRUE(events[2]["kv"]["mod_revision"].is_string());

  // Unary calls are served while the watch holds its thread.
  EXPECT_EQ(Post(port_, "/v3/kv/range", R"({"key":"Z3cvdw=="})").status, 200);
}

TEST_F(EtcdJsonGatewayTest, AWatchGoesWhenItsClientDoes) {
  const int metrics = integration::MetricsPort(*cluster_, 1);
  ASSERT_NE(metrics, 0);
  auto watches = [&] {
    return integration::Sample(integration::Get(metrics, "/metrics").body,
                               "raftkv_watches");
  };
  // The gauge is refreshed when an entry applies: write one each time.
  auto wait_for = [&](double n) {
    const auto until = Clock::now() + seconds(15);
    do {
      Post(port_, "/v3/kv/put", R"({"key":"Z3cvdGljaw==","value":"eA=="})");
      std::this_thread::sleep_for(milliseconds(100));
    } while (Clock::now() < until && watches() != n);
    return watches();
  };
  const double before = wait_for(0);
  {
    WatchClient watch(port_, R"({"create_request":{"key":"Z3cvZ29uZQ=="}})");
    ASSERT_TRUE(watch.Line(0).has_value());
    EXPECT_EQ(wait_for(before + 1), before + 1);
    watch.Stop();  // the client closes its connection
  }
  EXPECT_EQ(wait_for(before), before);
}

TEST_F(EtcdJsonGatewayTest, SnapshotStreamsTheBackupInChunks) {
  const Answer snap = Post(port_, "/v3/maintenance/snapshot", "{}");
  ASSERT_EQ(snap.status, 200) << snap.body.substr(0, 500);
  EXPECT_EQ(snap.transfer_encoding, "chunked");
  size_t lines = 0;
  size_t start = 0;
  json last;
  for (size_t nl; (nl = snap.body.find('\n', start)) != std::string::npos;
       start = nl + 1) {
    last = json::parse(snap.body.substr(start, nl - start), nullptr, false);
    ASSERT_TRUE(last["result"].is_object()) << last.dump().substr(0, 300);
    EXPECT_TRUE(last["result"]["blob"].is_string());
    ++lines;
  }
  EXPECT_EQ(start, snap.body.size());  // every line ends
  EXPECT_GT(lines, 0u);
  EXPECT_FALSE(last["result"].contains("remaining_bytes"));  // 0 at the end
}

// Its own node: raftkvd stops promptly with a watch open on the gateway.
TEST(EtcdJsonGatewayStopTest, StopsWithAWatchOpen) {
  auto port = ReservedPort::Take();
  ASSERT_TRUE(port.ok());
  LocalCluster cluster(
      1, {"--listen_etcd_gateway=127.0.0.1:" + std::to_string(port->port())});
  ASSERT_NE(cluster.WaitForLeader(), 0);
  WatchClient watch(port->port(), R"({"create_request":{"key":"eA=="}})");
  ASSERT_TRUE(watch.Line(0).has_value());
  const auto start = Clock::now();
  EXPECT_EQ(cluster.Stop(1), 0);
  EXPECT_LT(Clock::now() - start, seconds(10));
}

// The serial of the certificate the server on `port` presents now (a new
// connection, made by the openssl command), e.g. "serial=01".
std::string ServerSerial(const integration::TestCerts& certs, int port) {
  const std::string command =
      "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
      " -CAfile " + certs.cert("ca") + " -cert " + certs.cert("client") +
      " -key " + certs.key("client") +
      " </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null";
  std::string out;
  if (FILE* f = popen(command.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof(buf), f) != nullptr) out += buf;
    pclose(f);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// HTTPS with --cert-file/--key-file, client certificates with
// --client-cert-auth, and a new certificate taken without a restart. Only
// answers the gateway gives by itself are checked here (paths, methods,
// bodies): the calls it makes go through EtcdOps to the native listener.
TEST(EtcdJsonGatewayTlsTest, ServesHttpsChecksClientCertsReloadsFiles) {
  // A TLS client writing to a connection the server refused must get an
  // error, not a SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  integration::TestCerts certs;
  ASSERT_TRUE(certs.MakeCa("ca"));
  ASSERT_TRUE(certs.MakeCert("server", "ca", 1));
  ASSERT_TRUE(certs.MakeCert("client", "ca", 2));
  auto port = ReservedPort::Take();
  ASSERT_TRUE(port.ok());
  const int p = port->port();
  LocalClusterOptions options;
  options.nodes = 1;
  options.extra_flags = {"--listen_etcd_gateway=127.0.0.1:" + std::to_string(p),
                         "--cert_file=" + certs.cert("server"),
                         "--key_file=" + certs.key("server"),
                         "--trusted_ca_file=" + certs.cert("ca"),
                         "--client_cert_auth"};
  options.client_tls.enabled = true;
  options.client_tls.ca_file = certs.cert("ca");
  options.client_tls.cert_file = certs.cert("client");
  options.client_tls.key_file = certs.key("client");
  LocalCluster cluster(options);
  ASSERT_NE(cluster.WaitForLeader(seconds(30)), 0)
      << integration::ReadFile(cluster.log_path(1));
  auto post = [&](bool with_cert, const std::string& path,
                  const std::string& body) -> Answer {
    auto http =
        with_cert
            ? std::make_unique<httplib::SSLClient>(
                  "127.0.0.1", p, certs.cert("client"), certs.key("client"))
            : std::make_unique<httplib::SSLClient>("127.0.0.1", p);
    http->set_ca_cert_path(certs.cert("ca").c_str());
    http->enable_server_certificate_verification(true);
    http->set_connection_timeout(5);
    http->set_read_timeout(20);
    auto res = http->Post(path.c_str(), body, "application/json");
    if (!res) return {};
    return {res->status, res->body, "", ""};
  };
  const Answer bad = post(true, "/v3/kv/range", "{bad");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bad.Json()["code"], 3) << bad.body;
  EXPECT_EQ(post(true, "/v3/nope", "{}").status, 404);
  // No client certificate: the handshake fails. Plain HTTP gets nothing.
  EXPECT_EQ(post(false, "/v3/nope", "{}").status, 0);
  EXPECT_EQ(Post(p, "/v3/nope", "{}").status, 0);

  EXPECT_EQ(ServerSerial(certs, p), "serial=01");
  ASSERT_TRUE(certs.MakeCert("server", "ca", 3));  // replaces the files
  std::string serial;
  const auto until = Clock::now() + seconds(10);
  while (Clock::now() < until &&
         (serial = ServerSerial(certs, p)) != "serial=03") {
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_EQ(serial, "serial=03");
  EXPECT_EQ(post(true, "/v3/nope", "{}").status, 404);
}

}  // namespace
}  // namespace raftkv
