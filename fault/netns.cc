// Creates a private network namespace and checks that it has
// only its loopback. Must never configure the initial network namespace.
#include "fault/netns.h"

#include <glog/logging.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "fault/subprocess.h"

namespace raftkv::fault {

namespace {

std::string ReadLink(const std::string& path) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(path, ec);
  return ec ? "" : target.string();
}

bool LoopbackIsUp() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  const bool up = ::ioctl(fd, SIOCGIFFLAGS, &request) == 0 &&
                  (request.ifr_flags & IFF_UP) != 0;
  ::close(fd);
  return up;
}

// Names of the interfaces visible in the current namespace.
std::string InterfaceNames(int* count) {
  std::string names;
  *count = 0;
  struct if_nameindex* list = ::if_nameindex();
  if (list == nullptr) return names;
  for (struct if_nameindex* i = list; i->if_index != 0; ++i) {
    if (!names.empty()) names += ",";
    names += i->if_name;
    ++*count;
  }
  ::if_freenameindex(list);
  return names;
}

}  // namespace

std::string CurrentNetworkNamespace() {
  return ReadLink("/proc/thread-self/ns/net");
}

std::string NodeAddress(int id) {
  constexpr int kFirstHostByte = 10;
  CHECK(id >= 1 && id <= 255 - kFirstHostByte) << "node id " << id;
  return "127.0.0." + std::to_string(kFirstHostByte + id);
}

bool PrivateNetwork::IsCurrent() const {
  const std::string now = CurrentNetworkNamespace();
  return !now.empty() && now == inside_ && inside_ != original_;
}

StatusOr<std::unique_ptr<PrivateNetwork>> PrivateNetwork::Enter() {
  if (::geteuid() != 0) {
    return Status::FailedPrecondition(
        "not root: cannot create a network namespace");
  }
  const std::string original = CurrentNetworkNamespace();
  if (original.empty()) {
    return Status::FailedPrecondition("cannot read /proc/thread-self/ns/net");
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    return Status::FailedPrecondition(std::string("unshare(CLONE_NEWNET): ") +
                                      std::strerror(errno));
  }
  const std::string inside = CurrentNetworkNamespace();
  if (inside.empty() || inside == original) {
    return Status::IOError("unshare succeeded but the namespace is " + inside +
                           ", as before");
  }
  auto up = RunCommand({"ip", "link", "set", "dev", "lo", "up"});
  if (!up.ok()) return up.status();
  if (!LoopbackIsUp()) return Status::IOError("lo is not up");
  int count = 0;
  const std::string names = InterfaceNames(&count);
  if (count != 1 || names != "lo") {
    return Status::IOError("the new namespace has interfaces " + names +
                           ", expected only lo");
  }
  std::unique_ptr<PrivateNetwork> network(new PrivateNetwork(original, inside));
  network->description_ = "private network namespace " + inside +
                          " (created from " + original +
                          "), interfaces: lo (up)";
  return network;
}

}  // namespace raftkv::fault
