// raftkv-soak: the steadiness checks of docs/steadiness.md against a real
// three-node cluster on loopback (LocalCluster: raftkvd processes with data
// on disk). It loads --keys keys of --value_bytes, then, each bounded in
// time:
//   wipe       kill a follower, delete its data dir, start it again under a
//              steady client load: time until it takes part again and has
//              caught up, client errors, leader changes, the longest write,
//              throughput and the longest event-loop stall meanwhile;
//   saturate   --saturate_s of saturating writes over the key space: client
//              errors, leader changes, the longest event-loop stall;
//   memory     every node's peak RSS (VmHWM) over all of it;
//   restart    stop every node, start them again: time until a write is
//              acknowledged;
//   crash      the same after kill -9 of every node (recovery from the
//              RocksDB WAL);
//   join       under a steady client load, `member add` a fourth node and
//              start it with --join: time until it has caught up, until it
//              is a voter and counts in quorums; client errors, leader
//              changes, the longest write, the longest event-loop stall and
//              every node's peak RSS meanwhile; then `member remove` it, so
//              later checks see the three founding nodes;
//   watch      --watch_s of saturating writes while --watchers watches of
//              the whole key space (on every member in turn) and
//              --watch_keys single-key watches follow them and
//              --leases leases are kept alive by one client: every
//              whole-space watch saw every revision once, in order; every
//              lease and its key lived; client errors, leader changes, the
//              longest write and event-loop stall, every node's RSS.
// With --front_door=etcd every client operation of the checks (the write
// load, the watches, the leases, the restart checks' first write, the
// reads of the watch check) goes through etcd's v3 API over gRPC
// (tools/soak_etcd.h) to the nodes' --listen_etcd listeners instead of the
// native protocol; observing the cluster (status, members, stalls, RSS)
// stays native.
// One line per check with its figure, its target and ok/FAIL; exit 1 if a
// check failed. Progress goes to stderr. Only ever signals the processes it
// started; talks to 127.0.0.1 only.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/kv.pb.h"
#include "tools/local_cluster.h"
#include "tools/proc_stats.h"
#include "tools/soak_etcd.h"
#include "tools/soak_front_door.h"

DEFINE_uint64(keys, 1000000, "Keys loaded and written over.");
DEFINE_uint32(value_bytes, 256, "Value size.");
DEFINE_uint32(load_clients, 8, "Clients loading the keys.");
DEFINE_uint32(load_inflight, 64, "Writes in flight per loading client.");
DEFINE_uint32(steady_clients, 4, "Clients of the steady load (wipe check).");
DEFINE_uint32(steady_inflight, 4, "Writes in flight per steady client.");
DEFINE_uint32(saturate_s, 300, "Seconds of saturating writes.");
DEFINE_uint32(wipe_timeout_s, 120, "Longest wait for the wiped node.");
DEFINE_uint32(join_timeout_s, 180,
              "Longest wait for the joining node to count in quorums.");
DEFINE_uint64(join_margin_entries, 100,
              "The joining node has caught up when its applied index is "
              "within this many entries of the leader's commit index.");
DEFINE_string(server_flags, "", "Extra raftkvd flags, space separated.");
DEFINE_uint32(watch_s, 60, "Seconds of saturating writes (watch check).");
DEFINE_uint32(watchers, 30,
              "Watches of the whole key space (watch check), spread over the "
              "members.");
DEFINE_uint32(watch_keys, 1000, "Single-key watches (watch check).");
DEFINE_uint32(leases, 1000, "Leases kept alive by one client (watch check).");
DEFINE_string(checks, "wipe,saturate,restart,crash,join,watch",
              "Which checks to run after loading (comma separated).");
DEFINE_string(front_door, "native",
              "How the checks' clients reach the cluster: native (raftkv's "
              "protocol and client library) or etcd (etcd's v3 API over "
              "gRPC, on --listen_etcd).");

namespace raftkv {
namespace {

using Clock = std::chrono::steady_clock;
using soak::FrontDoor;
using soak::Running;
using soak::WatchSpec;
using soak::Writer;
using std::chrono::milliseconds;

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool failed_any = false;
// Nodes the join check added and removed again: no check restarts them.
std::set<int> removed_nodes;

void Check(const std::string& name, const std::string& figure,
           const std::string& target, bool ok) {
  std::printf("soak: %-34s %-44s target %-22s %s\n", name.c_str(),
              figure.c_str(), target.c_str(), ok ? "ok" : "FAIL");
  std::fflush(stdout);
  if (!ok) failed_any = true;
}

std::string Format(const char* fmt, double v) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

// Watches the cluster every 100 ms: leader changes (a node reporting a new
// term or another leader; from the nodes there were when it started), the
// worst event-loop stall, each process's peak RSS (VmHWM; a restarted
// process starts afresh, the peak is kept) and the highest RSS sampled
// since ResetSampledRss().
class Monitor {
 public:
  explicit Monitor(LocalCluster* cluster) : cluster_(cluster) {
    client_ = cluster->NewClient(milliseconds(500));
    thread_ = std::thread([this] { Loop(); });
  }
  ~Monitor() {
    stop_ = true;
    thread_.join();
  }
  // Leader changes seen since the last call.
  uint64_t TakeLeaderChanges() { return changes_.exchange(0); }
  // The longest event-loop stall of any node since ResetStall(), and how
  // much of it that node's loop waited for a CPU (-1: unknown).
  struct Stall {
    uint64_t ms = 0;
    int64_t cpu_wait_ms = -1;
  };
  Stall max_stall() {
    std::lock_guard<std::mutex> lock(mu_);
    return max_stall_;
  }
  void ResetStall() {
    std::lock_guard<std::mutex> lock(mu_);
    max_stall_ = Stall();
  }
  // Merges a stall seen elsewhere (a node the monitor does not poll).
  void NoteStall(Stall stall) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stall.ms > max_stall_.ms) max_stall_ = stall;
  }
  uint64_t peak_kb(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    return id < static_cast<int>(peak_kb_.size()) ? peak_kb_[id] : 0;
  }
  // The highest VmRSS of node `id` sampled since ResetSampledRss().
  uint64_t sampled_kb(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    return id < static_cast<int>(sampled_kb_.size()) ? sampled_kb_[id] : 0;
  }
  void ResetSampledRss() {
    std::lock_guard<std::mutex> lock(mu_);
    sampled_kb_.assign(sampled_kb_.size(), 0);
  }
  // Runs `change` (LocalCluster::AddNode, Start, ... of a node the monitor
  // may be reading) while the monitor does not read the cluster.
  void ChangeCluster(const std::function<void()>& change) {
    std::lock_guard<std::mutex> lock(cluster_mu_);
    change();
  }
  void Pause(bool paused) { paused_ = paused; }

 private:
  void Loop() {
    while (!stop_) {
      std::this_thread::sleep_for(milliseconds(100));
      SampleRss();
      if (paused_) continue;
      uint64_t leader = 0, term = 0;
      for (const NodeInfo& n : client_->ClusterStatus()) {
        if (!n.error.ok()) continue;
        std::lock_guard<std::mutex> lock(mu_);
        if (n.loop_stall_recent_ms > max_stall_.ms) {
          max_stall_ = {n.loop_stall_recent_ms,
                        n.loop_stall_recent_cpu_wait_ms};
        }
        if (n.term > term || (n.term == term && n.leader_id != 0)) {
          term = std::max(term, n.term);
          if (n.leader_id != 0) leader = n.leader_id;
        }
      }
      if (term == 0) continue;
      if (last_term_ != 0 &&
          (term != last_term_ ||
           (leader != 0 && last_leader_ != 0 && leader != last_leader_))) {
        ++changes_;
        std::fprintf(stderr, "soak: leader change: term %llu leader %llu\n",
                     static_cast<unsigned long long>(term),
                     static_cast<unsigned long long>(leader));
      }
      last_term_ = term;
      if (leader != 0) last_leader_ = leader;
    }
  }

  void SampleRss() {
    std::lock_guard<std::mutex> cluster_lock(cluster_mu_);
    for (int id = 1; id <= cluster_->size(); ++id) {
      if (!cluster_->running(id)) continue;
      const pid_t pid = cluster_->pid(id);
      const uint64_t hwm = ProcStatusKb(pid, "VmHWM");
      const uint64_t rss = ProcStatusKb(pid, "VmRSS");
      std::lock_guard<std::mutex> lock(mu_);
      if (peak_kb_.size() <= static_cast<size_t>(id)) {
        peak_kb_.resize(id + 1, 0);
        sampled_kb_.resize(id + 1, 0);
      }
      peak_kb_[id] = std::max(peak_kb_[id], hwm);
      sampled_kb_[id] = std::max(sampled_kb_[id], rss);
    }
  }

  LocalCluster* cluster_;
  std::mutex cluster_mu_;  // held while reading cluster_'s process table
  std::unique_ptr<Client> client_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> paused_{false};
  std::atomic<uint64_t> changes_{0};
  Stall max_stall_;  // guarded by mu_
  uint64_t last_term_ = 0, last_leader_ = 0;
  std::mutex mu_;
  std::vector<uint64_t> peak_kb_;     // by node id; guarded by mu_
  std::vector<uint64_t> sampled_kb_;  // by node id; guarded by mu_
  std::thread thread_;
};

// The nodes a check's clients use: every node but those the join check
// removed.
std::vector<int> Members(const LocalCluster& cluster) {
  std::vector<int> out;
  for (int id = 1; id <= cluster.size(); ++id) {
    if (removed_nodes.count(id) == 0) out.push_back(id);
  }
  return out;
}

// A native Client as a load's writer.
class NativeWriter : public Writer {
 public:
  explicit NativeWriter(std::unique_ptr<Client> client)
      : client_(std::move(client)) {}
  void PutAsync(const std::string& key, const std::string& value,
                std::function<void(Status)> done) override {
    client_->PutAsync(key, value,
                      [done = std::move(done)](StatusOr<int64_t> r) {
                        done(r.ok() ? Status::OK() : r.status());
                      });
  }

 private:
  std::unique_ptr<Client> client_;
};

// Watchers or lease keepers with the clients they run on (those last).
template <class T>
class NativeRunning : public Running {
 public:
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::unique_ptr<T>> running;  // destroyed first
};

// The checks' clients through raftkv's own protocol and client library
// (which retries, redirects and resumes by itself).
class NativeFrontDoor : public FrontDoor {
 public:
  explicit NativeFrontDoor(const LocalCluster& cluster) : cluster_(cluster) {}
  const char* name() const override { return "native"; }
  // The client library retries an interrupted write under its session.
  bool LostWithNode(const Status&, int) const override { return false; }

  std::unique_ptr<Writer> NewWriter(uint32_t,
                                    const std::vector<int>&) override {
    return std::make_unique<NativeWriter>(
        cluster_.NewClient(std::chrono::seconds(10)));
  }
  Status PutUntilAcked(const std::string& key, const std::string& value,
                       milliseconds within) override {
    auto r = cluster_.NewClient(within)->Put(key, value);
    return r.ok() ? Status::OK() : r.status();
  }
  StatusOr<int64_t> Revision() override {
    kv::RangeRequest one;
    one.set_key("key/");  // no such key: the header is the answer
    auto r = Reader().Range(one);
    if (!r.ok()) return r.status();
    return r->header().revision();
  }
  StatusOr<uint64_t> CountPresent(
      const std::vector<std::string>& keys) override {
    uint64_t present = 0;
    for (const std::string& key : keys) {
      if (Reader().Get(key).ok()) ++present;
    }
    return present;
  }
  Status Delete(const std::vector<std::string>& keys) override {
    Status out;
    for (const std::string& key : keys) {
      auto r = Reader().Delete(key);
      if (!r.ok()) out = r.status();
    }
    return out;
  }
  std::unique_ptr<Running> KeepLeases(const std::vector<std::string>& keys,
                                      int64_t ttl_s,
                                      std::function<void(Status)> on_lost,
                                      size_t* granted) override {
    auto out = std::make_unique<NativeRunning<LeaseKeeper>>();
    out->clients.push_back(cluster_.NewClient(std::chrono::seconds(30)));
    Client& client = *out->clients.back();
    *granted = 0;
    for (const std::string& key : keys) {
      auto lease = client.LeaseGrant(ttl_s);
      if (!lease.ok()) break;
      if (!client.Put(key, "up", PutOptions{.lease = lease->id}).ok()) break;
      ++*granted;
      out->running.push_back(client.KeepAlive(lease->id, lease->ttl, on_lost));
    }
    return out;
  }
  // A client per member, each holding that member's watches.
  std::unique_ptr<Running> Watch(std::vector<WatchSpec> specs) override {
    auto out = std::make_unique<NativeRunning<Watcher>>();
    std::map<int, Client*> of;
    for (WatchSpec& spec : specs) {
      Client*& c = of[spec.member];
      if (c == nullptr) {
        out->clients.push_back(
            cluster_.NewClientOf(spec.member, std::chrono::seconds(30)));
        c = out->clients.back().get();
      }
      WatchOptions options;
      options.range_end = spec.range_end;
      options.start_revision = spec.start_revision;
      out->running.push_back(
          c->Watch(spec.key, options, std::move(spec.on_update)));
    }
    return out;
  }

 private:
  Client& Reader() {
    if (!reader_) reader_ = cluster_.NewClient(std::chrono::seconds(30));
    return *reader_;
  }

  const LocalCluster& cluster_;
  std::unique_ptr<Client> reader_;
};

// A closed-loop write load: `clients` clients (writers of `door`, spread
// over the cluster's members) with `inflight` writes each, keys drawn from
// `keys()` until Stop().
class Load {
 public:
  struct Stats {
    uint64_t acked = 0;
    uint64_t errors = 0;
    double max_ms = 0;
    std::string first_error;
    std::vector<Status> error_list;  // the first 1,000 errors
  };

  Load(FrontDoor& door, const LocalCluster& cluster, uint32_t clients,
       uint32_t inflight, std::function<std::string()> keys)
      : keys_(std::move(keys)) {
    // Random bytes: values that do not compress, so the data set on disk
    // and in a snapshot is as large as the user's.
    std::mt19937_64 rng(7);
    values_.resize(256);
    for (std::string& v : values_) {
      v.resize(FLAGS_value_bytes);
      for (char& c : v) c = static_cast<char>(rng());
    }
    const std::vector<int> members = Members(cluster);
    for (uint32_t i = 0; i < clients; ++i) {
      clients_.push_back(door.NewWriter(i, members));
    }
    active_ = static_cast<int>(clients * inflight);
    for (auto& c : clients_) {
      for (uint32_t i = 0; i < inflight; ++i) Issue(c.get());
    }
  }
  ~Load() {
    Stop();
    clients_.clear();  // waits for their last callbacks, before mu_ goes
  }

  void Stop() {
    stop_ = true;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return active_ == 0; });
  }
  Stats Take() {
    std::lock_guard<std::mutex> lock(mu_);
    Stats s = stats_;
    stats_ = Stats();
    return s;
  }

 private:
  void Issue(Writer* client) {
    if (stop_) {
      std::lock_guard<std::mutex> lock(mu_);
      if (--active_ == 0) cv_.notify_all();
      return;
    }
    const auto t0 = Clock::now();
    const std::string& value = values_[next_value_++ % values_.size()];
    client->PutAsync(keys_(), value, [this, client, t0](Status r) {
      const double ms = Seconds(Clock::now() - t0) * 1000;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (r.ok()) {
          ++stats_.acked;
          stats_.max_ms = std::max(stats_.max_ms, ms);
        } else {
          if (stats_.errors++ == 0) stats_.first_error = r.ToString();
          if (stats_.error_list.size() < 1000) stats_.error_list.push_back(r);
        }
      }
      Issue(client);
    });
  }

  std::function<std::string()> keys_;
  std::vector<std::string> values_;
  std::atomic<uint64_t> next_value_{0};
  std::vector<std::unique_ptr<Writer>> clients_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
  Stats stats_;
};

std::string Key(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "key/%010llu",
                static_cast<unsigned long long>(i));
  return buf;
}

std::function<std::string()> RandomKeys() {
  auto rng = std::make_shared<std::mt19937_64>(42);
  auto mu = std::make_shared<std::mutex>();
  return [rng, mu] {
    std::lock_guard<std::mutex> lock(*mu);
    return Key((*rng)() % FLAGS_keys);
  };
}

void LoadKeys(LocalCluster& cluster, FrontDoor& door) {
  const auto start = Clock::now();
  auto next = std::make_shared<std::atomic<uint64_t>>(0);
  Load load(door, cluster, FLAGS_load_clients, FLAGS_load_inflight,
            [next] { return Key(next->fetch_add(1) % FLAGS_keys); });
  uint64_t acked = 0, errors = 0;
  while (next->load() < FLAGS_keys) {
    std::this_thread::sleep_for(std::chrono::seconds(5));
    Load::Stats s = load.Take();
    acked += s.acked;
    errors += s.errors;
    std::fprintf(stderr, "soak: loading: %llu of %llu keys, %.0f writes/s\n",
                 static_cast<unsigned long long>(std::min(acked, FLAGS_keys)),
                 static_cast<unsigned long long>(FLAGS_keys), s.acked / 5.0);
  }
  load.Stop();
  const Load::Stats s = load.Take();
  acked += s.acked;
  errors += s.errors;
  const double secs = Seconds(Clock::now() - start);
  Check("load " + std::to_string(FLAGS_keys) + " keys",
        Format("%.0f s, ", secs) + Format("%.0f writes/s, ", acked / secs) +
            std::to_string(errors) + " errors",
        "0 errors", errors == 0);
}

NodeInfo StatusOf(const LocalCluster& cluster, int id) {
  ClientOptions options = cluster.client_options();
  options.endpoints = {cluster.client_address(id)};
  options.deadline = milliseconds(500);
  auto client = Client::Create(options);
  if (!client.ok()) return NodeInfo();
  return (*client)->ClusterStatus()[0];
}

// The longest event-loop stall any node logged between `from` and `to`
// (raftkvd logs every stall of 50 ms or more, with its CPU wait; glog's
// time stamps are local time to the microsecond). ms == 0: none logged.
Monitor::Stall LoggedStall(const LocalCluster& cluster,
                           std::chrono::system_clock::time_point from,
                           std::chrono::system_clock::time_point to) {
  Monitor::Stall worst;
  for (int id = 1; id <= cluster.size(); ++id) {
    std::ifstream log(cluster.log_path(id));
    std::string line;
    while (std::getline(log, line)) {
      const size_t at = line.find("event loop stalled: timers ran ");
      if (at == std::string::npos || line.size() < 25) continue;
      std::tm tm{};
      int usec = 0;
      if (std::sscanf(line.c_str() + 1, "%4d%2d%2d %2d:%2d:%2d.%6d",
                      &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                      &tm.tm_min, &tm.tm_sec, &usec) != 7) {
        continue;
      }
      tm.tm_year -= 1900;
      tm.tm_mon -= 1;
      tm.tm_isdst = -1;
      const auto when =
          std::chrono::system_clock::from_time_t(std::mktime(&tm)) +
          std::chrono::microseconds(usec);
      if (when < from || when > to) continue;
      unsigned long long ms = 0;
      long long cpu = -1;
      const char* rest = line.c_str() + at + 31;
      if (std::sscanf(rest, "%llu ms late (%lld ms of it waiting", &ms, &cpu) <
          1) {
        continue;
      }
      if (ms > worst.ms) worst = {ms, cpu};
    }
  }
  return worst;
}

// One line for the longest loop stall of a check's window [from, now]:
// from the nodes' logs when a stall of 50 ms or more happened in it
// (exact), otherwise the worst the nodes reported while polled (their worst
// of the last minute, so an upper bound that may reach back before `from`).
// What a steady load saw while a check's event took place: `during` over
// `secs` seconds, `before` over the 3 s before it. If the event killed node
// `killed` (0: none), writes the front door lost with their connection to
// it are counted apart: through etcd's API a put is at-most-once, so one in
// flight on a connection that breaks fails, applied or not, and the client
// may not retry it (natively the session retries it exactly once, so none
// is lost). There can be no more of them than the load had in flight.
void CheckSteadyLoad(uint64_t leader_changes, const Load::Stats& during,
                     double secs, const Load::Stats& before,
                     const FrontDoor& door, int killed) {
  Check("  leader changes meanwhile", std::to_string(leader_changes), "0",
        leader_changes == 0);
  uint64_t lost = 0;
  std::string first_other;
  for (const Status& e : during.error_list) {
    if (killed != 0 && door.LostWithNode(e, killed)) {
      ++lost;
    } else if (first_other.empty()) {
      first_other = e.ToString();
    }
  }
  const uint64_t others = during.errors - lost;
  const uint64_t in_flight =
      uint64_t{FLAGS_steady_clients} * FLAGS_steady_inflight;
  if (lost == 0) {
    Check("  client errors meanwhile",
          std::to_string(during.errors) +
              (during.errors ? " (" + during.first_error + ")" : ""),
          "0", during.errors == 0);
  } else {
    Check("  client errors meanwhile",
          std::to_string(others) + (others ? " (" + first_other + ")" : "") +
              ", and " + std::to_string(lost) + " in flight to node " +
              std::to_string(killed) + " when killed",
          "0, and those <= " + std::to_string(in_flight),
          others == 0 && lost <= in_flight);
  }
  Check("  longest write meanwhile", Format("%.0f ms", during.max_ms),
        "< 400 ms", during.max_ms < 400);
  Check("  writes meanwhile",
        Format("%.0f writes/s", during.acked / secs) +
            Format(" (before: %.0f)", before.acked / 3.0),
        "flowing", during.acked > 0);
}

void CheckLoopStall(const std::string& name, const LocalCluster& cluster,
                    Monitor& monitor,
                    std::chrono::system_clock::time_point from) {
  Monitor::Stall stall =
      LoggedStall(cluster, from, std::chrono::system_clock::now());
  std::string figure;
  if (stall.ms == 0) {
    stall = monitor.max_stall();
    if (stall.ms >= 50) {
      // What was polled happened before the window: none of 50 ms or
      // more was logged within it.
      Check(name, "under 50 ms (none logged)", "< 50 ms", true);
      return;
    }
  }
  figure = std::to_string(stall.ms) + " ms";
  if (stall.cpu_wait_ms >= 0) {
    figure += " (" + std::to_string(stall.cpu_wait_ms) +
              " ms of it waiting for a CPU)";
  }
  Check(name, figure, "< 50 ms", stall.ms < 50);
}

void CheckWipe(LocalCluster& cluster, Monitor& monitor, FrontDoor& door) {
  const int leader = cluster.WaitForLeader();
  const int wiped = leader == 3 ? 2 : 3;
  Load load(door, cluster, FLAGS_steady_clients, FLAGS_steady_inflight,
            RandomKeys());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const Load::Stats before = load.Take();
  monitor.TakeLeaderChanges();
  std::fprintf(stderr, "soak: steady load %.0f writes/s; wiping node %d\n",
               before.acked / 3.0, wiped);
  monitor.ResetStall();
  const auto wall_start = std::chrono::system_clock::now();
  const auto start = Clock::now();
  monitor.ChangeCluster([&] {
    cluster.Kill(wiped);
    std::filesystem::remove_all(cluster.data_dir(wiped));
    cluster.Start(wiped);
  });
  bool caught_up = false;
  uint64_t target = 0;
  const auto until = start + std::chrono::seconds(FLAGS_wipe_timeout_s);
  while (Clock::now() < until) {
    const NodeInfo l = StatusOf(cluster, leader);
    const NodeInfo w = StatusOf(cluster, wiped);
    if (target == 0 && w.error.ok() && w.rejoin == "rejoining") {
      target = l.commit_index;  // what it must reach: the data at wipe time
    }
    if (target != 0 && w.error.ok() && w.rejoin.empty() &&
        w.applied_index >= target) {
      caught_up = true;
      break;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  const double secs = Seconds(Clock::now() - start);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const Load::Stats during = load.Take();
  load.Stop();
  const uint64_t changes = monitor.TakeLeaderChanges();
  Check("wiped node catches up", Format("%.1f s", secs), "< 10 s",
        caught_up && secs < 10);
  CheckSteadyLoad(changes, during, secs + 2, before, door, wiped);
  CheckLoopStall("  longest loop stall meanwhile", cluster, monitor,
                 wall_start);
}

// What a run of saturating writes over the key space got.
struct Saturation {
  uint64_t acked = 0, errors = 0;
  double max_ms = 0;  // the longest write
  std::string first_error;
  double secs = 0;
};

// Saturating writes for `seconds`, with a progress line every 10 s: the
// figures of the last 10 s, then what `more` adds.
Saturation Saturate(LocalCluster& cluster, Monitor& monitor, FrontDoor& door,
                    uint32_t seconds, const char* doing,
                    const std::function<std::string()>& more) {
  Saturation t;
  Load load(door, cluster, FLAGS_load_clients, FLAGS_load_inflight,
            RandomKeys());
  const auto start = Clock::now();
  auto add = [&t](const Load::Stats& s) {
    t.acked += s.acked;
    t.errors += s.errors;
    t.max_ms = std::max(t.max_ms, s.max_ms);
    if (t.first_error.empty()) t.first_error = s.first_error;
  };
  while (Clock::now() - start < std::chrono::seconds(seconds)) {
    std::this_thread::sleep_for(std::chrono::seconds(10));
    const Load::Stats s = load.Take();
    add(s);
    std::fprintf(stderr,
                 "soak: %s: %.0f s, %.0f writes/s, %llu errors, %sloop stall "
                 "%llu ms\n",
                 doing, Seconds(Clock::now() - start), s.acked / 10.0,
                 static_cast<unsigned long long>(t.errors), more().c_str(),
                 static_cast<unsigned long long>(monitor.max_stall().ms));
  }
  load.Stop();
  add(load.Take());
  t.secs = Seconds(Clock::now() - start);
  return t;
}

void CheckSaturate(LocalCluster& cluster, Monitor& monitor, FrontDoor& door) {
  monitor.TakeLeaderChanges();
  monitor.ResetStall();
  const auto wall_start = std::chrono::system_clock::now();
  const Saturation t = Saturate(cluster, monitor, door, FLAGS_saturate_s,
                                "saturating", [] { return std::string(); });
  const uint64_t acked = t.acked, errors = t.errors;
  const double max_ms = t.max_ms, secs = t.secs;
  const std::string& first_error = t.first_error;
  const uint64_t changes = monitor.TakeLeaderChanges();
  Check("saturating writes " + std::to_string(FLAGS_saturate_s) + " s",
        Format("%.0f writes/s, ", acked / secs) +
            Format("longest %.0f ms", max_ms),
        "", true);
  Check("  leader changes", std::to_string(changes), "0", changes == 0);
  Check("  client errors",
        std::to_string(errors) + (errors ? " (" + first_error + ")" : ""), "0",
        errors == 0);
  CheckLoopStall("  longest event-loop stall", cluster, monitor, wall_start);
}

// Node `id` as `member list` on node `asked` reports it: "voter",
// "learner", "absent", or "" if `asked` did not answer.
std::string RoleOf(const LocalCluster& cluster, int asked, int id) {
  ClientOptions options = cluster.client_options();
  options.endpoints = {cluster.client_address(asked)};
  options.deadline = milliseconds(500);
  auto client = Client::Create(options);
  if (!client.ok()) return "";
  auto list = (*client)->MemberList();
  if (!list.ok()) return "";
  for (const MemberInfo& m : *list) {
    if (m.id == static_cast<uint64_t>(id)) {
      return m.learner ? "learner" : "voter";
    }
  }
  return "absent";
}

// Seconds from `start` to `at`, "-" if it never came.
std::string SinceOrNever(Clock::time_point start,
                         std::optional<Clock::time_point> at) {
  return at ? Format("%.1f s", Seconds(*at - start)) : "-";
}

// Adds a fourth node under a steady load (`member add` without --learner,
// then started with --join), times its catch-up and promotion, and removes
// it again. Counting in quorums takes both: the leader's configuration has
// it as a voter, and it has left its new incarnation (raft/rejoin.h: until
// then it neither votes nor counts towards a commit).
void CheckJoin(LocalCluster& cluster, Monitor& monitor, FrontDoor& door) {
  const int leader = cluster.WaitForLeader();
  const int follower = leader == 3 ? 2 : 3;  // for comparison
  auto admin = cluster.NewClient(std::chrono::seconds(30));
  Load load(door, cluster, FLAGS_steady_clients, FLAGS_steady_inflight,
            RandomKeys());
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const Load::Stats before = load.Take();
  monitor.TakeLeaderChanges();
  int id = 0;
  monitor.ChangeCluster([&] { id = cluster.AddNode(); });
  std::fprintf(stderr, "soak: steady load %.0f writes/s; adding node %d\n",
               before.acked / 3.0, id);
  monitor.ResetStall();
  monitor.ResetSampledRss();
  const auto wall_start = std::chrono::system_clock::now();
  const auto start = Clock::now();
  auto added = admin->MemberAdd(id, cluster.peer_address(id),
                                cluster.client_address(id), /*learner=*/false);
  if (!added.ok()) {
    load.Stop();
    Check("join: member add", added.status().ToString(), "ok", false);
    return;
  }
  const double add_secs = Seconds(Clock::now() - start);
  monitor.ChangeCluster([&] { cluster.Start(id); });
  std::optional<Clock::time_point> caught_up, voter, counts;
  int exited = -1;
  uint64_t commit_at_add = 0, applied = 0, commit = 0;
  int polls = 0;
  const auto until = start + std::chrono::seconds(FLAGS_join_timeout_s);
  while (Clock::now() < until && !(caught_up && counts)) {
    std::this_thread::sleep_for(milliseconds(100));
    monitor.ChangeCluster([&] { exited = cluster.ExitedWith(id); });
    if (exited >= 0) break;
    const NodeInfo l = StatusOf(cluster, leader);  // first: n is newer
    const NodeInfo n = StatusOf(cluster, id);
    const NodeInfo f = StatusOf(cluster, follower);
    if (commit_at_add == 0 && l.error.ok()) commit_at_add = l.commit_index;
    if (!l.error.ok() || !n.error.ok()) continue;
    monitor.NoteStall(
        {n.loop_stall_recent_ms, n.loop_stall_recent_cpu_wait_ms});
    applied = n.applied_index;
    commit = l.commit_index;
    const auto now = Clock::now();
    const uint64_t lag = commit > applied ? commit - applied : 0;
    if (++polls % 10 == 0) {
      const uint64_t f_lag = f.error.ok() && commit > f.applied_index
                                 ? commit - f.applied_index
                                 : 0;
      std::fprintf(stderr,
                   "soak: joining: %.0f s, node %d %s, applied %llu entries "
                   "behind the leader's commit (node %d: %llu)\n",
                   Seconds(now - start), id, n.role.c_str(),
                   static_cast<unsigned long long>(lag), follower,
                   static_cast<unsigned long long>(f_lag));
    }
    if (!caught_up && n.applied_index >= commit_at_add &&
        n.applied_index + FLAGS_join_margin_entries >= l.commit_index) {
      caught_up = now;
      std::fprintf(stderr, "soak: node %d caught up after %.1f s\n", id,
                   Seconds(now - start));
    }
    if (!voter && RoleOf(cluster, leader, id) == "voter") {
      voter = now;
      std::fprintf(stderr, "soak: node %d a voter after %.1f s\n", id,
                   Seconds(now - start));
    }
    if (voter && !counts && n.rejoin.empty()) counts = now;
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double secs = Seconds(Clock::now() - start);
  const Load::Stats during = load.Take();
  load.Stop();
  const uint64_t changes = monitor.TakeLeaderChanges();

  Check("joining node catches up",
        SinceOrNever(start, caught_up) +
            (caught_up ? ""
                       : " (applied " + std::to_string(applied) +
                             " of commit " + std::to_string(commit) + ")"),
        Format("reported; < %.0f s", FLAGS_join_timeout_s),
        caught_up.has_value());
  Check("  member add to a voter", SinceOrNever(start, voter), "reported",
        voter.has_value());
  Check("  member add to counting in quorums", SinceOrNever(start, counts),
        "reported", counts.has_value());
  Check("  member add answered", Format("%.2f s", add_secs), "", true);
  if (exited >= 0) {
    Check("  joining node running", "exited with " + std::to_string(exited),
          "running", false);
  }
  CheckSteadyLoad(changes, during, secs, before, door, /*killed=*/0);
  CheckLoopStall("  longest loop stall meanwhile", cluster, monitor,
                 wall_start);
  // Sampled every 100 ms (VmRSS), so the peak within the join; the new
  // node's VmHWM is exact, its process being as old as the join.
  for (int i = 1; i <= cluster.size(); ++i) {
    const double mb = monitor.sampled_kb(i) / 1024.0;
    std::string figure = Format("%.0f MB", mb);
    if (i == id) {
      figure += Format(" (VmHWM %.0f MB)", monitor.peak_kb(i) / 1024.0);
    }
    Check("  node " + std::to_string(i) + " peak RSS meanwhile", figure,
          "< 250 MB", mb < 250);
  }

  // Back to the three founding nodes: the removed node stops by itself.
  auto removed = admin->MemberRemove(id);
  const auto remove_until = Clock::now() + std::chrono::seconds(30);
  int code = -1;
  while (removed.ok() && Clock::now() < remove_until) {
    monitor.ChangeCluster([&] { code = cluster.ExitedWith(id); });
    if (code >= 0 || !cluster.running(id)) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  const bool stopped = removed.ok() && (code >= 0 || !cluster.running(id));
  if (removed.ok()) removed_nodes.insert(id);
  if (!stopped) monitor.ChangeCluster([&] { cluster.Kill(id); });
  Check("  member remove, node stops",
        removed.ok() ? (stopped ? "exit code " + std::to_string(code)
                                : "still running after 30 s (killed)")
                     : removed.status().ToString(),
        "ok", stopped);
}

// What the whole-key-space watches of the watch check saw.
class WatchTally {
 public:
  // Counts one update; an update that repeats or skips a revision, or
  // goes back, is a fault.
  void Add(size_t watcher, const StatusOr<WatchUpdate>& update) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!update.ok()) {
      if (first_fault_.empty()) first_fault_ = update.status().ToString();
      ++faults_;
      return;
    }
    int64_t& last = last_[watcher];
    for (const WatchEvent& e : update->events) {
      const int64_t rev = e.kv.mod_revision;
      // Every revision of the run is one put of a key under key/.
      if (last != 0 && rev != last + 1) {
        if (first_fault_.empty()) {
          first_fault_ = Format("watch %zu: revision ", watcher) +
                         std::to_string(rev) + " after " + std::to_string(last);
        }
        ++faults_;
      }
      last = rev;
      ++events_;
    }
  }
  uint64_t events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  uint64_t faults(std::string* first) {
    std::lock_guard<std::mutex> lock(mu_);
    *first = first_fault_;
    return faults_;
  }
  // The lowest revision every watch has delivered through.
  int64_t lowest() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t low = INT64_MAX;
    for (const auto& [w, rev] : last_) low = std::min(low, rev);
    return last_.empty() ? 0 : low;
  }

 private:
  std::mutex mu_;
  std::map<size_t, int64_t> last_;
  uint64_t events_ = 0;
  uint64_t faults_ = 0;
  std::string first_fault_;
};

// Saturating writes with watches and leases kept alive: the cluster must
// stay as steady as without them, and the watches and leases must be
// exact.
void CheckWatch(LocalCluster& cluster, Monitor& monitor, FrontDoor& door) {
  monitor.TakeLeaderChanges();
  monitor.ResetStall();
  monitor.ResetSampledRss();
  std::vector<uint64_t> rss_before(cluster.size() + 1);
  for (int i = 1; i <= cluster.size(); ++i) {
    rss_before[i] = ProcStatusKb(cluster.pid(i), "VmRSS");
  }
  // Leases first (their puts are revisions outside the key space).
  std::atomic<uint64_t> leases_lost{0};
  std::vector<std::string> lease_keys;
  for (uint32_t i = 0; i < FLAGS_leases; ++i) {
    lease_keys.push_back("lease/" + std::to_string(i));
  }
  size_t granted = 0;
  std::unique_ptr<Running> leases = door.KeepLeases(
      lease_keys, 10, [&leases_lost](Status) { ++leases_lost; }, &granted);
  lease_keys.resize(granted);
  // Watches from the revision after this one, spread over the members.
  const auto read_start = Clock::now();
  auto at_start = door.Revision();
  const int64_t start_revision = at_start.ok() ? *at_start + 1 : 0;
  std::fprintf(
      stderr, "soak: revision %lld read in %.1f s%s\n",
      static_cast<long long>(start_revision - 1),
      Seconds(Clock::now() - read_start),
      at_start.ok() ? "" : (": " + at_start.status().ToString()).c_str());
  const std::vector<int> members = Members(cluster);
  WatchTally tally;
  std::atomic<uint64_t> key_events{0};
  std::vector<WatchSpec> specs;
  for (uint32_t i = 0; i < FLAGS_watchers; ++i) {
    WatchSpec spec;
    spec.key = "key/";
    spec.range_end = PrefixRangeEnd("key/");
    spec.start_revision = start_revision;
    spec.member = members[i % members.size()];
    spec.own_stream = true;
    spec.on_update = [&tally, i](StatusOr<WatchUpdate> u) { tally.Add(i, u); };
    specs.push_back(std::move(spec));
  }
  std::mt19937_64 rng(7);
  for (uint32_t i = 0; i < FLAGS_watch_keys; ++i) {
    WatchSpec spec;
    spec.key = Key(rng() % FLAGS_keys);
    spec.start_revision = start_revision;
    spec.member = members[i % members.size()];
    spec.on_update = [&key_events](const StatusOr<WatchUpdate>& u) {
      if (u.ok()) key_events += u->events.size();
    };
    specs.push_back(std::move(spec));
  }
  std::unique_ptr<Running> watches = door.Watch(std::move(specs));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // created
  const auto wall_start = std::chrono::system_clock::now();
  const auto start = Clock::now();
  const Saturation t =
      Saturate(cluster, monitor, door, FLAGS_watch_s, "watching", [&] {
        return std::to_string(tally.events()) + " events delivered, " +
               std::to_string(leases_lost.load()) + " leases lost, ";
      });
  const uint64_t acked = t.acked, errors = t.errors;
  const double max_ms = t.max_ms, secs = t.secs;
  const std::string& first_error = t.first_error;
  // The watches catch up with the last write.
  const auto read_final = Clock::now();
  auto now = door.Revision();
  const int64_t final_revision = now.ok() ? *now : 0;
  std::fprintf(stderr, "soak: final revision %lld read in %.1f s%s\n",
               static_cast<long long>(final_revision),
               Seconds(Clock::now() - read_final),
               now.ok() ? "" : (": " + now.status().ToString()).c_str());
  const auto until = Clock::now() + std::chrono::seconds(120);
  while (tally.lowest() < final_revision && Clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(200));
  }
  const double lag_s = Seconds(Clock::now() - start) - secs;
  const uint64_t changes = monitor.TakeLeaderChanges();
  Check("writes with watches " + std::to_string(FLAGS_watch_s) + " s",
        Format("%.0f writes/s, ", acked / secs) +
            Format("longest %.0f ms", max_ms),
        "", true);
  Check("  leader changes", std::to_string(changes), "0", changes == 0);
  Check("  client errors",
        std::to_string(errors) + (errors ? " (" + first_error + ")" : ""), "0",
        errors == 0);
  std::string fault;
  const uint64_t faults = tally.faults(&fault);
  const uint64_t resumed = watches->resumed();
  Check(
      "  whole-space watches (" + std::to_string(FLAGS_watchers) + ")",
      Format("%.0f events/s, ", tally.events() / secs) +
          Format("caught up %.1f s after", lag_s) +
          (resumed ? ", " + std::to_string(resumed) + " streams resumed" : "") +
          (now.ok() ? ""
                    : "; final revision unread: " + now.status().ToString()),
      "every revision once",
      faults == 0 && final_revision > 0 && tally.lowest() >= final_revision);
  if (faults > 0) Check("  first watch fault", fault, "none", false);
  Check("  single-key watch events (" + std::to_string(FLAGS_watch_keys) + ")",
        std::to_string(key_events.load()), "", true);
  auto counted = door.CountPresent(lease_keys);
  const uint64_t present = counted.ok() ? *counted : 0;
  Check("  leases kept alive (" + std::to_string(lease_keys.size()) + ")",
        std::to_string(leases_lost.load()) + " lost, " +
            std::to_string(present) + " keys present" +
            (counted.ok() ? "" : " (" + counted.status().ToString() + ")"),
        "0 lost, all present",
        leases_lost == 0 && present == lease_keys.size() &&
            lease_keys.size() == FLAGS_leases);
  CheckLoopStall("  longest event-loop stall", cluster, monitor, wall_start);
  for (int i = 1; i <= cluster.size(); ++i) {
    if (removed_nodes.count(i) != 0) continue;
    const double grown =
        (static_cast<double>(monitor.sampled_kb(i)) - rss_before[i]) / 1024.0;
    // Saturating writes alone grow it too (memtables, caches): the budget
    // is checked by the peak RSS line at the end.
    Check("  node " + std::to_string(i) + " RSS growth",
          Format("%.0f MB", grown), "", true);
  }
  watches.reset();
  leases.reset();
  (void)door.Delete(lease_keys);
}

// Stops every node (SIGTERM, or SIGKILL for a crash), starts them
// again and times the first acknowledged write. (A node the join check
// added and removed has exited: it stays down.)
void CheckRestart(LocalCluster& cluster, Monitor& monitor, FrontDoor& door,
                  bool crash) {
  monitor.Pause(true);
  std::vector<int> ids;
  monitor.ChangeCluster([&] {
    for (int id = 1; id <= cluster.size(); ++id) {
      if (removed_nodes.count(id) != 0) continue;
      ids.push_back(id);
      if (crash) {
        cluster.Kill(id);
      } else {
        cluster.Stop(id);
      }
    }
  });
  const auto start = Clock::now();
  monitor.ChangeCluster([&] {
    for (int id : ids) cluster.Start(id);
  });
  const Status r = door.PutUntilAcked(crash ? "after-crash" : "after-restart",
                                      "x", std::chrono::seconds(60));
  const double secs = Seconds(Clock::now() - start);
  Check(crash ? "whole-cluster kill -9 to serving"
              : "whole-cluster restart to serving",
        Format("%.1f s", secs) + (r.ok() ? "" : " " + r.ToString()), "< 5 s",
        r.ok() && secs < 5);
  monitor.Pause(false);
}

int Main() {
  for (const std::string& check : Split(FLAGS_checks, ',')) {
    if (check != "wipe" && check != "saturate" && check != "restart" &&
        check != "crash" && check != "join" && check != "watch") {
      std::fprintf(stderr, "raftkv-soak: unknown check '%s' (--checks)\n",
                   check.c_str());
      return 2;
    }
  }
  if (FLAGS_front_door != "native" && FLAGS_front_door != "etcd") {
    std::fprintf(stderr,
                 "raftkv-soak: --front_door is native or etcd, not '%s'\n",
                 FLAGS_front_door.c_str());
    return 2;
  }
  const bool etcd = FLAGS_front_door == "etcd";
  LocalClusterOptions options;
  options.nodes = 3;
  options.extra_flags = Split(FLAGS_server_flags, ' ');
  options.etcd_api = etcd;
  LocalCluster cluster(options);
  if (cluster.WaitForLeader() == 0) {
    std::fprintf(stderr, "raftkv-soak: no leader elected\n");
    return 2;
  }
  std::unique_ptr<FrontDoor> door;
  if (etcd) {
    door = soak::NewEtcdFrontDoor(cluster, Members(cluster));
  } else {
    door = std::make_unique<NativeFrontDoor>(cluster);
  }
  Monitor monitor(&cluster);
  std::fprintf(stderr, "soak: cluster up in %s; clients through the %s API\n",
               cluster.data_dir(1).c_str(), door->name());
  LoadKeys(cluster, *door);
  for (const std::string& check : Split(FLAGS_checks, ',')) {
    if (check == "wipe") CheckWipe(cluster, monitor, *door);
    if (check == "saturate") CheckSaturate(cluster, monitor, *door);
    if (check == "restart") {
      CheckRestart(cluster, monitor, *door, /*crash=*/false);
    }
    if (check == "crash") CheckRestart(cluster, monitor, *door, /*crash=*/true);
    if (check == "join") CheckJoin(cluster, monitor, *door);
    if (check == "watch") CheckWatch(cluster, monitor, *door);
  }
  for (int id = 1; id <= cluster.size(); ++id) {
    const double mb = monitor.peak_kb(id) / 1024.0;
    Check("node " + std::to_string(id) + " peak RSS", Format("%.0f MB", mb),
          "< 250 MB", mb < 250);
  }
  return failed_any ? 1 : 0;
}

}  // namespace
}  // namespace raftkv

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "raftkv-soak [--keys=1000000] [--saturate_s=300] [--checks=...]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  return raftkv::Main();
}
