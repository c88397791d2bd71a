// Serves reads at snapshots, off the applier's thread (see read_pool.h).
#include "server/read_pool.h"

#include <algorithm>

#include "server/client_service.h"
#include "server/stage_thread.h"
#include "storage/read_snapshot.h"

namespace raftkv::server {
namespace {

// The answer to a read the state machine refused.
kv::ErrorCode ReadErrorCode(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
      return kv::INVALID;
    case Status::Code::kCompacted:
      return kv::COMPACTED;
    case Status::Code::kFailedPrecondition:
      return kv::FUTURE_REVISION;
    case Status::Code::kNotFound:
      return kv::LEASE_NOT_FOUND;
    default:
      return kv::STORAGE;
  }
}

bool Abandoned(const ReadRequest& read) {
  return read.abandoned && read.abandoned->load(std::memory_order_relaxed);
}

// A range with no small limit: it may read many keys.
bool MayBeLong(const ReadRequest& read) {
  const kv::RangeRequest& r = read.request;
  return read.lease_keys == 0 && !r.range_end().empty() &&
         (r.limit() == 0 || r.limit() > 1000);
}

}  // namespace

ReadPool::ReadPool(int threads, std::function<void(ReadsServed)> served)
    : served_(std::move(served)) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      SetUpStageThread("rkv-reader", kApplierNice);
      Run();
    });
  }
}

ReadPool::~ReadPool() { Stop(); }

void ReadPool::Serve(std::shared_ptr<const storage::ReadSnapshot> at,
                     std::vector<ReadRequest> reads) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    for (ReadRequest& r : reads) queue_.push_back({at, std::move(r)});
  }
  cv_.notify_all();
}

void ReadPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

kv::ClientResponse ReadPool::Execute(const storage::ReadSnapshot& at,
                                     const ReadRequest& read) {
  kv::ClientResponse response;
  Status s;
  if (read.lease_keys != 0) {
    auto keys = at.LeaseKeys(read.lease_keys);
    s = keys.status();
    if (s.ok()) {
      kv::LeaseTimeToLiveResponse* ttl = response.mutable_lease_time_to_live();
      ttl->set_id(read.lease_keys);
      for (const std::string& key : *keys) ttl->add_keys(key);
      ttl->mutable_header()->set_revision(at.revision());
    }
  } else {
    auto result = at.Range(read.request);
    s = result.status();
    if (s.ok()) *response.mutable_range() = std::move(result).value();
  }
  if (!s.ok()) response = ErrorResponse(ReadErrorCode(s), s.message());
  return response;
}

void ReadPool::Run() {
  for (;;) {
    std::deque<Item> taken;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything served
      // Small reads travel together; the other thread takes what arrives
      // meanwhile, so one long read holds up only what was taken with it.
      const size_t n = std::min<size_t>(queue_.size(), 64);
      for (size_t i = 0; i < n; ++i) {
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    ReadsServed out;
    auto flush = [&] {
      if (!out.responses.empty()) served_(std::move(out));
      out = ReadsServed();
    };
    for (Item& item : taken) {
      if (Abandoned(item.read)) continue;
      if (MayBeLong(item.read)) flush();  // what is done goes first
      kv::ClientResponse response = Execute(*item.at, item.read);
      item.at.reset();
      if (Abandoned(item.read)) continue;  // freed here, not on the loop
      out.responses.emplace_back(item.read.id, std::move(response));
    }
    flush();
  }
}

}  // namespace raftkv::server
