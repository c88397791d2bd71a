// Reading a node's monitoring endpoint (--listen_metrics) in the
// integration tests: the port it logged, one HTTP GET, one sample of the
// Prometheus text. Must never talk to anything but 127.0.0.1.
#pragma once

#include <httplib.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>

#include "tests/integration/log_text.h"
#include "tools/local_cluster.h"

namespace raftkv::integration {

// The port node `id` logged for its monitoring endpoint (0 if none yet).
inline int MetricsPort(const LocalCluster& cluster, int id) {
  for (int i = 0; i < 100; ++i) {
    std::smatch m;
    const std::string log = ReadFile(cluster.log_path(id));
    static const std::regex line(
        "serves /metrics and /health on [0-9.]+:(\\d+)");
    if (std::regex_search(log, m, line)) return std::stoi(m[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return 0;
}

struct Got {
  int status = 0;
  std::string body;
};

inline Got Get(int port, const std::string& path) {
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  auto res = http.Get(path);
  if (!res) return {};
  return {res->status, res->body};
}

// The value of the first sample line starting with `series`; -1 if none.
inline double Sample(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      const size_t space = text.find(' ', at + series.size());
      if (space == at + series.size()) return std::stod(text.substr(space + 1));
    }
    at += series.size();
  }
  return -1;
}

}  // namespace raftkv::integration
