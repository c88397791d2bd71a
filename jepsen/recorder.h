// Recorder: the run's history as it happens. Every event gets its time
// from one monotonic clock read under the same mutex that appends it, so
// the history is in real-time order: an event that completed before
// another was invoked precedes it.
//
// Must never reorder, drop or rewrite an event once recorded. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "jepsen/history.h"

namespace raftkv::jepsen {

struct OpCounts {
  int64_t invoked = 0, ok = 0, fail = 0, info = 0;
  int64_t observations = 0;  // watch events, keeper losses (history.h)
};

class Recorder {
 public:
  Recorder() : start_(std::chrono::steady_clock::now()) {}

  // Appends an event of a client process (time is set here).
  void Record(int64_t process, EventType type, const std::string& f,
              const std::string& key, std::optional<std::string> value = {},
              std::optional<std::string> value2 = {});
  // Appends `event` as given, with its time set here: an operation's
  // invocation or completion, or an observation (history.h), counted as
  // such.
  void Record(Event event);
  // Appends a nemesis event: type info, f the fault (or "heal"), value its
  // description.
  void RecordNemesis(const std::string& f, const std::string& description);

  // Seconds since the recorder was made (the history's time zero).
  double elapsed_s() const;
  OpCounts counts() const;
  int nemesis_events() const;
  History history() const;

 private:
  const std::chrono::steady_clock::time_point start_;
  mutable std::mutex mu_;
  History history_;
  OpCounts counts_;
  int nemesis_events_ = 0;
};

}  // namespace raftkv::jepsen
