// ReadSnapshot: the key-value state machine frozen at one applied index
// (a RocksDB snapshot and the revisions of that moment), so that reads can
// be served on a thread other than the applier's: a range over a million
// keys then never holds up applying, and what it returns is still exactly
// the state at that index however much is applied meanwhile.
//
// Must never: be created while the state machine is being written (only on
// the applier's thread, between batches), or outlive the Engine.
// Thread-safety: once created, its reads may run on any thread, several at
// once.
#pragma once

#include <string>
#include <vector>

#include "client/kv.pb.h"
#include "storage/engine.h"
#include "util/status.h"

namespace rocksdb {
class Snapshot;
}  // namespace rocksdb

namespace raftkv::storage {

class KvStateMachine;

class ReadSnapshot {
 public:
  explicit ReadSnapshot(const KvStateMachine& state_machine);
  ~ReadSnapshot();
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

  // As KvStateMachine::Range and LeaseKeys, at this snapshot.
  StatusOr<kv::RangeResponse> Range(const kv::RangeRequest& request) const;
  StatusOr<std::vector<std::string>> LeaseKeys(int64_t id) const;

  // The store's revision at this snapshot.
  int64_t revision() const { return revision_; }

 private:
  Engine::Rep* const rep_;
  const rocksdb::Snapshot* const snapshot_;
  const int64_t revision_;
  const int64_t compacted_revision_;
};

}  // namespace raftkv::storage
