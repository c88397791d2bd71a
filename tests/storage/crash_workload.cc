// The crash test's deterministic entries and values, and the leader's
// snapshot file.
#include "tests/storage/crash_workload.h"

#include <cstdio>
#include <fstream>

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

Status WriteLeaderSnapshot(const LeaderSnapshot& snapshot,
                           const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << snapshot.index << " " << snapshot.term << "\n";
  for (const std::string& chunk : snapshot.chunks) {
    const uint32_t n = static_cast<uint32_t>(chunk.size());
    const char size[4] = {static_cast<char>(n), static_cast<char>(n >> 8),
                          static_cast<char>(n >> 16),
                          static_cast<char>(n >> 24)};
    out.write(size, 4);
    out << chunk;
  }
  out.close();
  if (!out) return Status::IOError("write " + path);
  return Status::OK();
}

Status ReadLeaderSnapshot(const std::string& path, LeaderSnapshot* snapshot) {
  std::ifstream in(path, std::ios::binary);
  if (!(in >> snapshot->index >> snapshot->term) || in.get() != '\n') {
    return Status::Corruption(path + ": no index and term");
  }
  unsigned char size[4];
  while (in.read(reinterpret_cast<char*>(size), 4)) {
    const uint32_t n = size[0] | size[1] << 8 | size[2] << 16 |
                       static_cast<uint32_t>(size[3]) << 24;
    std::string chunk(n, '\0');
    if (!in.read(chunk.data(), n)) {
      return Status::Corruption(path + ": a chunk is cut short");
    }
    snapshot->chunks.push_back(std::move(chunk));
  }
  return Status::OK();
}

}  // namespace raftkv::storage::crash
