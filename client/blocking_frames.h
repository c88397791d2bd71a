// Blocking framed I/O on a socket descriptor, plain or TLS, for the threads and
// tools that stream large payloads with TCP's own flow control (snapshot
// transfers between nodes, backups to raftkvctl): the same length-prefixed
// frames as FramedConnection (frame.h). Every call is bounded by the
// socket's timeouts (SetTimeouts): no progress for that long is an error.
// Never used on an event loop's thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "util/status.h"

namespace raftkv::wire {

class TlsSession;

// A connected blocking socket and, when it carries TLS, its session (both
// owned elsewhere). Implicit from a plain descriptor.
struct Channel {
  Channel(int fd) : fd(fd) {}  // NOLINT(runtime/explicit): plain TCP
  Channel(int fd, TlsSession* tls) : fd(fd), tls(tls) {}
  int fd;
  TlsSession* tls = nullptr;
};

// Send and receive timeouts: a call that makes no progress for this long
// fails with Timeout.
void SetTimeouts(int fd, std::chrono::milliseconds timeout);
Status WriteAll(Channel channel, std::string_view data,
                const std::string& what);
// Reads exactly `size` bytes: first from *pending (bytes read earlier by
// someone else), then from the socket.
Status ReadExact(Channel channel, std::string* pending, char* out, size_t size,
                 const std::string& what);
Status WriteFrame(Channel channel, std::string_view payload,
                  const std::string& what);
// One frame's payload; TooLarge over `max_bytes`.
Status ReadFrame(Channel channel, std::string* pending, size_t max_bytes,
                 std::string* payload, const std::string& what);
// Connects to IPv4 host:port within `timeout`, from `self_ip` when given
// ("" for any), and sets `timeout` as the socket's timeouts.
StatusOr<int> Dial(const std::string& address, const std::string& self_ip,
                   std::chrono::milliseconds timeout);

}  // namespace raftkv::wire
