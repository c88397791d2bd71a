// Shared pieces of the fuzz targets (fuzz/*_fuzzer.cc): quiet logging, the
// framing layer as a connection applies it, and one scratch storage Engine
// per process that every input starts from empty.
//
// Must never: let one input's state leak into the next (each input must
// replay alone: the Engine is emptied before use), or write outside the
// temporary directory it created.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/engine.h"

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
  void Reset();

 private:
  ScratchEngine();
  std::string dir_;
  std::unique_ptr<storage::Engine> engine_;
  uint64_t resets_ = 0;
};

}  // namespace raftkv::fuzz
