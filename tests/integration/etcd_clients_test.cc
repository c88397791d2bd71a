// Real etcd clients that no one here wrote, against a 3-node raftkv cluster
// serving etcd's v3 API (--listen_etcd, gRPC) and its JSON gateway
// (--listen_etcd_gateway): one test per script of tests/etcd_clients/,
// which were written and checked against a real etcd 3.4 first
// (tests/etcd_clients/run_against_etcd.sh, not in ctest):
//   etcdctl_test.sh         Debian's etcdctl 3.4, output by output
//   python_etcd3_test.py    Debian's python3-etcd3 (gRPC)
//   python_etcd3gw_test.py  Debian's python3-etcd3gw (JSON gateway)
//   failover_test.sh        etcdctl put in a loop while the leader is killed
// Each script gets ENDPOINTS (the etcd API addresses) and RAFTKV=1; a test
// passes when its script exits 0, and prints the script's output if not.
// Skipped only when the client (etcdctl, or the Python module) is missing.
// Must never talk to anything but the cluster it started on loopback; the
// failover script signals only the leader's pid, which this test gives it.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/local_cluster.h"

#ifndef RAFTKV_ETCD_CLIENTS_DIR
#error "RAFTKV_ETCD_CLIENTS_DIR must name tests/etcd_clients"
#endif

namespace raftkv {
namespace {

constexpr char kEtcdctl[] = "/usr/bin/etcdctl";
constexpr char kPython[] = "/usr/bin/python3";

struct ScriptRun {
  int exit_code = -1;
  std::string out;  // stdout and stderr
};

// Runs `command` (a shell command line) and returns its exit code and
// output.
ScriptRun RunShell(const std::string& command) {
  ScriptRun run;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    run.out.append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& s : parts) out += (out.empty() ? "" : ",") + s;
  return out;
}

bool PythonHas(const std::string& module) {
  if (::access(kPython, X_OK) != 0) return false;
  return RunShell(std::string(kPython) + " -c 'import " + module + "'")
             .exit_code == 0;
}

// The last line of the script's output that says how it went.
std::string LastLine(const std::string& out) {
  const size_t end = out.find_last_not_of('\n');
  if (end == std::string::npos) return "";
  const size_t start = out.rfind('\n', end);
  return out.substr(start == std::string::npos ? 0 : start + 1,
                    end - (start == std::string::npos ? 0 : start + 1) + 1);
}

class EtcdClientsTest : public ::testing::Test {
 protected:
  static LocalClusterOptions Options() {
    LocalClusterOptions options;
    options.nodes = 3;
    options.etcd_api = true;
    options.etcd_gateway = true;
    return options;
  }

  void SetUp() override {
    ASSERT_NE(cluster_.WaitForLeader(), 0) << "no raftkv leader";
    endpoints_ = Join(cluster_.etcd_endpoints());
    std::vector<std::string> gateways;
    for (int id = 1; id <= cluster_.size(); ++id) {
      gateways.push_back(cluster_.etcd_gateway_address(id));
    }
    gateways_ = Join(gateways);
  }

  // Runs tests/etcd_clients/`script` with `interpreter` against the
  // cluster, with `env` (NAME=VALUE words) added, and expects exit 0.
  void RunScript(const std::string& interpreter, const std::string& script,
                 const std::string& env = "") {
    const std::string command = "cd /tmp && ENDPOINTS=" + endpoints_ +
                                " GATEWAY_ENDPOINTS=" + gateways_ +
                                " RAFTKV=1 " + env + " " + interpreter + " " +
                                RAFTKV_ETCD_CLIENTS_DIR + "/" + script;
    const ScriptRun run = RunShell(command);
    EXPECT_EQ(run.exit_code, 0)
        << script << " failed against raftkv (" << command << "):\n"
        << run.out;
    std::printf("%s: %s\n", script.c_str(), LastLine(run.out).c_str());
  }

  LocalCluster cluster_{Options()};
  std::string endpoints_;
  std::string gateways_;
};

TEST_F(EtcdClientsTest, Etcdctl) {
  if (::access(kEtcdctl, X_OK) != 0) {
    GTEST_SKIP() << kEtcdctl << " is missing (Debian package etcd-client)";
  }
  RunScript("bash", "etcdctl_test.sh");
}

TEST_F(EtcdClientsTest, PythonEtcd3) {
  if (!PythonHas("etcd3")) {
    GTEST_SKIP() << kPython
                 << " cannot import etcd3 (Debian package python3-etcd3)";
  }
  RunScript(kPython, "python_etcd3_test.py");
}

TEST_F(EtcdClientsTest, PythonEtcd3gw) {
  if (!PythonHas("etcd3gw")) {
    GTEST_SKIP() << kPython
                 << " cannot import etcd3gw (Debian package python3-etcd3gw)";
  }
  RunScript(kPython, "python_etcd3gw_test.py");
}

TEST_F(EtcdClientsTest, FailoverUnderEtcdctl) {
  if (::access(kEtcdctl, X_OK) != 0) {
    GTEST_SKIP() << kEtcdctl << " is missing (Debian package etcd-client)";
  }
  // The pid behind each etcd API endpoint: the script finds the leader's
  // endpoint with `etcdctl endpoint status` and kills that pid (our child;
  // LocalCluster reaps it).
  std::vector<std::string> pids;
  for (int id = 1; id <= cluster_.size(); ++id) {
    pids.push_back(cluster_.etcd_address(id) + "=" +
                   std::to_string(cluster_.pid(id)));
  }
  RunScript("bash", "failover_test.sh", "PIDS=" + Join(pids));
}

}  // namespace
}  // namespace raftkv
