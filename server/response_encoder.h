// ResponseEncoder: encodes large client answers (a range of many keys) on a
// thread of its own and hands the finished frames back to the io thread to
// send, so that answering a read of a million keys never stalls the event
// loop that runs Raft's timers (serialising and freeing such an answer
// takes hundreds of milliseconds). Small answers stay inline (Responder):
// a thread hop costs more than encoding them.
//
// Must never: touch a connection off the io thread, or keep an answer past
// Stop().
#pragma once

#include <asio/io_context.hpp>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "client/framed_connection.h"
#include "client/kv.pb.h"

namespace raftkv::server {

class ResponseEncoder {
 public:
  explicit ResponseEncoder(asio::io_context& io);
  ~ResponseEncoder();  // Stop()
  ResponseEncoder(const ResponseEncoder&) = delete;
  ResponseEncoder& operator=(const ResponseEncoder&) = delete;

  // Whether `response` is worth encoding off the io thread: it carries
  // more key-values than kLargeKeyValues (in a range, a deletion's previous
  // key-values, or a txn's).
  static constexpr int kLargeKeyValues = 256;
  static bool IsLarge(const kv::ClientResponse& response);
  // The largest answer sent (protobuf's limit is 2 GiB); a larger one is
  // answered with TOO_LARGE instead.
  static constexpr size_t kMaxAnswerBytes = (size_t{1} << 31) - 4096;

  // Queues `response` (its request id set) to be encoded and then sent on
  // `connection` from the io thread; dropped if the connection has closed
  // by then. A connection whose queue is full is closed, as Responder does.
  void Encode(kv::ClientResponse response,
              std::weak_ptr<wire::FramedConnection> connection);
  // Joins the thread; answers not yet encoded are dropped (their clients'
  // connections are closing with the server).
  void Stop();

 private:
  struct Job {
    kv::ClientResponse response;
    std::weak_ptr<wire::FramedConnection> connection;
  };
  void Run();

  asio::io_context& io_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;   // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace raftkv::server
