// storage_crash_child: the process the crash test kills. It opens a data
// dir, recovers (finishes an interrupted snapshot install, applies the
// committed entries it finds), then writes the crash workload forever:
// appends (sometimes replacing an uncommitted suffix with a new term),
// saves the hard state, applies what is committed, snapshots, compacts, and
// now and then installs a snapshot received from a leader, staged and
// installed by the storage/ code the server uses. Before each durable write
// it prints an intent line, after it an acknowledgement, on stdout:
//   a/A <first> <last> <term> <commit>   entries [first, last] saved
//   s/S <index>                          snapshot created at index
//   c/C <index>                          log compacted up to index
//   i/I <index> <term>                   leader's snapshot installed
// An acknowledgement is printed only once the write returned OK (fsync'd).
//
// Usage: storage_crash_child <data dir> <seed> <leader snapshot> <track dir>
//                            <install kill event>
// <leader snapshot> is the file (crash_workload.h) of the snapshot the child
// installs, as a follower that fell behind, whenever its roll says so and
// the snapshot is past its commit index. Everything the child does to the
// data dir's parent (the simulated disk) is logged to <track dir>/events,
// and removed files are kept in <track dir>/attic (power_loss_tracker.h),
// for the parent's power-loss simulation. With an install kill event n > 0
// the child starts with the install and SIGKILLs itself right after its
// n-th event from there.
// Must never print an acknowledgement for a write that has not returned OK;
// exits with status 2 on any storage error.
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>

#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot_install.h"
#include "storage/snapshot_stager.h"
#include "tests/storage/crash_workload.h"
#include "tests/storage/power_loss_tracker.h"

namespace raftkv::storage::crash {
namespace {

[[noreturn]] void Die(const std::string& what, const Status& s) {
  std::fprintf(stderr, "crash_child: %s: %s\n", what.c_str(),
               s.ToString().c_str());
  std::exit(2);
}

// Prints "<tag> <value>..." as one line.
void Say(const char* tag, std::initializer_list<uint64_t> values) {
  std::string line = tag;
  for (uint64_t v : values) line += " " + std::to_string(v);
  line += "\n";
  if (::write(1, line.data(), line.size()) !=
      static_cast<ssize_t>(line.size())) {
    std::exit(3);
  }
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

// Installs the leader's snapshot as the server does: its chunks through a
// SnapshotStager into the staging directory (server/snapshot_transfer.cc),
// then InstallStagedSnapshot (server/log_writer.cc). The hard state
// follows: the term is at least the snapshot's, the commit index its index.
void InstallFromLeader(const std::string& dir, const LeaderSnapshot& snapshot,
                       RaftLog* log, KvStateMachine* sm, raft::HardState* hs) {
  raft::SnapshotMetadata meta;
  meta.set_index(snapshot.index);
  meta.set_term(snapshot.term);
  const std::string what = "snapshot " + std::to_string(meta.term()) + "/" +
                           std::to_string(meta.index());
  Say("i", {meta.index(), meta.term()});
  auto created =
      SnapshotStager::Create(StagingDir(dir, meta.term(), meta.index()), what);
  if (!created.ok()) Die("stage " + what, created.status());
  std::unique_ptr<SnapshotStager> stager = std::move(created).value();
  Status s;
  for (size_t i = 0; s.ok() && i < snapshot.chunks.size(); ++i) {
    s = stager->Add(snapshot.chunks[i]);
  }
  if (s.ok()) s = stager->Finish();
  if (s.ok()) s = InstallStagedSnapshot(stager->dir(), meta, log, sm);
  if (!s.ok()) Die("install " + what, s);
  Say("I", {meta.index(), meta.term()});
  hs->set_term(std::max(hs->term(), meta.term()));
  hs->set_commit(log->hard_state().commit());
}

int Run(const std::string& dir, uint64_t seed, const std::string& snapshot_path,
        const std::string& track_dir, uint64_t install_kill_event) {
  LeaderSnapshot snapshot;
  Status s = ReadLeaderSnapshot(snapshot_path, &snapshot);
  if (!s.ok()) Die("read the leader's snapshot", s);
  StartPowerLossTracking(std::filesystem::absolute(dir).parent_path().string(),
                         track_dir + "/events", track_dir + "/attic");
  auto engine = Engine::Open(dir, CrashEngineOptions());
  if (!engine.ok()) Die("open engine", engine.status());
  auto log_or = RaftLog::Open(engine->get());
  if (!log_or.ok()) Die("open raft log", log_or.status());
  auto sm_or = KvStateMachine::Open(engine->get());
  if (!sm_or.ok()) Die("open state machine", sm_or.status());
  RaftLog* log = log_or->get();
  KvStateMachine* sm = sm_or->get();
  s = RecoverSnapshotState(dir, log, sm);
  if (!s.ok()) Die("recover", s);

  raft::HardState hs = log->hard_state();
  if (hs.term() == 0) hs.set_term(1);
  ApplyUpTo(log, sm, hs.commit());

  std::mt19937_64 rng(seed);
  // One child in four starts with the install, so that its first
  // acknowledgement, from which the test times the kill, is an install's;
  // so does a child told to die within it.
  if ((install_kill_event > 0 || rng() % 4 == 0) &&
      snapshot.index > hs.commit()) {
    if (install_kill_event > 0) KillAfterEvents(install_kill_event);
    InstallFromLeader(dir, snapshot, log, sm, &hs);
  }
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
    Say("a", {first, new_last, hs.term(), hs.commit()});
    s = log->Save(&hs, entries, /*sync=*/true);
    if (!s.ok()) Die("save", s);
    Say("A", {first, new_last, hs.term(), hs.commit()});
    ApplyUpTo(log, sm, hs.commit());

    const uint64_t applied = sm->applied_index();
    if (roll >= 80 && roll < 90 && snapshot.index > hs.commit()) {
      InstallFromLeader(dir, snapshot, log, sm, &hs);  // fell behind
    } else if (roll >= 90 && roll < 95 && applied > log->snapshot_index()) {
      Say("s", {applied});
      // The server records only the metadata; the image is streamed from
      // the state machine when a follower needs it.
      s = log->CreateSnapshot(applied, raft::ConfState(), "");
      if (!s.ok()) Die("snapshot", s);
      Say("S", {applied});
    } else if (roll >= 95 && applied >= log->FirstIndex()) {
      const uint64_t back = rng() % 32;
      const uint64_t to =
          applied >= log->FirstIndex() + back ? applied - back : applied;
      Say("c", {to});
      s = log->Compact(to);
      if (!s.ok()) {
        Die("compact to " + std::to_string(to) + " (applied " +
                std::to_string(applied) + ", log [" +
                std::to_string(log->FirstIndex()) + ", " +
                std::to_string(log->LastIndex()) + "], commit " +
                std::to_string(hs.commit()) + ")",
            s);
      }
      Say("C", {to});
    }
  }
  return 0;
}

}  // namespace
}  // namespace raftkv::storage::crash

int main(int argc, char** argv) {
  // Die with the parent test, whatever happens to it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (argc != 6) {
    std::fprintf(stderr,
                 "usage: %s <data dir> <seed> <leader snapshot> <track dir> "
                 "<install kill event>\n",
                 argv[0]);
    return 1;
  }
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;
  google::InitGoogleLogging(argv[0]);
  return raftkv::storage::crash::Run(
      argv[1], std::strtoull(argv[2], nullptr, 10), argv[3], argv[4],
      std::strtoull(argv[5], nullptr, 10));
}
