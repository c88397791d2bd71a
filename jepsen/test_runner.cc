// One raftkv-jepsen run: cluster, workload, nemesis, recovery, final reads,
// history, check and report. Must never return with a raftkvd running or a
// fault in place, and never write outside OUT and its own temporary dir.
#include "jepsen/test_runner.h"

#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "client/client.h"
#include "fault/firewall.h"
#include "jepsen/check_result.h"
#include "jepsen/cluster.h"
#include "jepsen/history.h"
#include "jepsen/lease_checker.h"
#include "jepsen/linearizability.h"
#include "jepsen/nemesis.h"
#include "jepsen/recorder.h"
#include "jepsen/report.h"
#include "jepsen/set_checker.h"
#include "jepsen/watch_checker.h"
#include "jepsen/workload.h"

namespace raftkv::jepsen {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kStopGrace = std::chrono::seconds(5);
constexpr auto kFinalReadTimeout = std::chrono::seconds(30);
constexpr double kProgressEvery_s = 5;
constexpr auto kLoopPeriod = milliseconds(20);

// A fresh directory under /tmp, removed (with its contents) on destruction
// unless `keep`.
class TempDir {
 public:
  explicit TempDir(bool keep) : keep_(keep) {
    char pattern[] = "/tmp/raftkv-jepsen-XXXXXX";
    if (::mkdtemp(pattern) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    if (path_.empty()) return;
    if (keep_) {
      std::cerr << "raftkv-jepsen: data kept in " << path_ << std::endl;
      return;
    }
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  bool keep_;
  std::string path_;
};

std::string Fixed(double v, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, v);
  return buffer;
}

// Heals, then waits until a leader exists and a write through a fresh
// client succeeds. Returns the seconds it took, or Timeout.
StatusOr<double> AwaitRecovery(Cluster& cluster, double timeout_s) {
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(timeout_s));
  ClientOptions options;
  options.endpoints = cluster.client_endpoints();
  options.deadline = milliseconds(2000);
  options.attempt_timeout = milliseconds(500);
  auto client = Client::Create(options);
  if (!client.ok()) return client.status();
  Status last = Status::Timeout("no attempt");
  for (int i = 0; i < 10000 && Clock::now() < until; ++i) {
    auto put = (*client)->Put("jepsen-recovery-probe", std::to_string(i));
    if (put.ok()) {
      return std::chrono::duration<double>(Clock::now() - start).count();
    }
    last = put.status();
    std::this_thread::sleep_for(milliseconds(100));
  }
  return Status::Timeout("no write succeeded within " + Fixed(timeout_s, 0) +
                         " s of healing; last error: " + last.ToString());
}

void RemoveStaleOutputs(const std::string& out_dir) {
  std::error_code ec;
  fs::remove(out_dir + "/history.jsonl", ec);
  for (int id = 1; id <= Cluster::kMaxNodeId; ++id) {
    fs::remove(out_dir + "/n" + std::to_string(id) + ".log", ec);
  }
}

Status WriteHistoryFile(const History& history, const std::string& path) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return Status::IOError("cannot create " + path);
  RAFTKV_RETURN_IF_ERROR(WriteHistory(history, out));
  out.flush();
  if (!out.good()) return Status::IOError("cannot write " + path);
  return Status::OK();
}

// Everything that happened besides the history, for notes and exit code.
struct RunLog {
  std::vector<std::string> notes;
  std::vector<std::string> errors;
  void Note(const std::string& line) { notes.push_back(line); }
  void Error(const std::string& line) {
    std::cerr << "raftkv-jepsen: " << line << std::endl;
    errors.push_back(line);
  }
};

void PrintProgress(double t, const Recorder& recorder, const Nemesis& nemesis,
                   const Cluster& cluster) {
  const OpCounts c = recorder.counts();
  int down = 0, paused = 0;
  const std::vector<int> members = cluster.members();
  for (int id : members) {
    down += !cluster.running(id);
    paused += cluster.running(id) && cluster.paused(id);
  }
  std::cerr << "[" << Fixed(t, 1) << " s] ops " << c.invoked << ": ok " << c.ok
            << ", fail " << c.fail << ", info " << c.info
            << (c.observations > 0
                    ? ", observed " + std::to_string(c.observations)
                    : std::string())
            << " | members " << members.size() << ", down " << down
            << ", paused " << paused << " | fault: " << nemesis.current()
            << std::endl;
}

// The main phase: workload and nemesis until the time limit. All process
// spawning (restarts, added nodes) happens here, on the calling (main)
// thread. After a membership change the workload gets the new members'
// endpoints.
void MainPhase(const RunOptions& o, Cluster& cluster, Nemesis& nemesis,
               ClientWorkload& workload, Recorder& recorder, RunLog& log,
               const volatile std::sig_atomic_t* interrupted) {
  double next_progress = kProgressEvery_s;
  uint64_t membership = cluster.membership_version();
  for (int64_t i = 0; i < 100'000'000; ++i) {
    const double t = recorder.elapsed_s();
    if (t >= o.time_limit_s) break;
    if (*interrupted) {
      log.Error("interrupted at " + Fixed(t, 1) + " s");
      break;
    }
    nemesis.Step(t);
    if (cluster.membership_version() != membership) {
      membership = cluster.membership_version();
      workload.SetEndpoints(cluster.client_endpoints());
    }
    if (i % 10 == 0) {
      for (const std::string& crash : cluster.ReapCrashed()) {
        log.Error("node exited on its own at " + Fixed(t, 1) + " s: " + crash);
      }
    }
    if (t >= next_progress) {
      PrintProgress(t, recorder, nemesis, cluster);
      next_progress += kProgressEvery_s;
    }
    std::this_thread::sleep_for(kLoopPeriod);
  }
}

CheckResult Check(const RunOptions& o, const History& history) {
  if (o.workload == "set") return CheckSet(history);
  if (o.workload == "watch") return CheckWatch(history);
  if (o.workload == "lease") return CheckLease(history);
  LinearizabilityOptions options;
  // The client's CompareAndSwap answers false only when the comparison
  // failed (nothing written), so a failed cas carries that information.
  options.cas_fail_means_mismatch = true;
  return CheckRegisters(history, options);
}

}  // namespace

int RunTest(const RunOptions& o, const fault::PrivateNetwork* network,
            const volatile std::sig_atomic_t* interrupted) {
  RunLog log;
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec || !fs::is_directory(o.out_dir)) {
    std::cerr << "raftkv-jepsen: cannot create " << o.out_dir << std::endl;
    return 2;
  }
  RemoveStaleOutputs(o.out_dir);
  TempDir work(o.keep_data);
  if (work.path().empty()) {
    std::cerr << "raftkv-jepsen: cannot create a directory in /tmp"
              << std::endl;
    return 2;
  }
  if (!o.setup_notes.empty()) log.Note(o.setup_notes);

  // The firewall, only where partitions are wanted and possible.
  std::set<std::string> kinds = o.nemesis_kinds;
  const bool wants_partition =
      kinds.count("partition") || kinds.count("partition-halves") ||
      kinds.count("partition-leader") || kinds.count("partition-ring");
  std::unique_ptr<fault::Firewall> firewall;
  if (wants_partition && network != nullptr) {
    auto fw = fault::Firewall::Install(*network, "RAFTKV_JEPSEN");
    if (!fw.ok()) {
      std::cerr << "raftkv-jepsen: " << fw.status().ToString() << std::endl;
      return 2;
    }
    firewall = std::move(fw).value();
    log.Note("partitions: iptables chain " + firewall->chain() +
             " (jumped to from OUTPUT -o lo) with rules '-d 127.0.0.B/32 -o "
             "lo -m owner --gid-owner <gid of node A> -j DROP'; node N runs "
             "with group 61000+N");
  } else if (wants_partition) {
    log.Error(
        "partition nemesis requested but no private network "
        "namespace: partitions are skipped");
  }

  ClusterOptions copts;
  copts.nodes = o.nodes;
  copts.private_network = network != nullptr;
  copts.raftkvd = o.raftkvd;
  copts.out_dir = o.out_dir;
  copts.work_dir = work.path();
  copts.server_flags = o.server_flags;
  if (kinds.count("clock")) copts.faketime_library = o.faketime_library;
  auto started = Cluster::Start(copts);
  if (!started.ok()) {
    std::cerr << "raftkv-jepsen: cannot start the cluster: "
              << started.status().ToString() << std::endl;
    return 2;
  }
  Cluster& cluster = **started;
  std::string layout;
  for (int id : cluster.members()) {
    layout += (id > 1 ? ", n" : "n") + std::to_string(id) + "=" +
              cluster.client_address(id);
  }
  log.Note("nodes (client addresses): " + layout);
  if (kinds.count("member")) {
    log.Note(
        "member nemesis: nodes added during the run get the next unused id "
        "(n" +
        std::to_string(o.nodes + 1) +
        ", ...), an empty data dir and --join; removed nodes stop by "
        "themselves; the clients are given the members' endpoints after "
        "every change");
  }
  if (o.workload == "watch") {
    log.Note("watch workload: " + std::to_string(o.concurrency) +
             " writers of keys w/0..w/9, " + std::to_string(o.watchers) +
             " watchers of the prefix w/ from revision 1, each with its own "
             "client starting on node (i mod n) + 1");
  } else if (o.workload == "lease") {
    log.Note("lease workload: " + std::to_string(o.concurrency - o.lockers) +
             " holders and " + std::to_string(o.lockers) +
             " lockers, leases of " + std::to_string(o.lease_ttl_s) + " s");
  }
  if (!o.server_flags.empty()) {
    std::string flags;
    for (const std::string& f : o.server_flags) flags += " " + f;
    log.Note("extra raftkvd flags:" + flags);
  }
  if (cluster.clocks_faked()) {
    log.Note(
        "clocks: every raftkvd runs with LD_PRELOAD=" + o.faketime_library +
        " and its own FAKETIME_TIMESTAMP_FILE (FAKETIME_NO_CACHE=1); "
        "libfaketime fakes CLOCK_MONOTONIC as well as CLOCK_REALTIME");
  }
  const int leader = cluster.WaitForLeader(kStartTimeout);
  if (leader == 0) {
    std::cerr << "raftkv-jepsen: no leader within " << kStartTimeout.count()
              << " s of start; logs in " << o.out_dir << std::endl;
    return 2;
  }
  std::cerr << "raftkv-jepsen: " << o.nodes << " nodes up, leader n" << leader
            << "; " << o.workload << " workload, nemesis " << o.nemesis << ", "
            << o.time_limit_s << " s" << std::endl;

  Recorder recorder;
  WorkloadOptions wopts;
  wopts.name = o.workload;
  wopts.endpoints = cluster.client_endpoints();
  wopts.rate = o.rate;
  wopts.concurrency = o.concurrency;
  wopts.seed = o.seed;
  wopts.op_timeout = milliseconds(o.op_timeout_ms);
  wopts.attempt_timeout = milliseconds(
      std::max<int64_t>(1, std::min<int64_t>(500, o.op_timeout_ms / 2)));
  wopts.active_keys = o.active_keys;
  wopts.key_period_s = o.key_period_s;
  wopts.watchers = o.watchers;
  wopts.lease_ttl_s = o.lease_ttl_s;
  wopts.lockers = o.lockers;
  std::unique_ptr<ClientWorkload> made = MakeWorkload(wopts, &recorder);
  ClientWorkload& workload = *made;
  NemesisOptions nopts;
  nopts.kinds = kinds;
  nopts.quiet_s = o.quiet_s;
  nopts.fault_s = o.fault_s;
  nopts.heal_s = o.heal_s;
  nopts.seed = o.seed;
  Nemesis nemesis(&cluster, firewall.get(), &recorder, nopts);
  Status s = workload.Start();
  if (!s.ok()) {
    std::cerr << "raftkv-jepsen: " << s.ToString() << std::endl;
    return 2;
  }

  MainPhase(o, cluster, nemesis, workload, recorder, log, interrupted);

  // End of the main phase: no new operations, every fault healed.
  workload.Stop();
  nemesis.HealAll();
  for (const std::string& e : nemesis.errors()) log.Error("nemesis: " + e);
  std::string faults = std::to_string(nemesis.faults_injected()) + " faults";
  for (const auto& [kind, n] : nemesis.faults_by_kind()) {
    faults += ", " + kind + " " + std::to_string(n);
  }
  log.Note(faults);
  if (kinds.count("member")) {
    auto members = cluster.MemberList(std::chrono::seconds(5));
    log.Note("membership after the final heal: " +
             (members.ok() ? MembersText(*members)
                           : "unknown (" + members.status().ToString() + ")"));
  }
  auto recovered = AwaitRecovery(cluster, o.recovery_timeout_s);
  if (recovered.ok()) {
    log.Note("recovery: a write succeeded " + Fixed(*recovered, 2) +
             " s after the final heal");
    std::cerr << "raftkv-jepsen: recovered in " << Fixed(*recovered, 2) << " s"
              << std::endl;
  } else {
    log.Error("recovery: " + recovered.status().ToString());
  }
  s = workload.FinalRead(kFinalReadTimeout);
  if (!s.ok()) log.Error(s.ToString());
  for (const std::string& crash : cluster.ReapCrashed()) {
    log.Error("node exited on its own: " + crash);
  }
  s = cluster.StopAll(kStopGrace);
  if (!s.ok()) log.Error("stopping the cluster: " + s.ToString());
  const std::vector<std::string> logs = cluster.log_names();
  started.value().reset();
  firewall.reset();

  const History history = recorder.history();
  s = WriteHistoryFile(history, o.out_dir + "/history.jsonl");
  if (!s.ok()) log.Error(s.ToString());
  std::cerr << "raftkv-jepsen: checking " << history.size() << " events"
            << std::endl;
  const auto check_start = Clock::now();
  CheckResult result = Check(o, history);
  log.Note(
      "checked in " +
      Fixed(std::chrono::duration<double>(Clock::now() - check_start).count(),
            1) +
      " s: " + result.summary);
  for (const Anomaly& a : result.anomalies) {
    std::cerr << "anomaly: " << a.kind << " " << a.key << ": " << a.description
              << "\n"
              << a.rendering << std::endl;
  }

  ReportInput report;
  report.out_dir = o.out_dir;
  report.workload = o.workload;
  report.nemesis = o.nemesis;
  report.seed = o.seed;
  report.nodes = o.nodes;
  report.time_limit_s = o.time_limit_s;
  report.rate = o.rate;
  report.concurrency = o.concurrency;
  report.history = history;
  report.result = result;
  report.node_logs = logs;
  for (const std::string& n : log.notes) report.notes += n + "\n";
  for (const std::string& e : log.errors) report.notes += "ERROR: " + e + "\n";
  s = WriteReport(report);
  if (!s.ok()) log.Error("report: " + s.ToString());

  const int code = result.validity == Validity::kInvalid ? 1
                   : result.validity == Validity::kValid && log.errors.empty()
                       ? 0
                       : 2;
  std::cout << "raftkv-jepsen: " << o.workload << " / " << o.nemesis
            << " / seed " << o.seed << " / " << o.nodes << " nodes / "
            << Fixed(o.time_limit_s, 0) << " s: " << result.ops << " ops (ok "
            << result.ok << ", fail " << result.fail << ", info " << result.info
            << "), " << nemesis.faults_injected()
            << " faults, valid=" << ValidityName(result.validity)
            << (log.errors.empty()
                    ? ""
                    : ", " + std::to_string(log.errors.size()) + " errors")
            << " -> " << o.out_dir << "/index.html" << std::endl;
  return code;
}

}  // namespace raftkv::jepsen
