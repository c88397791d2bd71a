// The crash test's workload, shared by the child that writes it and the
// parent that checks it: every entry is a pure function of (index, term),
// so the parent can rebuild the exact bytes of each acknowledged entry.
// Keys cycle through kSlots slots so the checked state stays bounded.
// Must never depend on anything but its arguments.
#pragma once

#include <cstdint>
#include <string>

#include "raft/raft.pb.h"
#include "storage/engine.h"

namespace raftkv::storage::crash {

inline constexpr uint64_t kSlots = 4096;

inline uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// One entry in ten is a leader no-op (empty data).
inline bool IsNoop(uint64_t index, uint64_t term) {
  return Mix(index * 1000003 + term) % 10 == 0;
}

std::string SlotKey(uint64_t index);
std::string ValueFor(uint64_t index, uint64_t term);
// Recovers (index, term) from a value written by ValueFor.
bool ParseValue(const std::string& value, uint64_t* index, uint64_t* term);
raft::Entry EntryFor(uint64_t index, uint64_t term);

// Small buffers so that memtable flushes and WAL switches happen often.
EngineOptions CrashEngineOptions();

}  // namespace raftkv::storage::crash
