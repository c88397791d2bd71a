// raftkv-bench's load through etcd's v3 API over gRPC (see bench_etcd.h).
#include "tools/bench_etcd.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "tools/etcd_channel.h"

namespace raftkv::bench {
namespace {

using Clock = std::chrono::steady_clock;

StatusOr<etcdserverpb::StatusResponse> MemberStatus(
    const std::string& endpoint) {
  auto stub = etcdserverpb::Maintenance::NewStub(NewEtcdChannel(endpoint));
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadline(std::chrono::seconds(5)));
  etcdserverpb::StatusResponse response;
  const grpc::Status s =
      stub->Status(&ctx, etcdserverpb::StatusRequest(), &response);
  if (!s.ok()) return Status::Unavailable(GrpcError(endpoint, s));
  return response;
}

// The same value bytes as the native load (bench_load.cc).
std::string BenchValue(size_t n) {
  std::mt19937_64 rng(42);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// One request in flight: gRPC needs its context and messages to live
// until the callback.
struct Call {
  grpc::ClientContext ctx;
  etcdserverpb::PutRequest put;
  etcdserverpb::PutResponse put_response;
  etcdserverpb::RangeRequest range;
  etcdserverpb::RangeResponse range_response;
  Clock::time_point start;
};

}  // namespace

StatusOr<std::string> EtcdLeaderEndpoint(
    const std::vector<std::string>& endpoints) {
  // Up to 10 s: right after start-up the members may not know a leader.
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  Status last = Status::Unavailable("no endpoints");
  do {
    for (const std::string& e : endpoints) {
      auto status = MemberStatus(e);
      if (!status.ok()) {
        last = status.status();
        continue;
      }
      if (status->leader() != 0 &&
          status->leader() == status->header().member_id()) {
        return e;
      }
      last = Status::Unavailable(e + " does not lead (leader " +
                                 std::to_string(status->leader()) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (Clock::now() < give_up);
  return Status::Unavailable("no endpoint leads: " + last.ToString());
}

uint64_t EtcdMaxTerm(const std::vector<std::string>& endpoints) {
  uint64_t term = 0;
  for (const std::string& e : endpoints) {
    auto status = MemberStatus(e);
    if (status.ok()) term = std::max<uint64_t>(term, status->raftterm());
  }
  return term;
}

Status EtcdPutOnce(const std::vector<std::string>& endpoints,
                   const std::string& key, const std::string& value) {
  Status last = Status::Unavailable("no endpoints");
  for (const std::string& e : endpoints) {
    auto stub = etcdserverpb::KV::NewStub(NewEtcdChannel(e));
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadline(std::chrono::seconds(10)));
    etcdserverpb::PutRequest request;
    request.set_key(key);
    request.set_value(value);
    etcdserverpb::PutResponse response;
    const grpc::Status s = stub->Put(&ctx, request, &response);
    if (s.ok()) return Status::OK();
    last = Status::Unavailable(GrpcError(e, s));
  }
  return last;
}

StatusOr<EtcdLoadResult> RunEtcdClosedLoop(const EtcdLoadOptions& options,
                                           const LoadOptions& load,
                                           const ProgressFn& progress) {
  if (options.endpoints.empty()) {
    return Status::InvalidArgument("no etcd-API endpoints");
  }
  if (load.op != Op::kPut && load.op != Op::kRange) {
    return Status::InvalidArgument("only put and range run through etcd's API");
  }
  EtcdLoadResult out;
  std::vector<std::string> targets = options.endpoints;
  if (options.target_leader) {
    auto leader = EtcdLeaderEndpoint(options.endpoints);
    if (!leader.ok()) return leader.status();
    targets = {*leader};
  }
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  const uint32_t conns = std::max<uint32_t>(1, options.conns);
  for (uint32_t i = 0; i < conns; ++i) {
    const std::string& endpoint = targets[i % targets.size()];
    auto channel = NewEtcdChannel(endpoint);
    if (!channel->WaitForConnected(GrpcDeadline(std::chrono::seconds(10)))) {
      return Status::Unavailable("cannot connect to " + endpoint);
    }
    stubs.push_back(etcdserverpb::KV::NewStub(channel));
    out.conn_endpoints.push_back(endpoint);
  }

  const std::string value = BenchValue(load.val_size);
  std::mutex mu;
  std::condition_variable cv;
  LoadResult& result = out.load;
  result.latencies_ms.reserve(load.total);
  std::vector<int64_t> revisions;
  if (load.op == Op::kPut) revisions.reserve(load.total);
  uint64_t answered = 0;
  std::atomic<uint64_t> next{0};
  const auto start = Clock::now();

  // One logical client: issues request `n`, and the next when answered.
  std::function<void(uint32_t)> issue = [&](uint32_t client) {
    const uint64_t n = next++;
    if (n >= load.total) return;
    etcdserverpb::KV::Stub* stub = stubs[client % stubs.size()].get();
    auto* call = new Call;
    call->start = Clock::now();
    call->ctx.set_deadline(GrpcDeadline(options.deadline));
    auto done = [&, client, call](const grpc::Status& s) {
      const double ms =
          std::chrono::duration<double, std::milli>(Clock::now() - call->start)
              .count();
      const bool is_put = load.op == Op::kPut;
      const int64_t revision = is_put
                                   ? call->put_response.header().revision()
                                   : call->range_response.header().revision();
      const std::string endpoint =
          out.conn_endpoints[client % out.conn_endpoints.size()];
      delete call;
      issue(client);  // first: the last answer must be the last callback
      std::lock_guard<std::mutex> lock(mu);
      if (s.ok() && revision > 0) {
        result.latencies_ms.push_back(ms);
        if (is_put) revisions.push_back(revision);
      } else if (result.errors++ == 0) {
        result.first_error =
            s.ok() ? endpoint + ": an answer without a revision in its header"
                   : GrpcError(endpoint, s);
      }
      if (++answered == load.total) cv.notify_all();
    };
    if (load.op == Op::kPut) {
      // The keys of the native load for request n (bench_load.cc).
      std::mt19937_64 rng(n * 0x9E3779B97F4A7C15ULL + 1);
      call->put.set_key(BenchKey(load, n, rng()));
      call->put.set_value(value);
      stub->async()->Put(&call->ctx, &call->put, &call->put_response, done);
    } else {
      call->range.set_key(load.range_key);
      call->range.set_serializable(load.serializable);
      stub->async()->Range(&call->ctx, &call->range, &call->range_response,
                           done);
    }
  };

  const uint32_t clients =
      static_cast<uint32_t>(std::min<uint64_t>(load.clients, load.total));
  for (uint32_t c = 0; c < clients; ++c) issue(c);
  {
    std::unique_lock<std::mutex> lock(mu);
    while (answered < load.total) {
      cv.wait_for(lock, std::chrono::milliseconds(200));
      if (progress) {
        const uint64_t now_answered = answered;
        const double elapsed =
            std::chrono::duration<double>(Clock::now() - start).count();
        lock.unlock();
        progress(now_answered, elapsed);
        lock.lock();
      }
    }
  }
  result.elapsed_s =
      std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(revisions.begin(), revisions.end());
  out.distinct_revisions =
      std::unique(revisions.begin(), revisions.end()) - revisions.begin();
  return out;
}

}  // namespace raftkv::bench
