// raftkv-jepsen: a Jepsen-style test of a real raftkvd cluster. Parses the
// flags, moves into a private network namespace (when root) before any
// thread exists, and runs one test (jepsen/test_runner.h).
//
// Must never send traffic outside 127.0.0.0/8 nor install firewall rules
// in the machine's own network namespace: without a private namespace it
// runs on the root loopback with the process nemeses only.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "fault/netns.h"
#include "fault/subprocess.h"
#include "jepsen/nemesis.h"
#include "jepsen/test_runner.h"
#include "jepsen/workload.h"
#include "util/flags_help.h"

DEFINE_int32(nodes, 5, "Number of raftkvd nodes (3 or 5 are typical).");
DEFINE_string(workload, "register",
              "register, set, watch (writers and watchers of a prefix) or "
              "lease (leases kept alive, revoked, abandoned; a lock with "
              "fencing tokens); see docs/jepsen.md.");
DEFINE_string(nemesis, "partition,kill,pause",
              "Comma-separated faults: partition (or one mode of it: "
              "partition-halves, partition-leader, partition-ring), kill, "
              "pause (or pause-leader: the leader only), clock, member "
              "(remove nodes for good, add fresh ones under new ids); or "
              "none. "
              "Each round of faults has every kind given once.");
DEFINE_double(time_limit, 60, "Seconds of workload and faults.");
DEFINE_double(rate, 200, "Target operations per second, all clients.");
DEFINE_int32(concurrency, 10, "Client worker threads (logical processes).");
DEFINE_uint64(seed, 1, "Seed of the fault schedule and the workload.");
DEFINE_string(out, "",
              "Output directory (default store/WORKLOAD-NEMESIS-sSEED).");
DEFINE_string(server_flags, "",
              "Extra raftkvd flags, space-separated, e.g. "
              "'--unsafe_serve_stale_reads'.");
DEFINE_double(quiet_s, 3, "Seconds without faults at the start.");
DEFINE_double(fault_s, 10, "Seconds each fault lasts.");
DEFINE_double(heal_s, 10, "Seconds of healed cluster between faults.");
DEFINE_int64(op_timeout_ms, 1000,
             "Deadline of one client operation; after it the outcome is "
             "unknown (info).");
DEFINE_int32(active_keys, 5, "Register workload: keys in use at a time.");
DEFINE_double(key_period_s, 1,
              "Register workload: a new key enters the window this often.");
DEFINE_int32(watchers, 3,
             "Watch workload: watchers, each with its own client, starting "
             "on different nodes.");
DEFINE_int64(lease_ttl_s, 3, "Lease workload: TTL of every lease, seconds.");
DEFINE_int32(lockers, 3,
             "Lease workload: workers (of --concurrency) taking the lock; "
             "the others hold leases.");
DEFINE_double(recovery_timeout_s, 30,
              "After the final heal, how long the cluster has to accept a "
              "write again.");
DEFINE_string(raftkvd, "", "raftkvd binary (default: next to this one).");
DEFINE_string(faketime_lib, "",
              "libfaketime to preload for the clock nemesis (default: "
              "Debian's libfaketimeMT.so.1).");
DEFINE_bool(netns, true,
            "Run in a private network namespace (needs root); if false, or "
            "if it cannot be made, use the root loopback without "
            "partitions.");
DEFINE_bool(keep_data, false, "Keep the nodes' data directories.");

namespace {

// The one piece of global state: set by SIGINT/SIGTERM, polled by the run.
volatile std::sig_atomic_t g_interrupted = 0;

void OnSignal(int) { g_interrupted = 1; }

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream stream(s);
  std::string item;
  while (std::getline(stream, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string FindFaketime() {
  if (!FLAGS_faketime_lib.empty()) return FLAGS_faketime_lib;
  for (const char* path :
       {"/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1"}) {
    if (std::filesystem::exists(path)) return path;
  }
  return "";
}

std::string DefaultRaftkvd() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "raftkvd" : (self.parent_path() / "raftkvd").string();
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "raftkv-jepsen --nodes=5 --workload=register "
      "--nemesis=partition,kill,pause --time_limit=60 --rate=200 "
      "--concurrency=10 --seed=1 --out=store/NAME");
  static char help_on[] = "--helpon=main";  // the flags of this file
  raftkv::RestrictHelpToOwnFlags(argc, argv, help_on);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  using namespace raftkv::jepsen;

  RunOptions o;
  o.nodes = FLAGS_nodes;
  o.workload = FLAGS_workload;
  o.nemesis = FLAGS_nemesis;
  for (const std::string& k : Split(FLAGS_nemesis, ',')) {
    if (k != "none") o.nemesis_kinds.insert(k);
  }
  o.time_limit_s = FLAGS_time_limit;
  o.rate = FLAGS_rate;
  o.concurrency = FLAGS_concurrency;
  o.seed = FLAGS_seed;
  o.out_dir = FLAGS_out.empty()
                  ? "store/" + FLAGS_workload + "-" + FLAGS_nemesis + "-s" +
                        std::to_string(FLAGS_seed)
                  : FLAGS_out;
  for (char& c : o.out_dir) c = c == ',' ? '+' : c;
  o.server_flags = Split(FLAGS_server_flags, ' ');
  o.quiet_s = FLAGS_quiet_s;
  o.fault_s = FLAGS_fault_s;
  o.heal_s = FLAGS_heal_s;
  o.op_timeout_ms = FLAGS_op_timeout_ms;
  o.active_keys = FLAGS_active_keys;
  o.key_period_s = FLAGS_key_period_s;
  o.watchers = FLAGS_watchers;
  o.lease_ttl_s = FLAGS_lease_ttl_s;
  o.lockers = FLAGS_lockers;
  o.recovery_timeout_s = FLAGS_recovery_timeout_s;
  o.keep_data = FLAGS_keep_data;
  o.raftkvd = FLAGS_raftkvd.empty() ? DefaultRaftkvd() : FLAGS_raftkvd;
  o.faketime_library = FindFaketime();

  raftkv::Status valid = ValidateNemesisKinds(o.nemesis_kinds);
  WorkloadOptions w;
  w.name = o.workload;
  w.rate = o.rate;
  w.concurrency = o.concurrency;
  w.active_keys = o.active_keys;
  w.key_period_s = o.key_period_s;
  w.watchers = o.watchers;
  w.lease_ttl_s = o.lease_ttl_s;
  w.lockers = o.lockers;
  if (valid.ok()) valid = ValidateWorkload(w);
  if (valid.ok() && (o.nodes < 1 || o.nodes > 9)) {
    valid = raftkv::Status::InvalidArgument("--nodes must be in [1, 9]");
  }
  if (valid.ok() && !(o.time_limit_s > 0 && o.fault_s > 0 && o.heal_s > 0 &&
                      o.quiet_s >= 0 && o.op_timeout_ms > 0)) {
    valid = raftkv::Status::InvalidArgument("durations must be positive");
  }
  if (valid.ok() && ::access(o.raftkvd.c_str(), X_OK) != 0) {
    valid = raftkv::Status::InvalidArgument(o.raftkvd + " is not executable");
  }
  if (valid.ok() && o.nemesis_kinds.count("clock") &&
      o.faketime_library.empty()) {
    valid = raftkv::Status::InvalidArgument(
        "the clock nemesis needs libfaketime (apt-get install faketime, or "
        "--faketime_lib)");
  }
  if (!valid.ok()) {
    std::cerr << "raftkv-jepsen: " << valid.message()
              << " (see raftkv-jepsen --help)" << std::endl;
    return 2;
  }

  // Before any thread: a namespace change applies to the calling thread.
  std::unique_ptr<raftkv::fault::PrivateNetwork> network;
  if (FLAGS_netns) {
    auto entered = raftkv::fault::PrivateNetwork::Enter();
    if (entered.ok()) {
      network = std::move(entered).value();
      o.setup_notes =
          "network: " + network->description() + "; node N on 127.0.0.(10+N)";
    } else if (entered.status().code() ==
               raftkv::Status::Code::kFailedPrecondition) {
      o.setup_notes =
          "network: NO private namespace (" + entered.status().message() + ")";
    } else {
      std::cerr << "raftkv-jepsen: network namespace: "
                << entered.status().ToString() << std::endl;
      return 2;
    }
  } else {
    o.setup_notes = "network: NO private namespace (--netns=false)";
  }
  if (network == nullptr) {
    bool dropped = false;
    for (const char* k : {"partition", "partition-halves", "partition-leader",
                          "partition-ring"}) {
      dropped = o.nemesis_kinds.erase(k) > 0 || dropped;
    }
    o.setup_notes +=
        "; every node on 127.0.0.1 with its own ports (root loopback)";
    if (dropped) {
      o.setup_notes +=
          "; partition nemesis DISABLED (it needs root and a private "
          "namespace), process nemeses only";
    }
    std::cerr << "raftkv-jepsen: WARNING: " << o.setup_notes << std::endl;
  }

  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  return RunTest(o, network.get(), &g_interrupted);
}
