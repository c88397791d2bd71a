// Starts and drives the raftkvd processes of a raftkv-jepsen run. Must never
// signal a process it did not start or use an address outside 127/8.
#include "jepsen/cluster.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
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
  std::vector<int> founders;
  for (int id = 1; id <= options.nodes; ++id) founders.push_back(id);
  for (int id = 1; id <= options.nodes; ++id) {
    RAFTKV_RETURN_IF_ERROR(c.NewNode(/*join=*/false));
  }
  for (int id = 1; id <= options.nodes; ++id) {
    RAFTKV_RETURN_IF_ERROR(c.PrepareNode(id, founders, /*join=*/false));
  }
  for (int id = 1; id <= options.nodes; ++id) {
    Status s = c.Restart(id);
    if (!s.ok())
      return Status::IOError("n" + std::to_string(id) + ": " + s.ToString());
  }
  RAFTKV_RETURN_IF_ERROR(c.RefreshClient());
  return cluster;
}

Status Cluster::NewNode(bool join) {
  const int id = max_id() + 1;
  if (id > kMaxNodeId) {
    return Status::FailedPrecondition("no node id left (at most " +
                                      std::to_string(kMaxNodeId) + ")");
  }
  Node node;
  if (options_.private_network) {
    node.peer_port = kPeerPort;
    node.client_port = kClientPort;
  } else {
    for (uint16_t* port : {&node.peer_port, &node.client_port}) {
      auto reserved = ReservedPort::Take();
      if (!reserved.ok()) return reserved.status();
      *port = reserved->port();
      reserved_ports_.push_back(std::move(reserved).value());
    }
  }
  // A joining node is no member until its add took effect.
  if (join) node.state = State::kSpent;
  nodes_.push_back(std::move(node));
  return Status::OK();
}

Status Cluster::PrepareNode(int id, const std::vector<int>& cluster,
                            bool join) {
  Node& n = node(id);
  std::string peers, clients;
  for (int member : cluster) {
    const std::string sep = peers.empty() ? "" : ",";
    peers += sep + std::to_string(member) + "=" + peer_address(member);
    clients += sep + std::to_string(member) + "=" + client_address(member);
  }
  const std::string name = "n" + std::to_string(id);
  fault::SpawnOptions spawn;
  spawn.argv = {options_.raftkvd,
                "--id=" + std::to_string(id),
                "--cluster=" + peers,
                "--cluster_clients=" + clients,
                "--listen_client=" + client_address(id),
                "--data_dir=" + options_.work_dir + "/" + name};
  if (join) spawn.argv.push_back("--join");
  spawn.argv.insert(spawn.argv.end(), options_.server_flags.begin(),
                    options_.server_flags.end());
  spawn.output_path = options_.out_dir + "/" + name + ".log";
  spawn.gid = gid(id);
  if (clocks_faked()) {
    n.clock_file = options_.work_dir + "/" + name + ".faketime";
    RAFTKV_RETURN_IF_ERROR(WriteFileAtomically(n.clock_file, FaketimeSpec(0)));
    spawn.env = {"LD_PRELOAD=" + options_.faketime_library,
                 "FAKETIME_TIMESTAMP_FILE=" + n.clock_file,
                 "FAKETIME_NO_CACHE=1", AsanOptionsAllowingPreload()};
  }
  n.process = std::make_unique<NodeProcess>(std::move(spawn));
  return Status::OK();
}

Status Cluster::RefreshClient() {
  status_client_.reset();
  ClientOptions client_options;
  client_options.endpoints = client_endpoints();
  client_options.deadline = std::chrono::milliseconds(500);
  client_options.attempt_timeout = std::chrono::milliseconds(500);
  auto client = Client::Create(client_options);
  if (!client.ok()) return client.status();
  status_client_ = std::move(client).value();
  return Status::OK();
}

Client& Cluster::client(std::chrono::milliseconds deadline) {
  status_client_->set_deadline(deadline);
  return *status_client_;
}

void Cluster::MembershipChanged() {
  ++membership_version_;
  Status s = RefreshClient();
  // Cannot fail with endpoints that parsed before; a harness bug if so.
  if (!s.ok()) {
    std::cerr << "raftkv-jepsen: status client: " << s.ToString() << std::endl;
    std::abort();
  }
}

namespace {

constexpr auto kChangeDeadline = std::chrono::seconds(5);
constexpr int kChangeAttempts = 3;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

std::string Fixed1(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f", v);
  return buffer;
}

}  // namespace

std::string MembersText(std::vector<MemberInfo> members) {
  std::sort(
      members.begin(), members.end(),
      [](const MemberInfo& a, const MemberInfo& b) { return a.id < b.id; });
  std::string out;
  for (const MemberInfo& m : members) {
    out += (out.empty() ? "n" : " n") + std::to_string(m.id);
    if (m.leader) out += "(leader)";
    if (m.learner) out += "(learner)";
  }
  return out.empty() ? "none" : out;
}

Cluster::~Cluster() {
  status_client_.reset();
  for (Node& n : nodes_) {
    if (n.process != nullptr) (void)n.process->Kill();
  }
}

std::string Cluster::address(int id) const {
  // Node N is on 127.0.0.(10+N), never 127.0.0.1 (see fault::NodeAddress).
  return options_.private_network ? fault::NodeAddress(id) : "127.0.0.1";
}

std::string Cluster::peer_address(int id) const {
  return address(id) + ":" + std::to_string(node(id).peer_port);
}

std::string Cluster::client_address(int id) const {
  return address(id) + ":" + std::to_string(node(id).client_port);
}

std::vector<int> Cluster::members() const {
  std::vector<int> out;
  for (int id = 1; id <= max_id(); ++id) {
    if (node(id).state == State::kMember) out.push_back(id);
  }
  return out;
}

std::vector<std::string> Cluster::client_endpoints() const {
  std::vector<std::string> out;
  for (int id : members()) out.push_back(client_address(id));
  return out;
}

gid_t Cluster::gid(int id) const {
  return options_.private_network ? options_.first_gid + id : 0;
}

Status Cluster::Kill(int id) { return node(id).process->Kill(); }
Status Cluster::Restart(int id) {
  RAFTKV_RETURN_IF_ERROR(node(id).process->Start());
  node(id).started = true;
  return Status::OK();
}
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
  int leader = 0;
  uint64_t term = 0;
  for (const NodeInfo& info : client(timeout).ClusterStatus()) {
    if (info.error.ok() && info.role == "leader" && info.term >= term &&
        info.id >= 1 && info.id <= static_cast<uint64_t>(max_id()) &&
        node(static_cast<int>(info.id)).state == State::kMember) {
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
  for (int id : members()) {
    NodeProcess& p = *node(id).process;
    if (p.ExitedOnItsOwn()) {
      crashed.push_back("n" + std::to_string(id) + ": " + p.last_exit());
    }
  }
  return crashed;
}

Status Cluster::StopAll(std::chrono::milliseconds grace) {
  status_client_.reset();
  for (Node& n : nodes_) {
    if (n.process != nullptr) (void)n.process->Terminate();
  }
  Status first;
  for (int id = 1; id <= max_id(); ++id) {
    if (node(id).process == nullptr) continue;
    Status s = node(id).process->Stop(grace);
    if (!s.ok() && first.ok()) {
      first = Status::Timeout("n" + std::to_string(id) + ": " + s.message());
    }
  }
  return first;
}

std::vector<std::string> Cluster::log_names() const {
  std::vector<std::string> out;
  for (int id = 1; id <= max_id(); ++id) {
    if (node(id).started) out.push_back("n" + std::to_string(id) + ".log");
  }
  return out;
}

StatusOr<std::vector<MemberInfo>> Cluster::MemberList(
    std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  Status last = Status::Timeout("no attempt");
  for (int i = 0; i < 1000; ++i) {
    auto list = client(std::chrono::milliseconds(1000)).MemberList();
    if (list.ok()) return list;
    last = list.status();
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last;
}

StatusOr<std::vector<MemberInfo>> Cluster::Change(
    const std::function<StatusOr<std::vector<MemberInfo>>(Client&)>& call) {
  Status last;
  for (int attempt = 0; attempt < kChangeAttempts; ++attempt) {
    if (attempt > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto result = call(client(kChangeDeadline));
    if (result.ok()) return result;
    last = result.status();
    // Refused for good (a removed id, an address in use, ...): retrying
    // would be refused again.
    if (last.code() == Status::Code::kInvalidArgument) break;
  }
  return last;
}

StatusOr<int> Cluster::AddNode() {
  std::vector<int> cluster = members();
  RAFTKV_RETURN_IF_ERROR(NewNode(/*join=*/true));
  const int id = max_id();
  cluster.push_back(id);
  Node& n = node(id);
  Status prepared = PrepareNode(id, cluster, /*join=*/true);
  if (!prepared.ok()) return prepared;  // the id stays spent
  auto added = Change([&](Client& c) {
    return c.MemberAdd(static_cast<uint64_t>(id), peer_address(id),
                       client_address(id), /*learner=*/false);
  });
  if (!added.ok()) {
    // The outcome may be unknown: a member that lists it says it did.
    auto list = MemberList(std::chrono::seconds(2));
    bool listed = false;
    if (list.ok()) {
      for (const MemberInfo& m : *list) listed = listed || m.id == uint64_t(id);
    }
    if (!listed) {
      return Status::Unavailable("member add n" + std::to_string(id) + ": " +
                                 added.status().ToString());
    }
  }
  n.state = State::kMember;
  MembershipChanged();
  Status s = Restart(id);
  if (!s.ok()) {
    return Status::IOError("n" + std::to_string(id) +
                           " added but not started: " + s.ToString());
  }
  return id;
}

StatusOr<double> Cluster::WaitForVoter(int id,
                                       std::chrono::milliseconds timeout) {
  const auto start = std::chrono::steady_clock::now();
  std::string last = "not listed";
  for (int i = 0; i < 100000; ++i) {
    auto list = client(std::chrono::milliseconds(1000)).MemberList();
    if (list.ok()) {
      last = "not listed";
      for (const MemberInfo& m : *list) {
        if (m.id != static_cast<uint64_t>(id)) continue;
        if (!m.learner) return SecondsSince(start);
        last = "a learner";
      }
    } else {
      last = "member list: " + list.status().ToString();
    }
    if (std::chrono::steady_clock::now() - start >= timeout) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Timeout("n" + std::to_string(id) + " not a voter within " +
                         Fixed1(SecondsSince(start)) + " s (" + last + ")");
}

Status Cluster::RemoveNode(int id, std::chrono::milliseconds exit_timeout,
                           std::string* exit, bool* stopped_by_us) {
  *stopped_by_us = false;
  exit->clear();
  auto removed = Change(
      [&](Client& c) { return c.MemberRemove(static_cast<uint64_t>(id)); });
  if (!removed.ok()) {
    // The outcome may be unknown: a member that no longer lists it says
    // the removal is in its log.
    auto list = MemberList(std::chrono::seconds(2));
    bool listed = !list.ok();
    if (list.ok()) {
      for (const MemberInfo& m : *list) listed = listed || m.id == uint64_t(id);
    }
    if (listed) {
      return Status::Unavailable("member remove n" + std::to_string(id) + ": " +
                                 removed.status().ToString());
    }
  }
  Node& n = node(id);
  n.state = State::kRemoved;
  MembershipChanged();
  const auto start = std::chrono::steady_clock::now();
  if (!n.process->running()) {
    *exit = "was not running";
  } else if (n.process->AwaitExit(exit_timeout)) {
    *exit = n.process->last_exit() + " by itself after " +
            Fixed1(SecondsSince(start)) + " s";
  } else {
    *stopped_by_us = true;
    Status s = n.process->Stop(std::chrono::seconds(5));
    *exit = "still running " + Fixed1(SecondsSince(start)) +
            " s after its removal: stopped (" +
            (s.ok() ? "SIGTERM" : "SIGKILL") + ")";
  }
  return Status::OK();
}

}  // namespace raftkv::jepsen
