// The crash test's deterministic entries and values.
#include "tests/storage/crash_workload.h"

#include <cstdio>

#include "client/kv.pb.h"

namespace raftkv::storage::crash {

std::string SlotKey(uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "k%04llu",
                static_cast<unsigned long long>(index % kSlots));
  return buf;
}

std::string ValueFor(uint64_t index, uint64_t term) {
  std::string value =
      "v:" + std::to_string(index) + ":" + std::to_string(term) + ":";
  const uint64_t h = Mix(index ^ (term << 40));
  value.append(h % 700, static_cast<char>('a' + h % 26));
  return value;
}

bool ParseValue(const std::string& value, uint64_t* index, uint64_t* term) {
  unsigned long long i = 0, t = 0;
  if (std::sscanf(value.c_str(), "v:%llu:%llu:", &i, &t) != 2) return false;
  *index = i;
  *term = t;
  return value == ValueFor(i, t);
}

raft::Entry EntryFor(uint64_t index, uint64_t term) {
  raft::Entry e;
  e.set_index(index);
  e.set_term(term);
  if (IsNoop(index, term)) return e;
  kv::Command c;
  c.set_proposed_at_ms(index);
  c.mutable_put()->set_key(SlotKey(index));
  c.mutable_put()->set_value(ValueFor(index, term));
  std::string data;
  c.SerializeToString(&data);
  e.set_data(std::move(data));
  return e;
}

EngineOptions CrashEngineOptions() {
  EngineOptions o;
  o.memory_budget_bytes = 16 << 20;
  o.write_buffer_bytes = 256 << 10;
  o.max_total_wal_bytes = 2 << 20;
  return o;
}

}  // namespace raftkv::storage::crash
