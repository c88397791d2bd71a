// The history of a raftkv-jepsen run, recorded in real-time order. Must
// never take an event's timestamp outside the mutex that appends it.
#include "jepsen/recorder.h"

namespace raftkv::jepsen {

void Recorder::Record(int64_t process, EventType type, const std::string& f,
                      const std::string& key, std::optional<std::string> value,
                      std::optional<std::string> value2) {
  Event e;
  e.process = process;
  e.type = type;
  e.f = f;
  e.key = key;
  e.value = std::move(value);
  e.value2 = std::move(value2);
  Record(std::move(e));
}

void Recorder::Record(Event e) {
  std::lock_guard<std::mutex> lock(mu_);
  e.time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - start_)
                  .count();
  if (e.is_observation()) {
    ++counts_.observations;
    history_.push_back(std::move(e));
    return;
  }
  switch (e.type) {
    case EventType::kInvoke:
      ++counts_.invoked;
      break;
    case EventType::kOk:
      ++counts_.ok;
      break;
    case EventType::kFail:
      ++counts_.fail;
      break;
    case EventType::kInfo:
      ++counts_.info;
      break;
  }
  history_.push_back(std::move(e));
}

void Recorder::RecordNemesis(const std::string& f,
                             const std::string& description) {
  Event e;
  e.process = kNemesis;
  e.type = EventType::kInfo;
  e.f = f;
  e.value = description;
  std::lock_guard<std::mutex> lock(mu_);
  e.time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - start_)
                  .count();
  ++nemesis_events_;
  history_.push_back(std::move(e));
}

double Recorder::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       start_)
      .count();
}

OpCounts Recorder::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

int Recorder::nemesis_events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return nemesis_events_;
}

History Recorder::history() const {
  std::lock_guard<std::mutex> lock(mu_);
  return history_;
}

}  // namespace raftkv::jepsen
