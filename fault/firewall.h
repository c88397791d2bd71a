// Firewall: the partition nemesis's packet filter, an iptables chain on the
// private namespace's loopback. Rules are "drop what node A's process sends
// to node B's address":
//
//   -A RAFTKV_JEPSEN -d 127.0.0.B/32 -o lo -m owner --gid-owner GID_A -j DROP
//
// Each raftkvd runs with its own group id (see jepsen/cluster.h) and the
// rule matches the sending process, not the source address: raftkvd dials
// its peers from its own address, but the owner match also covers any
// socket a node might open unbound (source 127.0.0.1), and it cuts a
// node's TCP acknowledgements as well as its data, as packet loss on a
// real link does. The chain is jumped to from
// OUTPUT for lo; every change replaces the whole chain in one atomic
// iptables-restore --noflush transaction.
//
// Must never be installed outside raftkv-jepsen's private network namespace
// (Install takes the PrivateNetwork as proof, and checks again), nor touch
// any chain but its own and its one jump rule in OUTPUT. The destructor
// removes both.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "fault/netns.h"
#include "util/status.h"

namespace raftkv::fault {

// Packets from processes of group `from_gid` to `to_address` are dropped.
struct Cut {
  gid_t from_gid = 0;
  std::string to_address;  // an IPv4 address in 127.0.0.0/8
};

class Firewall {
 public:
  static constexpr const char* kChain = "RAFTKV_JEPSEN";

  static StatusOr<std::unique_ptr<Firewall>> Install(
      const PrivateNetwork& network);
  ~Firewall();
  Firewall(const Firewall&) = delete;
  Firewall& operator=(const Firewall&) = delete;

  // Replaces the chain's rules by one DROP per cut, atomically, and checks
  // that the kernel holds exactly that many rules.
  Status Apply(const std::vector<Cut>& cuts);
  // Flushes the chain: every packet flows again.
  Status Heal() { return Apply({}); }

  // The rules of the last Apply, as iptables-save lines.
  const std::vector<std::string>& rules() const { return rules_; }
  // The iptables-restore input of the last Apply (for the notes).
  static std::string RestoreInput(const std::vector<std::string>& rules);

 private:
  Firewall() = default;
  std::vector<std::string> rules_;
};

}  // namespace raftkv::fault
