// HttpEndpoint: raftkvd's HTTP listener (--listen_metrics) for monitoring,
// as etcd offers it: GET /metrics (Prometheus text format), /health (JSON:
// this node knows a leader, takes part, and has applied what it knows is
// committed within --max_unapplied_entries), /livez (the event loop ran
// its timers within the last 3 s) and /readyz (live and healthy). Built
// on cpp-httplib, on its own thread; it only reads NodeMetrics' atomics.
//
// Must never: touch the Raft core, the stages or the disk, or block the
// event loop (a slow scraper only holds this endpoint's thread).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "server/metrics.h"
#include "server/node_metrics.h"
#include "util/status.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace raftkv::server {

class HttpEndpoint {
 public:
  struct Health {
    bool healthy = false;
    std::string reason;  // why not, when not
  };

  // `before_scrape` runs on the endpoint's thread before /metrics renders
  // (e.g. to read RocksDB's memory, which is safe from any thread).
  HttpEndpoint(const MetricsRegistry* registry, const NodeMetrics* metrics,
               uint64_t max_unapplied_entries,
               std::function<void()> before_scrape);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // Binds "host:port" (port 0: any) and serves until Stop().
  Status Start(const std::string& address);
  void Stop();
  int port() const { return port_; }

  // What /livez and /health answer, from the metrics' current values.
  bool Live() const;
  Health CheckHealth() const;

 private:
  const MetricsRegistry* registry_;
  const NodeMetrics* metrics_;
  const uint64_t max_unapplied_entries_;
  std::function<void()> before_scrape_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};  // set by thread_ when done
  int port_ = 0;
};

}  // namespace raftkv::server
