// Cluster: the raftkvd processes of one raftkv-jepsen run, and the handles
// the nemesis needs on them: kill/restart, pause/resume, each node's clock
// (through libfaketime) and its group id (for the partition rules).
//
// In a private network namespace node N listens on 127.0.0.(10+N) (peers on
// port 7000, clients on 8000; 127.0.0.1 is kept for the unbound sources of
// outgoing connections, see fault::NodeAddress) and runs with group id
// first_gid + N; without one
// every node is on 127.0.0.1 with its own free ports and keeps our group.
// Data directories and clock files live in work_dir, logs in out_dir.
//
// Must never signal a process it did not start, nor use an address outside
// 127.0.0.0/8. Not thread-safe except client_endpoints()/size(): the main
// thread drives it. The destructor kills every node still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "jepsen/node_process.h"
#include "tools/reserved_port.h"
#include "util/status.h"

namespace raftkv::jepsen {

struct ClusterOptions {
  int nodes = 5;
  bool private_network = true;
  std::string raftkvd;                    // absolute path of the raftkvd binary
  std::string out_dir;                    // node logs: OUT/n1.log, ...
  std::string work_dir;                   // data directories and clock files
  std::vector<std::string> server_flags;  // appended to every raftkvd
  // libfaketime to preload into every raftkvd (empty: real clocks).
  std::string faketime_library;
  gid_t first_gid = 61000;
};

class Cluster {
 public:
  // Starts every node; does not wait for a leader (see WaitForLeader).
  static StatusOr<std::unique_ptr<Cluster>> Start(ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  int size() const { return static_cast<int>(nodes_.size()); }
  // Node ids are 1-based, as in raftkvd --id.
  std::string address(int id) const;  // "127.0.0.1N"
  std::string client_address(int id) const;
  std::vector<std::string> client_endpoints() const;
  gid_t gid(int id) const;  // 0 when nodes keep our group
  bool clocks_faked() const { return !options_.faketime_library.empty(); }

  Status Kill(int id);
  Status Restart(int id);
  Status Pause(int id);
  Status Resume(int id);
  bool running(int id) const { return node(id).process->running(); }
  bool paused(int id) const { return node(id).process->paused(); }

  // Sets node `id`'s clock to real time + `seconds` (both CLOCK_REALTIME
  // and CLOCK_MONOTONIC, as libfaketime fakes both) by rewriting its
  // FAKETIME_TIMESTAMP_FILE; FailedPrecondition without libfaketime.
  Status SetClockOffset(int id, double seconds);
  double clock_offset(int id) const { return node(id).clock_offset_s; }

  // The id of the node that says it is leader with the highest term, among
  // those that answer within `timeout` (0 if none).
  int FindLeader(std::chrono::milliseconds timeout);
  // Polls FindLeader until a leader is found (0 on timeout).
  int WaitForLeader(std::chrono::milliseconds timeout);

  // Nodes that exited without being killed or stopped, as "n3: signal 6";
  // they are reaped and stay down.
  std::vector<std::string> ReapCrashed();

  // SIGTERM to every node, SIGKILL to those still up after `grace`.
  Status StopAll(std::chrono::milliseconds grace);

  // Log file names relative to out_dir ("n1.log", ...).
  std::vector<std::string> log_names() const;

 private:
  struct Node {
    std::unique_ptr<NodeProcess> process;
    std::string clock_file;
    double clock_offset_s = 0;
  };
  explicit Cluster(ClusterOptions options) : options_(std::move(options)) {}
  const Node& node(int id) const { return nodes_.at(id - 1); }
  Node& node(int id) { return nodes_.at(id - 1); }
  std::string peer_address(int id) const;

  ClusterOptions options_;
  std::vector<uint16_t> peer_ports_, client_ports_;
  std::vector<ReservedPort> reserved_ports_;  // held while the nodes run
  std::vector<Node> nodes_;
  std::unique_ptr<Client> status_client_;
};

}  // namespace raftkv::jepsen
