// The crash test: a child process (storage_crash_child) writes the crash
// workload with sync and acknowledges each durable write on a pipe,
// including the install of snapshots received from a leader; this test
// SIGKILLs it at a random moment, timed from the child's progress rather
// than the clock (so a slow build or a busy machine crashes it mid-workload
// just as often): a random 0-100 ms after its first acknowledgement, or,
// one round in eight, while it is still recovering (a random point within
// the start-up time last measured); one round in four of the others, the
// child starts with an install and kills itself right after a random one
// of the install's disk events. Then it reopens the data dir, recovers
// as the server does (RecoverSnapshotState) and checks that every
// acknowledged entry and snapshot install is there, byte for byte, that an
// unacknowledged write or install happened completely or not at all (after
// an install, the state is the leader's snapshot plus what came after it,
// never a mix with the state it replaced), and that the state machine's
// applied index matches its data exactly (revision, every key's value,
// versions and revisions). Every other round also simulates a power loss
// (power_loss.h): the child logs every file and directory change and every
// fsync on its disk, and the disk is rewritten as a power loss could leave
// it: every file cut back to its last synced size, directory entries made
// since the directory's last fsync lost (sometimes only some), and
// sometimes a torn tail of garbage on the newest WAL. Then the next child
// continues.
//
// Bounded in kills and time. Environment:
//   RAFTKV_CRASH_KILLS    kills to perform (default 200; the full run: 600)
//   RAFTKV_CRASH_SECONDS  stop after this long anyway (default 45)
//   RAFTKV_CRASH_SEED     base seed (default 1); round r uses seed + r
// Must never signal any process but the child it started.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string_view>

#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot.h"
#include "storage/snapshot_install.h"
#include "tests/storage/crash_workload.h"
#include "tests/storage/power_loss.h"
#include "tests/storage/test_util.h"

#ifndef RAFTKV_CRASH_CHILD
#error "RAFTKV_CRASH_CHILD must name the storage_crash_child binary"
#endif

namespace raftkv::storage::crash {
namespace {

namespace fs = std::filesystem;

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

// One line of the child's output.
struct Line {
  char tag = 0;
  uint64_t v[4] = {0, 0, 0, 0};
};

bool ParseLine(const std::string& text, Line* line) {
  std::istringstream in(text);
  std::string tag;
  in >> tag;
  if (tag.size() != 1) return false;
  line->tag = tag[0];
  const char tag_lower = static_cast<char>(std::tolower(line->tag));
  const int n = tag_lower == 'a' ? 4 : tag_lower == 'i' ? 2 : 1;
  for (int i = 0; i < n; ++i) {
    if (!(in >> line->v[i])) return false;
  }
  return true;
}

// What the parent knows to be durable: built from acknowledgements only.
struct Model {
  std::vector<uint64_t> term{0};  // term[i] for i in [0, last]
  uint64_t last = 0;
  uint64_t commit = 0;
  uint64_t hs_term = 0;
  uint64_t compacted = 0;  // log start at least this (acknowledged)
  uint64_t snapshot = 0;   // snapshot index at least this (acknowledged)

  void Append(const Line& a) {
    term.resize(a.v[0]);
    term.resize(a.v[1] + 1, a.v[2]);
    last = a.v[1];
    hs_term = a.v[2];
    commit = a.v[3];
  }
  // The leader's snapshot at i.v[0] replaced the log and the state machine:
  // the entries up to it are the leader's; the hard state keeps its term.
  void Install(const Line& i) {
    const uint64_t index = i.v[0];
    CHECK_EQ(i.v[1], LeaderTerm(index));
    term.assign(index + 1, 0);
    for (uint64_t j = 1; j <= index; ++j) term[j] = LeaderTerm(j);
    last = compacted = snapshot = index;
    commit = std::max(commit, index);
  }
};

struct Stats {
  uint64_t kills = 0;
  uint64_t kills_during_recovery = 0;
  uint64_t kills_at_install_event = 0;  // the child killed itself
  uint64_t kills_during_install = 0;    // the install unacknowledged
  uint64_t power_losses = 0;
  uint64_t torn_tails = 0;
  PowerLossStats power_loss;  // summed over the power losses
  uint64_t acked_writes = 0;
  uint64_t acked_entries = 0;
  uint64_t acked_installs = 0;
  uint64_t pending_took_effect = 0;
  uint64_t pending_installs_took_effect = 0;
  uint64_t entries_checked = 0;
  uint64_t keys_checked = 0;
  uint64_t max_applied = 0;
  std::chrono::milliseconds max_startup{0};  // start to first acknowledgement
};

// A child that has not acknowledged anything this long after its start is
// stuck: the round fails.
constexpr auto kFirstAckTimeout = std::chrono::seconds(30);
// Kills after the first acknowledgement land within this much of it.
constexpr uint64_t kMaxKillAfterAckMs = 100;
// One round in this many kills the child during its recovery instead.
constexpr uint64_t kRecoveryKillEvery = 8;
// One round in this many (of the others) kills it within an install; an
// install makes about this many disk events (staging, the redo record, the
// ingestion and the flush it forces, the clean-up).
constexpr uint64_t kInstallKillEvery = 4;
constexpr uint64_t kMaxInstallEvent = 48;

// When to kill the child: `delay` after its first acknowledgement, or, if
// `from_start`, `delay` after it was started (whatever it has done by then).
// With `install_event`, the child starts with a snapshot install (if the
// leader's is ahead of it) and kills itself right after the install's
// install_event-th disk event, unless the plan's own kill comes first.
struct KillPlan {
  bool from_start = false;
  std::chrono::milliseconds delay{0};
  uint64_t install_event = 0;
};

// What one child did before it was killed.
struct ChildRun {
  std::string output;  // its stdout: intent and acknowledgement lines
  // From its start to its first acknowledgement, if one came.
  std::optional<std::chrono::milliseconds> first_ack;
  bool killed_itself = false;  // at plan.install_event
};

// Whether `output` has an acknowledgement line (an upper-case tag) at or
// after `from`; *from is advanced past the complete lines seen.
bool SawAcknowledgement(const std::string& output, size_t* from) {
  for (size_t nl; (nl = output.find('\n', *from)) != std::string::npos;
       *from = nl + 1) {
    if (std::isupper(static_cast<unsigned char>(output[*from]))) return true;
  }
  return false;
}

// Starts the child, and SIGKILLs it as `plan` says. Fails if the child
// exits on its own, or (unless the kill was timed otherwise) acknowledges
// nothing within kFirstAckTimeout.
::testing::AssertionResult RunAndKill(const std::string& dir, uint64_t seed,
                                      const std::string& leader_snapshot,
                                      const std::string& track_dir,
                                      const KillPlan& plan, ChildRun* run) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return ::testing::AssertionFailure() << "pipe: " << strerror(errno);
  }
  const std::string seed_arg = std::to_string(seed);
  const std::string event_arg = std::to_string(plan.install_event);
  std::vector<const char*> argv = {RAFTKV_CRASH_CHILD,
                                   dir.c_str(),
                                   seed_arg.c_str(),
                                   leader_snapshot.c_str(),
                                   track_dir.c_str(),
                                   event_arg.c_str(),
                                   nullptr};
  const auto started = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) return ::testing::AssertionFailure() << "fork failed";
  if (pid == 0) {  // only async-signal-safe calls until exec
    dup2(fds[1], 1);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(argv[0], const_cast<char* const*>(argv.data()));
    _exit(127);
  }
  close(fds[1]);
  auto kill_at = started + (plan.from_start ? plan.delay : kFirstAckTimeout);
  bool exited = false;
  size_t scanned = 0;
  char buf[1 << 16];
  while (true) {
    const auto now = std::chrono::steady_clock::now();
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - now);
    if (left.count() <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n == 0) {  // the child closed stdout: it exited
      exited = true;
      break;
    }
    if (n < 0) continue;
    run->output.append(buf, static_cast<size_t>(n));
    if (!plan.from_start && !run->first_ack &&
        SawAcknowledgement(run->output, &scanned)) {
      const auto seen = std::chrono::steady_clock::now();
      run->first_ack =
          std::chrono::duration_cast<std::chrono::milliseconds>(seen - started);
      kill_at = seen + plan.delay;
    }
  }
  if (!exited) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) {
    run->output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (WIFEXITED(status)) {
    return ::testing::AssertionFailure()
           << "child exited by itself with status " << WEXITSTATUS(status);
  }
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
    return ::testing::AssertionFailure() << "child ended oddly: " << status;
  }
  // Nothing but this test and the child itself (at plan.install_event)
  // sends it SIGKILL.
  run->killed_itself = exited;
  if (run->killed_itself && plan.install_event == 0) {
    return ::testing::AssertionFailure() << "child killed by another process";
  }
  if (!plan.from_start && !run->killed_itself && !run->first_ack) {
    return ::testing::AssertionFailure()
           << "no acknowledgement within " << kFirstAckTimeout.count()
           << " s of the child's start";
  }
  return ::testing::AssertionSuccess();
}

// The leader whose snapshots the child installs, kept by the test: a state
// machine in its own data dir (another node's disk, never crashed) that
// has applied EntryFor(i, LeaderTerm(i)) for i = 1, 2, ...
class Leader {
 public:
  static StatusOr<std::unique_ptr<Leader>> Open(const std::string& dir) {
    auto engine = Engine::Open(dir, CrashEngineOptions());
    if (!engine.ok()) return engine.status();
    auto leader = std::unique_ptr<Leader>(new Leader);
    leader->engine_ = std::move(engine).value();
    auto sm = KvStateMachine::Open(leader->engine_.get());
    if (!sm.ok()) return sm.status();
    leader->sm_ = std::move(sm).value();
    return leader;
  }

  // Applies the leader's entries up to `index` (if it is not past it yet)
  // and writes a snapshot of its state to `path`.
  Status WriteSnapshot(uint64_t index, const std::string& path,
                       LeaderSnapshot* snapshot) {
    while (sm_->applied_index() < index) {
      std::vector<raft::Entry> batch;
      for (uint64_t i = sm_->applied_index() + 1;
           i <= index && batch.size() < 256; ++i) {
        batch.push_back(EntryFor(i, LeaderTerm(i)));
      }
      std::vector<kv::CommandResult> results;
      RAFTKV_RETURN_IF_ERROR(sm_->ApplyBatch(batch, &results));
    }
    auto source = SnapshotSource::Create(*sm_);
    if (!source.ok()) return source.status();
    snapshot->index = (*source)->index();
    snapshot->term = (*source)->term();
    snapshot->chunks.clear();
    RAFTKV_RETURN_IF_ERROR(
        (*source)->Stream(kLeaderChunkBytes, [&](std::string_view chunk) {
          snapshot->chunks.emplace_back(chunk);
          return Status::OK();
        }));
    return WriteLeaderSnapshot(*snapshot, path);
  }

 private:
  // A transfer of a few dozen chunks.
  static constexpr size_t kLeaderChunkBytes = 64 << 10;

  Leader() = default;

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<KvStateMachine> sm_;
};

// Simulates a power loss after the child's death (power_loss.h), from the
// disk as it was when the child started and the events it logged in
// `track_dir`. Sometimes the newest WAL also gets a torn tail of random
// bytes.
Status SimulatePowerLoss(DiskModel* disk, const std::string& data_dir,
                         const std::string& track_dir, std::mt19937_64& rng,
                         Stats* stats) {
  RAFTKV_RETURN_IF_ERROR(disk->Replay(track_dir + "/events"));
  RAFTKV_RETURN_IF_ERROR(
      disk->PowerLoss(track_dir + "/attic", rng, &stats->power_loss));
  ++stats->power_losses;
  std::string newest_wal;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0) {
      newest_wal = std::max(newest_wal, name);
    }
  }
  if (!newest_wal.empty() && rng() % 2 == 0) {
    std::string garbage(1 + rng() % 64, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    std::ofstream(data_dir + "/" + newest_wal, std::ios::app | std::ios::binary)
        << garbage;
    ++stats->torn_tails;
  }
  return Status::OK();
}

// Reopens the data dir, recovers, and checks it against the model (and the
// one unacknowledged write or install that may or may not have happened).
// On success the model is updated to what is on disk.
Status Verify(const std::string& dir, const std::optional<Line>& pending,
              Model* model, Stats* stats) {
  auto engine = Engine::Open(dir, CrashEngineOptions());
  if (!engine.ok()) return engine.status();
  auto log_or = RaftLog::Open(engine->get());
  if (!log_or.ok()) return log_or.status();
  auto sm_or = KvStateMachine::Open(engine->get());
  if (!sm_or.ok()) return sm_or.status();
  RaftLog& log = **log_or;
  KvStateMachine& sm = **sm_or;
  // As the server starts: an interrupted install is finished first.
  RAFTKV_RETURN_IF_ERROR(RecoverSnapshotState(dir, &log, &sm));
  auto fail = [](const std::string& what) { return Status::Corruption(what); };

  // Did the pending append or install take effect? Each is atomic: all or
  // nothing (the checks below tell a mix from either).
  Model m = *model;
  if (pending && pending->tag == 'a') {
    uint64_t t = 0;
    if (log.LastIndex() == pending->v[1] && log.Term(pending->v[1], &t).ok() &&
        t == pending->v[2]) {
      m.Append(*pending);
      ++stats->pending_took_effect;
    }
  } else if (pending && pending->tag == 'i' &&
             log.snapshot_index() == pending->v[0]) {
    m.Install(*pending);
    ++stats->pending_installs_took_effect;
  }
  if (log.LastIndex() != m.last) {
    return fail("last index " + std::to_string(log.LastIndex()) +
                ", acknowledged " + std::to_string(m.last));
  }
  if (log.hard_state().commit() != m.commit ||
      log.hard_state().term() != m.hs_term) {
    return fail("hard state term/commit " +
                std::to_string(log.hard_state().term()) + "/" +
                std::to_string(log.hard_state().commit()) + ", acknowledged " +
                std::to_string(m.hs_term) + "/" + std::to_string(m.commit));
  }
  const uint64_t start = log.FirstIndex() - 1;
  if (start != m.compacted &&
      !(pending && pending->tag == 'c' && start == pending->v[0])) {
    return fail("log starts after " + std::to_string(start) +
                ", acknowledged compaction to " + std::to_string(m.compacted));
  }
  m.compacted = start;
  if (log.snapshot_index() != m.snapshot &&
      !(pending && pending->tag == 's' &&
        log.snapshot_index() == pending->v[0])) {
    return fail("snapshot at " + std::to_string(log.snapshot_index()) +
                ", acknowledged " + std::to_string(m.snapshot));
  }
  m.snapshot = log.snapshot_index();

  // Every stored entry, byte for byte.
  uint64_t t = 0;
  RAFTKV_RETURN_IF_ERROR(log.Term(start, &t));
  if (t != m.term[start]) return fail("term of the log start differs");
  std::vector<raft::Entry> entries;
  RAFTKV_RETURN_IF_ERROR(
      log.Entries(start + 1, m.last + 1, UINT64_MAX, &entries));
  if (entries.size() != m.last - start) return fail("entries missing");
  for (const raft::Entry& e : entries) {
    if (e.SerializeAsString() !=
        EntryFor(e.index(), m.term[e.index()]).SerializeAsString()) {
      return fail("entry " + std::to_string(e.index()) + " differs");
    }
  }
  stats->entries_checked += entries.size();

  // The state machine: exactly the committed prefix up to its applied index.
  const uint64_t applied = sm.applied_index();
  if (applied > m.commit || applied < start || applied < m.snapshot) {
    return fail("applied index " + std::to_string(applied) +
                " outside [max(log start, snapshot), commit] = [" +
                std::to_string(std::max(start, m.snapshot)) + ", " +
                std::to_string(m.commit) + "]");
  }
  if (applied > 0 && sm.applied_term() != m.term[applied]) {
    return fail("applied term differs");
  }
  std::vector<int64_t> revision_at(applied + 1, 0);
  std::map<std::string, uint64_t> latest, first_put;
  std::map<std::string, int64_t> versions;
  int64_t revision = 0;
  for (uint64_t i = 1; i <= applied; ++i) {
    if (!IsNoop(i, m.term[i])) {
      ++revision;
      const std::string key = SlotKey(i);
      latest[key] = i;
      if (first_put.count(key) == 0) first_put[key] = i;
      ++versions[key];
    }
    revision_at[i] = revision;
  }
  if (sm.revision() != revision) {
    return fail("revision " + std::to_string(sm.revision()) + ", expected " +
                std::to_string(revision) + " at applied index " +
                std::to_string(applied));
  }
  kv::RangeRequest all;
  all.set_key("k");
  all.set_range_end("l");
  auto range = sm.Range(all);
  if (!range.ok()) return range.status();
  if (range->kvs_size() != static_cast<int>(latest.size())) {
    return fail(std::to_string(range->kvs_size()) + " keys, expected " +
                std::to_string(latest.size()));
  }
  for (const kv::KeyValue& kv : range->kvs()) {
    uint64_t index = 0, term = 0;
    if (!ParseValue(kv.value(), &index, &term)) {
      return fail("value of " + kv.key() + " is damaged");
    }
    auto it = latest.find(kv.key());
    if (it == latest.end() || it->second != index || term != m.term[index] ||
        kv.mod_revision() != revision_at[index] ||
        kv.create_revision() != revision_at[first_put[kv.key()]] ||
        kv.version() != versions[kv.key()]) {
      return fail("key " + kv.key() + " holds entry " + std::to_string(index) +
                  " (term " + std::to_string(term) + "), expected entry " +
                  (it == latest.end() ? "none" : std::to_string(it->second)));
    }
  }
  stats->keys_checked += latest.size();
  stats->max_applied = std::max(stats->max_applied, applied);
  *model = std::move(m);
  return Status::OK();
}

// Most kills land 0-100 ms after the child's first acknowledgement; one
// round in kRecoveryKillEvery (never the first) kills it at a random point
// of the start-up time last measured, i.e. while it recovers. One round in
// kInstallKillEvery of the others has the child start with a snapshot
// install and die at a random one of its first kMaxInstallEvent disk
// events, so every step of an install gets crashed in, however fast.
KillPlan PlanKill(uint64_t round, std::chrono::milliseconds last_startup,
                  std::mt19937_64& rng) {
  KillPlan plan;
  plan.from_start = round % kRecoveryKillEvery == kRecoveryKillEvery - 1 &&
                    last_startup.count() > 0;
  const uint64_t range_ms = plan.from_start
                                ? static_cast<uint64_t>(last_startup.count())
                                : kMaxKillAfterAckMs;
  plan.delay = std::chrono::milliseconds(rng() % (range_ms + 1));
  if (!plan.from_start && rng() % kInstallKillEvery == 0) {
    plan.install_event = 1 + rng() % kMaxInstallEvent;
  }
  return plan;
}

void Report(const Stats& stats, const Model& model, double seconds) {
  const PowerLossStats& p = stats.power_loss;
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf(
      "crash test: %llu kills in %.1f s (%llu timed within the start-up, "
      "%llu at an install's disk event, %llu before an install's "
      "acknowledgement, "
      "%llu with power loss); child start-up up to %lld ms\n",
      u(stats.kills), seconds, u(stats.kills_during_recovery),
      u(stats.kills_at_install_event), u(stats.kills_during_install),
      u(stats.power_losses), static_cast<long long>(stats.max_startup.count()));
  std::printf(
      "  power losses: %llu files cut (%llu never synced), %llu new entries "
      "lost, %llu renames and %llu removals undone, %llu unsynced entry "
      "changes kept, %llu torn WAL tails, %llu entries differing from the "
      "event log (a change the kill interrupted)\n",
      u(p.files_cut), u(p.files_emptied), u(p.creates_lost),
      u(p.renames_undone), u(p.removes_undone), u(p.changes_kept),
      u(stats.torn_tails), u(p.untracked_changes));
  std::printf(
      "  acknowledged: %llu writes of %llu entries, %llu snapshot installs; "
      "unacknowledged but complete: %llu writes, %llu installs\n",
      u(stats.acked_writes), u(stats.acked_entries), u(stats.acked_installs),
      u(stats.pending_took_effect), u(stats.pending_installs_took_effect));
  std::printf(
      "  verified after restarts: %llu entries, %llu keys; final log index "
      "%llu, applied %llu\n",
      u(stats.entries_checked), u(stats.keys_checked), u(model.last),
      u(stats.max_applied));
}

TEST(StorageCrashTest, NoAcknowledgedWriteIsLostAfterKill9OrPowerLoss) {
  const uint64_t max_kills = EnvOr("RAFTKV_CRASH_KILLS", 200);
  const auto max_time = std::chrono::seconds(EnvOr("RAFTKV_CRASH_SECONDS", 45));
  const uint64_t base_seed = EnvOr("RAFTKV_CRASH_SEED", 1);
  testing::TempDir tmp;
  // The simulated disk holds the data dir only; the leader's data dir and
  // the power-loss event log and attic are elsewhere on the same file
  // system. Canonical paths: the child's tracker compares the paths it is
  // given with those the kernel reports for open files.
  const std::string base = fs::canonical(tmp.path()).string();
  const std::string disk = base + "/disk";
  const std::string dir = disk + "/node";
  const std::string track_dir = base + "/track";
  const std::string snapshot_path = base + "/leader-snapshot";
  ASSERT_TRUE(fs::create_directory(disk));
  auto leader = Leader::Open(base + "/leader");
  ASSERT_TRUE(leader.ok()) << leader.status().ToString();
  LeaderSnapshot snapshot;
  std::mt19937_64 rng(base_seed);
  Model model;
  Stats stats;
  // Start-up time (to the first acknowledgement) of the latest child that
  // got that far: recovery kills land within it.
  std::chrono::milliseconds last_startup{0};
  const auto start = std::chrono::steady_clock::now();

  for (uint64_t round = 0; round < max_kills; ++round) {
    if (std::chrono::steady_clock::now() - start > max_time) break;
    // From the first round on, which creates the data dir.
    const bool power_loss = round % 2 == 0;
    const uint64_t seed = base_seed + round;
    SCOPED_TRACE("round " + std::to_string(round) + " (child seed " +
                 std::to_string(seed) + (power_loss ? ", power loss)" : ")"));
    // The child always logs what it does (its kills at an install's disk
    // events count them); only power-loss rounds replay the log.
    fs::remove_all(track_dir);
    ASSERT_TRUE(fs::create_directories(track_dir + "/attic"));
    std::optional<DiskModel> disk_model;
    if (power_loss) {
      auto scanned = DiskModel::Scan(disk);
      ASSERT_TRUE(scanned.ok()) << scanned.status().ToString();
      disk_model = std::move(scanned).value();
    }
    if (snapshot.index <= model.commit) {  // one the child could install
      Status s = (*leader)->WriteSnapshot(model.last + 1 + rng() % 64,
                                          snapshot_path, &snapshot);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    const KillPlan plan = PlanKill(round, last_startup, rng);
    ChildRun run;
    ASSERT_TRUE(RunAndKill(dir, seed, snapshot_path, track_dir, plan, &run));
    ++stats.kills;
    stats.kills_during_recovery += plan.from_start ? 1 : 0;
    stats.kills_at_install_event += run.killed_itself ? 1 : 0;
    if (run.first_ack) {
      last_startup = *run.first_ack;
      stats.max_startup = std::max(stats.max_startup, last_startup);
    }
    const std::string& output = run.output;

    std::optional<Line> pending;
    size_t pos = 0;
    for (size_t nl; (nl = output.find('\n', pos)) != std::string::npos;
         pos = nl + 1) {
      Line line;
      ASSERT_TRUE(ParseLine(output.substr(pos, nl - pos), &line))
          << output.substr(pos, nl - pos);
      if (std::islower(line.tag)) {
        pending = line;
        continue;
      }
      ASSERT_TRUE(pending && pending->tag == std::tolower(line.tag));
      if (line.tag == 'A') {
        model.Append(line);
        ++stats.acked_writes;
        stats.acked_entries += line.v[1] - line.v[0] + 1;
      } else if (line.tag == 'C') {
        model.compacted = line.v[0];
      } else if (line.tag == 'S') {
        model.snapshot = line.v[0];
      } else if (line.tag == 'I') {
        model.Install(line);
        ++stats.acked_installs;
      }
      pending.reset();
    }
    stats.kills_during_install += pending && pending->tag == 'i';
    if (power_loss) {
      Status s = SimulatePowerLoss(&*disk_model, dir, track_dir, rng, &stats);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    if (!fs::exists(dir + "/CURRENT")) {
      // Killed before the data dir was first created: nothing acknowledged.
      ASSERT_EQ(model.last, 0u) << "the data dir is gone";
      continue;
    }
    Status s = Verify(dir, pending, &model, &stats);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  Report(stats, model,
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
             .count());
  // Every round but the recovery kills waited for an acknowledgement, so
  // this holds on any machine; it fails if the children never write. One
  // operation in ten installs the leader's snapshot while it is ahead of
  // the child: over twenty rounds and more, some installs complete.
  EXPECT_GT(stats.acked_writes, 0u);
  EXPECT_GT(stats.acked_installs, 0u);
  EXPECT_GT(stats.kills, stats.kills_during_recovery);
  EXPECT_GE(stats.kills, std::min<uint64_t>(max_kills, 20));
}

}  // namespace
}  // namespace raftkv::storage::crash
