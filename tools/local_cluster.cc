// Starts, signals and reaps raftkvd child processes for integration tests
// and raftkv-bench. Must never signal a pid it did not start.
#include "tools/local_cluster.h"

#include <glog/logging.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fault/netns.h"
#include "fault/subprocess.h"

namespace raftkv {

namespace {

// build/bin/raftkvd, next to the running test or tool.
std::string RaftkvdPath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  CHECK(!ec) << "cannot locate the running program: " << ec.message();
  auto path = self.parent_path() / "raftkvd";
  if (!std::filesystem::exists(path)) {
    // Test binaries live in build/tests/...: find build/bin.
    for (auto dir = self.parent_path();
         dir.has_parent_path() && dir != dir.parent_path();
         dir = dir.parent_path()) {
      if (std::filesystem::exists(dir / "bin" / "raftkvd")) {
        return (dir / "bin" / "raftkvd").string();
      }
    }
  }
  return path.string();
}

}  // namespace

LocalCluster::LocalCluster(int nodes, std::vector<std::string> extra_flags)
    : LocalCluster(LocalClusterOptions{nodes, std::move(extra_flags)}) {}

LocalCluster::LocalCluster(LocalClusterOptions options)
    : options_(std::move(options)) {
  char tmpl[] = "/tmp/raftkv-it-XXXXXX";
  CHECK(::mkdtemp(tmpl) != nullptr);
  root_ = tmpl;
  const int nodes = options_.nodes;
  for (int i = 0; i < nodes; ++i) {
    auto peer_port = ReservedPort::Take();
    CHECK(peer_port.ok()) << peer_port.status().ToString();
    auto client_port = ReservedPort::Take();
    CHECK(client_port.ok()) << client_port.status().ToString();
    nodes_.push_back(NodeProcess{0, std::move(peer_port).value(),
                                 std::move(client_port).value(),
                                 root_ + "/" + std::to_string(i + 1),
                                 root_ + "/" + std::to_string(i + 1) + ".log"});
    if (options_.etcd_api) {
      auto etcd_port = ReservedPort::Take();
      CHECK(etcd_port.ok()) << etcd_port.status().ToString();
      nodes_.back().etcd_port = std::move(etcd_port).value();
    }
    if (options_.etcd_gateway) {
      auto gateway_port = ReservedPort::Take();
      CHECK(gateway_port.ok()) << gateway_port.status().ToString();
      nodes_.back().etcd_gateway_port = std::move(gateway_port).value();
    }
  }
  founding_ = nodes;
  for (int id = 1; id <= nodes; ++id) Start(id);
}

int LocalCluster::AddNode() {
  auto peer_port = ReservedPort::Take();
  CHECK(peer_port.ok()) << peer_port.status().ToString();
  auto client_port = ReservedPort::Take();
  CHECK(client_port.ok()) << client_port.status().ToString();
  const std::string name = std::to_string(size() + 1);
  nodes_.push_back(NodeProcess{
      0, std::move(peer_port).value(), std::move(client_port).value(),
      root_ + "/" + name, root_ + "/" + name + ".log"});
  if (options_.etcd_api) {
    auto etcd_port = ReservedPort::Take();
    CHECK(etcd_port.ok()) << etcd_port.status().ToString();
    nodes_.back().etcd_port = std::move(etcd_port).value();
  }
  if (options_.etcd_gateway) {
    auto gateway_port = ReservedPort::Take();
    CHECK(gateway_port.ok()) << gateway_port.status().ToString();
    nodes_.back().etcd_gateway_port = std::move(gateway_port).value();
  }
  return size();
}

LocalCluster::~LocalCluster() {
  for (int id = 1; id <= size(); ++id) {
    ReportIfExited(id);
    if (running(id)) Kill(id);
  }
  if (std::getenv("RAFTKV_KEEP_TEST_DATA") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  } else {
    LOG(WARNING) << "test cluster data kept in " << root_;
  }
}

std::string LocalCluster::host(int id) const {
  return options_.own_addresses ? fault::NodeAddress(id) : "127.0.0.1";
}

gid_t LocalCluster::gid(int id) const {
  return options_.first_gid == 0 ? 0 : options_.first_gid + id;
}

std::string LocalCluster::client_address(int id) const {
  return host(id) + ":" + std::to_string(nodes_[id - 1].client_port.port());
}

std::string LocalCluster::peer_address(int id) const {
  return host(id) + ":" + std::to_string(nodes_[id - 1].peer_port.port());
}

std::vector<std::string> LocalCluster::endpoints() const {
  std::vector<std::string> out;
  for (int id = 1; id <= size(); ++id) out.push_back(client_address(id));
  return out;
}

std::string LocalCluster::etcd_address(int id) const {
  const auto& port = nodes_[id - 1].etcd_port;
  return port ? host(id) + ":" + std::to_string(port->port()) : "";
}

std::string LocalCluster::etcd_gateway_address(int id) const {
  const auto& port = nodes_[id - 1].etcd_gateway_port;
  return port ? host(id) + ":" + std::to_string(port->port()) : "";
}

std::vector<std::string> LocalCluster::etcd_endpoints() const {
  std::vector<std::string> out;
  for (int id = 1; id <= size(); ++id) out.push_back(etcd_address(id));
  return out;
}

void LocalCluster::Start(int id, const std::vector<std::string>& more_flags) {
  NodeProcess& n = nodes_[id - 1];
  CHECK_EQ(n.pid, 0) << "node " << id << " is already running";
  // Founding members always name the founding cluster (a wiped one
  // recomputes the same cluster id from it); a later one joins.
  const bool joins = id > founding_;
  std::string cluster, clients;
  for (int i = 1; i <= (joins ? size() : founding_); ++i) {
    const std::string sep = i > 1 ? "," : "";
    cluster += sep + std::to_string(i) + "=" + peer_address(i);
    clients += sep + std::to_string(i) + "=" + client_address(i);
  }
  fault::SpawnOptions spawn;
  spawn.argv = {
      RaftkvdPath(),
      "--id=" + std::to_string(id),
      "--cluster=" + cluster,
      "--cluster_clients=" + clients,
      "--listen_client=" + client_address(id),
      "--data_dir=" + n.data,
  };
  if (joins) spawn.argv.push_back("--join");
  if (n.etcd_port) spawn.argv.push_back("--listen_etcd=" + etcd_address(id));
  if (n.etcd_gateway_port) {
    spawn.argv.push_back("--listen_etcd_gateway=" + etcd_gateway_address(id));
  }
  spawn.argv.insert(spawn.argv.end(), options_.extra_flags.begin(),
                    options_.extra_flags.end());
  spawn.argv.insert(spawn.argv.end(), more_flags.begin(), more_flags.end());
  spawn.output_path = n.log;
  spawn.gid = gid(id);
  // fault::Spawn asks for SIGKILL when this process dies
  // (PR_SET_PDEATHSIG): a test or tool that crashes must not leave nodes
  // running. (The signal follows the thread that started the node: start
  // nodes from a thread that outlives them, as the tests and tools do.)
  auto pid = fault::Spawn(spawn);
  CHECK(pid.ok()) << "cannot start node " << id << ": "
                  << pid.status().ToString();
  n.pid = *pid;
}

void LocalCluster::ReportIfExited(int id) const {
  siginfo_t info{};
  if (!running(id) ||
      ::waitid(P_PID, pid(id), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid == 0) {
    return;
  }
  // The log's last lines say why (a port it could not listen on, a failed
  // check, ...).
  std::ifstream log(log_path(id));
  std::deque<std::string> last;
  for (std::string line; std::getline(log, line);) {
    last.push_back(std::move(line));
    if (last.size() > 10) last.pop_front();
  }
  std::string tail;
  for (const std::string& line : last) tail += "\n  " + line;
  LOG(WARNING) << "node " << id << " exited by itself ("
               << (info.si_code == CLD_EXITED ? "exit code " : "signal ")
               << info.si_status << "); its log " << log_path(id)
               << " ends:" << tail;
}

int LocalCluster::Reap(int id) {
  NodeProcess& n = nodes_[id - 1];
  int status = 0;
  ::waitpid(n.pid, &status, 0);
  n.pid = 0;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int LocalCluster::ExitedWith(int id) {
  NodeProcess& n = nodes_[id - 1];
  if (n.pid <= 0) return -1;
  int status = 0;
  if (::waitpid(n.pid, &status, WNOHANG) != n.pid) return -1;
  n.pid = 0;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

int LocalCluster::WaitForExit(int id, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    const int code = ExitedWith(id);
    if (code >= 0) return code;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

void LocalCluster::Kill(int id) {
  NodeProcess& n = nodes_[id - 1];
  if (n.pid <= 0) return;
  ::kill(n.pid, SIGCONT);  // in case it was paused
  ::kill(n.pid, SIGKILL);
  Reap(id);
}

int LocalCluster::Stop(int id) {
  NodeProcess& n = nodes_[id - 1];
  if (n.pid <= 0) return 0;
  ::kill(n.pid, SIGCONT);
  ::kill(n.pid, SIGTERM);
  return Reap(id);
}

void LocalCluster::Pause(int id) { ::kill(nodes_[id - 1].pid, SIGSTOP); }
void LocalCluster::Resume(int id) { ::kill(nodes_[id - 1].pid, SIGCONT); }

ClientOptions LocalCluster::client_options() const {
  ClientOptions options;
  options.endpoints = endpoints();
  options.deadline = std::chrono::seconds(10);
  options.tls = options_.client_tls;
  return options;
}

std::unique_ptr<Client> LocalCluster::NewClient(
    std::chrono::milliseconds deadline) const {
  ClientOptions options = client_options();
  options.deadline = deadline;
  auto client = Client::Create(options);
  CHECK(client.ok()) << client.status().ToString();
  return std::move(client).value();
}

std::unique_ptr<Client> LocalCluster::NewClientOf(
    int id, std::chrono::milliseconds deadline) const {
  ClientOptions options = client_options();
  options.endpoints = {client_address(id)};
  options.deadline = deadline;
  auto client = Client::Create(options);
  CHECK(client.ok()) << client.status().ToString();
  return std::move(client).value();
}

int LocalCluster::WaitForLeader(std::chrono::milliseconds timeout) const {
  auto client = NewClient(std::chrono::milliseconds(500));
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    uint64_t leader = 0;
    bool agreed = true;
    const std::vector<NodeInfo> infos = client->ClusterStatus();
    for (int id = 1; id <= size(); ++id) {
      if (!running(id)) continue;
      const NodeInfo& info = infos[id - 1];
      if (!info.error.ok() || info.leader_id == 0 ||
          (leader != 0 && info.leader_id != leader)) {
        agreed = false;
        break;
      }
      leader = info.leader_id;
    }
    if (agreed && leader != 0) return static_cast<int>(leader);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int id = 1; id <= size(); ++id) ReportIfExited(id);
  return 0;
}

}  // namespace raftkv
