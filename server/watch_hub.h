// WatchHub: the watches of one raftkvd, on their own thread. The applier
// publishes the changes of every batch it applied (only committed entries
// reach it), the client side creates and cancels watches, and the hub
// matches changes to watches and turns them into the frames of each watch,
// which it hands to the loop to send (WatchStreams, watch_streams.h).
//
// A watch from a revision the hub has already passed first replays the
// retained history (storage/history.h), in bounded reads, each sent before
// the next is read (the loop acknowledges it), then follows
// the published changes; the switch happens on the hub's thread between
// two publications, so nothing is skipped or sent twice. A watch's frames
// carry whole revisions (a revision too big for one frame is split into
// fragments, all but the last marked `fragment`), in revision order.
//
// Must never: send an event that was not published (not applied), skip or
// repeat a revision of a watch, wait on the disk or a lock the loop holds
// (history is read on this thread), or block the applier (Publish only
// queues).
// Thread-safety: the public methods may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "client/kv.pb.h"
#include "server/handoff.h"
#include "server/mailbox.h"

namespace raftkv::storage {
class Engine;
}  // namespace raftkv::storage

namespace raftkv::server {

struct WatchHubOptions {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  // A watch that asked for progress notifications gets one after this long
  // without a frame.
  std::chrono::milliseconds progress_interval{10 * 60 * 1000};
  // Events read from history per watch per turn (catching up).
  size_t history_batch_events = 1000;
  // A frame's events stop at the first revision boundary after this many
  // bytes; a single revision over it is sent in fragments of about it.
  size_t frame_bytes = 512 << 10;
};

class WatchHub {
 public:
  using Deliver = std::function<void(std::vector<WatchFrame>)>;

  // `engine` (read for history) must outlive the hub; `deliver` runs on
  // the hub's thread and must only post.
  WatchHub(const storage::Engine* engine, WatchHubOptions options,
           Deliver deliver);
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // `revision`: the state machine's revision at start.
  void Start(int64_t revision);
  void Stop();

  // The applier: the changes of one applied batch, the store now at
  // `revision`. Queued only while anyone watches; otherwise only the
  // revision is noted (a watch created later starts after it).
  void Publish(int64_t revision, std::vector<kv::Event> events);
  // The applier: a snapshot was installed, the store is now at `revision`
  // (the changes between come from the history the snapshot brought).
  void Jump(int64_t revision);

  // The client side. `watch_id` is unique within `connection`.
  void Create(uint64_t connection, uint64_t watch_id,
              kv::WatchCreateRequest request);
  // Ends the watch; unless `silent`, with a last frame saying `reason`.
  void Cancel(uint64_t connection, uint64_t watch_id, std::string reason,
              bool silent);
  void ConnectionClosed(uint64_t connection);
  // Cancels every watch with `reason` and the revision to resume from
  // (elsewhere: this member cannot vouch that it is current).
  void ReleaseAll(std::string reason);
  // The loop sent the history read that asked for it (WatchFrame::
  // ack_requested) and its connection has room: the next may come.
  void Acknowledge(uint64_t connection, uint64_t watch_id);
  // Every watch of `connection` that is following the published changes
  // gets a progress frame.
  void RequestProgress(uint64_t connection);
  void set_raft_term(uint64_t term) { raft_term_ = term; }
  void set_cluster_id(uint64_t id) { cluster_id_ = id; }

  size_t watch_count() const { return watch_count_; }
  // Whether Publish is worth calling (anyone watching).
  bool has_watches() const { return watch_count_ > 0; }

 private:
  struct Watch;
  struct PublishWork {
    int64_t revision;
    std::vector<kv::Event> events;
  };
  struct JumpWork {
    int64_t revision;
  };
  struct CreateWork {
    uint64_t connection;
    uint64_t watch_id;
    kv::WatchCreateRequest request;
  };
  struct CancelWork {
    uint64_t connection;
    uint64_t watch_id;
    std::string reason;
    bool silent;
  };
  struct ClosedWork {
    uint64_t connection;
  };
  struct ProgressWork {
    uint64_t connection;
  };
  struct AckWork {
    uint64_t connection;
    uint64_t watch_id;
  };
  struct ReleaseWork {
    std::string reason;
  };
  using Work = std::variant<PublishWork, JumpWork, CreateWork, CancelWork,
                            ClosedWork, ProgressWork, AckWork, ReleaseWork>;
  using Key = std::pair<uint64_t, uint64_t>;  // (connection, watch id)
  using Clock = std::chrono::steady_clock;

  void Run();
  void Handle(Work& work, std::vector<WatchFrame>* out);
  void DoPublish(PublishWork& work, std::vector<WatchFrame>* out);
  void DoCreate(CreateWork& work, std::vector<WatchFrame>* out);
  void DoCancel(const Key& key, const std::string& reason, bool silent,
                std::vector<WatchFrame>* out);
  // One bounded history read for every watch still catching up whose
  // previous read was acknowledged; returns whether any made progress.
  bool CatchUp(std::vector<WatchFrame>* out);
  void SendProgress(Clock::time_point now, std::vector<WatchFrame>* out);
  // The watch now follows the published changes / replays history.
  void Follow(Watch* w);
  void Unfollow(Watch* w);
  // Appends the frames carrying `events` (matched, in revision order), the
  // last saying everything up to `through` was sent.
  void Emit(Watch* w, const std::vector<const kv::Event*>& events,
            int64_t through, std::vector<WatchFrame>* out);
  void EmitResponse(Watch* w, kv::WatchResponse& response, int64_t first,
                    int64_t through, bool canceled,
                    std::vector<WatchFrame>* out);
  // A frame of `head` (header and id filled in here) and `events`, the
  // events field already encoded (shared by the watches that matched the
  // same events).
  void EmitEncoded(Watch* w, kv::WatchResponse& head, const std::string& events,
                   int64_t first, int64_t through,
                   std::vector<WatchFrame>* out);
  void FillHead(const Watch* w, int64_t through,
                kv::WatchResponse* response) const;
  // How far a frame without events says the watch has been sent.
  int64_t Through(const Watch& w) const;
  bool Wants(const Watch& w, const kv::Event& event) const;

  const storage::Engine* const engine_;
  const WatchHubOptions options_;
  const Deliver deliver_;
  Mailbox<Work> inbox_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> watch_count_{0};
  std::atomic<uint64_t> raft_term_{0};
  std::atomic<uint64_t> cluster_id_{0};
  // The latest revision published or noted (the applier's).
  std::atomic<int64_t> latest_revision_{0};
  std::thread thread_;

  // Hub thread only.
  int64_t revision_ = 0;
  std::map<Key, std::unique_ptr<Watch>> watches_;
  // Following the published changes: single-key watches by key, the
  // others in one set.
  std::unordered_map<std::string, std::set<Watch*>> by_key_;
  std::set<Watch*> ranges_;
  std::set<Watch*> catching_up_;
};

}  // namespace raftkv::server
