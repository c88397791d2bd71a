// Encodes large client answers off the io thread (see response_encoder.h).
#include "server/response_encoder.h"

#include <asio/post.hpp>

#include "client/frame.h"
#include "server/client_service.h"
#include "server/stage_thread.h"

namespace raftkv::server {

ResponseEncoder::ResponseEncoder(asio::io_context& io)
    : io_(io), thread_([this] {
        SetUpStageThread("rkv-encoder", kApplierNice);
        Run();
      }) {}

ResponseEncoder::~ResponseEncoder() { Stop(); }

bool ResponseEncoder::IsLarge(const kv::ClientResponse& response) {
  if (response.has_range()) {
    return response.range().kvs_size() > kLargeKeyValues;
  }
  if (!response.has_command()) return false;
  const kv::CommandResult& result = response.command();
  if (result.has_delete_range()) {
    return result.delete_range().prev_kvs_size() > kLargeKeyValues;
  }
  int kvs = 0;
  for (const kv::ResponseOp& op : result.txn().responses()) {
    if (op.has_response_range()) kvs += op.response_range().kvs_size();
    if (op.has_response_delete_range()) {
      kvs += op.response_delete_range().prev_kvs_size();
    }
  }
  return kvs > kLargeKeyValues;
}

void ResponseEncoder::Encode(kv::ClientResponse response,
                             std::weak_ptr<wire::FramedConnection> connection) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  jobs_.push_back({std::move(response), std::move(connection)});
  cv_.notify_one();
}

void ResponseEncoder::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    jobs_.clear();
  }
  cv_.notify_one();
  thread_.join();
}

void ResponseEncoder::Run() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    if (job.connection.expired()) continue;
    size_t size = job.response.ByteSizeLong();
    if (size > kMaxAnswerBytes) {
      // Protobuf cannot encode it: say so rather than fail silently.
      const uint64_t id = job.response.request_id();
      job.response = ErrorResponse(
          kv::TOO_LARGE,
          "the answer is too large (" + std::to_string(size) + " bytes, over " +
              std::to_string(kMaxAnswerBytes) +
              "): ask for fewer keys (a limit, keys only, or a narrower "
              "range)");
      job.response.set_request_id(id);
      size = job.response.ByteSizeLong();
    }
    std::string frame(wire::kFrameHeaderBytes + size, '\0');
    wire::PutFrameHeader(static_cast<uint32_t>(size), frame.data());
    job.response.SerializeWithCachedSizesToArray(
        reinterpret_cast<uint8_t*>(frame.data() + wire::kFrameHeaderBytes));
    job.response = kv::ClientResponse();  // freed here, not on the loop
    asio::post(io_, [connection = std::move(job.connection),
                     frame = std::move(frame)]() mutable {
      auto conn = connection.lock();
      if (!conn || !conn->open()) return;
      if (!conn->SendFrame(std::move(frame))) {
        conn->Close(Status::Unavailable("client is not reading its responses"));
      }
    });
  }
}

}  // namespace raftkv::server
