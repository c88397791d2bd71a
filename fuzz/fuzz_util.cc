// Shared pieces of the fuzz targets (see fuzz_util.h).
#include "fuzz/fuzz_util.h"

#include <glog/logging.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "client/frame.h"
#include "storage/checksum.h"
#include "storage/engine_rep.h"

namespace raftkv::fuzz {

void InitLogging() {
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 2;  // ERROR: CHECK failures still print
}

std::vector<std::string> SplitFrames(const uint8_t* data, size_t size,
                                     size_t max_frame_bytes) {
  const char* bytes = reinterpret_cast<const char*>(data);
  std::vector<std::string> frames;
  wire::FrameReader whole(max_frame_bytes);
  whole.Append(bytes, size);
  std::string payload;
  wire::FrameReader::Result r;
  while ((r = whole.Next(&payload)) == wire::FrameReader::Result::kFrame) {
    CHECK_LE(payload.size(), max_frame_bytes);
    frames.push_back(payload);
  }
  if (r == wire::FrameReader::Result::kTooLarge) {
    CHECK_GT(whole.rejected_length(), max_frame_bytes);
    CHECK(whole.Next(&payload) == wire::FrameReader::Result::kTooLarge)
        << "kTooLarge must be sticky";
  }

  // The same stream in pieces of 1 to 16 bytes (sizes from the data itself),
  // calling Next() until it needs more, as FramedConnection::OnRead does.
  wire::FrameReader pieces(max_frame_bytes);
  size_t n = 0;
  bool too_large = false;
  for (size_t pos = 0; pos < size && !too_large;) {
    const size_t len = std::min<size_t>(size - pos, 1 + (data[pos] & 15));
    pieces.Append(bytes + pos, len);
    pos += len;
    while ((r = pieces.Next(&payload)) == wire::FrameReader::Result::kFrame) {
      CHECK_LT(n, frames.size()) << "piecewise reading found an extra frame";
      CHECK(payload == frames[n]) << "frame " << n << " differs";
      ++n;
    }
    too_large = r == wire::FrameReader::Result::kTooLarge;
  }
  CHECK_EQ(n, frames.size()) << "piecewise reading lost frames";
  return frames;
}

namespace {
ScratchEngine* scratch = nullptr;
}  // namespace

ScratchEngine& ScratchEngine::Get() {
  if (scratch == nullptr) {
    scratch = new ScratchEngine();
    std::atexit([] { delete scratch; });  // closes RocksDB, removes the dir
  }
  return *scratch;
}

ScratchEngine::ScratchEngine() {
  // tmpfs when there is one: the storage code fsyncs, and a disk's fsync
  // would dominate the run time. The name carries the pid so that
  // scripts/fuzz can remove what a crashed run left behind.
  const char* env = getenv("RAFTKV_FUZZ_TMPDIR");
  std::string base = env && *env ? env : "";
  if (base.empty()) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string tmpl =
      base + "/raftkv-fuzz-" + std::to_string(getpid()) + "-XXXXXX";
  CHECK(mkdtemp(tmpl.data()) != nullptr) << "mkdtemp " << tmpl;
  dir_ = tmpl;
  storage::EngineOptions options;
  options.memory_budget_bytes = 32 << 20;
  options.write_buffer_bytes = 4 << 20;
  options.max_background_jobs = 1;
  auto engine = storage::Engine::Open(dir_ + "/data", options);
  CHECK(engine.ok()) << engine.status().ToString();
  engine_ = std::move(engine).value();
}

ScratchEngine::~ScratchEngine() {
  engine_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void ScratchEngine::Reset() {
  storage::Engine::Rep* rep = engine_->rep();
  const Status failed = engine_->write_error();
  CHECK(failed.ok()) << failed.ToString();
  rocksdb::WriteBatch batch = storage::NewWriteBatch();
  for (rocksdb::ColumnFamilyHandle* cf :
       {rep->raft_log, rep->raft_meta, rep->kv, rep->kv_sessions,
        rep->kv_meta}) {
    std::unique_ptr<rocksdb::Iterator> it(
        rep->db->NewIterator(rocksdb::ReadOptions(), cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      CHECK(batch.Delete(cf, it->key()).ok());
    }
    CHECK(it->status().ok()) << it->status().ToString();
  }
  if (batch.Count() > 0) {
    CHECK(rep->Write(&batch, /*sync=*/false, "fuzz reset").ok());
  }
  if (++resets_ % 512 == 0) {
    // Tombstones would otherwise pile up and slow every scan down.
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction =
        rocksdb::BottommostLevelCompaction::kForce;
    for (rocksdb::ColumnFamilyHandle* cf : rep->handles) {
      CHECK(rep->db->CompactRange(compact, cf, nullptr, nullptr).ok());
    }
  }
}

std::string SealChunk(std::string_view payload) {
  const uint32_t crc = storage::Crc32c(payload);
  std::string out;
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(crc >> (8 * i)));
  out.append(payload);
  return out;
}

std::vector<std::string> ChunkPayloads(
    const storage::SnapshotHeader& header,
    const std::vector<storage::SnapshotRecord>& records, size_t per_chunk) {
  std::vector<std::string> out;
  storage::SnapshotChunk chunk;
  chunk.set_sequence(0);
  *chunk.mutable_header() = header;
  out.push_back(chunk.SerializeAsString());
  uint32_t crc = 0;
  chunk.Clear();
  for (size_t i = 0; i < records.size(); ++i) {
    const storage::SnapshotRecord& r = records[i];
    const char family = static_cast<char>(r.family());
    crc = storage::Crc32c(std::string_view(&family, 1), crc);
    crc = storage::Crc32c(r.key(), crc);
    crc = storage::Crc32c(r.value(), crc);
    *chunk.add_records() = r;
    if (static_cast<size_t>(chunk.records_size()) >= per_chunk ||
        i + 1 == records.size()) {
      chunk.set_sequence(out.size());
      out.push_back(chunk.SerializeAsString());
      chunk.Clear();
    }
  }
  chunk.set_sequence(out.size());
  chunk.mutable_trailer()->set_records(records.size());
  chunk.mutable_trailer()->set_records_crc(crc);
  out.push_back(chunk.SerializeAsString());
  return out;
}

}  // namespace raftkv::fuzz
