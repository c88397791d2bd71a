// Frame encoding and incremental decoding (see frame.h).
#include "client/frame.h"

namespace raftkv::wire {

void PutFrameHeader(uint32_t n, char* out) {
  out[0] = static_cast<char>(n >> 24);
  out[1] = static_cast<char>(n >> 16);
  out[2] = static_cast<char>(n >> 8);
  out[3] = static_cast<char>(n);
}

void AppendFrame(std::string_view payload, std::string* out) {
  char header[kFrameHeaderBytes];
  PutFrameHeader(static_cast<uint32_t>(payload.size()), header);
  out->append(header, kFrameHeaderBytes);
  out->append(payload.data(), payload.size());
}

FrameReader::Result FrameReader::Next(std::string* payload) {
  if (rejected_length_ != 0) return Result::kTooLarge;
  const size_t available = buffer_.size() - consumed_;
  if (available < kFrameHeaderBytes) {
    // Compact once everything buffered has been consumed.
    if (consumed_ > 0 && available == 0) {
      buffer_.clear();
      consumed_ = 0;
    }
    return Result::kNeedMore;
  }
  const auto* p =
      reinterpret_cast<const unsigned char*>(buffer_.data()) + consumed_;
  const uint64_t length = (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) |
                          (uint64_t{p[2]} << 8) | uint64_t{p[3]};
  if (length > max_frame_bytes_) {
    rejected_length_ = length;
    return Result::kTooLarge;
  }
  if (available < kFrameHeaderBytes + length) {
    if (consumed_ > buffer_.size() / 2) {
      buffer_.erase(0, consumed_);
      consumed_ = 0;
    }
    return Result::kNeedMore;
  }
  payload->assign(buffer_, consumed_ + kFrameHeaderBytes, length);
  consumed_ += kFrameHeaderBytes + length;
  if (consumed_ == buffer_.size()) {
    buffer_.clear();
    consumed_ = 0;
  }
  return Result::kFrame;
}

std::string FrameReader::TakeBuffered() {
  std::string rest = buffer_.substr(consumed_);
  buffer_.clear();
  consumed_ = 0;
  return rest;
}

}  // namespace raftkv::wire
