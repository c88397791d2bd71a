// raftkv-soak's clients of etcd's v3 API over gRPC (`--front_door=etcd`):
// the soak's write load, watches and leases as etcd's client libraries
// drive a cluster, against raftkvd's --listen_etcd listeners, on gRPC's
// callback API (no thread per request or stream).
//
//   EtcdWriter       KV.Put, many in flight on one connection of its own;
//   EtcdWatchStream  one Watch stream carrying one or more watches, resumed
//                    on a new stream from the revision after the last one
//                    delivered when it ends (as etcd's clientv3 does);
//   EtcdLeaseKeeper  one LeaseKeepAlive stream renewing every lease each
//                    third of its TTL;
//   NewEtcdFrontDoor all of it behind soak::FrontDoor.
//
// Must never: count a put acknowledged without an answer whose header
// carries a revision, retry a put that may have been sent (etcd's writes
// are at-most-once: a retry is a new write), deliver a watched revision
// twice or out of order, or run a callback after its object is destroyed.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "tools/local_cluster.h"
#include "tools/soak_front_door.h"
#include "util/status.h"

namespace raftkv::soak {

// KV.Put on a connection of its own to endpoints[first]. A put that fails
// with UNAVAILABLE moves the writer on to the next endpoint (a connection
// of its own there), as etcd's client balancer leaves an endpoint it cannot
// reach; the put itself is reported failed (it may have been applied).
class EtcdWriter : public Writer {
 public:
  EtcdWriter(std::vector<std::string> endpoints, size_t first,
             std::chrono::milliseconds deadline);
  ~EtcdWriter() override;
  EtcdWriter(const EtcdWriter&) = delete;
  EtcdWriter& operator=(const EtcdWriter&) = delete;

  void PutAsync(const std::string& key, const std::string& value,
                std::function<void(Status)> done) override;

 private:
  struct Call;

  const std::vector<std::string> endpoints_;
  const std::chrono::milliseconds deadline_;
  std::mutex mu_;
  std::condition_variable idle_;
  size_t current_ = 0;       // index into endpoints_; guarded by mu_
  uint64_t generation_ = 0;  // bumped when current_ moves; guarded by mu_
  std::shared_ptr<etcdserverpb::KV::Stub> stub_;  // guarded by mu_
  int in_flight_ = 0;                             // guarded by mu_
};

// One Watch stream to one endpoint with the watches it was given, created
// one at a time as etcd's clientv3 does (each create waits for its
// `created` answer, which carries the watch id). When the stream ends
// other than by destruction, a new one is opened after a pause and every
// watch not ended is created again from the revision after the last one it
// delivered. A watch the server cancels (refused, compacted) gets an
// error and is not resumed.
class EtcdWatchStream {
 public:
  struct Watch {
    std::string key;
    std::string range_end;
    int64_t start_revision = 0;  // 0: from the next revision
    std::function<void(StatusOr<WatchUpdate>)> on_update;
  };

  EtcdWatchStream(std::string endpoint, std::shared_ptr<grpc::Channel> channel,
                  std::vector<Watch> watches);
  // Ends the stream; no callback runs after it returns.
  ~EtcdWatchStream();
  EtcdWatchStream(const EtcdWatchStream&) = delete;
  EtcdWatchStream& operator=(const EtcdWatchStream&) = delete;

  // How many times the stream ended and was opened again.
  uint64_t resumed() const { return resumed_; }

 private:
  class Call;
  struct State {
    Watch watch;
    int64_t next_revision = 0;  // where to resume from (0: the next)
    bool ended = false;
  };

  void Run();
  // From a Call's reactions (one Call at a time).
  void Deliver(size_t index, const etcdserverpb::WatchResponse& response);
  void End(size_t index, Status status);

  const std::string endpoint_;
  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
  // Touched by the Call in progress only, and by Run() between Calls.
  std::vector<State> watches_;
  std::atomic<uint64_t> resumed_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;        // guarded by mu_
  Call* current_ = nullptr;  // guarded by mu_
  std::thread thread_;
};

// Keeps leases alive over one LeaseKeepAlive stream: every lease id is
// sent at once, then each third of `ttl_s`. A lease is lost (on_lost, once
// per lease) when an answer for it has TTL <= 0, or when the stream ends
// before the keeper is destroyed (every lease not lost yet).
class EtcdLeaseKeeper final
    : public grpc::ClientBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                     etcdserverpb::LeaseKeepAliveResponse> {
 public:
  EtcdLeaseKeeper(std::string endpoint, std::shared_ptr<grpc::Channel> channel,
                  std::vector<int64_t> ids, int64_t ttl_s,
                  std::function<void(Status)> on_lost);
  // Ends the stream; no callback runs after it returns.
  ~EtcdLeaseKeeper() override;
  EtcdLeaseKeeper(const EtcdLeaseKeeper&) = delete;
  EtcdLeaseKeeper& operator=(const EtcdLeaseKeeper&) = delete;

 private:
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

  void Renew();  // the renewing thread
  // Takes the next id to send into request_ if no write is in flight.
  bool NextWriteLocked();

  const std::string endpoint_;
  const int64_t ttl_s_;
  const std::function<void(Status)> on_lost_;
  std::unique_ptr<etcdserverpb::Lease::Stub> stub_;
  grpc::ClientContext ctx_;
  etcdserverpb::LeaseKeepAliveResponse response_;
  etcdserverpb::LeaseKeepAliveRequest request_;  // the write in flight
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, bool> lost_;  // by lease id; guarded by mu_
  std::vector<int64_t> to_send_;  // guarded by mu_
  bool writing_ = false;          // guarded by mu_
  bool read_ended_ = false;       // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  bool done_ = false;             // guarded by mu_
  std::thread thread_;
};

// The soak's client side through etcd's API on `cluster`'s etcd listeners
// (LocalClusterOptions::etcd_api). Its own reads, deletes and leases go to
// the nodes in `members` (the first that answers).
std::unique_ptr<FrontDoor> NewEtcdFrontDoor(const LocalCluster& cluster,
                                            std::vector<int> members);

}  // namespace raftkv::soak
