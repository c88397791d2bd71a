// Fuzz target: a streamed snapshot received from the leader.
//
// Feeds: the chunk frames of one snapshot transfer, as SnapshotTransfers::
// RunReceive handles them on a follower: SplitFrames() (the framing), then
// each chunk into a storage::SnapshotStager (DecodeSnapshotChunk: CRC32C
// and parse; numbering, header, format version, family and key order, the
// trailer's count and CRC; SST files) until the trailer, the check of the
// image's index and term against the announced snapshot, Finish(); then
// storage::InstallStagedSnapshot into a replica (a real Engine on tmpfs,
// emptied before every input, with a RaftLog and a KvStateMachine that
// already hold data: entries 1-5 committed and applied, a session, keys, a
// log snapshot at 5, entries 4 and 5 still in the log). A snapshot that
// installs is then used as a node would: read in full, streamed again by a
// SnapshotSource (whose records must be exactly those received) and staged
// again, commands applied on top (a client registration, session writes, a
// log-time jump that expires sessions), a log snapshot taken; then the replica
// is reopened as after a restart and storage::RecoverSnapshotState runs.
//
// Input: 1 byte of flags, then frames (4-byte length, payload), one chunk
// each.
//   bit 0: the frames are chunk payloads (serialized SnapshotChunk): the
//          harness seals each (prepends its CRC32C), so the fuzzer gets
//          past the checksum; otherwise a frame is the chunk as received.
//   bit 1: the snapshot is announced at the image's term + 1 (the
//          receiver's check must refuse the stream).
//   bit 3: with bit 0, the harness also numbers the chunks (0, 1, ...) and
//          makes a trailer's record count and CRC match the records before
//          it (a payload that does not parse is sealed as it is), so the
//          fuzzer gets past the trailer check and explores installs.
//   bit 2: a refused stream's staging directory is left behind, as after
//          a crash (RecoverSnapshotState must remove it).
//   bits 4-7: the re-stream's chunk size, 2^n bytes of records.
// The snapshot is announced at the index and term of the first chunk's
// header when it parses (else 0/0), as the leader's MSG_SNAP would be.
//
// Must never: crash, trip a sanitizer or a CHECK; allocate beyond a small
// multiple of the chunk sizes (fuzz/snapshot_chunk_fuzzer.options sets
// -malloc_limit_mb); refuse a stream with anything but Corruption or
// InvalidArgument; mark a staging directory complete, or install anything
// (or change the replica at all), from an incomplete, damaged or mismatched
// stream; install a complete stream only partly, mixed with the old state,
// or at an index other than the snapshot's; accept a stream that then
// cannot be installed, read, re-streamed, applied to, or reopened.
#include <glog/logging.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "client/kv.pb.h"
#include "fuzz/fuzz_util.h"
#include "storage/checksum.h"
#include "storage/coding.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot.h"
#include "storage/snapshot_install.h"
#include "storage/snapshot_stager.h"
#include "storage/storage.pb.h"

namespace raftkv::fuzz {
namespace {

namespace fs = std::filesystem;

// A frame is one chunk; the transfer's own limit is far above any input.
constexpr size_t kMaxFrameBytes = 1 << 20;
// The replica's state before the snapshot arrives.
// Its log snapshot is at its commit index, so a snapshot that reaches the
// install is either not newer (ignored) or beyond the commit index, as the
// Raft core sees to (it restores only snapshots beyond its commit index).
constexpr uint64_t kReplicaApplied = 5;
constexpr uint64_t kReplicaCompacted = 3;

void ExpectRefusal(const Status& s) {
  CHECK(s.code() == Status::Code::kCorruption ||
        s.code() == Status::Code::kInvalidArgument)
      << s.ToString();
}

raft::Entry MakeEntry(uint64_t index, uint64_t term,
                      const kv::Command& command) {
  raft::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(command.SerializeAsString());
  return e;
}

kv::Command Put(const std::string& key, const std::string& value,
                uint64_t client, uint64_t sequence, uint64_t at_ms) {
  kv::Command c;
  c.set_client_id(client);
  c.set_sequence(sequence);
  c.set_first_outstanding(sequence);
  c.set_proposed_at_ms(at_ms);
  c.mutable_put()->set_key(key);
  c.mutable_put()->set_value(value);
  c.mutable_put()->set_prev_kv(true);
  return c;
}

raft::ConfState Voters() {
  raft::ConfState cs;
  for (uint64_t id : {1, 2, 3}) cs.add_voters(id);
  return cs;
}

struct Replica {
  std::unique_ptr<storage::RaftLog> log;
  std::unique_ptr<storage::KvStateMachine> sm;

  void Open() {
    sm.reset();
    log.reset();
    storage::Engine* engine = ScratchEngine::Get().engine();
    auto l = storage::RaftLog::Open(engine);
    CHECK(l.ok()) << l.status().ToString();
    log = std::move(l).value();
    auto m = storage::KvStateMachine::Open(engine);
    CHECK(m.ok()) << m.status().ToString();
    sm = std::move(m).value();
  }
};

// Everything of the replica that an install changes, for comparisons.
struct Summary {
  uint64_t applied_index, applied_term, first, last, snapshot_index,
      snapshot_term, commit;
  int64_t revision;
  size_t sessions;
  std::string kvs;  // the serialized RangeResponse over every key

  bool operator==(const Summary& o) const {
    return applied_index == o.applied_index && applied_term == o.applied_term &&
           first == o.first && last == o.last &&
           snapshot_index == o.snapshot_index &&
           snapshot_term == o.snapshot_term && commit == o.commit &&
           revision == o.revision && sessions == o.sessions && kvs == o.kvs;
  }
};

kv::RangeResponse ReadAll(const storage::KvStateMachine& sm) {
  kv::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  auto got = sm.Range(all);
  CHECK(got.ok()) << got.status().ToString();
  return std::move(got).value();
}

Summary Summarize(const Replica& r) {
  return Summary{
      r.sm->applied_index(),        r.sm->applied_term(),
      r.log->FirstIndex(),          r.log->LastIndex(),
      r.log->snapshot_index(),      r.log->snapshot_term(),
      r.log->hard_state().commit(), r.sm->revision(),
      r.sm->session_count(),        ReadAll(*r.sm).SerializeAsString()};
}

// The replica's data before the snapshot: a registered client (1), keys
// written with and without the session, entries 1-5 committed and applied,
// a log snapshot at 5 and the log compacted up to 3.
void Populate(Replica* r) {
  kv::Command reg;
  reg.mutable_register_client();
  reg.set_proposed_at_ms(1000);
  kv::Command del;
  del.mutable_delete_range()->set_key("b");
  std::vector<raft::Entry> entries = {
      MakeEntry(1, 1, reg), MakeEntry(2, 1, Put("a", "1", 1, 1, 1001)),
      MakeEntry(3, 1, Put("b", "2", 0, 0, 1002)), MakeEntry(4, 1, del),
      MakeEntry(5, 1, Put("old", "3", 1, 2, 1003))};
  CHECK(r->log->Append(entries).ok());
  raft::HardState hs;
  hs.set_term(1);
  hs.set_vote(1);
  hs.set_commit(kReplicaApplied);
  CHECK(r->log->SetHardState(hs).ok());
  CHECK(r->log->SetConfState(Voters()).ok());
  std::vector<kv::CommandResult> results;
  CHECK(r->sm->ApplyBatch(entries, &results).ok());
  CHECK(r->log->CreateSnapshot(kReplicaApplied, Voters(), "").ok());
  CHECK(r->log->Compact(kReplicaCompacted).ok());
}

// What an encoded stream carries: its header and its records (family, key,
// value), in order. Unknown fields, which a receiver ignores, are dropped.
struct Image {
  storage::SnapshotHeader header;
  std::vector<std::tuple<int, std::string, std::string>> records;

  void Add(std::string_view encoded) {
    storage::SnapshotChunk chunk;
    CHECK(storage::DecodeSnapshotChunk(encoded, "image", &chunk).ok());
    if (chunk.has_header()) {
      header = chunk.header();
      header.DiscardUnknownFields();
    }
    for (const storage::SnapshotRecord& r : chunk.records()) {
      records.emplace_back(r.family(), r.key(), r.value());
    }
  }
  bool operator==(const Image& o) const {
    return header.SerializeAsString() == o.header.SerializeAsString() &&
           records == o.records;
  }
};

// Streams the replica's state machine with `chunk_bytes` and stages it
// again, as a leader and a follower would; the image must be `expected`.
void Restream(const Replica& r, size_t chunk_bytes, const Image& expected) {
  auto source = storage::SnapshotSource::Create(*r.sm);
  CHECK(source.ok()) << source.status().ToString();
  CHECK_EQ((*source)->index(), r.sm->applied_index());
  const std::string dir = storage::StagingDir(
      ScratchEngine::Get().data_dir(), (*source)->term(), (*source)->index());
  auto stager = storage::SnapshotStager::Create(dir, "restream");
  CHECK(stager.ok()) << stager.status().ToString();
  Image image;
  Status s = (*source)->Stream(chunk_bytes, [&](std::string_view chunk) {
    image.Add(chunk);
    return (*stager)->Add(chunk);
  });
  CHECK(s.ok()) << s.ToString();
  CHECK((*stager)->complete());
  s = (*stager)->Finish();
  CHECK(s.ok()) << s.ToString();
  CHECK(image == expected) << "the installed state streams differently";
  // Left staged: the restart below must remove it.
}

// Commands on top of the installed state: a registration, a write in the
// new session, a write without one, then a jump in log time (the sessions
// expire) with a delete of everything; then a log snapshot.
void ApplyOnTop(Replica* r) {
  const uint64_t base = r->sm->applied_index();
  if (base + 8 >= storage::kIndexLimit) return;  // no log goes that far
  const uint64_t term = std::max<uint64_t>(r->log->snapshot_term(), 1);
  const uint64_t now = r->sm->log_time_ms();
  kv::Command reg;
  reg.mutable_register_client();
  reg.set_proposed_at_ms(now);
  kv::Command wipe;
  wipe.set_proposed_at_ms(now + (1ull << 40));
  wipe.mutable_delete_range()->set_key(std::string(1, '\0'));
  wipe.mutable_delete_range()->set_range_end(std::string(1, '\0'));
  std::vector<raft::Entry> entries = {
      MakeEntry(base + 1, term, reg),
      MakeEntry(base + 2, term, Put("k", "v", base + 1, 1, now + 1)),
      MakeEntry(base + 3, term, Put("k", "w", 0, 0, now + 2)),
      MakeEntry(base + 4, term, wipe)};
  CHECK(r->log->Append(entries).ok());
  raft::HardState hs = r->log->hard_state();
  hs.set_term(std::max(hs.term(), term));
  hs.set_commit(base + entries.size());
  CHECK(r->log->SetHardState(hs).ok());
  std::vector<kv::CommandResult> results;
  Status s = r->sm->ApplyBatch(entries, &results);
  CHECK(s.ok()) << s.ToString();
  CHECK_EQ(r->sm->applied_index(), base + entries.size());
  CHECK_EQ(ReadAll(*r->sm).kvs_size(), 0);
  s = r->log->CreateSnapshot(r->sm->applied_index(), Voters(), "");
  CHECK(s.ok()) << s.ToString();
}

// A restart: the data dir opens, RecoverSnapshotState finds it consistent
// and removes whatever staging was left; the state is what it was.
void Restart(Replica* r) {
  const Summary before = Summarize(*r);
  r->Open();
  const std::string& data_dir = ScratchEngine::Get().data_dir();
  Status s = storage::RecoverSnapshotState(data_dir, r->log.get(), r->sm.get());
  CHECK(s.ok()) << s.ToString();
  std::error_code ec;
  CHECK(!fs::exists(storage::StagingRoot(data_dir), ec));
  CHECK(Summarize(*r) == before) << "a restart changed the state";
}

// Makes the frames into the chunks the stager is given (flag bits 0, 3).
class Sealer {
 public:
  Sealer(bool seal, bool fix) : seal_(seal), fix_(seal && fix) {}

  std::string Chunk(size_t i, const std::string& frame) {
    if (!seal_) return frame;
    storage::SnapshotChunk chunk;
    if (!fix_ || !chunk.ParseFromString(frame)) return SealChunk(frame);
    chunk.set_sequence(i);
    for (const storage::SnapshotRecord& r : chunk.records()) {
      const char family = static_cast<char>(r.family());
      crc_ = storage::Crc32c(std::string_view(&family, 1), crc_);
      crc_ = storage::Crc32c(r.key(), crc_);
      crc_ = storage::Crc32c(r.value(), crc_);
      ++records_;
    }
    if (chunk.has_trailer()) {
      chunk.mutable_trailer()->set_records(records_);
      chunk.mutable_trailer()->set_records_crc(crc_);
    }
    return SealChunk(chunk.SerializeAsString());
  }

 private:
  const bool seal_;
  const bool fix_;
  uint64_t records_ = 0;
  uint32_t crc_ = 0;
};

void Run(uint8_t flags, const std::vector<std::string>& frames) {
  const bool seal = flags & 1;
  const uint64_t term_skew = (flags >> 1) & 1;
  const bool leave_staging = flags & 4;
  Sealer sealer(seal, flags & 8);
  const size_t restream_bytes = size_t{1} << (flags >> 4);

  ScratchEngine& scratch = ScratchEngine::Get();
  scratch.Reset();
  Replica r;
  r.Open();
  Populate(&r);
  const Summary before = Summarize(r);

  // The MSG_SNAP that announces the transfer: the leader's own index and
  // term, which are those of the image's header.
  raft::SnapshotMetadata meta;
  *meta.mutable_conf_state() = Voters();
  if (!frames.empty()) {
    storage::SnapshotChunk first;
    const std::string& f = frames[0];
    const std::string_view payload =
        seal ? std::string_view(f)
             : std::string_view(f).substr(std::min<size_t>(4, f.size()));
    if (first.ParseFromArray(payload.data(),
                             static_cast<int>(payload.size()))) {
      meta.set_index(first.header().index());
      meta.set_term(first.header().term() + term_skew);
    }
  }

  // The receiver: chunks until the trailer, the announced index and term
  // checked, then Finish().
  const std::string dir =
      storage::StagingDir(scratch.data_dir(), meta.term(), meta.index());
  auto created = storage::SnapshotStager::Create(dir, "fuzz");
  CHECK(created.ok()) << created.status().ToString();
  std::unique_ptr<storage::SnapshotStager> stager = std::move(created).value();
  Image received;
  Status s;
  size_t next = 0;
  uint64_t bytes = 0;
  while (s.ok() && !stager->complete() && next < frames.size()) {
    const std::string chunk = sealer.Chunk(next, frames[next]);
    ++next;
    s = stager->Add(chunk);
    if (s.ok()) {
      bytes += chunk.size();
      CHECK_EQ(stager->bytes(), bytes);
      received.Add(chunk);
    } else {
      ExpectRefusal(s);
    }
  }
  if (s.ok() && stager->complete()) {
    if (next < frames.size()) {  // a chunk after the trailer
      const std::string extra = sealer.Chunk(next, frames[next]);
      Status after = stager->Add(extra);
      CHECK(after.code() == Status::Code::kCorruption) << after.ToString();
    }
    CHECK(stager->has_header());
    CHECK_EQ(stager->records(), received.records.size());
    if (stager->index() != meta.index() || stager->term() != meta.term()) {
      s = Status::Corruption("the image is not the announced snapshot");
    } else {
      s = stager->Finish();
      CHECK(s.ok()) << s.ToString();
    }
  } else if (s.ok()) {  // the stream ended early
    s = stager->Finish();
    CHECK(s.code() == Status::Code::kCorruption) << s.ToString();
  }
  stager.reset();

  if (!s.ok()) {
    // Nothing may be installed from it, and the replica is untouched.
    storage::SnapshotHeader header;
    CHECK(!storage::ReadStagedHeader(dir, &header).ok());
    Status install =
        storage::InstallStagedSnapshot(dir, meta, r.log.get(), r.sm.get());
    CHECK(!install.ok()) << "an unfinished staging directory was installed";
    CHECK(Summarize(r) == before);
    if (!leave_staging) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
    Restart(&r);
    return;
  }

  s = storage::InstallStagedSnapshot(dir, meta, r.log.get(), r.sm.get());
  CHECK(s.ok()) << "a staged snapshot does not install: " << s.ToString();
  std::error_code ec;
  CHECK(!fs::exists(dir, ec)) << "the staging directory outlived the install";
  if (meta.index() <= before.snapshot_index) {
    CHECK(Summarize(r) == before) << "an older snapshot changed the replica";
  } else {
    CHECK_EQ(r.log->snapshot_index(), meta.index());
    CHECK_EQ(r.log->snapshot_term(), meta.term());
    CHECK_EQ(r.log->FirstIndex(), meta.index() + 1);
    CHECK_EQ(r.log->LastIndex(), meta.index());
    CHECK_GE(r.log->hard_state().commit(), meta.index());
    CHECK_EQ(r.sm->applied_index(), meta.index());
    CHECK_EQ(r.sm->applied_term(), received.header.applied().term());
    CHECK_EQ(r.sm->revision(), received.header.applied().revision());
    ReadAll(*r.sm);
    Restream(r, restream_bytes, received);
    Restart(&r);
    ApplyOnTop(&r);
  }
  Restart(&r);
}

}  // namespace
}  // namespace raftkv::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  raftkv::fuzz::InitLogging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftkv;
  if (size < 1) return 0;
  fuzz::Run(data[0],
            fuzz::SplitFrames(data + 1, size - 1, fuzz::kMaxFrameBytes));
  return 0;
}
