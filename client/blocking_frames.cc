// Blocking framed I/O on a socket descriptor, plain or TLS (see
// blocking_frames.h).
// No state.
#include "client/blocking_frames.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "client/frame.h"
#include "client/tls.h"

namespace raftkv::wire {
namespace {

Status Errno(const std::string& what) {
  return Status::IOError(what + ": " + std::strerror(errno));
}

}  // namespace

void SetTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

Status WriteAll(Channel channel, std::string_view data,
                const std::string& what) {
  if (channel.tls != nullptr) {
    return channel.tls->WriteBlocking(data.data(), data.size(), what);
  }
  const int fd = channel.fd;
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Status::Timeout(what + ": no progress (send timed out)");
      }
      return Errno(what + ": send");
    }
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

Status ReadExact(Channel channel, std::string* pending, char* out, size_t size,
                 const std::string& what) {
  size_t done = std::min(size, pending->size());
  std::memcpy(out, pending->data(), done);
  pending->erase(0, done);
  if (channel.tls != nullptr) {
    return channel.tls->ReadBlocking(out + done, size - done, what);
  }
  const int fd = channel.fd;
  while (done < size) {
    const ssize_t n = ::recv(fd, out + done, size - done, 0);
    if (n == 0) return Status::Unavailable(what + ": connection closed");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return Status::Timeout(what + ": no progress (receive timed out)");
      }
      return Errno(what + ": recv");
    }
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

Status WriteFrame(Channel channel, std::string_view payload,
                  const std::string& what) {
  std::string frame;
  frame.reserve(payload.size() + kFrameHeaderBytes);
  AppendFrame(payload, &frame);
  return WriteAll(channel, frame, what);
}

Status ReadFrame(Channel channel, std::string* pending, size_t max_bytes,
                 std::string* payload, const std::string& what) {
  unsigned char header[kFrameHeaderBytes];
  RAFTKV_RETURN_IF_ERROR(ReadExact(
      channel, pending, reinterpret_cast<char*>(header), sizeof(header), what));
  uint64_t length = 0;
  for (unsigned char b : header) length = (length << 8) | b;
  if (length > max_bytes) {
    return Status::TooLarge(what + ": frame of " + std::to_string(length) +
                            " bytes over the limit of " +
                            std::to_string(max_bytes));
  }
  payload->resize(length);
  return ReadExact(channel, pending, payload->data(), length, what);
}

StatusOr<int> Dial(const std::string& address, const std::string& self_ip,
                   std::chrono::milliseconds timeout) {
  const size_t colon = address.rfind(':');
  sockaddr_in to{};
  to.sin_family = AF_INET;
  std::string host = address.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  if (colon == std::string::npos ||
      ::inet_pton(AF_INET, host.c_str(), &to.sin_addr) != 1) {
    return Status::InvalidArgument("'" + address + "' is not IPv4 host:port");
  }
  to.sin_port =
      htons(static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1)));
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  if (!self_ip.empty()) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    sockaddr_in from{};
    from.sin_family = AF_INET;
    if (::inet_pton(AF_INET, self_ip.c_str(), &from.sin_addr) == 1) {
      ::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from));
    }
  }
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 &&
      errno != EINPROGRESS) {
    Status s = Errno("connect to " + address);
    ::close(fd);
    return s;
  }
  pollfd p{fd, POLLOUT, 0};
  int err = 0;
  socklen_t len = sizeof(err);
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
    ::close(fd);
    return Status::Unavailable("cannot connect to " + address +
                               (err != 0
                                    ? std::string(": ") + std::strerror(err)
                                    : std::string(": timed out")));
  }
  ::fcntl(fd, F_SETFL, flags);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  SetTimeouts(fd, timeout);
  return fd;
}

}  // namespace raftkv::wire
