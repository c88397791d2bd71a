// Asio implementation of a framed, bounded, full-duplex TCP connection.
#include "client/framed_connection.h"

#include <glog/logging.h>

#include <asio/buffer.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include "client/tls.h"

namespace raftkv::wire {
namespace {

constexpr size_t kReadChunkBytes = 64 << 10;
// TLS: frames are gathered into one buffer of about this size per write.
constexpr size_t kTlsWriteBytes = 256 << 10;

std::string RemoteOf(const asio::ip::tcp::socket& socket) {
  std::error_code ec;
  auto ep = socket.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

FramedConnection::FramedConnection(asio::ip::tcp::socket socket,
                                   ConnectionLimits limits)
    : socket_(std::move(socket)),
      limits_(limits),
      reader_(limits.max_frame_bytes),
      read_buffer_(kReadChunkBytes),
      remote_(RemoteOf(socket_)) {
  std::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
}

FramedConnection::FramedConnection(asio::ip::tcp::socket socket,
                                   ConnectionLimits limits,
                                   std::unique_ptr<TlsSession> tls)
    : FramedConnection(std::move(socket), limits) {
  tls_ = std::move(tls);
}

FramedConnection::~FramedConnection() {
  std::error_code ec;
  socket_.close(ec);
}

void FramedConnection::Start(FrameHandler on_frame, CloseHandler on_close) {
  CHECK(!started_) << "FramedConnection started twice";
  started_ = true;
  on_frame_ = std::move(on_frame);
  on_close_ = std::move(on_close);
  ReadMore();
}

void FramedConnection::ReadMore() {
  if (tls_) {
    TlsRead();
    return;
  }
  socket_.async_read_some(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](const std::error_code& ec, size_t n) {
        self->OnRead(ec, n);
      });
}

void FramedConnection::OnRead(const std::error_code& ec, size_t bytes) {
  if (!open_) return;
  if (ec) {
    Close(ec == asio::error::eof
              ? Status::Unavailable("connection closed by " + remote_)
              : Status::IOError("read from " + remote_ + ": " + ec.message()));
    return;
  }
  reader_.Append(read_buffer_.data(), bytes);
  if (DeliverFrames()) ReadMore();
}

bool FramedConnection::DeliverFrames() {
  std::string payload;
  while (open_) {
    switch (reader_.Next(&payload)) {
      case FrameReader::Result::kFrame:
        on_frame_(std::move(payload));
        payload.clear();
        continue;
      case FrameReader::Result::kNeedMore:
        return true;
      case FrameReader::Result::kTooLarge:
        Close(Status::TooLarge(
            "frame of " + std::to_string(reader_.rejected_length()) +
            " bytes from " + remote_ + " exceeds the limit of " +
            std::to_string(limits_.max_frame_bytes)));
        return false;
    }
  }
  return false;
}

void FramedConnection::TlsRead() {
  size_t turn = 0;
  while (open_) {
    size_t n = 0;
    switch (tls_->Read(read_buffer_.data(), read_buffer_.size(), &n)) {
      case TlsSession::Result::kOk:
        reader_.Append(read_buffer_.data(), n);
        if (!DeliverFrames()) return;
        turn += n;
        if (turn >= kReadChunkBytes) {
          // Other handlers get their turn; the session may hold decrypted
          // bytes the socket's readiness would not announce.
          asio::post(socket_.get_executor(), [self = shared_from_this()] {
            if (self->open_) self->TlsRead();
          });
          return;
        }
        continue;
      case TlsSession::Result::kWantRead:
        return TlsWait(/*readable=*/true, &FramedConnection::TlsRead);
      case TlsSession::Result::kWantWrite:
        return TlsWait(/*readable=*/false, &FramedConnection::TlsRead);
      case TlsSession::Result::kClosed:
        return Close(Status::Unavailable("connection closed by " + remote_));
      case TlsSession::Result::kError:
        return Close(
            Status::IOError("TLS read from " + remote_ + ": " + tls_->error()));
    }
  }
}

void FramedConnection::TlsWait(bool readable,
                               void (FramedConnection::*then)()) {
  socket_.async_wait(
      readable ? asio::ip::tcp::socket::wait_read
               : asio::ip::tcp::socket::wait_write,
      [self = shared_from_this(), then](const std::error_code& ec) {
        if (!self->open_) return;
        if (ec) {
          return self->Close(Status::IOError("wait on " + self->remote_ + ": " +
                                             ec.message()));
        }
        ((*self).*then)();
      });
}

void FramedConnection::TlsWrite() {
  while (open_) {
    if (tls_out_done_ == tls_out_.size()) {
      queued_bytes_ -= std::min(queued_bytes_, tls_out_.size());
      tls_out_.clear();
      tls_out_done_ = 0;
      if (queue_.empty()) return;
      while (!queue_.empty() && tls_out_.size() < kTlsWriteBytes) {
        tls_out_ += queue_.front();
        queue_.pop_front();
      }
    }
    size_t n = 0;
    switch (tls_->Write(tls_out_.data() + tls_out_done_,
                        tls_out_.size() - tls_out_done_, &n)) {
      case TlsSession::Result::kOk:
        tls_out_done_ += n;
        continue;
      case TlsSession::Result::kWantWrite:
        return TlsWait(/*readable=*/false, &FramedConnection::TlsWrite);
      case TlsSession::Result::kWantRead:
        return TlsWait(/*readable=*/true, &FramedConnection::TlsWrite);
      case TlsSession::Result::kClosed:
      case TlsSession::Result::kError:
        return Close(
            Status::IOError("TLS write to " + remote_ + ": " + tls_->error()));
    }
  }
}

bool FramedConnection::Send(std::string_view payload) {
  if (!open_) return false;
  std::string frame;
  frame.reserve(payload.size() + kFrameHeaderBytes);
  AppendFrame(payload, &frame);
  return SendFrame(std::move(frame));
}

bool FramedConnection::SendFrame(std::string frame) {
  if (!open_) return false;
  const size_t size = frame.size();
  if (queued_bytes_ > 0 && queued_bytes_ + size > limits_.max_queued_bytes) {
    return false;
  }
  queue_.push_back(std::move(frame));
  queued_bytes_ += size;
  if (writing_.empty() && tls_out_.empty()) WriteMore();
  return true;
}

void FramedConnection::WriteMore() {
  if (queue_.empty() || !open_) return;
  if (tls_) {
    TlsWrite();
    return;
  }
  while (!queue_.empty() && writing_.size() < 256) {
    writing_.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  // Buffers are taken only once writing_ stops growing: a reallocation
  // moves short strings' inline storage.
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(writing_.size());
  for (const std::string& frame : writing_)
    buffers.push_back(asio::buffer(frame));
  asio::async_write(
      socket_, buffers,
      [self = shared_from_this()](const std::error_code& ec, size_t n) {
        self->OnWrite(ec, n);
      });
}

void FramedConnection::OnWrite(const std::error_code& ec, size_t bytes) {
  queued_bytes_ -= std::min(queued_bytes_, bytes);
  writing_.clear();
  if (!open_) return;
  if (ec) {
    Close(Status::IOError("write to " + remote_ + ": " + ec.message()));
    return;
  }
  WriteMore();
}

int FramedConnection::Release(std::string* buffered) {
  open_ = false;
  queue_.clear();
  on_close_ = nullptr;
  *buffered = reader_.TakeBuffered();
  std::error_code ec;
  const int fd = socket_.release(ec);
  if (ec) return -1;
  if (tls_) ParkTlsSession(fd, std::move(tls_));
  return fd;
}

void FramedConnection::Close(const Status& reason) {
  if (!open_) return;
  open_ = false;
  if (tls_) tls_->Shutdown();
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  queue_.clear();
  if (on_close_) {
    CloseHandler handler = std::move(on_close_);
    on_close_ = nullptr;
    handler(reason);
  }
}

}  // namespace raftkv::wire
