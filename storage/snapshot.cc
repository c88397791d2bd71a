// SnapshotSource: reading the state machine's image from one RocksDB
// snapshot, chunk by chunk; and the chunk envelope. Never holds more than
// one chunk of the image in memory and never writes to the database.
#include "storage/snapshot.h"

#include <rocksdb/snapshot.h>

#include "client/kv.pb.h"
#include "storage/checksum.h"
#include "storage/engine_rep.h"
#include "storage/kv_state_machine.h"
#include "storage/membership.h"
#include "storage/storage.pb.h"

namespace raftkv::storage {
namespace {

constexpr char kAppliedKey[] = "applied";  // kv_meta, as kv_state_machine.cc
constexpr char kMembershipKey[] = "membership";
constexpr char kAuthKey[] = "auth";

void PutFixed32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

uint32_t GetFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return v;
}

}  // namespace

std::string EncodeSnapshotChunk(const SnapshotChunk& chunk) {
  std::string payload;
  CHECK(chunk.SerializeToString(&payload));
  std::string out;
  out.reserve(payload.size() + 4);
  PutFixed32(Crc32c(payload), &out);
  out.append(payload);
  return out;
}

Status DecodeSnapshotChunk(std::string_view data, const std::string& what,
                           SnapshotChunk* chunk) {
  if (data.size() < 4) {
    return Status::Corruption(what + ": snapshot chunk of " +
                              std::to_string(data.size()) + " bytes");
  }
  const std::string_view payload = data.substr(4);
  if (Crc32c(payload) != GetFixed32(data.data())) {
    return Status::Corruption(what + ": snapshot chunk checksum mismatch (" +
                              std::to_string(payload.size()) + " bytes)");
  }
  if (!chunk->ParseFromArray(payload.data(),
                             static_cast<int>(payload.size()))) {
    return Status::Corruption(what + ": snapshot chunk does not parse");
  }
  return Status::OK();
}

struct SnapshotSource::Rep {
  Engine::Rep* engine = nullptr;
  const rocksdb::Snapshot* snapshot = nullptr;
  AppliedState applied;
  std::string membership;  // serialized kv::Membership ("": none)
  std::string auth;        // serialized kv::AuthState ("": none)
  ~Rep() {
    if (snapshot != nullptr) engine->db->ReleaseSnapshot(snapshot);
  }
};

StatusOr<std::shared_ptr<const SnapshotSource>> SnapshotSource::Create(
    const KvStateMachine& state_machine) {
  auto rep = std::make_unique<Rep>();
  rep->engine = state_machine.engine()->rep();
  rep->snapshot = rep->engine->db->GetSnapshot();
  rocksdb::ReadOptions ro;
  ro.snapshot = rep->snapshot;
  std::string value;
  rocksdb::Status s =
      rep->engine->db->Get(ro, rep->engine->kv_meta, kAppliedKey, &value);
  if (!s.ok() && !s.IsNotFound()) {
    return rep->engine->Error(s, "snapshot read");
  }
  if (s.ok() && !rep->applied.ParseFromString(value)) {
    return Status::Corruption(rep->engine->dir +
                              ": kv_meta/applied record does not parse");
  }
  s = rep->engine->db->Get(ro, rep->engine->kv_meta, kMembershipKey,
                           &rep->membership);
  if (!s.ok() && !s.IsNotFound()) {
    return rep->engine->Error(s, "snapshot read");
  }
  kv::Membership membership;
  const bool has_membership = s.ok();
  s = rep->engine->db->Get(ro, rep->engine->kv_meta, kAuthKey, &rep->auth);
  if (!s.ok() && !s.IsNotFound()) {
    return rep->engine->Error(s, "snapshot read");
  }
  if (s.IsNotFound()) rep->auth.clear();
  if (has_membership && !membership.ParseFromString(rep->membership)) {
    return Status::Corruption(rep->engine->dir +
                              ": kv_meta/membership record does not parse");
  }
  const uint64_t index = rep->applied.index();
  const uint64_t term = rep->applied.term();
  auto source = std::shared_ptr<SnapshotSource>(
      new SnapshotSource(std::move(rep), index, term));
  source->conf_state_ = ConfStateOf(membership);
  return std::shared_ptr<const SnapshotSource>(std::move(source));
}

SnapshotSource::SnapshotSource(std::unique_ptr<Rep> rep, uint64_t index,
                               uint64_t term)
    : rep_(std::move(rep)), index_(index), term_(term) {}

SnapshotSource::~SnapshotSource() = default;

Status SnapshotSource::Stream(
    size_t chunk_bytes,
    const std::function<Status(std::string_view)>& emit) const {
  Engine::Rep* engine = rep_->engine;
  uint64_t sequence = 0;
  SnapshotChunk chunk;
  chunk.set_sequence(sequence++);
  SnapshotHeader* header = chunk.mutable_header();
  header->set_format_version(kFormatVersion);
  header->set_index(index_);
  header->set_term(term_);
  *header->mutable_applied() = rep_->applied;
  header->set_membership(rep_->membership);
  header->set_auth(rep_->auth);
  RAFTKV_RETURN_IF_ERROR(emit(EncodeSnapshotChunk(chunk)));

  uint64_t records = 0;
  uint32_t records_crc = 0;
  size_t bytes = 0;
  chunk.Clear();
  auto flush = [&]() -> Status {
    if (chunk.records_size() == 0) return Status::OK();
    chunk.set_sequence(sequence++);
    Status s = emit(EncodeSnapshotChunk(chunk));
    chunk.Clear();
    bytes = 0;
    return s;
  };
  rocksdb::ReadOptions ro;
  ro.snapshot = rep_->snapshot;
  ro.fill_cache = false;  // a one-off pass must not evict the working set
  ro.readahead_size = 2 << 20;
  const std::pair<SnapshotFamily, rocksdb::ColumnFamilyHandle*> families[] = {
      {FAMILY_SESSIONS, engine->kv_sessions},
      {FAMILY_KV, engine->kv},
      {FAMILY_HISTORY, engine->kv_history},
      {FAMILY_LEASES, engine->kv_leases}};
  for (const auto& [family, cf] : families) {
    std::unique_ptr<rocksdb::Iterator> it(engine->db->NewIterator(ro, cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      SnapshotRecord* r = chunk.add_records();
      r->set_family(family);
      r->set_key(it->key().data(), it->key().size());
      r->set_value(it->value().data(), it->value().size());
      const char f = static_cast<char>(family);
      records_crc = Crc32c(std::string_view(&f, 1), records_crc);
      records_crc = Crc32c(it->key().ToStringView(), records_crc);
      records_crc = Crc32c(it->value().ToStringView(), records_crc);
      ++records;
      bytes += it->key().size() + it->value().size() + 8;
      if (bytes >= chunk_bytes) RAFTKV_RETURN_IF_ERROR(flush());
    }
    if (!it->status().ok()) return engine->Error(it->status(), "snapshot scan");
  }
  RAFTKV_RETURN_IF_ERROR(flush());
  chunk.set_sequence(sequence);
  chunk.mutable_trailer()->set_records(records);
  chunk.mutable_trailer()->set_records_crc(records_crc);
  return emit(EncodeSnapshotChunk(chunk));
}

}  // namespace raftkv::storage
