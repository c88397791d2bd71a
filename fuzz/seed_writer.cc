// Writes the seed corpora of the fuzz targets: small valid inputs made with
// the real encoders (frames, protobufs, a real Engine's records, snapshot
// chunk streams from SnapshotSource), so the fuzzers start from the formats
// the code reads; and the hand-made regression inputs of
// snapshot_chunk_fuzzer (fuzz/README.md says what each one did).
// Usage: fuzz_seed_writer DIR [REGRESSIONS_DIR]   (writes DIR/<target>/
// <name>; run from the source tree with DIR = fuzz/corpus and
// REGRESSIONS_DIR = fuzz/regressions, then commit the files).
#include <glog/logging.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "client/frame.h"
#include "client/kv.pb.h"
#include "fuzz/fuzz_util.h"
#include "raft/raft.pb.h"
#include "storage/coding.h"
#include "storage/engine_rep.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot.h"
#include "storage/storage.pb.h"

namespace raftkv::fuzz {
namespace {

namespace fs = std::filesystem;

std::string out_dir;
std::string regressions_dir;

void Write(const std::string& target, const std::string& name,
           const std::string& bytes, const std::string& base = out_dir) {
  const fs::path dir = fs::path(base) / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  CHECK(out.good()) << (dir / name);
}

std::string Frames(const std::vector<std::string>& payloads) {
  std::string out;
  for (const std::string& p : payloads) wire::AppendFrame(p, &out);
  return out;
}

// --- client_request_fuzzer -------------------------------------------------

std::string Request(uint64_t id, const kv::Command& command) {
  kv::ClientRequest r;
  r.set_request_id(id);
  *r.mutable_command() = command;
  return r.SerializeAsString();
}

std::string Range(uint64_t id, const std::string& key,
                  const std::string& range_end, int64_t limit) {
  kv::ClientRequest r;
  r.set_request_id(id);
  r.mutable_range()->set_key(key);
  r.mutable_range()->set_range_end(range_end);
  r.mutable_range()->set_limit(limit);
  return r.SerializeAsString();
}

kv::Command Put(const std::string& key, const std::string& value,
                uint64_t client = 0, uint64_t seq = 0) {
  kv::Command c;
  c.set_client_id(client);
  c.set_sequence(seq);
  c.set_first_outstanding(seq);
  c.set_proposed_at_ms(1000 + seq);
  c.mutable_put()->set_key(key);
  c.mutable_put()->set_value(value);
  c.mutable_put()->set_prev_kv(true);
  return c;
}

void ClientSeeds() {
  const std::string t = "client_request_fuzzer";
  Write(t, "put_get",
        Frames({Request(1, Put("a", "1")), Range(2, "a", "", 0)}));
  kv::Command del;
  del.mutable_delete_range()->set_key("a");
  del.mutable_delete_range()->set_range_end("b");
  del.mutable_delete_range()->set_prev_kv(true);
  Write(t, "put_delete_range",
        Frames({Request(1, Put("a1", "x")), Request(2, Put("a2", "y")),
                Range(3, "a", "b", 1), Request(4, del),
                Range(5, std::string(1, '\0'), std::string(1, '\0'), 0)}));
  kv::Command txn;
  kv::Compare* cmp = txn.mutable_txn()->add_compare();
  cmp->set_key("a");
  cmp->set_target(kv::Compare::VALUE);
  cmp->set_result(kv::Compare::EQUAL);
  cmp->set_value("1");
  *txn.mutable_txn()->add_success()->mutable_request_put() =
      Put("a", "2").put();
  txn.mutable_txn()->add_success()->mutable_request_range()->set_key("a");
  txn.mutable_txn()->add_failure()->mutable_request_delete_range()->set_key(
      "a");
  Write(t, "cas",
        Frames({Request(1, Put("a", "1")), Request(2, txn), Request(3, txn)}));
  kv::Command reg;
  reg.mutable_register_client();
  reg.set_proposed_at_ms(1000);
  Write(t, "session",
        Frames({Request(1, reg), Request(2, Put("s", "1", 1, 1)),
                Request(3, Put("s", "1", 1, 1)),  // retry
                Request(4, Put("s", "2", 1, 2)), Range(5, "s", "", 0)}));
  kv::ClientRequest status;
  status.mutable_status();
  Write(t, "invalid",
        Frames({Request(1, Put("", "empty key")), Range(2, "", "", -1),
                status.SerializeAsString()}));
}

// --- peer_message_fuzzer ---------------------------------------------------

std::string Msg(raft::MessageType type, uint64_t term, uint64_t index = 0,
                uint64_t log_term = 0, uint64_t commit = 0) {
  raft::Message m;
  m.set_type(type);
  m.set_from(2);
  m.set_to(1);
  m.set_term(term);
  m.set_index(index);
  m.set_log_term(log_term);
  m.set_commit(commit);
  return m.SerializeAsString();
}

void PeerSeeds() {
  const std::string t = "peer_message_fuzzer";
  // Node 2 leads term 1: heartbeat, then entries 1 and 2, then commit.
  raft::Message app;
  app.set_type(raft::MSG_APP);
  app.set_from(2);
  app.set_to(1);
  app.set_term(1);
  for (uint64_t i = 1; i <= 2; ++i) {
    raft::Entry* e = app.add_entries();
    e->set_index(i);
    e->set_term(1);
    e->set_data(i == 1 ? "" : "cmd");
  }
  app.set_commit(1);
  Write(t, "follower",
        Frames({Msg(raft::MSG_HEARTBEAT, 1), app.SerializeAsString(),
                Msg(raft::MSG_HEARTBEAT, 1, 0, 0, 2)}));
  Write(t, "vote_request",
        Frames({Msg(raft::MSG_PRE_VOTE, 2, 5, 1), Msg(raft::MSG_VOTE, 2, 5, 1),
                Msg(raft::MSG_TIMEOUT_NOW, 2)}));
  // Node 1 campaigns after its election timeout (one tick per frame; the
  // heartbeat responses only pass time), node 2 grants the pre-vote and
  // the vote for term 1, then acknowledges the no-op.
  std::vector<std::string> win;
  for (int i = 0; i < 20; ++i) win.push_back(Msg(raft::MSG_HEARTBEAT_RESP, 0));
  win.push_back(Msg(raft::MSG_PRE_VOTE_RESP, 1));
  win.push_back(Msg(raft::MSG_VOTE_RESP, 1));
  for (uint64_t i = 1; i <= 2; ++i) {
    win.push_back(Msg(raft::MSG_APP_RESP, 1, i));
    win.push_back(Msg(raft::MSG_HEARTBEAT_RESP, 1));
  }
  raft::Message read;
  read.set_type(raft::MSG_READ_INDEX);
  read.set_from(2);
  read.set_to(1);
  read.set_term(1);
  read.add_entries()->set_data("ctx");
  win.push_back(read.SerializeAsString());
  Write(t, "leader", Frames(win));
  raft::Message snap;
  snap.set_type(raft::MSG_SNAP);
  snap.set_from(2);
  snap.set_to(1);
  snap.set_term(3);
  snap.mutable_snapshot()->mutable_metadata()->set_index(10);
  snap.mutable_snapshot()->mutable_metadata()->set_term(3);
  for (uint64_t id : {1, 2, 3}) {
    snap.mutable_snapshot()
        ->mutable_metadata()
        ->mutable_conf_state()
        ->add_voters(id);
  }
  snap.mutable_snapshot()->set_data("image");
  Write(t, "snapshot",
        Frames({snap.SerializeAsString(), Msg(raft::MSG_APP, 3, 10, 3, 10)}));
}

// --- log_records_fuzzer and snapshot_chunk_fuzzer --------------------------

// The chunks SnapshotSource::Stream emits for the state machine on `engine`,
// at most `chunk_bytes` of records each.
std::vector<std::string> StreamChunks(storage::Engine* engine,
                                      size_t chunk_bytes) {
  auto sm = storage::KvStateMachine::Open(engine);
  CHECK(sm.ok());
  auto source = storage::SnapshotSource::Create(**sm);
  CHECK(source.ok());
  std::vector<std::string> chunks;
  CHECK((*source)
            ->Stream(chunk_bytes,
                     [&](std::string_view chunk) {
                       chunks.emplace_back(chunk);
                       return Status::OK();
                     })
            .ok());
  return chunks;
}

// snapshot_chunk_fuzzer's input: flags, then the chunks as frames, sealed
// (as received) or, with flag bit 0, their payloads (the harness seals).
std::string ChunkInput(uint8_t flags, const std::vector<std::string>& chunks) {
  std::vector<std::string> frames;
  for (const std::string& c : chunks) {
    frames.push_back(flags & 1 ? c.substr(4) : c);
  }
  return std::string(1, static_cast<char>(flags)) + Frames(frames);
}

// A node's data dir after some work: entries applied, sessions, a
// snapshot, a compaction, more entries. *chunks: its state machine streamed
// as a leader would, in chunks of `chunk_bytes`, right after the apply.
void BuildState(storage::Engine* engine, size_t chunk_bytes,
                std::vector<std::string>* chunks) {
  auto log = storage::RaftLog::Open(engine);
  CHECK(log.ok());
  auto sm = storage::KvStateMachine::Open(engine);
  CHECK(sm.ok());
  kv::Command reg;
  reg.mutable_register_client();
  reg.set_proposed_at_ms(1000);
  std::vector<kv::Command> commands = {reg, Put("a", "1"), Put("b", "2", 1, 1),
                                       Put("c", "3", 1, 2)};
  std::vector<raft::Entry> entries;
  for (size_t i = 0; i < commands.size(); ++i) {
    raft::Entry e;
    e.set_index(i + 1);
    e.set_term(1);
    e.set_data(commands[i].SerializeAsString());
    entries.push_back(e);
  }
  CHECK((*log)->Append(entries).ok());
  raft::HardState hs;
  hs.set_term(1);
  hs.set_vote(1);
  hs.set_commit(entries.size());
  CHECK((*log)->SetHardState(hs).ok());
  raft::ConfState cs;
  for (uint64_t id : {1, 2, 3}) cs.add_voters(id);
  CHECK((*log)->SetConfState(cs).ok());
  std::vector<kv::CommandResult> results;
  CHECK((*sm)->ApplyBatch(entries, &results).ok());
  CHECK((*log)->CreateSnapshot(entries.size(), cs, "").ok());
  CHECK((*log)->Compact(2).ok());
  *chunks = StreamChunks(engine, chunk_bytes);
  // Two more entries, committed but not applied (a restart applies them).
  std::vector<raft::Entry> more;
  for (uint64_t i = 5; i <= 6; ++i) {
    raft::Entry e;
    e.set_index(i);
    e.set_term(2);
    e.set_data(Put("d", std::to_string(i), 1, i - 2).SerializeAsString());
    more.push_back(e);
  }
  CHECK((*log)->Append(more).ok());
  hs.set_term(2);
  hs.set_commit(6);
  CHECK((*log)->SetHardState(hs).ok());
}

// The records of `engine` in log_records_fuzzer's input format.
std::string DumpRecords(storage::Engine* engine) {
  storage::Engine::Rep* rep = engine->rep();
  std::string out;
  auto record = [&](uint8_t tag, const rocksdb::Slice& key,
                    const rocksdb::Slice& value, bool keyed) {
    out.push_back(static_cast<char>(tag));
    if (keyed) {
      CHECK_LT(key.size(), 256u);
      out.push_back(static_cast<char>(key.size()));
      out.append(key.data(), key.size());
    }
    CHECK_LT(value.size(), 65536u);
    out.push_back(static_cast<char>(value.size() >> 8));
    out.push_back(static_cast<char>(value.size()));
    out.append(value.data(), value.size());
  };
  const std::vector<std::pair<rocksdb::ColumnFamilyHandle*, int>> cfs = {
      {rep->raft_log, 0},
      {rep->raft_meta, -1},
      {rep->kv, 5},
      {rep->kv_sessions, 6},
      {rep->kv_meta, 7}};
  for (const auto& [cf, tag] : cfs) {
    std::unique_ptr<rocksdb::Iterator> it(
        rep->db->NewIterator(rocksdb::ReadOptions(), cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (tag >= 0) {
        record(tag, it->key(), it->value(), tag != 7);
        continue;
      }
      const std::string k = it->key().ToString();
      const int meta_tag = k == "hard_state"      ? 1
                           : k == "log_start"     ? 2
                           : k == "snapshot_meta" ? 3
                                                  : 4;
      record(meta_tag, it->key(), it->value(), false);
    }
  }
  return out;
}

// A state machine at `index` (term 2) that applied `commands` first, then
// no-ops.
void BuildApplied(storage::Engine* engine, uint64_t index,
                  const std::vector<kv::Command>& commands) {
  auto sm = storage::KvStateMachine::Open(engine);
  CHECK(sm.ok());
  std::vector<raft::Entry> entries;
  for (uint64_t i = 1; i <= index; ++i) {
    raft::Entry e;
    e.set_index(i);
    e.set_term(2);
    if (i <= commands.size()) e.set_data(commands[i - 1].SerializeAsString());
    entries.push_back(e);
  }
  std::vector<kv::CommandResult> results;
  CHECK((*sm)->ApplyBatch(entries, &results).ok());
}

// A data dir as a crash right after a snapshot install's first write
// leaves it: the log reset to the snapshot at 2/10, the state machine
// cleared, raft_meta/install_pending naming the staging directory (tag
// bits 3 and 4: the harness stages the snapshot there).
std::string InterruptedInstall() {
  std::string out;
  auto record = [&](uint8_t tag, const std::string& value) {
    out.push_back(static_cast<char>(tag));
    out.push_back(static_cast<char>(value.size() >> 8));
    out.push_back(static_cast<char>(value.size()));
    out += value;
  };
  raft::HardState hs;
  hs.set_term(2);
  hs.set_vote(1);
  hs.set_commit(10);
  record(1, hs.SerializeAsString());
  raft::Entry start;
  start.set_index(10);
  start.set_term(2);
  record(2, start.SerializeAsString());
  raft::SnapshotMetadata meta;
  meta.set_index(10);
  meta.set_term(2);
  for (uint64_t id : {1, 2, 3}) meta.mutable_conf_state()->add_voters(id);
  record(3, meta.SerializeAsString());
  storage::PendingInstall pending;
  pending.set_staging_dir("staging");  // the harness picks the path
  pending.set_index(10);
  pending.set_term(2);
  record(4 | 8 | 16, pending.SerializeAsString());
  return out;
}

void StorageSeeds() {
  ScratchEngine& scratch = ScratchEngine::Get();
  scratch.Reset();
  std::vector<std::string> chunks;
  BuildState(scratch.engine(), 1 << 20, &chunks);
  Write("log_records_fuzzer", "node", DumpRecords(scratch.engine()));
  Write("log_records_fuzzer", "empty", "");
  Write("log_records_fuzzer", "interrupted_install", InterruptedInstall());

  // Streams ahead of the fuzzer's replica (at 5): sessions with remembered
  // results and keys, as received and as payloads in small chunks
  // (re-streamed in 2^3-byte chunks; the harness fixes the numbering and
  // the trailer); keys only; no records at all. One behind the replica's
  // log snapshot (4: ignored).
  const std::string t = "snapshot_chunk_fuzzer";
  kv::Command reg;
  reg.mutable_register_client();
  reg.set_proposed_at_ms(1000);
  const std::vector<kv::Command> sessions = {
      reg, Put("b", "2", 1, 1), Put("c", "3", 1, 2), Put("a", "1")};
  scratch.Reset();
  BuildApplied(scratch.engine(), 8, sessions);
  Write(t, "sessions_and_keys",
        ChunkInput(0, StreamChunks(scratch.engine(), 1 << 20)));
  Write(t, "sessions_and_keys_small_chunks",
        ChunkInput(0x39, StreamChunks(scratch.engine(), 64)));
  scratch.Reset();
  BuildApplied(scratch.engine(), 9,
               {Put("a", "x"), Put("k", "y"), Put("new", "z")});
  Write(t, "keys_at_9", ChunkInput(0x41, StreamChunks(scratch.engine(), 16)));
  scratch.Reset();
  BuildApplied(scratch.engine(), 7, {});
  Write(t, "empty_at_7",
        ChunkInput(0, StreamChunks(scratch.engine(), 1 << 20)));
  Write(t, "not_newer", ChunkInput(0, chunks));
}

// The two session bugs once found through snapshot images
// (SessionTable::Load), now as chunk streams: payloads at index 8, sealed
// by the harness (flag bit 0).
void ChunkRegressions() {
  if (regressions_dir.empty()) return;
  const std::string t = "snapshot_chunk_fuzzer";
  storage::SnapshotHeader header;
  header.set_format_version(storage::kFormatVersion);
  header.set_index(8);
  header.set_term(2);
  header.mutable_applied()->set_index(8);
  header.mutable_applied()->set_term(2);
  header.mutable_applied()->set_revision(1);
  header.mutable_applied()->set_log_time_ms(1000);
  auto session = [](uint64_t client) {
    storage::SnapshotRecord r;
    r.set_family(storage::FAMILY_SESSIONS);
    r.set_key(storage::SessionKey(client));
    storage::SessionHeader h;
    h.set_last_active_ms(1000);
    h.set_first_outstanding(1);
    r.set_value(h.SerializeAsString());
    return r;
  };
  auto payload_input = [](const std::vector<std::string>& payloads) {
    return std::string(1, '\1') + Frames(payloads);
  };
  // A session registered at index 9 in an image at index 8: the next
  // registration (at 9) would reuse its client id.
  Write(t, "session_registered_after_applied_index",
        payload_input(ChunkPayloads(header, {session(1), session(9)}, 8)),
        regressions_dir);
  // The same session header twice (in two chunks): the activity index
  // would keep a stale entry.
  Write(t, "duplicate_session_header",
        payload_input(ChunkPayloads(header, {session(1), session(1)}, 1)),
        regressions_dir);

  // Found while writing snapshot_chunk_fuzzer: streams the stager took
  // whole, whose install then failed after clearing the old state (or whose
  // state could not be used).
  storage::SnapshotRecord result;  // client 2's result, no header of 2
  result.set_family(storage::FAMILY_SESSIONS);
  result.set_key(storage::SessionResultKey(2, 1));
  Write(t, "result_without_session_header",
        payload_input(ChunkPayloads(header, {session(1), result}, 8)),
        regressions_dir);
  storage::SnapshotRecord bad_value;
  bad_value.set_family(storage::FAMILY_KV);
  bad_value.set_key("k");
  bad_value.set_value("\xff\xff");
  Write(t, "value_not_a_key_value",
        payload_input(ChunkPayloads(header, {bad_value}, 8)), regressions_dir);
  storage::SnapshotHeader at_max = header;
  at_max.set_index(UINT64_MAX);
  at_max.mutable_applied()->set_index(UINT64_MAX);
  Write(t, "applied_index_at_uint64_max",
        payload_input(ChunkPayloads(at_max, {}, 8)), regressions_dir);
  storage::SnapshotHeader revision_max = header;
  revision_max.mutable_applied()->set_revision(INT64_MAX);
  Write(t, "revision_at_int64_max",
        payload_input(ChunkPayloads(revision_max, {}, 8)), regressions_dir);
  storage::SnapshotHeader other_term = header;
  other_term.mutable_applied()->set_term(3);
  Write(t, "applied_term_differs",
        payload_input(ChunkPayloads(other_term, {}, 8)), regressions_dir);
}

}  // namespace
}  // namespace raftkv::fuzz

int main(int argc, char** argv) {
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (argc != 2 && argc != 3) {
    fprintf(stderr,
            "usage: %s DIR [REGRESSIONS_DIR] (e.g. fuzz/corpus "
            "fuzz/regressions)\n",
            argv[0]);
    return 2;
  }
  raftkv::fuzz::out_dir = argv[1];
  if (argc == 3) raftkv::fuzz::regressions_dir = argv[2];
  raftkv::fuzz::ClientSeeds();
  raftkv::fuzz::PeerSeeds();
  raftkv::fuzz::StorageSeeds();
  raftkv::fuzz::ChunkRegressions();
  return 0;
}
