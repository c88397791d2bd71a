// KeyWriter: one client writing distinct keys "w0", "w1", ... as fast as it
// can on a thread of its own, remembering which were acknowledged and
// every error, for the integration tests that need a concurrent writer
// (a node rejoining, membership changes). Test-only.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"

namespace raftkv::integration {

class KeyWriter {
 public:
  // Values of `value_bytes` bytes.
  KeyWriter(Client* client, size_t value_bytes)
      : client_(client), value_(value_bytes, 'w') {}
  ~KeyWriter() {
    if (thread_.joinable()) StopAndJoin();
  }
  void Start() {
    thread_ = std::thread([this] {
      for (int i = 0; !stop_ && i < 10000000; ++i) {
        auto r = client_->Put(Key(i), value_);
        std::lock_guard<std::mutex> lock(mu_);
        if (r.ok()) {
          acked_.push_back(i);
        } else {
          errors_.push_back(r.status().ToString());
        }
      }
    });
  }
  void StopAndJoin() {
    stop_ = true;
    thread_.join();
  }
  static std::string Key(int i) { return "w" + std::to_string(i); }
  // The numbers of the keys acknowledged, in order.
  std::vector<int> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

 private:
  Client* client_;
  const std::string value_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> acked_;
  std::vector<std::string> errors_;
};

}  // namespace raftkv::integration
