// Firewall: a packet filter on a private network namespace's loopback, an
// iptables chain of DROP rules that partitions processes of one program's
// own test cluster. Each rule drops the packets on lo that match every
// field of one Cut: the group id of the sending process, the source
// address, the destination address (127.0.0.0/8 only). Two uses:
//
//   raftkv-jepsen's partition nemesis, "drop what node A's process sends
//   to node B's address":
//     -A RAFTKV_JEPSEN -d 127.0.0.B/32 -o lo -m owner --gid-owner GID_A -j DROP
//   raftkv-bench's failover --fault=partition, "cut node L off from
//   everyone, peers and clients" (Isolation below):
//     -A RAFTKV_BENCH -d 127.0.0.L/32 -o lo -j DROP
//     -A RAFTKV_BENCH -s 127.0.0.L/32 -o lo -j DROP
//     -A RAFTKV_BENCH -o lo -m owner --gid-owner GID_L -j DROP
//
// Each raftkvd runs with its own group id (jepsen/cluster.h,
// tools/local_cluster.h) and on its own address. The owner match covers
// the sending process whatever its source address: raftkvd dials its peers
// from its own address, but falls back to an unbound socket (source
// 127.0.0.1) if it cannot, and it cuts a node's TCP acknowledgements as
// well as its data, as packet loss on a real link does. The chain is
// jumped to from OUTPUT for lo (every packet on lo passes OUTPUT once);
// every change replaces the whole chain in one atomic iptables-restore
// --noflush transaction.
//
// Must never be installed outside a PrivateNetwork (Install takes it as
// proof, and checks again that this thread is in it), nor touch any chain
// but its own and its one jump rule in OUTPUT. The destructor removes
// both; if the program dies first, they vanish with its namespace.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "fault/netns.h"
#include "util/status.h"

namespace raftkv::fault {

// Packets on lo matching every field that is set are dropped: sent by a
// process of group `from_gid` (0: any process), to `to_address` ("": any
// destination), from `from_address` ("": any source). At least one field
// must be set; addresses are dotted IPv4 in 127.0.0.0/8.
struct Cut {
  gid_t from_gid = 0;
  std::string to_address;
  std::string from_address;
};

// The cuts that isolate a node at `address` whose process runs with group
// `gid` (0: no owner rule) from every other process: nothing reaches its
// address, nothing leaves from it, and nothing its process sends leaves.
std::vector<Cut> Isolation(const std::string& address, gid_t gid);

class Firewall {
 public:
  // `chain`: the name of the program's own chain, "RAFTKV_" and capital
  // letters, digits or '_', at most 28 characters, e.g. "RAFTKV_JEPSEN".
  static StatusOr<std::unique_ptr<Firewall>> Install(
      const PrivateNetwork& network, const std::string& chain);
  ~Firewall();
  Firewall(const Firewall&) = delete;
  Firewall& operator=(const Firewall&) = delete;

  // Replaces the chain's rules by one DROP per cut, atomically, and checks
  // that the kernel holds exactly that many rules. InvalidArgument (and
  // nothing changed) for a cut that is empty or names an address outside
  // 127.0.0.0/8.
  Status Apply(const std::vector<Cut>& cuts);
  // Flushes the chain: every packet flows again.
  Status Heal() { return Apply({}); }

  const std::string& chain() const { return chain_; }
  // The rules of the last Apply, as iptables-save lines.
  const std::vector<std::string>& rules() const { return rules_; }
  // When the last successful Apply's iptables-restore returned: its rules
  // were in effect from then on (Apply's check takes a few ms more, and
  // starting iptables-restore tens of ms less, on a busy machine).
  std::chrono::steady_clock::time_point applied_at() const {
    return applied_at_;
  }

  // The iptables-save line of `cut` in `chain`, e.g. "-A RAFTKV_JEPSEN -d
  // 127.0.0.12/32 -o lo -m owner --gid-owner 61001 -j DROP".
  static StatusOr<std::string> Rule(const std::string& chain, const Cut& cut);
  // The iptables-restore input that makes `chain` hold exactly `rules`.
  static std::string RestoreInput(const std::string& chain,
                                  const std::vector<std::string>& rules);

 private:
  explicit Firewall(std::string chain) : chain_(std::move(chain)) {}
  std::string chain_;
  std::vector<std::string> rules_;
  std::chrono::steady_clock::time_point applied_at_;
};

}  // namespace raftkv::fault
