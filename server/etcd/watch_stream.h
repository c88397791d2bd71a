// WatchStream: one etcd watch stream (the Watch RPC's bidirectional
// stream, or one /v3/watch request of the JSON gateway): the watches it
// creates, each a native-client Watcher (client/client.h) that follows its
// range across members and leader changes, and their answers as etcd's
// WatchResponses. Watch ids are given per stream from 0, as etcd's.
//
// Must never: send events of a watch before its `created` answer or after
// its `canceled` one, or send a revision twice or out of order.
// Thread-safety: Handle() and the destructor from any thread (the
// destructor cancels every watch and waits until no callback runs);
// `send` is called from the native client's I/O thread and from Handle's
// caller, and must be thread-safe and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "client/client.h"
#include "etcdserverpb/rpc.pb.h"
#include "server/etcd/etcd_ops.h"

namespace raftkv::server::etcd {

class WatchStream {
 public:
  WatchStream(EtcdOps* ops, Client* client, Caller caller,
              std::function<void(etcdserverpb::WatchResponse)> send);
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  void Handle(const etcdserverpb::WatchRequest& request);

 private:
  // What a watch's callbacks share with the stream.
  struct Watch {
    int64_t id = 0;
    bool fragment = false;  // split revisions too large for one message
    std::unique_ptr<Watcher> watcher;
  };

  void Create(const etcdserverpb::WatchCreateRequest& request);
  void Cancel(int64_t id);
  void Progress();
  // A Watcher's update, as etcd's answers.
  void OnUpdate(int64_t id, bool fragment, StatusOr<WatchUpdate> update);
  void SendEvents(int64_t id, bool fragment, int64_t revision,
                  const std::vector<WatchEvent>& events);
  etcdserverpb::WatchResponse Response(int64_t id, int64_t revision) const;

  EtcdOps* const ops_;
  Client* const client_;
  const Caller caller_;
  const std::function<void(etcdserverpb::WatchResponse)> send_;
  std::mutex mu_;
  std::map<int64_t, Watch> watches_;  // by id
  int64_t next_id_ = 0;
};

}  // namespace raftkv::server::etcd
