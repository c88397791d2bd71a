// WatchStreams: the loop's side of watches: it gives each client
// connection an id for the WatchHub (watch_hub.h), passes watch requests
// on, and sends the hub's frames on the connections. A history read is
// acknowledged to the hub once sent and its connection has drained below
// a quarter of the limit, so a watch replaying a long history goes at its
// reader's pace. A connection whose unsent bytes reach the limit has a
// slow reader: each of its watches that has a frame to send is cancelled
// instead, with the revision to resume from, so a slow watcher costs
// bounded memory and never slows writes or other connections (the client
// library resumes it).
//
// Must never: send a frame of a watch after its cancellation, or say a
// watch may resume from a revision above one it was not sent.
// Thread-safety: the loop's thread only.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "client/framed_connection.h"
#include "client/kv.pb.h"
#include "server/client_service.h"
#include "server/metrics.h"
#include "server/watch_hub.h"

namespace raftkv::server {

class WatchStreams {
 public:
  WatchStreams(asio::io_context& io, WatchHub* hub, size_t max_unsent_bytes)
      : io_(io),
        hub_(hub),
        max_unsent_bytes_(max_unsent_bytes),
        drain_timer_(io) {}
  // Where to count slow-reader cancellations (may stay null).
  void set_slow_cancellations(Counter* counter) { slow_counter_ = counter; }

  // Requests from a connection (ClientRequests).
  void Create(const Responder& respond, kv::WatchCreateRequest request);
  void Cancel(const Responder& respond, uint64_t watch_id);
  void RequestProgress(const Responder& respond);
  // Cancels every watch, each with the revision to resume from (the
  // member has no leader: its watches may be stale).
  void ReleaseAll(const std::string& reason) { hub_->ReleaseAll(reason); }
  // ClientService: the connection closed.
  void ConnectionClosed(const wire::FramedConnection* connection);
  // From the hub (posted to the loop). Sent in slices of about
  // kSliceBytes, each its own handler: a flood of frames (watchers far
  // behind) must not hold the loop for a whole batch while ticks wait.
  void Send(std::vector<WatchFrame> frames);

  uint64_t slow_cancellations() const { return slow_cancellations_; }

 private:
  struct Stream {
    std::weak_ptr<wire::FramedConnection> connection;
    // Watches cancelled here whose frames the hub may still send.
    std::set<uint64_t> cancelled;
    // Per watch, the revision through which it has been sent.
    std::map<uint64_t, int64_t> sent_through;
  };

  static constexpr size_t kSliceBytes = 256 << 10;

  // Sends queued frames, about kSliceBytes of them, then posts itself if
  // any are left.
  void SendSlice();
  void SendFrame(WatchFrame& f);
  // The id of `respond`'s connection (0: it is gone).
  uint64_t StreamOf(const Responder& respond);
  // Cancels the watch of `f` (not sent) for a slow reader, telling it where
  // to resume.
  void CancelSlow(Stream& s, const WatchFrame& f, wire::FramedConnection& conn);
  // Acknowledges the history reads whose connections have drained; checks
  // again shortly while any has not.
  void AcknowledgeDrained();

  asio::io_context& io_;
  WatchHub* const hub_;
  const size_t max_unsent_bytes_;
  std::map<const wire::FramedConnection*, uint64_t> ids_;
  std::map<uint64_t, Stream> streams_;
  uint64_t next_id_ = 1;
  uint64_t slow_cancellations_ = 0;
  Counter* slow_counter_ = nullptr;
  // Frames from the hub not sent yet, in order.
  std::deque<WatchFrame> queued_;
  bool slice_posted_ = false;
  // Connections to close once the frames at hand are handled.
  std::vector<std::weak_ptr<wire::FramedConnection>> to_close_;
  // History reads sent, waiting for their connection to drain.
  std::set<std::pair<uint64_t, uint64_t>> unacknowledged_;
  asio::steady_timer drain_timer_;
  bool drain_timer_armed_ = false;
};

}  // namespace raftkv::server
