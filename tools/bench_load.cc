// The closed-loop load of raftkv-bench (see bench_load.h).
#include "tools/bench_load.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>

#include "client/kv.pb.h"

namespace raftkv::bench {
namespace {

using Clock = std::chrono::steady_clock;

std::string RandomBytes(size_t n, std::mt19937_64& rng) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

}  // namespace

std::string BenchKey(const LoadOptions& options, uint64_t n, uint64_t random) {
  const uint64_t space = std::max<uint64_t>(1, options.key_space_size);
  const uint64_t k = options.sequential_keys ? n % space : random % space;
  std::string digits = std::to_string(k);
  if (digits.size() < options.key_size) {
    digits.insert(0, options.key_size - digits.size(), '0');
  }
  return digits;
}

LoadResult RunClosedLoop(const std::vector<Client*>& conns,
                         const LoadOptions& options,
                         const ProgressFn& progress) {
  std::mt19937_64 value_rng(42);
  const std::string value = RandomBytes(options.val_size, value_rng);
  std::mutex mu;
  std::condition_variable cv;
  LoadResult result;
  result.latencies_ms.reserve(options.total);
  uint64_t answered = 0;
  std::atomic<uint64_t> next{0};
  const auto start = Clock::now();

  // One logical client: issues request `n`, and the next when answered.
  std::function<void(uint32_t)> issue = [&](uint32_t client) {
    const uint64_t n = next++;
    if (n >= options.total) return;
    Client* conn = conns[client % conns.size()];
    const auto t0 = Clock::now();
    auto done = [&, client, t0](const Status& s) {
      const double ms =
          std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      issue(client);  // first: the last answer must be the last callback
      std::lock_guard<std::mutex> lock(mu);
      if (s.ok()) {
        result.latencies_ms.push_back(ms);
      } else {
        if (result.errors++ == 0) result.first_error = s.ToString();
      }
      if (++answered == options.total) cv.notify_all();
    };
    // Keys are drawn from one generator per request number, so runs with
    // the same flags write the same keys.
    std::mt19937_64 rng(n * 0x9E3779B97F4A7C15ULL + 1);
    switch (options.op) {
      case Op::kPut:
        conn->PutAsync(BenchKey(options, n, rng()), value,
                       [done](StatusOr<int64_t> r) { done(r.status()); });
        break;
      case Op::kRange:
        conn->GetAsync(options.range_key, ReadOptions{options.serializable},
                       [done](StatusOr<KeyValue> r) {
                         done(r.ok() || r.status().IsNotFound() ? Status::OK()
                                                                : r.status());
                       });
        break;
      case Op::kTxnPut: {
        kv::TxnRequest txn;
        for (uint32_t i = 0; i < std::max<uint32_t>(1, options.txn_ops); ++i) {
          kv::PutRequest* put = txn.add_success()->mutable_request_put();
          put->set_key(BenchKey(options, n * options.txn_ops + i, rng()));
          put->set_value(value);
        }
        conn->TxnAsync(
            txn, [done](StatusOr<kv::TxnResponse> r) { done(r.status()); });
        break;
      }
    }
  };

  const uint32_t clients =
      static_cast<uint32_t>(std::min<uint64_t>(options.clients, options.total));
  for (uint32_t c = 0; c < clients; ++c) issue(c);
  std::unique_lock<std::mutex> lock(mu);
  while (answered < options.total) {
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
  result.elapsed_s =
      std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace raftkv::bench
