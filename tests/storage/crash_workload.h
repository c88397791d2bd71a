// The crash test's workload, shared by the child that writes it and the
// parent that checks it: every entry is a pure function of (index, term),
// so the parent can rebuild the exact bytes of each acknowledged entry.
// Keys cycle through kSlots slots so the checked state stays bounded. The
// snapshots the child installs come from a leader whose log holds
// EntryFor(i, LeaderTerm(i)), so the parent can rebuild those too; they
// reach the child in a file (LeaderSnapshot).
// Entries and values must never depend on anything but their arguments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "raft/raft.pb.h"
#include "storage/engine.h"
#include "util/status.h"

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

// The term of the leader's entry at `index`. The leader's history is
// unrelated to the child's own terms (and values follow terms), so an
// install changes nearly every key: a state that mixes the installed
// snapshot with what it replaced cannot pass for either.
inline uint64_t LeaderTerm(uint64_t index) {
  return (uint64_t{1} << 20) + index / 64;
}

std::string SlotKey(uint64_t index);
std::string ValueFor(uint64_t index, uint64_t term);
// Recovers (index, term) from a value written by ValueFor.
bool ParseValue(const std::string& value, uint64_t* index, uint64_t* term);
raft::Entry EntryFor(uint64_t index, uint64_t term);

// Small buffers so that memtable flushes and WAL switches happen often.
EngineOptions CrashEngineOptions();

// A leader's snapshot as the parent hands it to the child: the encoded
// chunks (storage/snapshot.h) of the image at index/term. In its file:
// "<index> <term>\n", then each chunk as 4 bytes of length (little-endian)
// and the chunk.
struct LeaderSnapshot {
  uint64_t index = 0;
  uint64_t term = 0;
  std::vector<std::string> chunks;
};
Status WriteLeaderSnapshot(const LeaderSnapshot& snapshot,
                           const std::string& path);
Status ReadLeaderSnapshot(const std::string& path, LeaderSnapshot* snapshot);

}  // namespace raftkv::storage::crash
