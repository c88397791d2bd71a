// Tests of ReservedPort, the loopback ports test clusters run on: a
// reserved port is one the kernel never hands out by itself (so a node's
// bind to port 0 or an outgoing connection cannot take it from a node
// about to start), is free to listen on, and is never reserved twice while
// held.
#include "tools/reserved_port.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

namespace raftkv {
namespace {

// Binds (and, if `listen`, listens on) 127.0.0.1:port; the descriptor, or
// -1 if it failed.
int BindLoopback(uint16_t port, bool listen) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      (listen && ::listen(fd, 1) != 0)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(ReservedPortTest, IsOutsideTheKernelsEphemeralRangeAndFreeToListenOn) {
  int low = 0, high = 0;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high;
  ASSERT_GT(high, low);
  auto reserved = ReservedPort::Take();
  ASSERT_TRUE(reserved.ok()) << reserved.status().ToString();
  const int port = reserved->port();
  EXPECT_TRUE(port < low || port > high)
      << port << " is in the ephemeral range " << low << "-" << high;
  EXPECT_GE(port, 1024);
  const int fd = BindLoopback(reserved->port(), /*listen=*/true);
  EXPECT_GE(fd, 0) << "cannot listen on reserved port " << port;
  if (fd >= 0) ::close(fd);
}

// Another process sees a held port as taken through its lock file in
// /tmp/raftkv-ports (as this process's own second open of it does).
bool LockedByAnother(uint16_t port) {
  const std::string path =
      "/tmp/raftkv-ports/" + std::to_string(port) + ".lock";
  const int fd = ::open(path.c_str(), O_RDWR);
  if (fd < 0) return false;
  const bool locked = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
  ::close(fd);
  return locked;
}

TEST(ReservedPortTest, PortsHeldAtOnceAreDistinctAndLockedUntilReleased) {
  std::vector<ReservedPort> held;
  std::set<uint16_t> ports;
  for (int i = 0; i < 200; ++i) {
    auto reserved = ReservedPort::Take();
    ASSERT_TRUE(reserved.ok()) << reserved.status().ToString();
    EXPECT_TRUE(ports.insert(reserved->port()).second)
        << "port " << reserved->port() << " reserved twice";
    held.push_back(std::move(reserved).value());
  }
  const uint16_t port = held.front().port();
  EXPECT_TRUE(LockedByAnother(port));
  // Moving keeps the lock; destroying the holder releases it.
  ReservedPort moved = std::move(held.front());
  held.clear();
  EXPECT_EQ(moved.port(), port);
  EXPECT_TRUE(LockedByAnother(port));
  { ReservedPort released = std::move(moved); }
  EXPECT_FALSE(LockedByAnother(port));
}

}  // namespace
}  // namespace raftkv
