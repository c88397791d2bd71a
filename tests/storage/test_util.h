// Helpers shared by the storage tests: a temporary data dir that removes
// itself, and builders for entries and commands. Must never touch paths
// outside the directory it created.
#pragma once

#include <glog/logging.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "client/kv.pb.h"
#include "raft/raft.pb.h"

namespace raftkv::storage::testing {

// A fresh directory under `base` (default: $TMPDIR or /tmp), removed on
// destruction.
class TempDir {
 public:
  explicit TempDir(std::string base = "") {
    if (base.empty()) {
      const char* env = getenv("TMPDIR");
      base = env && *env ? env : "/tmp";
    }
    std::string tmpl = base + "/raftkv-storage-test-XXXXXX";
    CHECK(mkdtemp(tmpl.data()) != nullptr) << "mkdtemp " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // A not-yet-existing data dir inside the temporary directory.
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline raft::Entry MakeEntry(uint64_t index, uint64_t term,
                             std::string data = "") {
  raft::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(std::move(data));
  return e;
}

// Entries [lo, hi) of term `term`, each with a small payload.
inline std::vector<raft::Entry> MakeEntries(uint64_t lo, uint64_t hi,
                                            uint64_t term) {
  std::vector<raft::Entry> out;
  for (uint64_t i = lo; i < hi; ++i) {
    out.push_back(MakeEntry(i, term, "e" + std::to_string(i)));
  }
  return out;
}

// An entry carrying `command`.
inline raft::Entry CommandEntry(uint64_t index, uint64_t term,
                                const kv::Command& command) {
  std::string data;
  CHECK(command.SerializeToString(&data));
  return MakeEntry(index, term, std::move(data));
}

inline kv::Command PutCommand(const std::string& key, const std::string& value,
                              uint64_t client_id = 0, uint64_t sequence = 0) {
  kv::Command c;
  c.set_client_id(client_id);
  c.set_sequence(sequence);
  c.mutable_put()->set_key(key);
  c.mutable_put()->set_value(value);
  return c;
}

}  // namespace raftkv::storage::testing
