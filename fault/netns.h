// PrivateNetwork: a program's own network namespace (raftkv-jepsen's,
// raftkv-bench failover --fault=partition's). Entering it moves
// this process (and every child it starts afterwards: raftkvd, iptables) out
// of the machine's network into a namespace whose only interface is its
// own loopback, where 127.0.0.N addresses and firewall rules are private
// and vanish with the last process inside.
//
// Must never touch the machine's own (initial) network namespace: nothing
// here configures interfaces, routes or rules outside the new namespace.
#pragma once

#include <memory>
#include <string>

#include "util/status.h"

namespace raftkv::fault {

class PrivateNetwork {
 public:
  // unshare(CLONE_NEWNET), then `ip link set dev lo up`, then checks that lo
  // is the only interface and is up. Call while the process has a single
  // thread (a namespace change applies to the calling thread only).
  // FailedPrecondition when no namespace could be made (not root, or the
  // kernel refuses): the process is then still where it was. IOError when
  // a later step failed: the process is in a namespace that is unusable.
  static StatusOr<std::unique_ptr<PrivateNetwork>> Enter();

  // e.g. "private network namespace net:[4026532291], interfaces: lo (up)".
  const std::string& description() const { return description_; }

  // Whether the calling thread is in this namespace (and it is not the one
  // the process started in).
  bool IsCurrent() const;

 private:
  PrivateNetwork(std::string original, std::string inside)
      : original_(std::move(original)), inside_(std::move(inside)) {}
  std::string original_, inside_;
  std::string description_;
};

// The namespace of the calling thread, e.g. "net:[4026531840]" ("" if
// unreadable).
std::string CurrentNetworkNamespace();

// The address of node `id` (1 to 245) of a test cluster whose nodes each
// have their own: 127.0.0.(10+id), in raftkv-jepsen's and in LocalCluster's
// layout alike. Never 127.0.0.1: the kernel gives unbound sockets (the
// clients) the source 127.0.0.1, so a node there would receive, and a rule
// towards it would drop, replies on connections it did not open.
std::string NodeAddress(int id);

}  // namespace raftkv::fault
