// Asio implementation of a framed, bounded, full-duplex TCP connection.
#include "client/framed_connection.h"

#include <glog/logging.h>

#include <asio/buffer.hpp>
#include <asio/write.hpp>

namespace raftkv::wire {
namespace {

constexpr size_t kReadChunkBytes = 64 << 10;

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
  std::string payload;
  while (open_) {
    switch (reader_.Next(&payload)) {
      case FrameReader::Result::kFrame:
        on_frame_(std::move(payload));
        payload.clear();
        continue;
      case FrameReader::Result::kNeedMore:
        ReadMore();
        return;
      case FrameReader::Result::kTooLarge:
        Close(Status::TooLarge(
            "frame of " + std::to_string(reader_.rejected_length()) +
            " bytes from " + remote_ + " exceeds the limit of " +
            std::to_string(limits_.max_frame_bytes)));
        return;
    }
  }
}

bool FramedConnection::Send(std::string_view payload) {
  if (!open_) return false;
  const size_t size = payload.size() + kFrameHeaderBytes;
  if (queued_bytes_ + size > limits_.max_queued_bytes) return false;
  std::string frame;
  frame.reserve(size);
  AppendFrame(payload, &frame);
  queue_.push_back(std::move(frame));
  queued_bytes_ += size;
  if (writing_.empty()) WriteMore();
  return true;
}

void FramedConnection::WriteMore() {
  if (queue_.empty() || !open_) return;
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
  return ec ? -1 : fd;
}

void FramedConnection::Close(const Status& reason) {
  if (!open_) return;
  open_ = false;
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
