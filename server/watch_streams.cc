// WatchStreams: connections, frames and slow readers of watches (see
// watch_streams.h). Never sends a frame after its watch's cancellation.
#include "server/watch_streams.h"

#include <glog/logging.h>

#include <asio/post.hpp>

namespace raftkv::server {

uint64_t WatchStreams::StreamOf(const Responder& respond) {
  auto conn = respond.connection().lock();
  if (!conn || !conn->open()) return 0;
  auto [it, added] = ids_.emplace(conn.get(), 0);
  if (!added) {
    auto stream = streams_.find(it->second);
    // The address of a connection that is gone, taken by a new one.
    if (stream != streams_.end() && stream->second.connection.lock() == conn) {
      return it->second;
    }
    if (stream != streams_.end()) streams_.erase(stream);
  }
  it->second = next_id_++;
  streams_[it->second].connection = conn;
  return it->second;
}

void WatchStreams::Create(const Responder& respond,
                          kv::WatchCreateRequest request) {
  const uint64_t stream = StreamOf(respond);
  if (stream == 0) return;
  Stream& s = streams_[stream];
  s.cancelled.erase(respond.request_id());
  s.sent_through.erase(respond.request_id());
  hub_->Create(stream, respond.request_id(), std::move(request));
}

void WatchStreams::Cancel(const Responder& respond, uint64_t watch_id) {
  const uint64_t stream = StreamOf(respond);
  if (stream == 0) return;
  hub_->Cancel(stream, watch_id, "cancelled by the client", /*silent=*/false);
  kv::ClientResponse done;
  done.mutable_watch()->set_watch_id(watch_id);
  done.mutable_watch()->set_canceled(true);
  respond(std::move(done));
}

void WatchStreams::RequestProgress(const Responder& respond) {
  const uint64_t stream = StreamOf(respond);
  if (stream == 0) return;
  hub_->RequestProgress(stream);
  kv::ClientResponse done;
  done.mutable_watch();
  respond(std::move(done));
}

void WatchStreams::ConnectionClosed(const wire::FramedConnection* connection) {
  auto it = ids_.find(connection);
  if (it == ids_.end()) return;
  hub_->ConnectionClosed(it->second);
  streams_.erase(it->second);
  ids_.erase(it);
}

void WatchStreams::Send(std::vector<WatchFrame> frames) {
  for (WatchFrame& f : frames) queued_.push_back(std::move(f));
  if (!slice_posted_) SendSlice();
}

void WatchStreams::SendSlice() {
  slice_posted_ = false;
  size_t bytes = 0;
  while (!queued_.empty() && bytes < kSliceBytes) {
    WatchFrame f = std::move(queued_.front());
    queued_.pop_front();
    bytes += f.bytes.size();
    SendFrame(f);
  }
  for (auto& weak : to_close_) {
    if (auto conn = weak.lock()) {
      conn->Close(Status::Unavailable("client is not reading its watches"));
    }
  }
  to_close_.clear();
  if (!unacknowledged_.empty()) AcknowledgeDrained();
  if (!queued_.empty()) {
    // The rest in another handler: the loop runs its tick in between.
    slice_posted_ = true;
    asio::post(io_, [this] { SendSlice(); });
  }
}

void WatchStreams::SendFrame(WatchFrame& f) {
  auto it = streams_.find(f.connection);
  if (it == streams_.end()) return;  // closed: the hub was told
  Stream& s = it->second;
  if (s.cancelled.count(f.watch_id) > 0) {
    if (f.canceled) s.cancelled.erase(f.watch_id);
    return;
  }
  auto conn = s.connection.lock();
  if (!conn || !conn->open()) return;
  const bool slow = conn->queued_bytes() >= max_unsent_bytes_;
  if (slow || !conn->Send(f.bytes)) {
    // A slow reader (or a connection whose queue refused the frame): this
    // watch stops here, and resumes (from the first revision it was not
    // sent) once its client reads again.
    CancelSlow(s, f, *conn);
    return;
  }
  if (f.canceled) {
    s.sent_through.erase(f.watch_id);
  } else {
    int64_t& through = s.sent_through[f.watch_id];
    through = std::max(through, f.through_revision);
  }
  if (f.ack_requested) unacknowledged_.insert({f.connection, f.watch_id});
}

void WatchStreams::CancelSlow(Stream& s, const WatchFrame& f,
                              wire::FramedConnection& conn) {
  auto sent = s.sent_through.find(f.watch_id);
  // Nothing sent yet (the frame is its first): from the frame's start.
  const int64_t resume = sent != s.sent_through.end() ? sent->second + 1
                         : f.first_revision > 0       ? f.first_revision
                                                      : f.through_revision + 1;
  kv::ClientResponse cancel;
  cancel.set_request_id(f.watch_id);
  kv::WatchResponse* w = cancel.mutable_watch();
  w->set_watch_id(f.watch_id);
  w->set_canceled(true);
  w->set_resume_revision(resume);
  w->set_cancel_reason("the watcher fell too far behind (over " +
                       std::to_string(max_unsent_bytes_ >> 20) +
                       " MiB unsent on its connection); resume from revision " +
                       std::to_string(resume));
  if (!f.canceled) {
    s.cancelled.insert(f.watch_id);
    hub_->Cancel(f.connection, f.watch_id, "", /*silent=*/true);
  }
  s.sent_through.erase(f.watch_id);
  ++slow_cancellations_;
  if (slow_counter_ != nullptr) slow_counter_->Inc();
  LOG(WARNING) << "watch " << f.watch_id << " of client " << conn.remote()
               << " cancelled: its reader is too slow";
  if (!conn.Send(cancel.SerializeAsString())) {
    // Not even the cancellation fits: the client must not wait for a
    // watch that is gone, so the connection goes (its watches resume);
    // closed after the frames at hand (closing forgets its stream).
    to_close_.push_back(s.connection);
  }
}

void WatchStreams::AcknowledgeDrained() {
  for (auto it = unacknowledged_.begin(); it != unacknowledged_.end();) {
    auto stream = streams_.find(it->first);
    std::shared_ptr<wire::FramedConnection> conn;
    if (stream != streams_.end()) conn = stream->second.connection.lock();
    if (!conn || !conn->open() ||
        stream->second.cancelled.count(it->second) > 0) {
      it = unacknowledged_.erase(it);  // the hub forgets the watch anyway
    } else if (conn->queued_bytes() <= max_unsent_bytes_ / 4) {
      hub_->Acknowledge(it->first, it->second);
      it = unacknowledged_.erase(it);
    } else {
      ++it;
    }
  }
  if (unacknowledged_.empty() || drain_timer_armed_) return;
  drain_timer_armed_ = true;
  drain_timer_.expires_after(std::chrono::milliseconds(5));
  drain_timer_.async_wait([this](const std::error_code& ec) {
    drain_timer_armed_ = false;
    if (!ec) AcknowledgeDrained();
  });
}

}  // namespace raftkv::server
