// The watch workloads of raftkv-bench (see bench_watch.h).
#include "tools/bench_watch.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "tools/bench_report.h"
#include "tools/proc_stats.h"

namespace raftkv::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint64_t kSetupSeq = ~uint64_t{0};
constexpr uint64_t kMarkerSeq = ~uint64_t{0} - 1;
constexpr milliseconds kPoll{20};
constexpr milliseconds kProgressEvery{200};
constexpr uint64_t kMaxPutsInFlight = 1000;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch())
      .count();
}

double Ms(int64_t ns) { return ns / 1e6; }

// "watch/" padded with '0' to `size` bytes (at least one byte).
std::string WatchKey(size_t size) {
  std::string key = "watch/";
  key.resize(std::max<size_t>(1, size), '0');
  return key;
}

StatusOr<std::unique_ptr<Client>> NewClient(
    const std::vector<std::string>& endpoints) {
  ClientOptions options;
  options.endpoints = endpoints;
  options.deadline = std::chrono::seconds(30);
  return Client::Create(options);
}

// Waits until done() holds, calling progress() every kProgressEvery;
// gives up when count() has not moved for `idle`. Whether done() held.
bool WaitFor(const std::function<bool()>& done,
             const std::function<uint64_t()>& count, milliseconds idle,
             const std::function<void()>& progress) {
  uint64_t last = count();
  auto moved = Clock::now();
  auto drawn = Clock::now();
  while (!done()) {
    std::this_thread::sleep_for(kPoll);
    const auto now = Clock::now();
    if (progress && now - drawn >= kProgressEvery) {
      progress();
      drawn = now;
    }
    const uint64_t c = count();
    if (c != last) {
      last = c;
      moved = now;
    } else if (now - moved > idle) {
      return false;
    }
  }
  if (progress) progress();
  return true;
}

std::vector<double> Minus(const std::vector<double>& after,
                          const std::vector<double>& before) {
  std::vector<double> out;
  for (size_t i = 0; i < after.size() && i < before.size(); ++i) {
    out.push_back(after[i] - before[i]);
  }
  return out;
}

// What the watch callbacks of RunWatchBench write. Each stream's
// deliveries are written by that stream's Client's I/O thread only, and
// read once every watch is cancelled.
struct EventLog {
  struct Delivery {
    uint64_t seq;
    int64_t at_ns;
  };
  EventLog(uint32_t streams, uint64_t watchers)
      : per_stream(streams), marker_at(watchers) {}

  void Error(const Status& s) {
    if (errors++ == 0) {
      std::lock_guard<std::mutex> lock(mu);
      first_error = s.ToString();
    }
  }

  std::vector<std::vector<Delivery>> per_stream;
  std::vector<std::atomic<int64_t>> marker_at;  // per watch, 0: not yet
  std::atomic<uint64_t> markers{0};
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> unattributed{0};
  std::atomic<uint64_t> errors{0};
  std::mutex mu;
  std::string first_error;
};

// The puts of the events phase: send and acknowledgement times per put.
struct PutLog {
  explicit PutLog(uint64_t puts) : sent_ns(puts), acked_ns(puts) {}
  std::vector<int64_t> sent_ns;                // the pacing thread's
  std::vector<std::atomic<int64_t>> acked_ns;  // 0: not (yet) acknowledged
  std::atomic<uint64_t> answered{0};
  std::atomic<uint64_t> errors{0};
  std::mutex mu;
  std::string first_error;
};

// Sends the puts of the events phase: put i at start + i / rate (rate 0:
// each once the one before is answered).
void SendPuts(Client& writer, const std::string& key,
              const WatchBenchOptions& o, PutLog& log,
              const std::function<void()>& progress) {
  const auto start = Clock::now();
  auto drawn = start;
  for (uint64_t i = 0; i < o.puts; ++i) {
    if (o.put_rate > 0) {
      std::this_thread::sleep_until(
          start + std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(i / o.put_rate)));
      // The server refuses a session more unacknowledged writes than its
      // limit (4,096): past kMaxPutsInFlight the puts fall behind the
      // rate instead (each still timed from its own send).
      while (i - log.answered.load() >= kMaxPutsInFlight) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    log.sent_ns[i] = NowNs();
    auto done = [&log, i](StatusOr<int64_t> r) {
      const int64_t now = NowNs();
      if (r.ok()) {
        log.acked_ns[i] = now;
      } else if (log.errors++ == 0) {
        std::lock_guard<std::mutex> lock(log.mu);
        log.first_error = r.status().ToString();
      }
      log.answered++;
    };
    if (o.put_rate > 0) {
      writer.PutAsync(key, SequencedValue(i, o.val_size), done);
    } else {
      done(writer.Put(key, SequencedValue(i, o.val_size)));
    }
    if (progress && Clock::now() - drawn >= kProgressEvery) {
      progress();
      drawn = Clock::now();
    }
  }
}

}  // namespace

double ProcCpuWaitSeconds(pid_t pid) {
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  double total = 0;
  bool any = false;
  for (const auto& t : std::filesystem::directory_iterator(task, ec)) {
    std::ifstream in(t.path() / "schedstat");
    uint64_t on_cpu_ns = 0, waiting_ns = 0;
    if (in >> on_cpu_ns >> waiting_ns) {
      total += waiting_ns / 1e9;
      any = true;
    }
  }
  return any ? total : -1;
}

std::string SequencedValue(uint64_t seq, size_t size) {
  std::string out(std::max<size_t>(8, size), '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((seq >> (56 - 8 * i)) & 0xff);
  }
  return out;
}

bool DecodeSequencedValue(const std::string& value, uint64_t* seq) {
  if (value.size() < 8) return false;
  uint64_t s = 0;
  for (int i = 0; i < 8; ++i) {
    s = (s << 8) | static_cast<unsigned char>(value[i]);
  }
  *seq = s;
  return true;
}

StatusOr<WatchBenchResult> RunWatchBench(const WatchBenchOptions& o,
                                         const WatchProgressFn& progress) {
  const uint32_t streams = std::max<uint32_t>(1, o.streams);
  const uint64_t watchers = uint64_t{streams} * o.watchers_per_stream;
  const std::string key = WatchKey(o.key_size);
  // Before the Clients: they may answer a put still in flight as they go.
  EventLog events(streams, watchers);
  for (auto& v : events.per_stream) {
    v.reserve(o.puts * o.watchers_per_stream);
  }
  PutLog puts(o.puts);
  auto writer = NewClient(o.endpoints);
  if (!writer.ok()) return writer.status();
  auto setup = (*writer)->Put(key, SequencedValue(kSetupSeq, o.val_size));
  if (!setup.ok()) return setup.status();
  std::vector<std::unique_ptr<Client>> clients;
  for (uint32_t s = 0; s < streams; ++s) {
    auto c = NewClient(o.watch_endpoints);
    if (!c.ok()) return c.status();
    clients.push_back(std::move(c).value());
  }

  WatchBenchResult result;
  result.watchers = watchers;
  result.expected_events = watchers * o.puts;
  std::vector<int64_t> called_ns(watchers);
  std::vector<std::unique_ptr<Watcher>> watches;
  watches.reserve(watchers);

  // Creation: every watch from the revision after the setup put, then the
  // marker.
  WatchOptions watch_options;
  watch_options.start_revision = *setup + 1;
  const int64_t create_start = NowNs();
  for (uint64_t w = 0; w < watchers; ++w) {
    const uint32_t s = static_cast<uint32_t>(w % streams);
    auto on_update = [&events, s, w](StatusOr<WatchUpdate> u) {
      const int64_t now = NowNs();
      if (!u.ok()) return events.Error(u.status());
      for (const WatchEvent& e : u->events) {
        uint64_t seq = 0;
        if (!DecodeSequencedValue(e.kv.value, &seq)) {
          events.unattributed++;
        } else if (seq == kMarkerSeq) {
          events.marker_at[w] = now;
          events.markers++;
        } else {
          events.per_stream[s].push_back({seq, now});
          events.delivered++;
        }
      }
    };
    called_ns[w] = NowNs();
    watches.push_back(clients[s]->Watch(key, watch_options, on_update));
  }
  auto marker = (*writer)->Put(key, SequencedValue(kMarkerSeq, o.val_size));
  if (!marker.ok()) return marker.status();
  auto draw = [&](const char* phase, const std::atomic<uint64_t>& n,
                  uint64_t total) {
    return [&progress, phase, &n, total] {
      if (progress) progress(phase, n.load(), total);
    };
  };
  const bool created =
      WaitFor([&] { return events.markers.load() >= watchers; },
              [&] { return events.markers.load(); }, o.idle_timeout,
              draw("create", events.markers, watchers));
  if (!created) {
    return Status::Unavailable(
        "only " + std::to_string(events.markers.load()) + " of " +
        std::to_string(watchers) + " watches were created (" +
        std::to_string(events.errors.load()) + " watch errors" +
        (events.first_error.empty() ? "" : ", first: " + events.first_error) +
        ")");
  }
  int64_t created_at = create_start;
  for (uint64_t w = 0; w < watchers; ++w) {
    const int64_t at = events.marker_at[w].load();
    result.create_ms.push_back(Ms(at - called_ns[w]));
    created_at = std::max(created_at, at);
  }
  result.create_s = (created_at - create_start) / 1e9;

  // Events.
  const std::vector<double> cpu_before =
      o.cpu_seconds ? o.cpu_seconds() : std::vector<double>{};
  const double bench_cpu_before = ProcCpuSeconds(::getpid());
  const std::vector<double> wait_before =
      o.cpu_wait_seconds ? o.cpu_wait_seconds() : std::vector<double>{};
  const double bench_wait_before = ProcCpuWaitSeconds(::getpid());
  auto events_progress =
      draw("events", events.delivered, result.expected_events);
  SendPuts(**writer, key, o, puts, events_progress);
  const int64_t puts_done = NowNs();
  WaitFor(
      [&] {
        return events.delivered.load() >= result.expected_events &&
               puts.answered.load() >= o.puts;
      },
      [&] { return events.delivered.load() + puts.answered.load(); },
      o.idle_timeout, events_progress);
  result.bench_cpu_s = ProcCpuSeconds(::getpid()) - bench_cpu_before;
  result.bench_cpu_wait_s = ProcCpuWaitSeconds(::getpid()) - bench_wait_before;
  if (o.cpu_seconds) result.node_cpu_s = Minus(o.cpu_seconds(), cpu_before);
  if (o.cpu_wait_seconds) {
    result.node_cpu_wait_s = Minus(o.cpu_wait_seconds(), wait_before);
  }
  watches.clear();  // cancels: no callback runs after this

  const int64_t first_sent = o.puts > 0 ? puts.sent_ns[0] : puts_done;
  result.puts_s = (puts_done - first_sent) / 1e9;
  int64_t last_delivery = first_sent;
  result.from_send_by_tenth_ms.resize(10);
  for (const auto& stream : events.per_stream) {
    for (const EventLog::Delivery& d : stream) {
      if (d.seq >= o.puts) {
        ++result.unattributed;
        continue;
      }
      last_delivery = std::max(last_delivery, d.at_ns);
      result.from_send_ms.push_back(Ms(d.at_ns - puts.sent_ns[d.seq]));
      result.from_send_by_tenth_ms[d.seq * 10 / o.puts].push_back(
          result.from_send_ms.back());
      const int64_t acked = puts.acked_ns[d.seq].load();
      if (acked != 0) {
        result.from_ack_ms.push_back(Ms(d.at_ns - acked));
        if (d.at_ns < acked) ++result.before_ack;
      }
    }
  }
  for (uint64_t i = 0; i < o.puts; ++i) {
    const int64_t acked = puts.acked_ns[i].load();
    if (acked != 0) result.put_ms.push_back(Ms(acked - puts.sent_ns[i]));
  }
  result.events_s = (last_delivery - first_sent) / 1e9;
  result.unattributed += events.unattributed.load();
  result.watch_errors = events.errors.load();
  result.put_errors = puts.errors.load() + (o.puts - puts.answered.load());
  result.first_error =
      !puts.first_error.empty() ? puts.first_error : events.first_error;
  return result;
}

StatusOr<WatchCapacityResult> RunWatchCapacity(
    const WatchCapacityOptions& o, const CapacityProgressFn& on_step) {
  if (o.member_pid <= 0) {
    return Status::InvalidArgument("the member's pid is needed for its RSS");
  }
  const uint32_t streams = std::max<uint32_t>(1, o.streams);
  const uint64_t step = std::max<uint64_t>(1, o.step);
  const uint64_t max_steps = (o.max_watchers + step - 1) / step;
  const std::string key = WatchKey(o.key_size);
  auto writer = NewClient(o.endpoints);
  if (!writer.ok()) return writer.status();
  std::vector<std::unique_ptr<Client>> clients;
  for (uint32_t s = 0; s < streams; ++s) {
    auto c = NewClient({o.member});
    if (!c.ok()) return c.status();
    clients.push_back(std::move(c).value());
  }
  auto revision = (*writer)->Put(key, SequencedValue(kSetupSeq, 8));
  if (!revision.ok()) return revision.status();

  // Per marker k: the watches that delivered it, and when the last did.
  std::vector<std::atomic<uint64_t>> got(max_steps);
  std::vector<std::atomic<int64_t>> all_at(max_steps);
  std::atomic<uint64_t> expected{0};
  std::atomic<uint64_t> errors{0};
  auto on_update = [&](StatusOr<WatchUpdate> u) {
    if (!u.ok()) {
      errors++;
      return;
    }
    for (const WatchEvent& e : u->events) {
      uint64_t k = 0;
      if (!DecodeSequencedValue(e.kv.value, &k) || k >= max_steps) continue;
      if (got[k].fetch_add(1) + 1 == expected.load()) all_at[k] = NowNs();
    }
  };

  WatchCapacityResult result;
  std::this_thread::sleep_for(o.settle);
  result.base_rss_mb = ProcStatusKb(o.member_pid, "VmRSS") / 1024.0;
  std::vector<std::unique_ptr<Watcher>> watches;
  for (uint64_t k = 0; k < max_steps; ++k) {
    WatchOptions watch_options;
    watch_options.start_revision = *revision + 1;
    const uint64_t total = std::min(o.max_watchers, watches.size() + step);
    expected = total;
    const int64_t start = NowNs();
    while (watches.size() < total) {
      Client& c = *clients[watches.size() % streams];
      watches.push_back(c.Watch(key, watch_options, on_update));
    }
    const int64_t put_at = NowNs();
    revision = (*writer)->Put(key, SequencedValue(k, 8));
    if (!revision.ok()) return revision.status();
    const bool all =
        WaitFor([&] { return got[k].load() >= total; },
                [&] { return got[k].load(); }, o.idle_timeout, nullptr);
    if (!all) {
      result.stopped_by = "the marker reached only " +
                          std::to_string(got[k].load()) + " of " +
                          std::to_string(total) + " watches (" +
                          std::to_string(errors.load()) + " watch errors)";
      break;
    }
    WatchCapacityStep s;
    s.watchers = total;
    s.create_s = (all_at[k].load() - start) / 1e9;
    s.fanout_ms = Ms(all_at[k].load() - put_at);
    std::this_thread::sleep_for(o.settle);
    s.rss_mb = ProcStatusKb(o.member_pid, "VmRSS") / 1024.0;
    s.growth_mb = s.rss_mb - result.base_rss_mb;
    result.steps.push_back(s);
    if (on_step) on_step(s);
    if (s.growth_mb > o.rss_limit_mb) {
      result.stopped_by = "RSS growth over the limit";
      break;
    }
    result.most_under_limit = total;
    if (total >= o.max_watchers) {
      result.stopped_by = "max_watchers reached";
      break;
    }
  }
  watches.clear();
  return result;
}

namespace {

LatencySummary EventSummary(const WatchBenchResult& r) {
  return Summarize(r.from_send_ms, r.watch_errors, r.events_s);
}

std::string Line(const char* fmt, double a, double b, double c, double d) {
  char line[200];
  std::snprintf(line, sizeof(line), fmt, a, b, c, d);
  return line;
}

}  // namespace

std::string FormatWatchResult(const WatchBenchResult& r) {
  std::string out = "Watch creation summary:";
  out += FormatSummary(Summarize(r.create_ms, 0, r.create_s));
  out += "\nWatch events received summary (from each put's send):";
  out += FormatSummary(EventSummary(r));
  const LatencySummary ack = Summarize(r.from_ack_ms, 0, r.events_s);
  out += "\nEvent latency from the put's acknowledgement:\n";
  out += Line(
      "  Average:\t%.4f secs.\n  50%% in %.4f secs.\n  90%% in %.4f secs.\n"
      "  99%% in %.4f secs.\n",
      ack.average_ms / 1000, ack.Percentile(50) / 1000,
      ack.Percentile(90) / 1000, ack.Percentile(99) / 1000);
  char line[300];
  std::snprintf(line, sizeof(line),
                "  %llu of %llu events delivered before their put's "
                "acknowledgement\n",
                static_cast<unsigned long long>(r.before_ack),
                static_cast<unsigned long long>(r.from_ack_ms.size()));
  out += line;
  const LatencySummary put = Summarize(r.put_ms, r.put_errors, r.puts_s);
  std::snprintf(line, sizeof(line),
                "\nPuts:\t%llu acknowledged over %.2f s, p50 %.2f ms, p99 "
                "%.2f ms, %llu errors\n",
                static_cast<unsigned long long>(put.count), r.puts_s,
                put.Percentile(50), put.Percentile(99),
                static_cast<unsigned long long>(r.put_errors));
  out += line;
  std::snprintf(line, sizeof(line),
                "Events:\t%llu of %llu delivered, %llu unattributed, %llu "
                "watch errors\n",
                static_cast<unsigned long long>(r.from_send_ms.size()),
                static_cast<unsigned long long>(r.expected_events),
                static_cast<unsigned long long>(r.unattributed),
                static_cast<unsigned long long>(r.watch_errors));
  out += line;
  for (size_t i = 0; i < r.node_cpu_s.size(); ++i) {
    std::snprintf(line, sizeof(line),
                  "Node %zu:\t%.2f CPU-s over the events phase, %.2f s "
                  "waiting for a CPU\n",
                  i + 1, r.node_cpu_s[i],
                  i < r.node_cpu_wait_s.size() ? r.node_cpu_wait_s[i] : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof(line),
                "Bench:\t%.2f CPU-s over the events phase, %.2f s waiting "
                "for a CPU\n",
                r.bench_cpu_s, r.bench_cpu_wait_s);
  out += line;
  if (!r.first_error.empty()) out += "First error:\t" + r.first_error + "\n";
  return out;
}

nlohmann::json WatchResultJson(const WatchBenchResult& r) {
  nlohmann::json j = SummaryJson(EventSummary(r));
  j["errors"] = r.watch_errors + r.put_errors;
  j["watchers"] = r.watchers;
  j["expected_events"] = r.expected_events;
  j["unattributed"] = r.unattributed;
  j["watch_errors"] = r.watch_errors;
  j["put_errors"] = r.put_errors;
  j["first_error"] = r.first_error;
  j["create"] = SummaryJson(Summarize(r.create_ms, 0, r.create_s));
  j["from_ack"] = SummaryJson(Summarize(r.from_ack_ms, 0, r.events_s));
  nlohmann::json p50 = nlohmann::json::array(), p99 = nlohmann::json::array();
  for (std::vector<double> tenth : r.from_send_by_tenth_ms) {
    std::sort(tenth.begin(), tenth.end());
    p50.push_back(NearestRank(tenth, 50));
    p99.push_back(NearestRank(tenth, 99));
  }
  j["p50_ms_by_tenth"] = p50;
  j["p99_ms_by_tenth"] = p99;
  j["before_ack"] = r.before_ack;
  j["put"] = SummaryJson(Summarize(r.put_ms, r.put_errors, r.puts_s));
  j["node_cpu_s"] = r.node_cpu_s;
  j["bench_cpu_s"] = r.bench_cpu_s;
  j["node_cpu_wait_s"] = r.node_cpu_wait_s;
  j["bench_cpu_wait_s"] = r.bench_cpu_wait_s;
  return j;
}

std::string FormatCapacityStep(const WatchCapacityStep& s) {
  char line[200];
  std::snprintf(line, sizeof(line),
                "%8llu watches: RSS %.1f MB (+%.1f MB, %.0f bytes per "
                "watch), created in %.2f s, one put to all in %.1f ms\n",
                static_cast<unsigned long long>(s.watchers), s.rss_mb,
                s.growth_mb,
                s.growth_mb * 1048576 / std::max<uint64_t>(1, s.watchers),
                s.create_s, s.fanout_ms);
  return line;
}

nlohmann::json CapacityResultJson(const WatchCapacityResult& r) {
  nlohmann::json j;
  j["base_rss_mb"] = r.base_rss_mb;
  j["most_under_limit"] = r.most_under_limit;
  j["stopped_by"] = r.stopped_by;
  nlohmann::json steps = nlohmann::json::array();
  for (const WatchCapacityStep& s : r.steps) {
    steps.push_back({{"watchers", s.watchers},
                     {"rss_mb", s.rss_mb},
                     {"growth_mb", s.growth_mb},
                     {"create_s", s.create_s},
                     {"fanout_ms", s.fanout_ms}});
  }
  j["steps"] = steps;
  return j;
}

}  // namespace raftkv::bench
