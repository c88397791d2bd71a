// raftkvd's monitoring endpoint on cpp-httplib (see http_endpoint.h).
#include "server/http_endpoint.h"

#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "server/stage_thread.h"
#include "util/json_bytes.h"

namespace raftkv::server {
namespace {

constexpr double kLiveWithinSeconds = 3;

double SteadyNowSeconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

HttpEndpoint::HttpEndpoint(const MetricsRegistry* registry,
                           const NodeMetrics* metrics,
                           uint64_t max_unapplied_entries,
                           std::function<void()> before_scrape)
    : registry_(registry),
      metrics_(metrics),
      max_unapplied_entries_(max_unapplied_entries),
      before_scrape_(std::move(before_scrape)) {}

HttpEndpoint::~HttpEndpoint() { Stop(); }

bool HttpEndpoint::Live() const {
  return SteadyNowSeconds() - metrics_->last_tick_seconds->value() <
         kLiveWithinSeconds;
}

HttpEndpoint::Health HttpEndpoint::CheckHealth() const {
  if (!Live()) return {false, "the event loop has not run for 3 s"};
  if (metrics_->rejoining->value() != 0) {
    return {false, "rejoining after a lost disk"};
  }
  if (metrics_->leader_id->value() == 0) return {false, "no leader"};
  const double behind =
      metrics_->commit_index->value() - metrics_->applied_index->value();
  if (behind > static_cast<double>(max_unapplied_entries_)) {
    return {false, "applied index " +
                       std::to_string(static_cast<uint64_t>(behind)) +
                       " entries behind the commit index"};
  }
  return {true, ""};
}

Status HttpEndpoint::Start(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument(
        "--listen_metrics: expected host:port, got " + address);
  }
  const std::string host = address.substr(0, colon);
  const int port = std::atoi(address.c_str() + colon + 1);
  server_ = std::make_unique<httplib::Server>();
  // One worker: a scraper is served after another, never in parallel.
  server_->new_task_queue = [] { return new httplib::ThreadPool(1); };
  server_->Get(
      "/metrics", [this](const httplib::Request&, httplib::Response& res) {
        if (before_scrape_) before_scrape_();
        res.set_content(registry_->Render(), "text/plain; version=0.0.4");
      });
  server_->Get("/health",
               [this](const httplib::Request&, httplib::Response& res) {
                 const Health h = CheckHealth();
                 nlohmann::json j;
                 j["health"] = h.healthy ? "true" : "false";  // etcd's spelling
                 j["reason"] = h.reason;
                 res.status = h.healthy ? 200 : 503;
                 res.set_content(DumpJson(j), "application/json");
               });
  server_->Get(
      "/livez", [this](const httplib::Request&, httplib::Response& res) {
        const bool live = Live();
        res.status = live ? 200 : 503;
        res.set_content(live ? "ok\n" : "event loop stalled\n", "text/plain");
      });
  server_->Get(
      "/readyz", [this](const httplib::Request&, httplib::Response& res) {
        const Health h = CheckHealth();
        res.status = h.healthy ? 200 : 503;
        res.set_content(h.healthy ? "ok\n" : h.reason + "\n", "text/plain");
      });
  port_ = port == 0 ? server_->bind_to_any_port(host)
                    : (server_->bind_to_port(host, port) ? port : -1);
  if (port_ < 0) {
    return Status::Unavailable("--listen_metrics: cannot listen on " + address);
  }
  thread_ = std::thread([this] {
    NameCurrentThread("rkv-http");
    LowerCurrentThreadPriority(kSnapshotTransferNice);
    server_->listen_after_bind();
    listen_returned_ = true;
  });
  // httplib's stop() does nothing until the thread is in its accept loop,
  // and a node whose start fails after this point stops the endpoint at
  // once: wait for the loop, or Stop() could leave the thread listening
  // (and the process running) for ever.
  while (!server_->is_running() && !listen_returned_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status::OK();
}

void HttpEndpoint::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace raftkv::server
