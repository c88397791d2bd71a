// ReservedPort: a TCP port on loopback that this process holds for a
// cluster it starts (LocalCluster, raftkv-jepsen's Cluster) until the
// reservation is destroyed.
//
// A port found free by binding to port 0 and closing the socket is free
// only for a moment: the kernel may hand it to the next bind to port 0 (a
// node's --listen_metrics=127.0.0.1:0), to an outgoing connection, or to a
// test running beside us, and the node started on it then cannot listen.
// Reserved ports are therefore taken below the kernel's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range), which the kernel never hands
// out by itself, and each is held by an exclusive lock on a file in
// /tmp/raftkv-ports, so processes reserving at the same time never share
// one. Must never hand out a port something is listening on.
#pragma once

#include <cstdint>

#include "util/status.h"

namespace raftkv {

class ReservedPort {
 public:
  // A free loopback port, held until the result is destroyed.
  // Unavailable if none is left.
  static StatusOr<ReservedPort> Take();

  ReservedPort(ReservedPort&& other) noexcept;
  ReservedPort& operator=(ReservedPort&& other) noexcept;
  ReservedPort(const ReservedPort&) = delete;
  ReservedPort& operator=(const ReservedPort&) = delete;
  ~ReservedPort();  // releases the lock

  uint16_t port() const { return port_; }

 private:
  ReservedPort(uint16_t port, int lock_fd) : port_(port), lock_fd_(lock_fd) {}

  uint16_t port_ = 0;
  int lock_fd_ = -1;  // the flock()ed file that holds the port
};

}  // namespace raftkv
