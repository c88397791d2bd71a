// Reserves loopback ports below the ephemeral range, one lock file each.
// Must never keep a port whose lock it does not hold, nor leak the lock's
// descriptor into children (O_CLOEXEC).
#include "tools/reserved_port.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>

namespace raftkv {

namespace {

constexpr char kLockDir[] = "/tmp/raftkv-ports";
// Ports below this are left to well-known services and to scripts/cluster
// (7000+N, 8000+N).
constexpr int kLowestPort = 10000;

// [first, last] of the ports the kernel never picks by itself: below its
// ephemeral range, or above it if the range starts too low.
std::pair<int, int> ReservablePorts() {
  int low = 32768, high = 60999;  // Linux's default
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high;
  if (low - kLowestPort >= 4096) return {kLowestPort, low - 1};
  return {high + 1, 65535};
}

// True if nothing on 127.0.0.1 has `port`: a listener, a connection, or
// one of its sockets still in TIME_WAIT (bound without SO_REUSEADDR).
bool Bindable(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok =
      ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

StatusOr<ReservedPort> ReservedPort::Take() {
  std::error_code ec;
  std::filesystem::create_directories(kLockDir, ec);
  // Shared by every user's tests, as /tmp is.
  std::filesystem::permissions(
      kLockDir,
      std::filesystem::perms::all | std::filesystem::perms::sticky_bit, ec);
  const auto [first, last] = ReservablePorts();
  const int count = last - first + 1;
  std::random_device seed;
  const int start = static_cast<int>(seed() % static_cast<unsigned>(count));
  for (int i = 0; i < count; ++i) {
    const int port = first + (start + i) % count;
    const std::string path =
        std::string(kLockDir) + "/" + std::to_string(port) + ".lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);  // another process holds it
      continue;
    }
    if (!Bindable(port)) {
      ::close(fd);
      continue;
    }
    return ReservedPort(static_cast<uint16_t>(port), fd);
  }
  return Status::Unavailable("no free loopback port in " +
                             std::to_string(first) + "-" +
                             std::to_string(last));
}

ReservedPort::ReservedPort(ReservedPort&& other) noexcept
    : port_(std::exchange(other.port_, 0)),
      lock_fd_(std::exchange(other.lock_fd_, -1)) {}

ReservedPort& ReservedPort::operator=(ReservedPort&& other) noexcept {
  if (this != &other) {
    if (lock_fd_ >= 0) ::close(lock_fd_);
    port_ = std::exchange(other.port_, 0);
    lock_fd_ = std::exchange(other.lock_fd_, -1);
  }
  return *this;
}

ReservedPort::~ReservedPort() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

}  // namespace raftkv
