// Cluster: the raftkvd processes of one raftkv-jepsen run, and the handles
// the nemesis needs on them: kill/restart, pause/resume, each node's clock
// (through libfaketime), its group id (for the partition rules), and
// membership changes (a fresh node added under a new id and started with
// --join, a member removed for good; docs/membership.md).
//
// In a private network namespace node N listens on 127.0.0.(10+N) (peers on
// port 7000, clients on 8000; 127.0.0.1 is kept for the unbound sources of
// outgoing connections, see fault::NodeAddress) and runs with group id
// first_gid + N; without one
// every node is on 127.0.0.1 with its own free ports and keeps our group.
// Data directories and clock files live in work_dir, logs in out_dir.
// Node ids are 1..max_id(): the founding members first, then one per node
// added, in order; an id is never reused, so max_id() only grows.
//
// Must never signal a process it did not start, nor use an address outside
// 127.0.0.0/8. Not thread-safe: the main thread drives it. The destructor
// kills every node still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
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

  // Ids are 1-based, as in raftkvd --id: every node ever started (or
  // allocated for an add) has an id in 1..max_id().
  int max_id() const { return static_cast<int>(nodes_.size()); }
  // The members as this harness knows them: the founding nodes and the
  // added ones, less the removed ones (and adds that never took effect).
  std::vector<int> members() const;
  bool removed(int id) const { return node(id).state == State::kRemoved; }
  std::string address(int id) const;  // "127.0.0.1N"
  std::string client_address(int id) const;
  // The client addresses of the current members(), in id order.
  std::vector<std::string> client_endpoints() const;
  gid_t gid(int id) const;  // 0 when nodes keep our group
  // Incremented by every change of members(): whoever holds endpoints
  // compares it to refresh them.
  uint64_t membership_version() const { return membership_version_; }
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
  // they are reaped and stay down. A removed node stops by itself: it is
  // reaped by RemoveNode, never reported here.
  std::vector<std::string> ReapCrashed();

  // The membership as the member that answers knows it (a change is in a
  // member's view once in its log), retried for up to `timeout`.
  StatusOr<std::vector<MemberInfo>> MemberList(
      std::chrono::milliseconds timeout);
  // Adds a fresh node under the next id (never used before) as a voter to
  // be (MemberAdd without learner: the leader promotes it once it has
  // caught up) and starts it with an empty data dir, --join and a --cluster
  // of the current members and itself. Returns its id; on an error the id
  // is spent and no process started. Bounded: at most about 16 s.
  StatusOr<int> AddNode();
  // Waits up to `timeout` until member `id` is a voter in the view of the
  // member that answers; returns how long it took, or Timeout.
  StatusOr<double> WaitForVoter(int id, std::chrono::milliseconds timeout);
  // Removes member `id` for good (MemberRemove, retried; a retry of a
  // removal that took effect is answered as done), then waits up to
  // `exit_timeout` for its process to stop by itself (a removed node
  // does). `*exit` says how it ended ("exit 0 by itself after 0.4 s", or
  // "still running after 10 s: stopped"). OK once the removal is applied,
  // even if the process had to be stopped (then *stopped_by_us is true).
  Status RemoveNode(int id, std::chrono::milliseconds exit_timeout,
                    std::string* exit, bool* stopped_by_us);

  // SIGTERM to every node, SIGKILL to those still up after `grace`.
  Status StopAll(std::chrono::milliseconds grace);

  // Log file names relative to out_dir ("n1.log", ...) of every node
  // that was started, removed ones included.
  std::vector<std::string> log_names() const;

  // The highest id a node may get (the founding nodes and every add).
  static constexpr int kMaxNodeId = 64;

 private:
  enum class State {
    kMember,   // a founding member, or an add that took effect
    kRemoved,  // removed for good; its id is never used again
    kSpent,    // allocated for an add that failed: never started
  };
  struct Node {
    State state = State::kMember;
    bool started = false;  // has a log file
    uint16_t peer_port = 0, client_port = 0;
    std::unique_ptr<NodeProcess> process;
    std::string clock_file;
    double clock_offset_s = 0;
  };
  explicit Cluster(ClusterOptions options) : options_(std::move(options)) {}
  const Node& node(int id) const { return nodes_.at(id - 1); }
  Node& node(int id) { return nodes_.at(id - 1); }
  std::string peer_address(int id) const;
  // Allocates the next id and its ports; a node added during the run
  // (`join`) is kSpent until its add took effect.
  Status NewNode(bool join);
  // Its process (not started): --cluster lists `cluster` (whose nodes
  // exist), --join if `join`.
  Status PrepareNode(int id, const std::vector<int>& cluster, bool join);
  // The status and membership client, over the current members.
  Status RefreshClient();
  Client& client(std::chrono::milliseconds deadline);
  // A membership change, retried while it fails for up to kChangeAttempts
  // attempts of kChangeDeadline each.
  StatusOr<std::vector<MemberInfo>> Change(
      const std::function<StatusOr<std::vector<MemberInfo>>(Client&)>& call);
  void MembershipChanged();

  ClusterOptions options_;
  std::vector<ReservedPort> reserved_ports_;  // held while the nodes run
  std::vector<Node> nodes_;
  std::unique_ptr<Client> status_client_;
  uint64_t membership_version_ = 0;
};

// "n1 n2(leader) n4 n6(learner)": a member list, in id order.
std::string MembersText(std::vector<MemberInfo> members);

}  // namespace raftkv::jepsen
