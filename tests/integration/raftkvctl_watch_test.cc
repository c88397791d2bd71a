// raftkvctl's commands for the retained history, watches, leases,
// transactions and the recipes (issue 12), run as a user runs them against
// a real three-node cluster: their exact output (text and --json, a
// contract), their exit codes (0 ok, 1 not found / compare failed, 2
// usage, 4 refused) and, for the commands that run until stopped, a clean
// exit 0 on SIGTERM. Every run has a timeout. Must never talk to anything
// but the cluster it started on loopback, nor signal a process it did not
// start.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/log_text.h"
#include "tests/integration/raftkvctl_run.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using ::raftkv::integration::Count;
using ::raftkv::integration::Join;
using ::raftkv::integration::RaftkvctlPath;
using ::raftkv::integration::ReadFile;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

struct Result {
  int exit_code = -1;  // 128 + N if killed by signal N
  std::string out;
  std::string err;
};

// One raftkvctl process: its words (no shell), stdin from a file, stdout
// and stderr to files; killed with SIGKILL if this test process dies.
class Ctl {
 public:
  Ctl(const std::string& dir, const std::string& endpoints,
      std::vector<std::string> words, const std::string& input = "")
      : out_(dir + "/out" + std::to_string(++count_)), err_(out_ + ".err") {
    const std::string in = out_ + ".in";
    WriteFile(in, input);
    std::vector<std::string> argv = {
        RaftkvctlPath(), "--endpoints=" + endpoints, "--deadline_ms=10000"};
    argv.insert(argv.end(), words.begin(), words.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      Redirect(in, O_RDONLY, 0);
      Redirect(out_, O_WRONLY | O_CREAT | O_TRUNC, 1);
      Redirect(err_, O_WRONLY | O_CREAT | O_TRUNC, 2);
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Ctl() {
    if (pid_ > 0 && exit_code_ < 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  std::string out() const { return ReadFile(out_); }
  std::string err() const { return ReadFile(err_); }
  // Waits up to `timeout` until stdout has `n` lines.
  bool WaitForLines(
      size_t n, std::chrono::seconds timeout = std::chrono::seconds(20)) const {
    const auto until = Clock::now() + timeout;
    while (Count(out(), "\n") < n) {
      if (Clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
  void Signal(int sig) { ::kill(pid_, sig); }
  // The exit code once it exits, within `timeout` (SIGKILL and -1 after).
  int Wait(std::chrono::seconds timeout = std::chrono::seconds(20)) {
    const auto until = Clock::now() + timeout;
    while (exit_code_ < 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ =
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (Clock::now() > until) {
        ADD_FAILURE() << "raftkvctl still running; stdout: " << out()
                      << " stderr: " << err();
        return -1;  // the destructor kills it
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return exit_code_;
  }
  Result Finish() {
    Result r;
    r.exit_code = Wait();
    r.out = out();
    r.err = err();
    return r;
  }

 private:
  static void WriteFile(const std::string& path, const std::string& bytes) {
    FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  static void Redirect(const std::string& path, int flags, int fd) {
    const int opened = ::open(path.c_str(), flags, 0600);
    ::dup2(opened, fd);
    ::close(opened);
  }
  static inline int count_ = 0;
  const std::string out_;
  const std::string err_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

std::string Hex(int64_t id) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(id));
  return hex;
}

class RaftkvctlHistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/raftkvctl_watch_test.XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    ASSERT_NE(cluster_.WaitForLeader(), 0);
    endpoints_ = Join(cluster_.endpoints());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result Run(std::vector<std::string> words, const std::string& input = "") {
    return Ctl(dir_, endpoints_, std::move(words), input).Finish();
  }
  std::unique_ptr<Ctl> Start(std::vector<std::string> words) {
    return std::make_unique<Ctl>(dir_, endpoints_, std::move(words));
  }
  // The --json output of a command that must succeed, parsed.
  Json RunJson(std::vector<std::string> words, const std::string& input = "") {
    words.insert(words.begin(), "--json");
    const Result r = Run(words, input);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Count(r.out, "\n"), 1u) << r.out;
    Json j = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j.is_discarded() ? Json() : j;
  }
  // The revision of a put that must succeed.
  int64_t Put(const std::string& key, const std::string& value) {
    return RunJson({"put", key, value})["revision"].get<int64_t>();
  }

  LocalCluster cluster_{3};
  std::string endpoints_;
  std::string dir_;
};

TEST_F(RaftkvctlHistoryTest, WatchPrintsEachPutAndDeleteAsItComes) {
  const int64_t r0 = Put("cfg/a", "v1");
  const std::string from = "--rev=" + std::to_string(r0 + 1);
  // From the next revision on, so nothing is missed before they are set up.
  auto json = Start({"--json", "watch", "cfg/", "--prefix", "--prev-kv", from});
  auto text = Start({"watch", "cfg/", "--prefix", from});
  auto one_key = Start({"--json", "watch", "cfg/b", from});
  const int64_t r1 = Put("cfg/a", "v2");
  const int64_t r2 = Put("cfg/b", "\xff");
  const Result del = Run({"--json", "del", "cfg/a"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  const int64_t r3 = r2 + 1;
  Put("other", "x");

  ASSERT_TRUE(json->WaitForLines(3)) << json->out() << json->err();
  ASSERT_TRUE(text->WaitForLines(9)) << text->out() << text->err();
  ASSERT_TRUE(one_key->WaitForLines(1)) << one_key->out();
  for (Ctl* c : {json.get(), text.get(), one_key.get()}) {
    c->Signal(SIGTERM);
    EXPECT_EQ(c->Wait(), 0) << c->err();
  }
  // Byte for byte, with the revisions for $0..$3.
  std::string expected =
      R"({"type":"PUT","key":"cfg/a","value":"v2","mod_revision":$1,)"
      R"("create_revision":$0,"version":2,"prev_value":"v1"})"
      "\n"
      R"({"type":"PUT","key":"cfg/b","value_base64":"/w==","mod_revision":$2,)"
      R"("create_revision":$2,"version":1})"
      "\n"
      R"({"type":"DELETE","key":"cfg/a","value":"","mod_revision":$3,)"
      R"("create_revision":0,"version":0,"prev_value":"v2"})"
      "\n";
  const int64_t revisions[] = {r0, r1, r2, r3};
  for (int i = 0; i < 4; ++i) {
    const std::string var = "$" + std::to_string(i);
    for (size_t at; (at = expected.find(var)) != std::string::npos;) {
      expected.replace(at, var.size(), std::to_string(revisions[i]));
    }
  }
  EXPECT_EQ(json->out(), expected);
  EXPECT_EQ(text->out(), "PUT\ncfg/a\nv2\nPUT\ncfg/b\n\xff\nDELETE\ncfg/a\n\n");
  EXPECT_EQ(Count(one_key->out(), "\n"), 1u) << one_key->out();
  EXPECT_EQ(Count(one_key->out(), "\"key\":\"cfg/b\""), 1u);
}

TEST_F(RaftkvctlHistoryTest, WatchFromACompactedRevisionEndsWithExit4) {
  Put("k", "1");
  const int64_t r = Put("k", "2");
  Put("k", "3");
  const Result compact = Run({"compact", std::to_string(r)});
  EXPECT_EQ(compact.exit_code, 0) << compact.err;
  EXPECT_EQ(compact.out, "compacted revision " + std::to_string(r) + "\n");
  const Result watch = Run({"watch", "k", "--rev=1"});
  EXPECT_EQ(watch.exit_code, 4);
  EXPECT_EQ(watch.out, "");
  EXPECT_NE(watch.err.find("compacted"), std::string::npos) << watch.err;
  EXPECT_NE(watch.err.find("the oldest available is " + std::to_string(r + 1)),
            std::string::npos)
      << watch.err;
  // Usage errors come before any request.
  EXPECT_EQ(Run({"watch"}).exit_code, 2);
  EXPECT_EQ(Run({"compact", "zero"}).exit_code, 2);
}

TEST_F(RaftkvctlHistoryTest, LeaseGrantTimeToLiveListKeepAliveAndRevoke) {
  const Json grant = RunJson({"lease", "grant", "60"});
  ASSERT_TRUE(grant.is_object()) << grant;
  EXPECT_EQ(grant.size(), 2u) << grant;
  const int64_t id = grant["id"].get<int64_t>();
  EXPECT_GT(id, 0);
  EXPECT_EQ(grant["ttl"], 60);
  const std::string hex = Hex(id);
  const Result text_grant = Run({"lease", "grant", "90"});
  EXPECT_EQ(text_grant.exit_code, 0);
  EXPECT_EQ(text_grant.out.rfind("lease ", 0), 0u) << text_grant.out;
  EXPECT_EQ(text_grant.out.substr(22), " granted with TTL(90s)\n");
  const std::string other = text_grant.out.substr(6, 16);

  EXPECT_EQ(Run({"put", "svc/a", "up", "--lease=" + hex}).exit_code, 0);
  EXPECT_EQ(Run({"put", "svc/b", "up", "--lease", hex}).exit_code, 0);
  Json ttl = RunJson({"lease", "timetolive", hex, "--keys"});
  EXPECT_EQ(ttl["id"], id);
  EXPECT_GT(ttl["ttl"].get<int64_t>(), 50) << ttl;
  EXPECT_LE(ttl["ttl"].get<int64_t>(), 60) << ttl;
  EXPECT_EQ(ttl["granted_ttl"], 60);
  EXPECT_EQ(ttl["keys"], Json::parse(R"(["svc/a","svc/b"])"));
  EXPECT_EQ(RunJson({"lease", "timetolive", hex})["keys"], Json::array());
  const Result text_ttl = Run({"lease", "timetolive", hex, "--keys"});
  const std::string head =
      "lease " + hex + " granted with TTL(60s), remaining(";
  EXPECT_EQ(text_ttl.out.rfind(head, 0), 0u) << text_ttl.out;
  EXPECT_NE(text_ttl.out.find("s), attached keys([svc/a svc/b])\n"),
            std::string::npos)
      << text_ttl.out;

  const Json list = RunJson({"lease", "list"});
  EXPECT_NE(std::find(list.begin(), list.end(), Json(id)), list.end()) << list;
  const Result text_list = Run({"lease", "list"});
  EXPECT_EQ(Count(text_list.out, hex + "\n"), 1u) << text_list.out;
  EXPECT_EQ(Count(text_list.out, other + "\n"), 1u) << text_list.out;
  EXPECT_EQ(Count(text_list.out, "\n"), 2u) << text_list.out;

  auto keep = Start({"lease", "keep-alive", hex});
  ASSERT_TRUE(keep->WaitForLines(1)) << keep->err();
  keep->Signal(SIGTERM);
  EXPECT_EQ(keep->Wait(), 0) << keep->err();
  EXPECT_EQ(keep->out().substr(0, keep->out().find('\n') + 1),
            "lease " + hex + " keepalived with TTL(60)\n");

  const Result revoke = Run({"lease", "revoke", hex});
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;
  EXPECT_EQ(revoke.out, "lease " + hex + " revoked\n");
  EXPECT_EQ(Run({"get", "svc/a"}).exit_code, 1);
  EXPECT_EQ(Run({"lease", "timetolive", hex}).exit_code, 1);
  EXPECT_EQ(Run({"lease", "revoke", hex}).exit_code, 1);
  const Result lost = Run({"lease", "keep-alive", hex});
  EXPECT_EQ(lost.exit_code, 1);
  EXPECT_EQ(lost.out, "lease " + hex + " expired or revoked.\n");
  EXPECT_EQ(Run({"put", "k", "v", "--lease=" + hex}).exit_code, 1);
  EXPECT_EQ(Run({"put", "k", "v", "--lease=xyz"}).exit_code, 2);
  EXPECT_EQ(Run({"lease", "revoke", "nothex"}).exit_code, 2);
}

TEST_F(RaftkvctlHistoryTest, PutReadsABinaryValueFromStdin) {
  std::string config(300 * 1024, '\0');
  std::mt19937 random(12);
  for (char& c : config) c = static_cast<char>(random());
  config += "\n\n";  // trailing newlines are part of the value
  const Result put = Run({"put", "config/blob"}, config);
  EXPECT_EQ(put.exit_code, 0) << put.err;
  EXPECT_EQ(put.out.rfind("OK revision ", 0), 0u) << put.out;
  const Result get = Run({"get", "config/blob"});
  EXPECT_EQ(get.exit_code, 0);
  EXPECT_TRUE(get.out == config + "\n") << "value differs";
  EXPECT_TRUE(RunJson({"put", "small"}, std::string("v\0\x80", 3))
                  .contains("revision"));
  EXPECT_EQ(RunJson({"get", "small"})["value_base64"], "dgCA");
  EXPECT_EQ(Run({"put", "empty"}, "").exit_code, 0);
  EXPECT_EQ(Run({"get", "empty"}).out, "\n");
  // Over the client's value limit (1 MiB): refused, nothing written.
  const Result big = Run({"put", "big"}, std::string((1 << 20) + 1, 'x'));
  EXPECT_EQ(big.exit_code, 4) << big.err;
  EXPECT_EQ(Run({"get", "big"}).exit_code, 1);
}

TEST_F(RaftkvctlHistoryTest, GetAtARevisionWithPrefixLimitAndKeysOnly) {
  const int64_t r1 = Put("p/a", "1");
  const int64_t r2 = Put("p/a", "2");
  Put("p/b", "x");
  const int64_t r4 = Put("p/c", "y");
  Put("q", "z");
  EXPECT_EQ(Run({"get", "p/a", "--rev=" + std::to_string(r1)}).out, "1\n");
  EXPECT_EQ(Run({"get", "p/a"}).out, "2\n");
  EXPECT_EQ(Run({"get", "p/b", "--rev=" + std::to_string(r2)}).exit_code, 1);
  EXPECT_EQ(Run({"get", "p/", "--prefix"}).out, "p/a\t2\np/b\tx\np/c\ty\n");
  EXPECT_EQ(Run({"get", "p/", "--prefix", "--limit=2"}).out,
            "p/a\t2\np/b\tx\n");
  EXPECT_EQ(Run({"get", "p/", "--prefix", "--keys-only"}).out,
            "p/a\np/b\np/c\n");
  EXPECT_EQ(Run({"get", "p/", "--prefix", "--rev", std::to_string(r2)}).out,
            "p/a\t2\n");
  EXPECT_EQ(Run({"get", "p/a", "--keys-only"}).out, "p/a\n");
  EXPECT_EQ(Run({"get", "nothing/", "--prefix"}).out, "");

  const Json some = RunJson({"get", "p/", "--prefix", "--limit=1"});
  EXPECT_EQ(some,
            Json::parse(R"([{"key":"p/a","value":"2","create_revision":)" +
                        std::to_string(r1) + R"(,"mod_revision":)" +
                        std::to_string(r2) + R"(,"version":2}])"));
  const Json old = RunJson({"get", "p/a", "--rev=" + std::to_string(r1)});
  EXPECT_EQ(old, Json::parse(R"({"key":"p/a","value":"1","create_revision":)" +
                             std::to_string(r1) + R"(,"mod_revision":)" +
                             std::to_string(r1) + R"(,"version":1})"));
  const Json keys = RunJson({"get", "p/c", "--keys-only"});
  EXPECT_FALSE(keys.contains("value")) << keys;
  EXPECT_EQ(keys["mod_revision"], r4);

  // Compacted at r2: reads at r2 still work, below it they are refused.
  EXPECT_EQ(RunJson({"compact", std::to_string(r2)}),
            Json::parse(R"({"revision":)" + std::to_string(r2) + "}"));
  const Result below = Run({"get", "p/a", "--rev=" + std::to_string(r1)});
  EXPECT_EQ(below.exit_code, 4) << below.out;
  EXPECT_NE(below.err.find("compacted"), std::string::npos) << below.err;
  EXPECT_EQ(Run({"get", "p/a", "--rev=" + std::to_string(r2)}).out, "2\n");
  EXPECT_EQ(Run({"get", "p/a", "--rev=1000000"}).exit_code, 4);
  EXPECT_EQ(Run({"get", "p/a", "--rev=-1"}).exit_code, 2);
}

// The transaction of TxnFromStdin: if k is still "v1", write it and read
// it back, else mark it failed.
constexpr char kTxn[] = R"(value("k") = "v1"
version("k") > "0"
mod("k") < "1000000"
create("k") != "0"

put k "v 2\t!"
get k --prefix
del gone --prefix

put k failed
get k

)";

TEST_F(RaftkvctlHistoryTest, TxnFromStdinTakesEitherBranch) {
  Put("k", "v1");
  const Result success = Run({"txn"}, kTxn);
  EXPECT_EQ(success.exit_code, 0) << success.err;
  EXPECT_EQ(success.out, "SUCCESS\n\nOK\n\nk\nv 2\t!\n\n0\n");
  const Result failure = Run({"txn"}, kTxn);
  EXPECT_EQ(failure.exit_code, 1) << failure.err;
  EXPECT_EQ(failure.out, "FAILURE\n\nOK\n\nk\nfailed\n");
  const int64_t r = Put("k", "v1");
  const Json json = RunJson({"txn"}, kTxn);
  // The get in the transaction saw k as get --json sees it afterwards.
  const Json k = RunJson({"get", "k"});
  EXPECT_EQ(k["mod_revision"], r + 1);
  const Json put = {{"type", "put"}, {"revision", r + 1}};
  const Json get = {{"type", "get"},
                    {"kvs", Json::array({k})},
                    {"more", false},
                    {"count", 1}};
  const Json del = {{"type", "del"}, {"deleted", 0}};
  EXPECT_EQ(json, Json({{"succeeded", true},
                        {"responses", Json::array({put, get, del})}}));

  // Bad syntax: exit 2, a message naming the line, nothing written.
  for (const char* bad :
       {"value(\"k\" = \"v\"\n\n\n", "lease(\"k\") = \"1\"\n\n\n",
        "version(\"k\") > \"three\"\n\n\n", "\nfrob k\n\n",
        "\nput k \"unterminated\n\n", "\nget k --bogus\n\n", "\nput k\n\n"}) {
    const Result r = Run({"txn"}, bad);
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_EQ(r.out, "") << bad;
    EXPECT_NE(r.err.find("malformed"), std::string::npos) << r.err;
  }
  EXPECT_EQ(Run({"get", "k"}).out, "v 2\t!\n");
}

TEST_F(RaftkvctlHistoryTest, ElectCampaignsObservesAndResignsWhenStopped) {
  // A store past revision 0: Election::Observe starts no watch on a store
  // that has never been written (raftkvctl then exits 3 at once).
  Put("boot", "1");
  auto observer = Start({"elect", "svc"});
  auto first = Start({"--json", "elect", "svc", "first"});
  ASSERT_TRUE(first->WaitForLines(1)) << first->err();
  const Json leader = Json::parse(first->out(), nullptr, false);
  ASSERT_TRUE(leader.is_object()) << first->out();
  const std::string first_key = leader["key"];
  EXPECT_EQ(first_key.rfind("svc/", 0), 0u) << leader;
  EXPECT_EQ(leader["value"], "first");
  EXPECT_GT(leader["revision"].get<int64_t>(), 0);
  ASSERT_TRUE(observer->WaitForLines(2)) << observer->err();

  auto second = Start({"elect", "svc", "second"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(second->out(), "") << "elected while the first leads";
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(), 0) << first->err();
  ASSERT_TRUE(second->WaitForLines(2)) << second->err();
  const std::string second_key =
      second->out().substr(0, second->out().find('\n'));
  EXPECT_EQ(second->out(), second_key + "\nsecond\n");
  EXPECT_NE(second_key, first_key);
  ASSERT_TRUE(observer->WaitForLines(4)) << observer->out();
  second->Signal(SIGINT);
  EXPECT_EQ(second->Wait(), 0) << second->err();
  observer->Signal(SIGTERM);
  EXPECT_EQ(observer->Wait(), 0) << observer->err();
  EXPECT_EQ(observer->out(),
            first_key + "\nfirst\n" + second_key + "\nsecond\n");
  // Both resigned and closed their sessions: no candidate key is left.
  EXPECT_EQ(Run({"get", "svc/", "--prefix"}).out, "");
  EXPECT_EQ(Run({"elect"}).exit_code, 2);
}

TEST_F(RaftkvctlHistoryTest, LockRunsACommandWithTheFencingToken) {
  auto holder = Start({"--json", "lock", "jobs"});
  ASSERT_TRUE(holder->WaitForLines(1)) << holder->err();
  const Json held = Json::parse(holder->out(), nullptr, false);
  ASSERT_TRUE(held.is_object()) << holder->out();
  EXPECT_EQ(held.size(), 2u) << held;
  const int64_t token = held["revision"].get<int64_t>();
  EXPECT_EQ(held["key"].get<std::string>().rfind("jobs/", 0), 0u) << held;

  // Its flags are COMMAND's, not raftkvctl's.
  auto runner =
      Start({"lock", "jobs", "sh", "-c",
             "echo \"$RAFTKV_LOCK_KEY $RAFTKV_LOCK_REVISION\"; exit 7"});
  auto quitter = Start({"lock", "jobs"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(runner->out(), "") << "ran while the lock was held";
  // Stopped while waiting: exits 0 and withdraws its waiting key.
  quitter->Signal(SIGTERM);
  EXPECT_EQ(quitter->Wait(), 0) << quitter->err();
  EXPECT_EQ(quitter->out(), "");

  holder->Signal(SIGTERM);
  EXPECT_EQ(holder->Wait(), 0) << holder->err();
  const Result ran = runner->Finish();
  EXPECT_EQ(ran.exit_code, 7) << ran.err;
  const std::string key = ran.out.substr(0, ran.out.find('\n'));
  EXPECT_EQ(key.rfind("jobs/", 0), 0u) << ran.out;
  const size_t at = ran.out.find("\nrevision ") + 10;
  const int64_t runner_token = std::atoll(ran.out.c_str() + at);
  EXPECT_GT(runner_token, token) << ran.out;
  const std::string rev = std::to_string(runner_token);
  EXPECT_EQ(ran.out, key + "\nrevision " + rev + "\n" + key + " " + rev + "\n");
  EXPECT_EQ(Run({"get", "jobs/", "--prefix"}).out, "");
  EXPECT_EQ(Run({"lock", "jobs", "no-such-command-raftkv"}).exit_code, 127);
}

}  // namespace
}  // namespace raftkv
