// FramedConnection: one TCP connection carrying length-prefixed frames in
// both directions, for client connections (both ends) and peer links.
//
// Reads are continuous: every complete frame is handed to the frame
// handler. Writes are queued and coalesced into one gather-write; the queue
// is bounded in bytes, so a slow or dead peer never grows memory without
// bound (Send() returns false and drops the frame; one frame larger than
// the bound is taken when nothing else is queued). A frame over the size
// limit, an I/O error or EOF closes the connection and calls the close
// handler exactly once.
//
// Over TLS (a TlsSession, handshake done, tls.h) the same frames travel
// encrypted; without one no TLS code runs at all.
//
// Thread-safety: every method must be called on the thread running the
// io_context that owns the socket. Keep a shared_ptr while in use; pending
// handlers keep the object alive until they complete.
#pragma once

#include <asio/ip/tcp.hpp>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/frame.h"
#include "util/status.h"

namespace raftkv::wire {

class TlsSession;

struct ConnectionLimits {
  size_t max_frame_bytes = 4 << 20;
  size_t max_queued_bytes = 64 << 20;
};

class FramedConnection : public std::enable_shared_from_this<FramedConnection> {
 public:
  using FrameHandler = std::function<void(std::string payload)>;
  using CloseHandler = std::function<void(const Status& reason)>;

  FramedConnection(asio::ip::tcp::socket socket, ConnectionLimits limits);
  // Over `tls`, a session on `socket` whose handshake is done (nullptr:
  // plain TCP).
  FramedConnection(asio::ip::tcp::socket socket, ConnectionLimits limits,
                   std::unique_ptr<TlsSession> tls);
  ~FramedConnection();
  FramedConnection(const FramedConnection&) = delete;
  FramedConnection& operator=(const FramedConnection&) = delete;

  // Starts reading. Handlers run on the io_context thread; they must not
  // own this connection (capture a weak_ptr or a raw owner pointer).
  void Start(FrameHandler on_frame, CloseHandler on_close);
  // Queues one frame. Returns false if closed or over the queue limit.
  bool Send(std::string_view payload);
  // The same for a frame already built (AppendFrame, frame.h), taken
  // without a copy: how a large answer encoded on another thread is sent.
  bool SendFrame(std::string frame);
  // Closes the socket (idempotent); the close handler runs with `reason`.
  void Close(const Status& reason);
  // Hands the socket over (e.g. to a thread doing blocking I/O): stops
  // reading and writing without closing it, returns its descriptor and, in
  // *buffered, the bytes already read but not yet handed out as frames. The
  // close handler never runs. May be called from the frame handler. Over
  // TLS the session goes with the descriptor (TakeTlsSession(fd), tls.h).
  int Release(std::string* buffered);

  bool open() const { return open_; }
  size_t queued_bytes() const { return queued_bytes_; }
  // "127.0.0.1:5678", or "?" when unknown.
  const std::string& remote() const { return remote_; }

 private:
  void ReadMore();
  void OnRead(const std::error_code& ec, size_t bytes);
  void WriteMore();
  void OnWrite(const std::error_code& ec, size_t bytes);
  // Hands out the complete frames read; false once the connection was
  // closed or released meanwhile (stop reading).
  bool DeliverFrames();
  // TLS: reads what the session has (at most a chunk per turn), then waits
  // for the readiness it asks for; writes the queue the same way.
  void TlsRead();
  void TlsWrite();
  void TlsWait(bool readable, void (FramedConnection::*then)());

  asio::ip::tcp::socket socket_;
  ConnectionLimits limits_;
  FrameReader reader_;
  std::vector<char> read_buffer_;
  std::deque<std::string> queue_;     // frames not yet handed to the kernel
  std::vector<std::string> writing_;  // frames of the write in progress
  size_t queued_bytes_ = 0;
  bool open_ = true;
  bool started_ = false;
  FrameHandler on_frame_;
  CloseHandler on_close_;
  std::string remote_;
  std::unique_ptr<TlsSession> tls_;  // null: plain TCP
  std::string tls_out_;              // TLS: the frames being written
  size_t tls_out_done_ = 0;          // of tls_out_, already written
};

}  // namespace raftkv::wire
