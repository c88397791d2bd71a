// etcd watch streams on native-client watchers (see watch_stream.h).
#include "server/etcd/watch_stream.h"

#include <algorithm>

#include "server/etcd/errors.h"

namespace raftkv::server::etcd {
namespace {

namespace pb = etcdserverpb;

// A revision bigger than this is split into fragments when the watch asked
// for them (etcd splits at its request size limit).
constexpr size_t kFragmentBytes = 1536 << 10;

void ToEtcd(const KeyValue& in, mvccpb::KeyValue* out) {
  out->set_key(in.key);
  out->set_value(in.value);
  out->set_create_revision(in.create_revision);
  out->set_mod_revision(in.mod_revision);
  out->set_version(in.version);
  out->set_lease(in.lease);
}

}  // namespace

WatchStream::WatchStream(EtcdOps* ops, Client* client, Caller caller,
                         std::function<void(pb::WatchResponse)> send)
    : ops_(ops),
      client_(client),
      caller_(std::move(caller)),
      send_(std::move(send)) {}

WatchStream::~WatchStream() {
  std::map<int64_t, Watch> watches;
  {
    std::lock_guard<std::mutex> lock(mu_);
    watches.swap(watches_);
  }
  // Each waits until its callback cannot run any more.
  for (auto& [id, w] : watches) w.watcher.reset();
}

pb::WatchResponse WatchStream::Response(int64_t id, int64_t revision) const {
  pb::WatchResponse response;
  *response.mutable_header() = ops_->Header();
  if (revision > 0) response.mutable_header()->set_revision(revision);
  response.set_watch_id(id);
  return response;
}

void WatchStream::Handle(const pb::WatchRequest& request) {
  switch (request.request_union_case()) {
    case pb::WatchRequest::kCreateRequest:
      Create(request.create_request());
      return;
    case pb::WatchRequest::kCancelRequest:
      Cancel(request.cancel_request().watch_id());
      return;
    case pb::WatchRequest::kProgressRequest:
      Progress();
      return;
    default:
      return;  // etcd ignores an empty request
  }
}

void WatchStream::Create(const pb::WatchCreateRequest& request) {
  int64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (request.watch_id() != 0) {
      id = request.watch_id();
      if (watches_.count(id) != 0) {
        pb::WatchResponse refused = Response(id, 0);
        refused.set_created(true);
        refused.set_canceled(true);
        refused.set_cancel_reason("etcdserver: watch ID already exists");
        send_(std::move(refused));
        return;
      }
    } else {
      while (watches_.count(next_id_) != 0) ++next_id_;
      id = next_id_++;
    }
    watches_[id].id = id;
    watches_[id].fragment = request.fragment();
  }
  if (request.key().empty()) {
    pb::WatchResponse refused = Response(id, 0);
    refused.set_created(true);
    refused.set_canceled(true);
    refused.set_cancel_reason("etcdserver: key is not provided");
    {
      std::lock_guard<std::mutex> lock(mu_);
      watches_.erase(id);
    }
    send_(std::move(refused));
    return;
  }
  WatchOptions options;
  options.range_end = request.range_end();
  options.start_revision = std::max<int64_t>(request.start_revision(), 0);
  options.prev_kv = request.prev_kv();
  options.progress_notify = request.progress_notify();
  for (int f : request.filters()) {
    if (f == pb::WatchCreateRequest::NOPUT) options.no_put = true;
    if (f == pb::WatchCreateRequest::NODELETE) options.no_delete = true;
  }
  options.report_lifecycle = true;
  options.auth_token = caller_.token;
  const bool fragment = request.fragment();
  // The callback runs on the client's I/O thread; `this` outlives it (the
  // destructor destroys every watcher first, which waits for callbacks).
  auto watcher =
      client_->Watch(request.key(), options,
                     [this, id, fragment](StatusOr<WatchUpdate> update) {
                       OnUpdate(id, fragment, std::move(update));
                     });
  std::lock_guard<std::mutex> lock(mu_);
  auto it = watches_.find(id);
  if (it != watches_.end()) it->second.watcher = std::move(watcher);
}

void WatchStream::OnUpdate(int64_t id, bool fragment,
                           StatusOr<WatchUpdate> update) {
  if (!update.ok()) {
    // Compacted was answered by its update already.
    if (update.status().code() == raftkv::Status::Code::kCompacted) return;
    pb::WatchResponse ended = Response(id, 0);
    ended.set_canceled(true);
    const grpc::Status s = ToGrpc(update.status());
    std::string reason = s.error_message();
    const std::string prefix = "watch refused: ";
    if (reason.rfind(prefix, 0) == 0) reason = reason.substr(prefix.size());
    ended.set_cancel_reason(reason);
    ended.set_created(true);
    send_(std::move(ended));
    return;
  }
  if (update->created) {
    pb::WatchResponse created = Response(id, update->revision);
    created.set_created(true);
    send_(std::move(created));
    return;
  }
  if (update->compact_revision > 0) {
    pb::WatchResponse compacted = Response(id, 0);
    compacted.set_canceled(true);
    compacted.set_compact_revision(update->compact_revision);
    compacted.set_cancel_reason(
        "etcdserver: mvcc: required revision has been compacted");
    send_(std::move(compacted));
    return;
  }
  SendEvents(id, fragment, update->revision, update->events);
}

void WatchStream::SendEvents(int64_t id, bool fragment, int64_t revision,
                             const std::vector<WatchEvent>& events) {
  pb::WatchResponse response = Response(id, revision);
  size_t bytes = 0;
  for (const WatchEvent& e : events) {
    if (fragment && bytes > kFragmentBytes) {
      response.set_fragment(true);
      send_(std::move(response));
      response = Response(id, revision);
      bytes = 0;
    }
    mvccpb::Event* event = response.add_events();
    event->set_type(e.type == WatchEvent::Type::kDelete ? mvccpb::Event::DELETE
                                                        : mvccpb::Event::PUT);
    ToEtcd(e.kv, event->mutable_kv());
    if (e.has_prev_kv) ToEtcd(e.prev_kv, event->mutable_prev_kv());
    bytes += e.kv.key.size() + e.kv.value.size() + e.prev_kv.value.size();
  }
  send_(std::move(response));
}

void WatchStream::Cancel(int64_t id) {
  std::unique_ptr<Watcher> watcher;
  bool known;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = watches_.find(id);
    known = it != watches_.end();
    if (known) {
      watcher = std::move(it->second.watcher);
      watches_.erase(it);
    }
  }
  watcher.reset();     // no callback of it runs after this
  if (!known) return;  // etcd ignores an unknown id
  pb::WatchResponse canceled = Response(id, 0);
  canceled.set_canceled(true);
  send_(std::move(canceled));
}

void WatchStream::Progress() {
  // etcd answers with the store's revision, for every watch of the stream
  // (watch id -1); a revision no watch has been sent up to yet would
  // promise too much, so this says the lowest all have reached.
  int64_t revision = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool first = true;
    for (const auto& [id, w] : watches_) {
      if (!w.watcher) continue;
      const int64_t r = w.watcher->revision();
      revision = first ? r : std::min(revision, r);
      first = false;
    }
  }
  send_(Response(-1, revision));
}

}  // namespace raftkv::server::etcd
