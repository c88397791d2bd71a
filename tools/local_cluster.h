// LocalCluster: real raftkvd processes on reserved loopback ports, in a fresh
// temporary directory, for integration tests and raftkv-bench. raftkvd is
// taken from the directory of the running program (build/bin). It only ever
// signals the processes it started (by pid), and kills them all when
// destroyed, or when this process dies (they get SIGKILL: PR_SET_PDEATHSIG,
// see fault::Spawn).
//
// By default every node is on 127.0.0.1 and keeps our group. For packet
// filter rules that single a node out (raftkv-bench failover
// --fault=partition, in a private network namespace: fault/netns.h,
// fault/firewall.h), node N can listen on its own address, 127.0.0.(10+N),
// and run with its own group id.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "tools/reserved_port.h"

namespace raftkv {

struct LocalClusterOptions {
  int nodes = 3;
  std::vector<std::string> extra_flags;  // appended to every raftkvd's
  // Node N listens for peers and clients on fault::NodeAddress(N),
  // 127.0.0.(10+N), and dials its peers from there, instead of 127.0.0.1.
  bool own_addresses = false;
  // If non-zero, node N runs with first_gid + N as its only group (needs
  // root), so a rule can match what its process sends.
  gid_t first_gid = 0;
  // How client_options() (and so NewClient, WaitForLeader) reach nodes
  // started with client TLS (--cert-file ... in extra_flags).
  ClientTlsOptions client_tls;
  // Every node also serves etcd's v3 API (--listen_etcd) on a port of its
  // own: etcd_address(id).
  bool etcd_api = false;
  // Every node also serves etcd's JSON gateway (--listen_etcd_gateway) on a
  // port of its own: etcd_gateway_address(id).
  bool etcd_gateway = false;
};

class LocalCluster {
 public:
  explicit LocalCluster(LocalClusterOptions options);
  // Starts `nodes` raftkvd processes with `extra_flags` appended.
  explicit LocalCluster(int nodes, std::vector<std::string> extra_flags = {});
  ~LocalCluster();

  int size() const { return static_cast<int>(nodes_.size()); }
  // Reserves ports and a data dir for one more node and returns its id
  // (size() + 1); it is not started. Start() starts a node beyond the
  // founding ones with --join and a --cluster of every node so far: add it
  // to the membership first (Client::MemberAdd).
  int AddNode();
  // 1-based node ids, as in --id.
  void Kill(int id);  // SIGKILL
  // SIGTERM, wait; returns the exit code (128 + N if killed by signal N).
  int Stop(int id);
  // (Re)starts a stopped or killed node, with `more_flags` after the
  // cluster's extra flags (later flags win).
  void Start(int id, const std::vector<std::string>& more_flags = {});
  void Pause(int id);   // SIGSTOP
  void Resume(int id);  // SIGCONT
  bool running(int id) const { return nodes_[id - 1].pid > 0; }
  pid_t pid(int id) const { return nodes_[id - 1].pid; }
  // The exit code (as Stop's) if node `id` has exited by itself, else -1.
  int ExitedWith(int id);
  // Waits up to `timeout` for node `id` to exit by itself; its exit code
  // (as Stop's), or -1 if it is still running.
  int WaitForExit(int id,
                  std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // The IPv4 address node `id` listens on ("127.0.0.1" unless
  // own_addresses) and its group id (0: ours).
  std::string host(int id) const;
  gid_t gid(int id) const;
  std::string client_address(int id) const;
  std::string peer_address(int id) const;
  std::vector<std::string> endpoints() const;
  // With etcd_api: node `id`'s --listen_etcd address, and every node's.
  std::string etcd_address(int id) const;
  std::vector<std::string> etcd_endpoints() const;
  // With etcd_gateway: node `id`'s --listen_etcd_gateway address.
  std::string etcd_gateway_address(int id) const;
  const std::string& data_dir(int id) const { return nodes_[id - 1].data; }
  const std::string& log_path(int id) const { return nodes_[id - 1].log; }

  ClientOptions client_options() const;
  std::unique_ptr<Client> NewClient(
      std::chrono::milliseconds deadline = std::chrono::seconds(10)) const;
  // A client that talks to node `id` only.
  std::unique_ptr<Client> NewClientOf(
      int id,
      std::chrono::milliseconds deadline = std::chrono::seconds(10)) const;
  // Waits until a leader is known to every running node and returns its id
  // (0 on timeout).
  int WaitForLeader(
      std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;

 private:
  struct NodeProcess {
    pid_t pid = 0;
    ReservedPort peer_port;
    ReservedPort client_port;
    std::string data;
    std::string log;
    std::optional<ReservedPort> etcd_port;          // with etcd_api
    std::optional<ReservedPort> etcd_gateway_port;  // with etcd_gateway
  };
  int Reap(int id);  // the exit code, as Stop's
  // Logs a warning with the last lines of node `id`'s log if it has exited
  // without being stopped (it stays unreaped).
  void ReportIfExited(int id) const;

  LocalClusterOptions options_;
  int founding_ = 0;  // nodes beyond these joined later
  std::string root_;
  std::vector<NodeProcess> nodes_;
};

}  // namespace raftkv
