// SnapshotStager: checked chunks into SST files (see snapshot_stager.h).
// Never marks a staging directory complete before its files are durable.
#include "storage/snapshot_stager.h"

#include <rocksdb/convenience.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "client/kv.pb.h"
#include "storage/checksum.h"
#include "storage/coding.h"
#include "storage/engine.h"
#include "storage/engine_rep.h"
#include "storage/files.h"
#include "storage/kv_state_machine.h"
#include "storage/snapshot.h"
#include "storage/storage.pb.h"

namespace raftkv::storage {
namespace {

namespace fs = std::filesystem;

constexpr char kStagedFile[] = "STAGED";
constexpr char kAppliedKey[] = "applied";  // kv_meta, as kv_state_machine.cc
constexpr char kMembershipKey[] = "membership";
constexpr char kAuthKey[] = "auth";

const char* FileOf(int family) {
  switch (family) {
    case FAMILY_SESSIONS:
      return "sessions.sst";
    case FAMILY_KV:
      return "kv.sst";
    case FAMILY_HISTORY:
      return "history.sst";
    case FAMILY_LEASES:
      return "leases.sst";
  }
  return nullptr;
}

// The column family a staged file is ingested into.
const char* ColumnFamilyOf(int family) {
  switch (family) {
    case FAMILY_SESSIONS:
      return "kv_sessions";
    case FAMILY_KV:
      return "kv";
    case FAMILY_HISTORY:
      return "kv_history";
    case FAMILY_LEASES:
      return "kv_leases";
  }
  return "kv_meta";
}

}  // namespace

struct SnapshotStager::Writers {
  std::unique_ptr<rocksdb::SstFileWriter> open;  // the family being written
  int open_family = 0;
  std::vector<std::string> finished;  // paths of finished files
};

StatusOr<std::unique_ptr<SnapshotStager>> SnapshotStager::Create(
    const std::string& dir, const std::string& what) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) return Status::IOError(dir + ": remove: " + ec.message());
  // Durably: an install names the directory in its redo record.
  RAFTKV_RETURN_IF_ERROR(CreateDirectories(dir));
  return std::unique_ptr<SnapshotStager>(new SnapshotStager(dir, what));
}

std::unique_ptr<SnapshotStager> SnapshotStager::CreateChecker(
    const std::string& what) {
  return std::unique_ptr<SnapshotStager>(new SnapshotStager("", what));
}

SnapshotStager::SnapshotStager(std::string dir, std::string what)
    : dir_(std::move(dir)),
      what_(std::move(what)),
      writers_(std::make_unique<Writers>()) {}

SnapshotStager::~SnapshotStager() = default;

bool SnapshotStager::has_header() const { return header_ != nullptr; }
uint64_t SnapshotStager::index() const {
  return header_ ? header_->index() : 0;
}
uint64_t SnapshotStager::term() const { return header_ ? header_->term() : 0; }

Status SnapshotStager::Add(std::string_view encoded_chunk) {
  if (complete_) {
    return Status::Corruption(what_ + ": snapshot chunk after the trailer");
  }
  SnapshotChunk chunk;
  RAFTKV_RETURN_IF_ERROR(DecodeSnapshotChunk(encoded_chunk, what_, &chunk));
  if (chunk.sequence() != next_sequence_) {
    return Status::Corruption(
        what_ + ": snapshot chunk " + std::to_string(chunk.sequence()) +
        " where chunk " + std::to_string(next_sequence_) + " was expected");
  }
  ++next_sequence_;
  bytes_ += encoded_chunk.size();
  if (chunk.has_header() != (chunk.sequence() == 0)) {
    return Status::Corruption(what_ + ": snapshot header in chunk " +
                              std::to_string(chunk.sequence()));
  }
  if (chunk.has_header()) {
    if (chunk.header().format_version() != kFormatVersion) {
      return Status::InvalidArgument(
          what_ + ": snapshot of format version " +
          std::to_string(chunk.header().format_version()) +
          ", this build reads " + std::to_string(kFormatVersion));
    }
    if (chunk.header().applied().index() != chunk.header().index()) {
      return Status::Corruption(
          what_ + ": snapshot at index " +
          std::to_string(chunk.header().index()) +
          " holds state applied to index " +
          std::to_string(chunk.header().applied().index()));
    }
    if (chunk.header().applied().term() != chunk.header().term()) {
      return Status::Corruption(
          what_ + ": snapshot at term " +
          std::to_string(chunk.header().term()) +
          " holds state applied at term " +
          std::to_string(chunk.header().applied().term()));
    }
    RAFTKV_RETURN_IF_ERROR(
        CheckAppliedState(chunk.header().applied(), what_ + ": snapshot"));
    kv::Membership membership;
    if (!membership.ParseFromString(chunk.header().membership())) {
      return Status::Corruption(what_ +
                                ": snapshot membership record does not parse");
    }
    kv::AuthState auth;
    if (!auth.ParseFromString(chunk.header().auth())) {
      return Status::Corruption(what_ +
                                ": snapshot auth record does not parse");
    }
    header_ = std::make_unique<SnapshotHeader>(chunk.header());
  }
  RAFTKV_RETURN_IF_ERROR(AddRecords(chunk));
  if (chunk.has_trailer()) {
    if (chunk.trailer().records() != records_ ||
        chunk.trailer().records_crc() != records_crc_) {
      return Status::Corruption(what_ + ": snapshot trailer announces " +
                                std::to_string(chunk.trailer().records()) +
                                " records, " + std::to_string(records_) +
                                " arrived (or their checksum differs)");
    }
    complete_ = true;
  }
  return Status::OK();
}

Status SnapshotStager::AddRecords(const SnapshotChunk& chunk) {
  for (const SnapshotRecord& r : chunk.records()) {
    const int family = r.family();
    if (FileOf(family) == nullptr || family < last_family_) {
      return Status::Corruption(what_ + ": snapshot record of family " +
                                std::to_string(family) + " after family " +
                                std::to_string(last_family_));
    }
    if (family == last_family_ && r.key() <= last_key_) {
      return Status::Corruption(what_ + ": snapshot records out of key order");
    }
    RAFTKV_RETURN_IF_ERROR(CheckRecord(family, r.key(), r.value()));
    if (dir_.empty()) {
      // A checker writes nothing.
    } else if (family != writers_->open_family) {
      if (writers_->open) {
        rocksdb::Status s = writers_->open->Finish();
        if (!s.ok()) return Status::IOError(what_ + ": " + s.ToString());
        writers_->open.reset();
      }
      const std::string path = dir_ + "/" + FileOf(family);
      writers_->open = std::make_unique<rocksdb::SstFileWriter>(
          rocksdb::EnvOptions(), SstFileOptions(ColumnFamilyOf(family)));
      rocksdb::Status s = writers_->open->Open(path);
      if (!s.ok()) return Status::IOError(what_ + ": " + s.ToString());
      writers_->open_family = family;
      writers_->finished.push_back(path);
    }
    if (!dir_.empty()) {
      rocksdb::Status s = writers_->open->Put(r.key(), r.value());
      if (!s.ok()) return Status::IOError(what_ + ": " + s.ToString());
    }
    const char f = static_cast<char>(family);
    records_crc_ = Crc32c(std::string_view(&f, 1), records_crc_);
    records_crc_ = Crc32c(r.key(), records_crc_);
    records_crc_ = Crc32c(r.value(), records_crc_);
    ++records_;
    last_family_ = family;
    last_key_ = r.key();
  }
  return Status::OK();
}

// What KvStateMachine's LoadState (SessionTable::Load) and reads
// (DecodeKv) would refuse, one record at a time.
Status SnapshotStager::CheckRecord(int family, const std::string& key,
                                   const std::string& value) {
  if (family == FAMILY_HISTORY) {
    kv::Event event;
    if (key.size() != 12 || !event.ParseFromString(value)) {
      return Status::Corruption(what_ + ": snapshot history record of " +
                                std::to_string(key.size()) +
                                "-byte key does not parse");
    }
    return Status::OK();
  }
  if (family == FAMILY_LEASES) {
    if (key.size() < 9 || (key[0] != 'L' && key[0] != 'K')) {
      return Status::Corruption(what_ + ": snapshot lease record of " +
                                std::to_string(key.size()) +
                                "-byte key is not a lease or a lease key");
    }
    return Status::OK();
  }
  if (family == FAMILY_KV) {
    kv::KeyValue kv;
    if (!kv.ParseFromString(value)) {
      return Status::Corruption(what_ + ": snapshot value of a key of " +
                                std::to_string(key.size()) +
                                " bytes does not parse");
    }
    return Status::OK();
  }
  if (key.size() == 8) {
    const uint64_t client = GetBigEndian64(key.data());
    SessionHeader header;
    if (client > header_->applied().index() || !header.ParseFromString(value)) {
      return Status::Corruption(
          what_ + ": snapshot session of client " + std::to_string(client) +
          " (registered after the applied index " +
          std::to_string(header_->applied().index()) + ", or damaged)");
    }
    session_header_seen_ = true;
    session_client_ = client;
    return Status::OK();
  }
  if (key.size() != 16 || !session_header_seen_ ||
      GetBigEndian64(key.data()) != session_client_) {
    return Status::Corruption(what_ + ": snapshot session record of " +
                              std::to_string(key.size()) +
                              " bytes without its session header");
  }
  kv::CommandResult result;
  if (!result.ParseFromString(value)) {
    return Status::Corruption(what_ + ": snapshot result of client " +
                              std::to_string(session_client_) +
                              " does not parse");
  }
  return Status::OK();
}

Status SnapshotStager::Finish() {
  CHECK(!dir_.empty()) << "a checker stages nothing to finish";
  if (!complete_ || !header_) {
    return Status::Corruption(what_ + ": snapshot stream ended early (" +
                              std::to_string(next_sequence_) + " chunks)");
  }
  if (writers_->open) {
    rocksdb::Status s = writers_->open->Finish();
    if (!s.ok()) return Status::IOError(what_ + ": " + s.ToString());
    writers_->open.reset();
  }
  // The state machine's "applied" and "membership" records, in their own
  // file.
  const std::string meta = dir_ + "/meta.sst";
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(),
                                SstFileOptions("kv_meta"));
  rocksdb::Status s = writer.Open(meta);
  std::string applied;
  CHECK(header_->applied().SerializeToString(&applied));
  if (s.ok()) s = writer.Put(kAppliedKey, applied);
  // Keys in order: "applied" < "auth" < "membership".
  if (s.ok() && !header_->auth().empty()) {
    s = writer.Put(kAuthKey, header_->auth());
  }
  if (s.ok() && !header_->membership().empty()) {
    s = writer.Put(kMembershipKey, header_->membership());
  }
  if (s.ok()) s = writer.Finish();
  if (!s.ok()) return Status::IOError(what_ + ": " + s.ToString());
  writers_->finished.push_back(meta);
  for (const std::string& path : writers_->finished) {
    RAFTKV_RETURN_IF_ERROR(SyncPath(path));
  }
  RAFTKV_RETURN_IF_ERROR(SyncPath(dir_));
  std::string staged;
  CHECK(header_->SerializeToString(&staged));
  return WriteFileDurably(dir_ + "/" + kStagedFile, staged);
}

Status ReadStagedHeader(const std::string& dir, SnapshotHeader* header) {
  std::string data;
  RAFTKV_RETURN_IF_ERROR(ReadSmallFile(dir + "/" + kStagedFile, &data));
  if (!header->ParseFromString(data)) {
    return Status::Corruption(dir + "/" + kStagedFile + " does not parse");
  }
  return Status::OK();
}

}  // namespace raftkv::storage
