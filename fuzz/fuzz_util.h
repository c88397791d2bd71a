// Shared pieces of the fuzz targets (fuzz/*_fuzzer.cc): quiet logging, the
// framing layer as a connection applies it, one scratch storage Engine per
// process that every input starts from empty, and snapshot chunk streams
// (storage/snapshot.h) built by hand, for the harnesses and the seeds.
//
// Must never: let one input's state leak into the next (each input must
// replay alone: the Engine is emptied before use), or write outside the
// temporary directory it created.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/engine.h"
#include "storage/storage.pb.h"

namespace raftkv::fuzz {

// For LLVMFuzzerInitialize: glog to stderr, errors only (the Raft core logs
// every role change at INFO, which would dominate the run time).
void InitLogging();

// Splits a byte stream into frames with wire::FrameReader, the way a
// FramedConnection does: stops at the first frame over `max_frame_bytes`
// (the connection is closed) and ignores a trailing partial frame. The
// stream is fed to two readers, whole and in small pieces whose sizes are
// derived from the data; both must produce the same frames (CHECKed), and
// no frame may exceed the limit.
std::vector<std::string> SplitFrames(const uint8_t* data, size_t size,
                                     size_t max_frame_bytes);

// A process-wide storage::Engine in a fresh temporary directory (removed at
// exit): $RAFTKV_FUZZ_TMPDIR, else /dev/shm if writable, else /tmp. Reset()
// deletes every record of the raft and kv column families, so the Engine looks
// like a freshly created data dir; every few hundred resets it also compacts
// the deletions away so that reads stay fast.
class ScratchEngine {
 public:
  ~ScratchEngine();
  static ScratchEngine& Get();
  storage::Engine* engine() const { return engine_.get(); }
  // The Engine's data dir (staging directories go below it).
  const std::string& data_dir() const { return engine_->dir(); }
  void Reset();

 private:
  ScratchEngine();
  std::string dir_;
  std::unique_ptr<storage::Engine> engine_;
  uint64_t resets_ = 0;
};

// A chunk as it travels: CRC32C (4 bytes, little-endian) of `payload`, then
// the payload (a serialized storage::SnapshotChunk).
std::string SealChunk(std::string_view payload);

// The serialized chunks (unsealed) of a stream carrying `header` and
// `records` as given (no checks: the records may be out of order), at most
// `per_chunk` records a chunk, with a trailer whose count and CRC match the
// records, as SnapshotSource::Stream numbers and sums them.
std::vector<std::string> ChunkPayloads(
    const storage::SnapshotHeader& header,
    const std::vector<storage::SnapshotRecord>& records, size_t per_chunk);

}  // namespace raftkv::fuzz
