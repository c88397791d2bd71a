// Starts and drives the raftkvd processes of a raftkv-jepsen run. Must never
// signal a process it did not start or use an address outside 127/8.
#include "jepsen/cluster.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "fault/netns.h"

namespace raftkv::jepsen {

namespace {

constexpr uint16_t kPeerPort = 7000;
constexpr uint16_t kClientPort = 8000;

// A raftkvd built with AddressSanitizer refuses to start when another
// library (libfaketime) is preloaded before its runtime, unless told not to
// check; other builds ignore the variable.
std::string AsanOptionsAllowingPreload() {
  const char* ours = std::getenv("ASAN_OPTIONS");
  std::string options = ours != nullptr && *ours != '\0'
                            ? std::string(ours) + ":"
                            : std::string();
  return "ASAN_OPTIONS=" + options + "verify_asan_link_order=0";
}

// "+1.250" / "-0.500": seconds, as libfaketime reads FAKETIME.
std::string FaketimeSpec(double seconds) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%+.3f", seconds);
  return buffer;
}

Status WriteFileAtomically(const std::string& path,
                           const std::string& contents) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << contents << "\n";
    if (!out.good()) return Status::IOError("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IOError("rename " + tmp + ": " + ec.message());
  return Status::OK();
}

}  // namespace

StatusOr<std::unique_ptr<Cluster>> Cluster::Start(ClusterOptions options) {
  if (options.nodes < 1 || options.nodes > 9) {
    return Status::InvalidArgument("--nodes must be between 1 and 9");
  }
  std::unique_ptr<Cluster> cluster(new Cluster(options));
  Cluster& c = *cluster;
  for (int id = 1; id <= options.nodes; ++id) {
    if (options.private_network) {
      c.peer_ports_.push_back(kPeerPort);
      c.client_ports_.push_back(kClientPort);
      continue;
    }
    for (auto* ports : {&c.peer_ports_, &c.client_ports_}) {
      auto reserved = ReservedPort::Take();
      if (!reserved.ok()) return reserved.status();
      ports->push_back(reserved->port());
      c.reserved_ports_.push_back(std::move(reserved).value());
    }
  }
  std::string peers, clients;
  for (int id = 1; id <= options.nodes; ++id) {
    const std::string sep = id > 1 ? "," : "";
    peers += sep + std::to_string(id) + "=" + c.peer_address(id);
    clients += sep + std::to_string(id) + "=" + c.client_address(id);
  }
  for (int id = 1; id <= options.nodes; ++id) {
    const std::string name = "n" + std::to_string(id);
    fault::SpawnOptions spawn;
    spawn.argv = {options.raftkvd,
                  "--id=" + std::to_string(id),
                  "--cluster=" + peers,
                  "--cluster_clients=" + clients,
                  "--listen_client=" + c.client_address(id),
                  "--data_dir=" + options.work_dir + "/" + name};
    spawn.argv.insert(spawn.argv.end(), options.server_flags.begin(),
                      options.server_flags.end());
    spawn.output_path = options.out_dir + "/" + name + ".log";
    spawn.gid = c.gid(id);
    Node node;
    if (c.clocks_faked()) {
      node.clock_file = options.work_dir + "/" + name + ".faketime";
      RAFTKV_RETURN_IF_ERROR(
          WriteFileAtomically(node.clock_file, FaketimeSpec(0)));
      spawn.env = {"LD_PRELOAD=" + options.faketime_library,
                   "FAKETIME_TIMESTAMP_FILE=" + node.clock_file,
                   "FAKETIME_NO_CACHE=1", AsanOptionsAllowingPreload()};
    }
    node.process = std::make_unique<NodeProcess>(std::move(spawn));
    c.nodes_.push_back(std::move(node));
  }
  for (int id = 1; id <= options.nodes; ++id) {
    Status s = c.node(id).process->Start();
    if (!s.ok())
      return Status::IOError("n" + std::to_string(id) + ": " + s.ToString());
  }
  ClientOptions client_options;
  client_options.endpoints = c.client_endpoints();
  client_options.deadline = std::chrono::milliseconds(500);
  client_options.attempt_timeout = std::chrono::milliseconds(500);
  auto client = Client::Create(client_options);
  if (!client.ok()) return client.status();
  c.status_client_ = std::move(client).value();
  return cluster;
}

Cluster::~Cluster() {
  status_client_.reset();
  for (Node& n : nodes_) (void)n.process->Kill();
}

std::string Cluster::address(int id) const {
  // Node N is on 127.0.0.(10+N), never 127.0.0.1 (see fault::NodeAddress).
  return options_.private_network ? fault::NodeAddress(id) : "127.0.0.1";
}

std::string Cluster::peer_address(int id) const {
  return address(id) + ":" + std::to_string(peer_ports_.at(id - 1));
}

std::string Cluster::client_address(int id) const {
  return address(id) + ":" + std::to_string(client_ports_.at(id - 1));
}

std::vector<std::string> Cluster::client_endpoints() const {
  std::vector<std::string> out;
  for (int id = 1; id <= static_cast<int>(client_ports_.size()); ++id) {
    out.push_back(client_address(id));
  }
  return out;
}

gid_t Cluster::gid(int id) const {
  return options_.private_network ? options_.first_gid + id : 0;
}

Status Cluster::Kill(int id) { return node(id).process->Kill(); }
Status Cluster::Restart(int id) { return node(id).process->Start(); }
Status Cluster::Pause(int id) { return node(id).process->Pause(); }
Status Cluster::Resume(int id) { return node(id).process->Resume(); }

Status Cluster::SetClockOffset(int id, double seconds) {
  if (!clocks_faked()) {
    return Status::FailedPrecondition("clocks are not faked");
  }
  RAFTKV_RETURN_IF_ERROR(
      WriteFileAtomically(node(id).clock_file, FaketimeSpec(seconds)));
  node(id).clock_offset_s = seconds;
  return Status::OK();
}

int Cluster::FindLeader(std::chrono::milliseconds timeout) {
  status_client_->set_deadline(timeout);
  int leader = 0;
  uint64_t term = 0;
  for (const NodeInfo& info : status_client_->ClusterStatus()) {
    if (info.error.ok() && info.role == "leader" && info.term >= term &&
        info.id >= 1 && info.id <= static_cast<uint64_t>(size())) {
      leader = static_cast<int>(info.id);
      term = info.term;
    }
  }
  return leader;
}

int Cluster::WaitForLeader(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (int i = 0; i < 100000; ++i) {
    const int leader = FindLeader(std::chrono::milliseconds(300));
    if (leader != 0 || std::chrono::steady_clock::now() >= until) {
      return leader;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

std::vector<std::string> Cluster::ReapCrashed() {
  std::vector<std::string> crashed;
  for (int id = 1; id <= size(); ++id) {
    NodeProcess& p = *node(id).process;
    if (p.ExitedOnItsOwn()) {
      crashed.push_back("n" + std::to_string(id) + ": " + p.last_exit());
    }
  }
  return crashed;
}

Status Cluster::StopAll(std::chrono::milliseconds grace) {
  status_client_.reset();
  for (Node& n : nodes_) (void)n.process->Terminate();
  Status first;
  for (int id = 1; id <= size(); ++id) {
    Status s = node(id).process->Stop(grace);
    if (!s.ok() && first.ok()) {
      first = Status::Timeout("n" + std::to_string(id) + ": " + s.message());
    }
  }
  return first;
}

std::vector<std::string> Cluster::log_names() const {
  std::vector<std::string> out;
  for (int id = 1; id <= size(); ++id) {
    out.push_back("n" + std::to_string(id) + ".log");
  }
  return out;
}

}  // namespace raftkv::jepsen
