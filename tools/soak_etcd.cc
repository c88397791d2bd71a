// raftkv-soak's etcd-API clients (see soak_etcd.h).
#include "tools/soak_etcd.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "etcdserverpb/rpc.pb.h"
#include "tools/etcd_channel.h"

namespace raftkv::soak {
namespace {

namespace pb = etcdserverpb;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A failed gRPC call as a Status naming the endpoint.
Status ToStatus(const std::string& endpoint, const grpc::Status& s) {
  const std::string message = GrpcError(endpoint, s);
  switch (s.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status::Timeout(message);
    case grpc::StatusCode::NOT_FOUND:
      return Status::NotFound(message);
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Status::InvalidArgument(message);
    case grpc::StatusCode::FAILED_PRECONDITION:
      return Status::FailedPrecondition(message);
    case grpc::StatusCode::PERMISSION_DENIED:
      return Status::PermissionDenied(message);
    default:
      return Status::Unavailable(message);
  }
}

KeyValue FromEtcd(const mvccpb::KeyValue& in) {
  KeyValue out;
  out.key = in.key();
  out.value = in.value();
  out.create_revision = in.create_revision();
  out.mod_revision = in.mod_revision();
  out.version = in.version();
  out.lease = in.lease();
  return out;
}

// An etcd WatchResponse with events as the native client's WatchUpdate
// (what WatchTally takes).
WatchUpdate FromEtcd(const pb::WatchResponse& response) {
  WatchUpdate update;
  update.revision = response.header().revision();
  update.events.reserve(response.events_size());
  for (const mvccpb::Event& e : response.events()) {
    WatchEvent event;
    event.type = e.type() == mvccpb::Event::DELETE ? WatchEvent::Type::kDelete
                                                   : WatchEvent::Type::kPut;
    event.kv = FromEtcd(e.kv());
    if (e.has_prev_kv()) {
      event.has_prev_kv = true;
      event.prev_kv = FromEtcd(e.prev_kv());
    }
    update.events.push_back(std::move(event));
  }
  return update;
}

}  // namespace

// ---- EtcdWriter ----

// One put in flight: gRPC needs its context and messages to live until the
// callback.
struct EtcdWriter::Call {
  grpc::ClientContext ctx;
  pb::PutRequest request;
  pb::PutResponse response;
  std::function<void(Status)> done;
  std::shared_ptr<pb::KV::Stub> stub;  // the connection it went out on
  uint64_t generation = 0;
  size_t endpoint = 0;
};

EtcdWriter::EtcdWriter(std::vector<std::string> endpoints, size_t first,
                       std::chrono::milliseconds deadline)
    : endpoints_(std::move(endpoints)), deadline_(deadline) {
  CHECK(!endpoints_.empty());
  current_ = first % endpoints_.size();
  stub_ = pb::KV::NewStub(NewEtcdChannel(endpoints_[current_]));
}

EtcdWriter::~EtcdWriter() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return in_flight_ == 0; });
}

void EtcdWriter::PutAsync(const std::string& key, const std::string& value,
                          std::function<void(Status)> done) {
  auto* call = new Call;
  call->request.set_key(key);
  call->request.set_value(value);
  call->done = std::move(done);
  call->ctx.set_deadline(GrpcDeadline(deadline_));
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++in_flight_;
    call->stub = stub_;
    call->generation = generation_;
    call->endpoint = current_;
  }
  call->stub->async()->Put(
      &call->ctx, &call->request, &call->response,
      [this, call](grpc::Status s) {
        const std::string& endpoint = endpoints_[call->endpoint];
        Status result;
        if (!s.ok()) {
          result = ToStatus(endpoint, s);
        } else if (call->response.header().revision() <= 0) {
          result = Status::Unavailable(
              endpoint + ": an answer without a revision in its header");
        }
        if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
          // The endpoint is gone: later puts go to the next one.
          std::lock_guard<std::mutex> lock(mu_);
          if (call->generation == generation_) {
            ++generation_;
            current_ = (current_ + 1) % endpoints_.size();
            stub_ = pb::KV::NewStub(NewEtcdChannel(endpoints_[current_]));
          }
        }
        std::function<void(Status)> done = std::move(call->done);
        delete call;
        done(std::move(result));
        std::lock_guard<std::mutex> lock(mu_);
        if (--in_flight_ == 0) idle_.notify_all();
      });
}

// ---- EtcdWatchStream ----

// One attempt: a Watch call and the creates it sends, one at a time.
class EtcdWatchStream::Call final
    : public grpc::ClientBidiReactor<pb::WatchRequest, pb::WatchResponse> {
 public:
  // `to_create`: indices into owner->watches_.
  Call(EtcdWatchStream* owner, std::vector<size_t> to_create)
      : owner_(owner), to_create_(std::move(to_create)) {}

  void Start() {
    owner_->stub_->async()->Watch(&ctx_, this);
    StartRead(&response_);
    bool write;
    {
      std::lock_guard<std::mutex> lock(mu_);
      write = NextCreateLocked();
    }
    if (write) StartWrite(&request_);
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }
  // The call's final status, once it is done.
  grpc::Status Await() {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return done_; });
    return status_;
  }

 private:
  // The next create into request_ if none is in flight or unanswered.
  bool NextCreateLocked() {
    if (writing_ || awaiting_created_ || next_ >= to_create_.size()) {
      return false;
    }
    const State& state = owner_->watches_[to_create_[next_]];
    request_.Clear();
    pb::WatchCreateRequest* create = request_.mutable_create_request();
    create->set_key(state.watch.key);
    create->set_range_end(state.watch.range_end);
    create->set_start_revision(state.next_revision);
    writing_ = true;
    awaiting_created_ = true;
    return true;
  }

  void OnWriteDone(bool ok) override {
    bool write = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (ok) write = NextCreateLocked();
    }
    if (write) StartWrite(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the call ends: OnDone follows
    Handle(response_);
    StartRead(&response_);
  }

  void Handle(const pb::WatchResponse& r) {
    if (r.created()) {
      size_t index;
      bool write;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!awaiting_created_) return;  // not ours to match
        index = to_create_[next_++];
        awaiting_created_ = false;
        write = NextCreateLocked();
      }
      if (r.canceled()) {
        owner_->End(index, Status::FailedPrecondition(
                               owner_->endpoint_ +
                               ": watch refused: " + r.cancel_reason()));
      } else {
        ids_[r.watch_id()] = index;
      }
      if (write) StartWrite(&request_);
      return;
    }
    auto it = ids_.find(r.watch_id());
    if (it == ids_.end()) return;  // progress for the stream, or unknown
    const size_t index = it->second;
    if (r.canceled()) {
      ids_.erase(it);
      const std::string why =
          owner_->endpoint_ + ": watch canceled: " + r.cancel_reason() +
          " (compact revision " + std::to_string(r.compact_revision()) + ")";
      owner_->End(index, r.compact_revision() > 0 ? Status::Compacted(why)
                                                  : Status::Aborted(why));
      return;
    }
    if (r.events_size() > 0) owner_->Deliver(index, r);
  }

  void OnDone(const grpc::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    done_ = true;
    done_cv_.notify_all();
  }

  EtcdWatchStream* const owner_;
  const std::vector<size_t> to_create_;
  grpc::ClientContext ctx_;
  pb::WatchRequest request_;       // the write in flight
  pb::WatchResponse response_;     // the read in flight
  std::map<int64_t, size_t> ids_;  // watch id -> index; read reactions only
  std::mutex mu_;
  std::condition_variable done_cv_;
  size_t next_ = 0;       // into to_create_: the next create's; guarded by mu_
  bool writing_ = false;  // guarded by mu_
  bool awaiting_created_ = false;  // guarded by mu_
  bool done_ = false;              // guarded by mu_
  grpc::Status status_;            // guarded by mu_
};

EtcdWatchStream::EtcdWatchStream(std::string endpoint,
                                 std::shared_ptr<grpc::Channel> channel,
                                 std::vector<Watch> watches)
    : endpoint_(std::move(endpoint)),
      stub_(pb::Watch::NewStub(std::move(channel))) {
  for (Watch& w : watches) {
    State state;
    state.next_revision = w.start_revision;
    state.watch = std::move(w);
    watches_.push_back(std::move(state));
  }
  thread_ = std::thread([this] { Run(); });
}

EtcdWatchStream::~EtcdWatchStream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    // No reaction takes mu_: cancelling under it cannot deadlock.
    if (current_ != nullptr) current_->Cancel();
  }
  cv_.notify_all();
  thread_.join();
}

void EtcdWatchStream::Run() {
  for (;;) {
    std::vector<size_t> live;
    for (size_t i = 0; i < watches_.size(); ++i) {
      if (!watches_[i].ended) live.push_back(i);
    }
    if (live.empty()) break;
    auto call = std::make_unique<Call>(this, std::move(live));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      current_ = call.get();
    }
    call->Start();
    const grpc::Status status = call->Await();
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_ = nullptr;
    }
    call.reset();
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) break;
    ++resumed_;
    std::fprintf(stderr,
                 "soak: etcd watch stream on %s ended (%s); resuming it\n",
                 endpoint_.c_str(), GrpcError(endpoint_, status).c_str());
    // etcd's clients wait a little before they open a new stream.
    cv_.wait_for(lock, milliseconds(100), [this] { return stop_; });
    if (stop_) break;
  }
}

void EtcdWatchStream::Deliver(size_t index, const pb::WatchResponse& response) {
  State& state = watches_[index];
  if (state.ended) return;
  WatchUpdate update = FromEtcd(response);
  state.next_revision = update.events.back().kv.mod_revision + 1;
  state.watch.on_update(std::move(update));
}

void EtcdWatchStream::End(size_t index, Status status) {
  State& state = watches_[index];
  if (state.ended) return;
  state.ended = true;
  state.watch.on_update(std::move(status));
}

// ---- EtcdLeaseKeeper ----

EtcdLeaseKeeper::EtcdLeaseKeeper(std::string endpoint,
                                 std::shared_ptr<grpc::Channel> channel,
                                 std::vector<int64_t> ids, int64_t ttl_s,
                                 std::function<void(Status)> on_lost)
    : endpoint_(std::move(endpoint)),
      ttl_s_(ttl_s),
      on_lost_(std::move(on_lost)),
      stub_(pb::Lease::NewStub(std::move(channel))) {
  for (int64_t id : ids) lost_[id] = false;
  stub_->async()->LeaseKeepAlive(&ctx_, this);
  // Writes start on the renewing thread, outside any reaction: the hold
  // keeps the call from ending under them until that thread lets go.
  AddHold();
  StartRead(&response_);
  StartCall();
  thread_ = std::thread([this] { Renew(); });
}

EtcdLeaseKeeper::~EtcdLeaseKeeper() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  ctx_.TryCancel();  // not under mu_: reactions take it
  thread_.join();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return done_; });
}

bool EtcdLeaseKeeper::NextWriteLocked() {
  if (writing_ || to_send_.empty() || stopping_ || read_ended_) return false;
  request_.set_id(to_send_.back());
  to_send_.pop_back();
  writing_ = true;
  return true;
}

void EtcdLeaseKeeper::Renew() {
  // etcd's clients renew a third of the TTL after the last renewal.
  const milliseconds interval(std::max<int64_t>(ttl_s_ * 1000 / 3, 100));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && !read_ended_) {
    if (!to_send_.empty()) {
      std::fprintf(stderr,
                   "soak: etcd lease keep-alive on %s: %zu renewals of the "
                   "last round still unsent\n",
                   endpoint_.c_str(), to_send_.size());
    }
    to_send_.clear();
    for (const auto& [id, lost] : lost_) {
      if (!lost) to_send_.push_back(id);
    }
    std::reverse(to_send_.begin(), to_send_.end());  // sent from the back
    if (NextWriteLocked()) {
      lock.unlock();
      StartWrite(&request_);
      lock.lock();
    }
    cv_.wait_for(lock, interval, [this] { return stopping_ || read_ended_; });
  }
  lock.unlock();
  RemoveHold();
}

void EtcdLeaseKeeper::OnWriteDone(bool ok) {
  bool write = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (ok) write = NextWriteLocked();
  }
  if (write) StartWrite(&request_);
}

void EtcdLeaseKeeper::OnReadDone(bool ok) {
  if (!ok) {
    std::lock_guard<std::mutex> lock(mu_);
    read_ended_ = true;
    cv_.notify_all();
    return;  // OnDone follows
  }
  const int64_t id = response_.id();
  const int64_t ttl = response_.ttl();
  bool lose = false;
  if (ttl <= 0) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = lost_.find(id);
    if (it != lost_.end() && !it->second) {
      it->second = true;
      lose = true;
    }
  }
  if (lose) {
    on_lost_(Status::NotFound(endpoint_ + ": lease " + std::to_string(id) +
                              " renewed with TTL " + std::to_string(ttl)));
  }
  StartRead(&response_);
}

void EtcdLeaseKeeper::OnDone(const grpc::Status& status) {
  uint64_t lose = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      for (auto& [id, lost] : lost_) {
        if (!lost) {
          lost = true;
          ++lose;
        }
      }
    }
  }
  if (lose > 0) {
    std::fprintf(stderr,
                 "soak: etcd lease keep-alive stream ended (%s): %llu leases "
                 "lost\n",
                 GrpcError(endpoint_, status).c_str(),
                 static_cast<unsigned long long>(lose));
  }
  for (uint64_t i = 0; i < lose; ++i) {
    on_lost_(Status::Unavailable("keep-alive stream ended: " +
                                 GrpcError(endpoint_, status)));
  }
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  cv_.notify_all();
}

// ---- The front door ----

namespace {

class Streams : public Running {
 public:
  explicit Streams(std::vector<std::unique_ptr<EtcdWatchStream>> streams)
      : streams_(std::move(streams)) {}
  uint64_t resumed() const override {
    uint64_t n = 0;
    for (const auto& s : streams_) n += s->resumed();
    return n;
  }

 private:
  std::vector<std::unique_ptr<EtcdWatchStream>> streams_;
};

class Leases : public Running {
 public:
  explicit Leases(std::unique_ptr<EtcdLeaseKeeper> keeper)
      : keeper_(std::move(keeper)) {}

 private:
  std::unique_ptr<EtcdLeaseKeeper> keeper_;
};

class EtcdFrontDoor : public FrontDoor {
 public:
  EtcdFrontDoor(const LocalCluster& cluster, std::vector<int> members)
      : cluster_(cluster), members_(std::move(members)) {}

  const char* name() const override { return "etcd"; }

  std::unique_ptr<Writer> NewWriter(uint32_t i,
                                    const std::vector<int>& members) override {
    std::vector<std::string> endpoints;
    for (int id : members) endpoints.push_back(cluster_.etcd_address(id));
    return std::make_unique<EtcdWriter>(std::move(endpoints), i,
                                        std::chrono::seconds(10));
  }

  // etcd's writes are at-most-once: its clients do not retry a put whose
  // connection broke under it (clientv3 retries a put only if it was never
  // sent). The writers name the endpoint and gRPC's code in the error.
  bool LostWithNode(const Status& error, int node) const override {
    const std::string prefix = cluster_.etcd_address(node) + ": gRPC code " +
                               std::to_string(grpc::StatusCode::UNAVAILABLE) +
                               ":";
    return error.code() == Status::Code::kUnavailable &&
           error.message().rfind(prefix, 0) == 0;
  }

  // As an etcd client after a restart: each try on a new connection to the
  // next member, until one put is acknowledged.
  Status PutUntilAcked(const std::string& key, const std::string& value,
                       std::chrono::milliseconds within) override {
    const auto until = Clock::now() + within;
    Status last = Status::Timeout("no try");
    for (size_t attempt = 0;; ++attempt) {
      const std::string endpoint =
          cluster_.etcd_address(members_[attempt % members_.size()]);
      auto stub = pb::KV::NewStub(NewEtcdChannel(endpoint));
      grpc::ClientContext ctx;
      const auto left =
          std::chrono::duration_cast<milliseconds>(until - Clock::now());
      ctx.set_deadline(GrpcDeadline(
          std::max(milliseconds(1), std::min(left, milliseconds(2000)))));
      pb::PutRequest request;
      request.set_key(key);
      request.set_value(value);
      pb::PutResponse response;
      const grpc::Status s = stub->Put(&ctx, request, &response);
      if (s.ok() && response.header().revision() > 0) return Status::OK();
      last = s.ok() ? Status::Unavailable(endpoint + ": no revision")
                    : ToStatus(endpoint, s);
      if (Clock::now() >= until) return last;
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  StatusOr<int64_t> Revision() override {
    StatusOr<int64_t> out = Status::Unavailable("no member");
    ForAMember([&](const std::string& endpoint, pb::KV::Stub& kv) {
      grpc::ClientContext ctx;
      ctx.set_deadline(GrpcDeadline(std::chrono::seconds(30)));
      pb::RangeRequest request;
      request.set_key("key/");  // no such key: the header is the answer
      pb::RangeResponse response;
      const grpc::Status s = kv.Range(&ctx, request, &response);
      if (!s.ok()) {
        out = ToStatus(endpoint, s);
        return s;
      }
      out = response.header().revision();
      return s;
    });
    return out;
  }

  StatusOr<uint64_t> CountPresent(
      const std::vector<std::string>& keys) override {
    StatusOr<uint64_t> out = Status::Unavailable("no member");
    ForAMember([&](const std::string& endpoint, pb::KV::Stub& kv) {
      uint64_t present = 0;
      for (const std::string& key : keys) {
        grpc::ClientContext ctx;
        ctx.set_deadline(GrpcDeadline(std::chrono::seconds(30)));
        pb::RangeRequest request;
        request.set_key(key);
        request.set_count_only(true);
        pb::RangeResponse response;
        const grpc::Status s = kv.Range(&ctx, request, &response);
        if (!s.ok()) {
          out = ToStatus(endpoint, s);
          return s;
        }
        if (response.count() > 0) ++present;
      }
      out = present;
      return grpc::Status::OK;
    });
    return out;
  }

  Status Delete(const std::vector<std::string>& keys) override {
    Status out = Status::Unavailable("no member");
    ForAMember([&](const std::string& endpoint, pb::KV::Stub& kv) {
      for (const std::string& key : keys) {
        grpc::ClientContext ctx;
        ctx.set_deadline(GrpcDeadline(std::chrono::seconds(30)));
        pb::DeleteRangeRequest request;
        request.set_key(key);
        pb::DeleteRangeResponse response;
        const grpc::Status s = kv.DeleteRange(&ctx, request, &response);
        if (!s.ok()) {
          out = ToStatus(endpoint, s);
          return s;
        }
      }
      out = Status::OK();
      return grpc::Status::OK;
    });
    return out;
  }

  std::unique_ptr<Running> KeepLeases(const std::vector<std::string>& keys,
                                      int64_t ttl_s,
                                      std::function<void(Status)> on_lost,
                                      size_t* granted) override {
    // One connection for the grants, puts and the keep-alive stream, as
    // one etcd client.
    const std::string endpoint = cluster_.etcd_address(members_.front());
    auto channel = NewEtcdChannel(endpoint);
    auto lease = pb::Lease::NewStub(channel);
    auto kv = pb::KV::NewStub(channel);
    std::vector<int64_t> ids;
    *granted = 0;
    for (const std::string& key : keys) {
      grpc::ClientContext grant_ctx;
      grant_ctx.set_deadline(GrpcDeadline(std::chrono::seconds(30)));
      pb::LeaseGrantRequest grant;
      grant.set_ttl(ttl_s);
      pb::LeaseGrantResponse lease_response;
      grpc::Status s = lease->LeaseGrant(&grant_ctx, grant, &lease_response);
      if (!s.ok() || lease_response.id() == 0) {
        std::fprintf(stderr, "soak: lease grant: %s\n",
                     s.ok() ? "no id" : GrpcError(endpoint, s).c_str());
        break;
      }
      grpc::ClientContext put_ctx;
      put_ctx.set_deadline(GrpcDeadline(std::chrono::seconds(30)));
      pb::PutRequest put;
      put.set_key(key);
      put.set_value("up");
      put.set_lease(lease_response.id());
      pb::PutResponse put_response;
      s = kv->Put(&put_ctx, put, &put_response);
      if (!s.ok() || put_response.header().revision() <= 0) {
        std::fprintf(stderr, "soak: put with a lease: %s\n",
                     s.ok() ? "no revision" : GrpcError(endpoint, s).c_str());
        break;
      }
      ids.push_back(lease_response.id());
      ++*granted;
    }
    return std::make_unique<Leases>(std::make_unique<EtcdLeaseKeeper>(
        endpoint, channel, std::move(ids), ttl_s, std::move(on_lost)));
  }

  std::unique_ptr<Running> Watch(std::vector<WatchSpec> specs) override {
    // One connection per member, shared by its streams (HTTP/2 streams).
    std::map<int, std::shared_ptr<grpc::Channel>> channels;
    std::map<int, std::vector<EtcdWatchStream::Watch>> shared;
    std::vector<std::unique_ptr<EtcdWatchStream>> streams;
    for (WatchSpec& spec : specs) {
      auto& channel = channels[spec.member];
      if (!channel)
        channel = NewEtcdChannel(cluster_.etcd_address(spec.member));
      EtcdWatchStream::Watch w{std::move(spec.key), std::move(spec.range_end),
                               spec.start_revision, std::move(spec.on_update)};
      if (spec.own_stream) {
        std::vector<EtcdWatchStream::Watch> one;
        one.push_back(std::move(w));
        streams.push_back(std::make_unique<EtcdWatchStream>(
            cluster_.etcd_address(spec.member), channel, std::move(one)));
      } else {
        shared[spec.member].push_back(std::move(w));
      }
    }
    for (auto& [member, watches] : shared) {
      streams.push_back(std::make_unique<EtcdWatchStream>(
          cluster_.etcd_address(member), channels[member], std::move(watches)));
    }
    return std::make_unique<Streams>(std::move(streams));
  }

 private:
  // Runs `call` against the members in turn until one does not answer
  // UNAVAILABLE.
  void ForAMember(const std::function<grpc::Status(const std::string&,
                                                   pb::KV::Stub&)>& call) {
    for (int id : members_) {
      const std::string endpoint = cluster_.etcd_address(id);
      auto kv = pb::KV::NewStub(NewEtcdChannel(endpoint));
      const grpc::Status s = call(endpoint, *kv);
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE) return;
    }
  }

  const LocalCluster& cluster_;
  const std::vector<int> members_;
};

}  // namespace

std::unique_ptr<FrontDoor> NewEtcdFrontDoor(const LocalCluster& cluster,
                                            std::vector<int> members) {
  return std::make_unique<EtcdFrontDoor>(cluster, std::move(members));
}

}  // namespace raftkv::soak
