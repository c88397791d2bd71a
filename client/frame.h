// Length-prefixed framing shared by client and peer connections: each frame
// is a 4-byte big-endian payload length followed by the payload (one
// serialized protobuf). FrameReader reassembles frames from a byte stream
// and rejects frames over a size limit; it never allocates more than the
// limit for a single frame. Pure code: no sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace raftkv::wire {

constexpr size_t kFrameHeaderBytes = 4;

// Appends the header and payload to *out.
void AppendFrame(std::string_view payload, std::string* out);
// Writes the header of a frame of `payload_bytes` to out[0..4): for a
// payload serialised in place after it.
void PutFrameHeader(uint32_t payload_bytes, char* out);

class FrameReader {
 public:
  enum class Result { kFrame, kNeedMore, kTooLarge };

  explicit FrameReader(size_t max_frame_bytes)
      : max_frame_bytes_(max_frame_bytes) {}

  void Append(const char* data, size_t size) { buffer_.append(data, size); }
  // Extracts the next complete frame's payload into *payload. kTooLarge is
  // sticky: the stream cannot be resynchronised and must be closed.
  Result Next(std::string* payload);
  // Length announced by the frame that was too large (for error messages).
  uint64_t rejected_length() const { return rejected_length_; }
  // The bytes received but not yet returned as frames (the reader is left
  // empty): for handing a stream over to another reader.
  std::string TakeBuffered();

 private:
  size_t max_frame_bytes_;
  std::string buffer_;
  size_t consumed_ = 0;
  uint64_t rejected_length_ = 0;
};

}  // namespace raftkv::wire
