// storage_crash_child: the process the crash test kills. It opens a data
// dir, recovers (reconciles, applies the committed entries it finds), then
// writes the crash workload forever: appends (sometimes replacing an
// uncommitted suffix with a new term), saves the hard state, applies what
// is committed, snapshots and compacts. Before each durable write it
// prints an intent line, after it an acknowledgement, on stdout:
//   a/A <first> <last> <term> <commit>   entries [first, last] saved
//   s/S <index>                          snapshot created at index
//   c/C <index>                          log compacted up to index
// An acknowledgement is printed only once the write returned OK (fsync'd).
//
// Usage: storage_crash_child <data dir> <seed> [<sync log>]
// With a sync log, every completed fsync is recorded there (see
// sync_tracking_fs.h) for the parent's power-loss simulation.
// Must never print an acknowledgement for a write that has not returned OK;
// exits with status 2 on any storage error.
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot_install.h"
#include "tests/storage/crash_workload.h"
#include "tests/storage/sync_tracking_fs.h"

namespace raftkv::storage::crash {
namespace {

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "crash_child: %s: %s\n", what.c_str(),
               s.ToString().c_str());
  std::exit(2);
}

void Say(const char* tag, uint64_t a) {
  char line[64];
  const int n = std::snprintf(line, sizeof(line), "%s %llu\n", tag,
                              static_cast<unsigned long long>(a));
  if (::write(1, line, n) != n) std::exit(3);
}

void SayAppend(const char* tag, uint64_t first, uint64_t last, uint64_t term,
               uint64_t commit) {
  char line[128];
  const int n = std::snprintf(line, sizeof(line), "%s %llu %llu %llu %llu\n",
                              tag, static_cast<unsigned long long>(first),
                              static_cast<unsigned long long>(last),
                              static_cast<unsigned long long>(term),
                              static_cast<unsigned long long>(commit));
  if (::write(1, line, n) != n) std::exit(3);
}

void ApplyUpTo(RaftLog* log, KvStateMachine* sm, uint64_t commit) {
  while (sm->applied_index() < commit) {
    std::vector<raft::Entry> entries;
    Status s =
        log->Entries(sm->applied_index() + 1, commit + 1, 1 << 20, &entries);
    if (!s.ok()) Die("read committed entries", s);
    std::vector<kv::CommandResult> results;
    s = sm->ApplyBatch(entries, &results);
    if (!s.ok()) Die("apply", s);
  }
}

int Run(const std::string& dir, uint64_t seed, const std::string& sync_log) {
  std::unique_ptr<SyncTrackingFs> fs;
  EngineOptions options = CrashEngineOptions();
  if (!sync_log.empty()) {
    fs = std::make_unique<SyncTrackingFs>(sync_log);
    if (!fs->ok()) Die("open " + sync_log, Status::IOError("open failed"));
    options.env = fs->env();
  }
  auto engine = Engine::Open(dir, options);
  if (!engine.ok()) Die("open engine", engine.status());
  auto log_or = RaftLog::Open(engine->get());
  if (!log_or.ok()) Die("open raft log", log_or.status());
  auto sm_or = KvStateMachine::Open(engine->get());
  if (!sm_or.ok()) Die("open state machine", sm_or.status());
  RaftLog* log = log_or->get();
  KvStateMachine* sm = sm_or->get();
  Status s = RecoverSnapshotState(dir, log, sm);
  if (!s.ok()) Die("recover", s);

  raft::HardState hs = log->hard_state();
  if (hs.term() == 0) hs.set_term(1);
  ApplyUpTo(log, sm, hs.commit());

  std::mt19937_64 rng(seed);
  for (int op = 0; op < 1000000; ++op) {
    const uint64_t roll = rng() % 100;
    const uint64_t last = log->LastIndex();
    const uint64_t commit = hs.commit();
    uint64_t first = last + 1;
    if (roll < 8 && last > commit) {  // a new leader replaces the tail
      hs.set_term(hs.term() + 1);
      first = commit + 1 + rng() % (last - commit);
    }
    const uint64_t new_last = first + rng() % 16;
    std::vector<raft::Entry> entries;
    for (uint64_t i = first; i <= new_last; ++i) {
      entries.push_back(EntryFor(i, hs.term()));
    }
    hs.set_commit(commit + rng() % (new_last - commit + 1));
    SayAppend("a", first, new_last, hs.term(), hs.commit());
    s = log->Save(&hs, entries, /*sync=*/true);
    if (!s.ok()) Die("save", s);
    SayAppend("A", first, new_last, hs.term(), hs.commit());
    ApplyUpTo(log, sm, hs.commit());

    const uint64_t applied = sm->applied_index();
    if (roll >= 90 && roll < 95 && applied > log->snapshot_index()) {
      Say("s", applied);
      // The server records only the metadata; the image is streamed from
      // the state machine when a follower needs it.
      s = log->CreateSnapshot(applied, raft::ConfState(), "");
      if (!s.ok()) Die("snapshot", s);
      Say("S", applied);
    } else if (roll >= 95 && applied >= log->FirstIndex()) {
      const uint64_t back = rng() % 32;
      const uint64_t to =
          applied >= log->FirstIndex() + back ? applied - back : applied;
      Say("c", to);
      s = log->Compact(to);
      if (!s.ok()) {
        Die("compact to " + std::to_string(to) + " (applied " +
                std::to_string(applied) + ", log [" +
                std::to_string(log->FirstIndex()) + ", " +
                std::to_string(log->LastIndex()) + "], commit " +
                std::to_string(hs.commit()) + ")",
            s);
      }
      Say("C", to);
    }
  }
  return 0;
}

}  // namespace
}  // namespace raftkv::storage::crash

int main(int argc, char** argv) {
  // Die with the parent test, whatever happens to it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s <data dir> <seed> [<sync log>]\n", argv[0]);
    return 1;
  }
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;
  google::InitGoogleLogging(argv[0]);
  return raftkv::storage::crash::Run(
      argv[1], std::strtoull(argv[2], nullptr, 10), argc == 4 ? argv[3] : "");
}
