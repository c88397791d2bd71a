// BenchLoad: the closed-loop load of raftkv-bench, as etcd's benchmark tool
// drives it: `clients` logical clients share `conns` connections (Client
// objects), each client with one request in flight, until `total`
// requests were answered. Records every latency and every error.
//
// Must never: count a failed request as done work, or leave a callback
// running after RunClosedLoop returns.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "client/client.h"

namespace raftkv::bench {

enum class Op { kPut, kRange, kTxnPut };

struct LoadOptions {
  Op op = Op::kPut;
  uint64_t total = 10000;
  uint32_t clients = 1;
  // put, txn-put: keys of key_size bytes (zero-padded decimal) over
  // key_space_size keys, random unless sequential; random values.
  size_t key_size = 8;
  size_t val_size = 8;
  uint64_t key_space_size = 1;
  bool sequential_keys = false;
  uint32_t txn_ops = 1;  // puts per transaction
  // range: the key read, linearizable unless serializable.
  std::string range_key;
  bool serializable = false;
};

struct LoadResult {
  std::vector<double> latencies_ms;  // of the requests that succeeded
  uint64_t errors = 0;
  std::string first_error;
  double elapsed_s = 0;
};

// Called about every 200 ms with the requests answered so far.
using ProgressFn = std::function<void(uint64_t answered, double elapsed_s)>;

LoadResult RunClosedLoop(const std::vector<Client*>& conns,
                         const LoadOptions& options,
                         const ProgressFn& progress);

// The key a put or txn-put writes for request number `n`.
std::string BenchKey(const LoadOptions& options, uint64_t n, uint64_t random);

}  // namespace raftkv::bench
