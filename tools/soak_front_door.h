// FrontDoor: what raftkv-soak's checks ask of the client side, so that each
// check is written once and runs through either front door: raftkv's native
// protocol and client library (tools/raftkv_soak.cc), or etcd's v3 API over
// gRPC (tools/soak_etcd.h, `raftkv-soak --front_door=etcd`). Observing the
// cluster (status polls, membership, stalls, RSS) is not part of it: that
// stays native, whichever door the load comes through.
//
// Must never: report a write acknowledged that the front door did not
// acknowledge, or run a callback after the object it was given to has been
// destroyed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "util/status.h"

namespace raftkv::soak {

// One client of a write load, several puts in flight.
class Writer {
 public:
  // Waits until no callback of this writer runs.
  virtual ~Writer() = default;
  // `done` gets OK once the put is acknowledged, else why not; it runs on a
  // thread of the writer's, must not block, and may call PutAsync again.
  virtual void PutAsync(const std::string& key, const std::string& value,
                        std::function<void(Status)> done) = 0;
};

// Whatever keeps watches or leases going: destroying it stops them, and no
// callback of theirs runs after.
class Running {
 public:
  virtual ~Running() = default;
  // Streams that ended and were resumed, as the front door's clients do
  // (0 where the client library resumes out of sight).
  virtual uint64_t resumed() const { return 0; }
};

struct WatchSpec {
  std::string key;
  std::string range_end;  // as WatchOptions::range_end
  int64_t start_revision = 0;
  // The node serving it (its id).
  int member = 0;
  // A stream of its own; otherwise it shares one stream per member with
  // the other watches that do not ask for one (etcd's clients put every
  // watch of a client on one stream).
  bool own_stream = false;
  // Every change in revision order, or an error (after which none).
  std::function<void(StatusOr<WatchUpdate>)> on_update;
};

class FrontDoor {
 public:
  virtual ~FrontDoor() = default;
  virtual const char* name() const = 0;
  // Client number `i` of a load; the clients of one load are spread over
  // `members` (node ids) as the front door's clients spread.
  virtual std::unique_ptr<Writer> NewWriter(
      uint32_t i, const std::vector<int>& members) = 0;
  // Whether `error`, a writer's, is a put that was in flight on a
  // connection to node `node` when that node was killed: one the front
  // door's clients cannot retry (it may have been applied).
  virtual bool LostWithNode(const Status& error, int node) const = 0;
  // Puts until one put is acknowledged or `within` has passed.
  virtual Status PutUntilAcked(const std::string& key, const std::string& value,
                               std::chrono::milliseconds within) = 0;
  // The store's revision now: a linearizable read of one key, whose
  // answer's header carries it. (Not a range over the key space: that
  // counts every key, which at a million keys takes longer than the
  // client library gives one attempt, so it is never answered.)
  virtual StatusOr<int64_t> Revision() = 0;
  // How many of `keys` exist now.
  virtual StatusOr<uint64_t> CountPresent(
      const std::vector<std::string>& keys) = 0;
  virtual Status Delete(const std::vector<std::string>& keys) = 0;
  // Grants a lease of `ttl_s` for each of `keys` and puts the key with it,
  // in order, until one fails (`granted` gets how many keys made it), and
  // keeps those leases alive until the result is destroyed: `on_lost` once
  // for each lease lost.
  virtual std::unique_ptr<Running> KeepLeases(
      const std::vector<std::string>& keys, int64_t ttl_s,
      std::function<void(Status)> on_lost, size_t* granted) = 0;
  // Starts `watches`; they run until the result is destroyed.
  virtual std::unique_ptr<Running> Watch(std::vector<WatchSpec> watches) = 0;
};

}  // namespace raftkv::soak
