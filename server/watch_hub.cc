// WatchHub: matching, history replay and framing of watches (see
// watch_hub.h). Never sends an unpublished event or skips a revision.
#include "server/watch_hub.h"

#include <glog/logging.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>

#include "server/stage_thread.h"
#include "storage/history.h"

namespace raftkv::server {
namespace {

using google::protobuf::internal::WireFormatLite;

// `events` as the repeated events field of a kv::WatchResponse (without
// their previous values unless `prev_kv`).
std::string EncodeEvents(const std::vector<const kv::Event*>& events,
                         bool prev_kv) {
  std::string out;
  google::protobuf::io::StringOutputStream raw(&out);
  google::protobuf::io::CodedOutputStream coded(&raw);
  kv::Event stripped;
  for (const kv::Event* e : events) {
    const kv::Event* one = e;
    if (!prev_kv && e->has_prev_kv()) {
      stripped = *e;
      stripped.clear_prev_kv();
      one = &stripped;
    }
    const std::string bytes = one->SerializeAsString();
    WireFormatLite::WriteTag(kv::WatchResponse::kEventsFieldNumber,
                             WireFormatLite::WIRETYPE_LENGTH_DELIMITED, &coded);
    coded.WriteVarint32(static_cast<uint32_t>(bytes.size()));
    coded.WriteString(bytes);
  }
  coded.Trim();
  return out;
}

// A serialized kv::ClientResponse {request_id, watch = head + events}:
// protobuf concatenation, so events encoded once serve every watch.
std::string EncodeFrame(uint64_t request_id, const kv::WatchResponse& head,
                        const std::string& events) {
  const std::string head_bytes = head.SerializeAsString();
  std::string out;
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream coded(&raw);
    WireFormatLite::WriteUInt64(kv::ClientResponse::kRequestIdFieldNumber,
                                request_id, &coded);
    WireFormatLite::WriteTag(kv::ClientResponse::kWatchFieldNumber,
                             WireFormatLite::WIRETYPE_LENGTH_DELIMITED, &coded);
    coded.WriteVarint32(
        static_cast<uint32_t>(head_bytes.size() + events.size()));
    coded.WriteString(head_bytes);
    coded.WriteString(events);
  }
  return out;
}

}  // namespace

struct WatchHub::Watch {
  Key key;
  std::string begin;
  std::string end;
  bool prev_kv = false;
  bool progress_notify = false;
  bool no_put = false;
  bool no_delete = false;
  int64_t next_revision = 0;  // the first revision not yet sent
  bool following = false;     // else catching up from history
  bool awaiting_ack = false;  // its last history read is not sent yet
  Clock::time_point last_frame;
};

WatchHub::WatchHub(const storage::Engine* engine, WatchHubOptions options,
                   Deliver deliver)
    : engine_(engine),
      options_(options),
      deliver_(std::move(deliver)),
      cluster_id_(options.cluster_id) {}

WatchHub::~WatchHub() { Stop(); }

void WatchHub::Start(int64_t revision) {
  revision_ = revision;
  latest_revision_ = revision;
  thread_ = std::thread([this] {
    SetUpStageThread("rkv-watch", kWatchNice);
    Run();
  });
}

void WatchHub::Stop() {
  stopping_ = true;
  inbox_.Wake();
  if (thread_.joinable()) thread_.join();
}

void WatchHub::Publish(int64_t revision, std::vector<kv::Event> events) {
  // Stored before the push: a watch created after this sees it.
  latest_revision_ = revision;
  if (watch_count_ > 0) inbox_.Push(PublishWork{revision, std::move(events)});
}

void WatchHub::Jump(int64_t revision) {
  latest_revision_ = revision;
  inbox_.Push(JumpWork{revision});
}

void WatchHub::Create(uint64_t connection, uint64_t watch_id,
                      kv::WatchCreateRequest request) {
  inbox_.Push(CreateWork{connection, watch_id, std::move(request)});
}

void WatchHub::Cancel(uint64_t connection, uint64_t watch_id,
                      std::string reason, bool silent) {
  inbox_.Push(CancelWork{connection, watch_id, std::move(reason), silent});
}

void WatchHub::ConnectionClosed(uint64_t connection) {
  inbox_.Push(ClosedWork{connection});
}

void WatchHub::RequestProgress(uint64_t connection) {
  inbox_.Push(ProgressWork{connection});
}

void WatchHub::ReleaseAll(std::string reason) {
  inbox_.Push(ReleaseWork{std::move(reason)});
}

void WatchHub::Acknowledge(uint64_t connection, uint64_t watch_id) {
  inbox_.Push(AckWork{connection, watch_id});
}

void WatchHub::Run() {
  // Progress is looked at this often (and whenever work arrives).
  const int tick_ms = static_cast<int>(
      std::clamp<int64_t>(options_.progress_interval.count() / 4, 10, 1000));
  while (!stopping_) {
    std::vector<WatchFrame> out;
    for (Work& work : inbox_.Take()) Handle(work, &out);
    const bool read = !catching_up_.empty() && CatchUp(&out);
    SendProgress(Clock::now(), &out);
    if (!out.empty()) deliver_(std::move(out));
    if (!read) inbox_.Wait(tick_ms);
  }
}

void WatchHub::Handle(Work& work, std::vector<WatchFrame>* out) {
  if (auto* p = std::get_if<PublishWork>(&work)) {
    DoPublish(*p, out);
  } else if (auto* j = std::get_if<JumpWork>(&work)) {
    // Everything followed so far continues from the history the snapshot
    // brought (or is cancelled as compacted).
    std::vector<Watch*> following;
    for (auto& [key, w] : watches_) {
      if (w->following) following.push_back(w.get());
    }
    for (Watch* w : following) {
      w->next_revision = std::max(w->next_revision, revision_ + 1);
      Unfollow(w);
    }
    revision_ = std::max(revision_, j->revision);
  } else if (auto* c = std::get_if<CreateWork>(&work)) {
    DoCreate(*c, out);
  } else if (auto* x = std::get_if<CancelWork>(&work)) {
    DoCancel({x->connection, x->watch_id}, x->reason, x->silent, out);
  } else if (auto* closed = std::get_if<ClosedWork>(&work)) {
    auto it = watches_.lower_bound({closed->connection, 0});
    while (it != watches_.end() && it->first.first == closed->connection) {
      const Key key = (it++)->first;
      DoCancel(key, "", /*silent=*/true, out);
    }
  } else if (auto* release = std::get_if<ReleaseWork>(&work)) {
    std::vector<Key> all;
    for (const auto& [key, w] : watches_) all.push_back(key);
    for (const Key& key : all) {
      Watch* w = watches_.at(key).get();
      // Everything before was emitted ahead of this frame.
      const int64_t resume = w->following
                                 ? std::max(w->next_revision, revision_ + 1)
                                 : w->next_revision;
      kv::WatchResponse response;
      response.set_canceled(true);
      response.set_resume_revision(resume);
      response.set_cancel_reason(release->reason + "; resume from revision " +
                                 std::to_string(resume));
      EmitResponse(w, response, 0, resume - 1, true, out);
      DoCancel(key, "", /*silent=*/true, out);
    }
  } else if (auto* ack = std::get_if<AckWork>(&work)) {
    auto it = watches_.find({ack->connection, ack->watch_id});
    if (it != watches_.end()) it->second->awaiting_ack = false;
  } else if (auto* pr = std::get_if<ProgressWork>(&work)) {
    for (auto it = watches_.lower_bound({pr->connection, 0});
         it != watches_.end() && it->first.first == pr->connection; ++it) {
      Watch* w = it->second.get();
      if (!w->following) continue;
      kv::WatchResponse response;
      EmitResponse(w, response, 0, Through(*w), false, out);
    }
  }
}

bool WatchHub::Wants(const Watch& w, const kv::Event& event) const {
  if (event.kv().mod_revision() < w.next_revision) return false;
  if (event.type() == kv::Event::PUT ? w.no_put : w.no_delete) return false;
  return storage::InRange(event.kv().key(), w.begin, w.end);
}

void WatchHub::DoPublish(PublishWork& work, std::vector<WatchFrame>* out) {
  revision_ = std::max(revision_, work.revision);
  std::map<Watch*, std::vector<const kv::Event*>> matched;
  for (const kv::Event& event : work.events) {
    auto exact = by_key_.find(event.kv().key());
    if (exact != by_key_.end()) {
      for (Watch* w : exact->second) {
        if (Wants(*w, event)) matched[w].push_back(&event);
      }
    }
    for (Watch* w : ranges_) {
      if (Wants(*w, event)) matched[w].push_back(&event);
    }
  }
  // Watches that matched the same events (many watch one key) share one
  // encoding of them.
  std::map<std::pair<std::vector<const kv::Event*>, bool>, std::string> encoded;
  for (auto& [w, events] : matched) {
    std::string& bytes = encoded[{events, w->prev_kv}];
    if (bytes.empty()) bytes = EncodeEvents(events, w->prev_kv);
    if (bytes.size() > options_.frame_bytes) {
      Emit(w, events, revision_, out);  // in several frames
      continue;
    }
    const int64_t last = events.back()->kv().mod_revision();
    kv::WatchResponse head;
    EmitEncoded(w, head, bytes, events.front()->kv().mod_revision(),
                std::max(revision_, last), out);
    w->next_revision = std::max(w->next_revision, last + 1);
  }
}

void WatchHub::DoCreate(CreateWork& work, std::vector<WatchFrame>* out) {
  const Key key{work.connection, work.watch_id};
  if (watches_.count(key) > 0) {
    kv::WatchResponse response;
    response.set_watch_id(work.watch_id);
    response.set_canceled(true);
    response.set_cancel_reason("watch id " + std::to_string(work.watch_id) +
                               " is already in use on this connection");
    // Not registered: framed by hand, the existing watch stays.
    kv::ClientResponse frame;
    frame.set_request_id(work.watch_id);
    *frame.mutable_watch() = std::move(response);
    out->push_back({work.connection, work.watch_id, 0, 0, false, false,
                    frame.SerializeAsString()});
    return;
  }
  // Counted before the revision is read: a publication after that read
  // is queued (Publish stores its revision, then looks at the count).
  const bool first = watches_.empty();
  ++watch_count_;
  if (first) {
    // Changes applied while no one watched were not queued: they are in
    // the history, and this watch starts after them (or replays them).
    // While anyone watches, every change is queued and revision_ advances
    // only through them, in order, so no frame claims a revision whose
    // changes a following watch has not been sent.
    revision_ = std::max(revision_, latest_revision_.load());
  }
  auto watch = std::make_unique<Watch>();
  Watch* w = watch.get();
  const kv::WatchCreateRequest& r = work.request;
  w->key = key;
  w->begin = r.key();
  w->end = r.range_end();
  w->prev_kv = r.prev_kv();
  w->progress_notify = r.progress_notify();
  for (int f : r.filters()) {
    if (f == kv::WatchCreateRequest::NOPUT) w->no_put = true;
    if (f == kv::WatchCreateRequest::NODELETE) w->no_delete = true;
  }
  w->next_revision =
      r.start_revision() > 0 ? r.start_revision() : revision_ + 1;
  watches_.emplace(key, std::move(watch));
  kv::WatchResponse created;
  created.set_created(true);
  EmitResponse(w, created, 0, Through(*w), false, out);
  if (w->next_revision > revision_) {
    Follow(w);
  } else {
    catching_up_.insert(w);
  }
}

void WatchHub::DoCancel(const Key& key, const std::string& reason, bool silent,
                        std::vector<WatchFrame>* out) {
  auto it = watches_.find(key);
  if (it == watches_.end()) return;
  Watch* w = it->second.get();
  if (!silent) {
    kv::WatchResponse response;
    response.set_canceled(true);
    response.set_cancel_reason(reason);
    EmitResponse(w, response, 0, Through(*w), true, out);
  }
  if (w->following) Unfollow(w);
  catching_up_.erase(w);
  watches_.erase(it);
  --watch_count_;
}

void WatchHub::Follow(Watch* w) {
  catching_up_.erase(w);
  w->following = true;
  if (w->end.empty()) {
    by_key_[w->begin].insert(w);
  } else {
    ranges_.insert(w);
  }
}

void WatchHub::Unfollow(Watch* w) {
  w->following = false;
  if (w->end.empty()) {
    auto it = by_key_.find(w->begin);
    if (it != by_key_.end()) {
      it->second.erase(w);
      if (it->second.empty()) by_key_.erase(it);
    }
  } else {
    ranges_.erase(w);
  }
  catching_up_.insert(w);
}

bool WatchHub::CatchUp(std::vector<WatchFrame>* out) {
  std::vector<Watch*> turn;
  for (Watch* w : catching_up_) {
    if (!w->awaiting_ack) turn.push_back(w);
  }
  bool progressed = false;
  for (Watch* w : turn) {
    if (w->next_revision > revision_) {
      Follow(w);
      continue;
    }
    std::vector<kv::Event> events;
    int64_t next = 0;
    Status s =
        storage::ReadHistory(*engine_, w->next_revision, revision_,
                             options_.history_batch_events, &events, &next);
    if (s.code() == Status::Code::kCompacted) {
      kv::WatchResponse response;
      response.set_canceled(true);
      response.set_compact_revision(storage::CompactedRevision(*engine_) + 1);
      response.set_cancel_reason(s.message());
      const Key key = w->key;
      EmitResponse(w, response, 0, Through(*w), true, out);
      DoCancel(key, "", /*silent=*/true, out);
      continue;
    }
    if (s.code() == Status::Code::kUnavailable) {
      // A snapshot install is replacing the history: the Jump that
      // follows it tells where the watch stands.
      continue;
    }
    if (!s.ok()) {
      LOG(ERROR) << "watch " << w->key.second
                 << ": history read failed: " << s.ToString();
      const Key key = w->key;
      DoCancel(key, "the member cannot read its history: " + s.ToString(),
               /*silent=*/false, out);
      continue;
    }
    std::vector<const kv::Event*> wanted;
    for (const kv::Event& e : events) {
      if (Wants(*w, e)) wanted.push_back(&e);
    }
    const size_t before = out->size();
    Emit(w, wanted, next - 1, out);
    w->next_revision = next;
    progressed = true;
    if (w->next_revision > revision_) {
      Follow(w);
    } else if (out->size() > before) {
      out->back().ack_requested = true;
      w->awaiting_ack = true;
    }
  }
  return progressed;
}

void WatchHub::SendProgress(Clock::time_point now,
                            std::vector<WatchFrame>* out) {
  for (auto& [key, w] : watches_) {
    if (!w->progress_notify || !w->following) continue;
    if (now - w->last_frame < options_.progress_interval) continue;
    kv::WatchResponse response;
    EmitResponse(w.get(), response, 0, Through(*w.get()), false, out);
  }
}

void WatchHub::Emit(Watch* w, const std::vector<const kv::Event*>& events,
                    int64_t through, std::vector<WatchFrame>* out) {
  if (events.empty()) return;
  // Whole revisions are packed into frames of about frame_bytes; only a
  // revision too big for a frame of its own is split, into fragments.
  kv::WatchResponse response;
  size_t bytes = 0;
  int64_t first = 0;
  auto flush = [&](bool fragment, int64_t sent_through) {
    response.set_fragment(fragment);
    EmitResponse(w, response, first, sent_through, false, out);
    response.Clear();
    bytes = 0;
  };
  for (size_t i = 0; i < events.size();) {
    // The events of one revision: [i, end).
    const int64_t rev = events[i]->kv().mod_revision();
    size_t end = i;
    std::vector<kv::Event> revision;
    size_t revision_bytes = 0;
    while (end < events.size() && events[end]->kv().mod_revision() == rev) {
      revision.push_back(*events[end++]);
      if (!w->prev_kv) revision.back().clear_prev_kv();
      revision_bytes += revision.back().ByteSizeLong();
    }
    if (response.events_size() > 0 &&
        bytes + revision_bytes > options_.frame_bytes) {
      flush(false,
            response.events(response.events_size() - 1).kv().mod_revision());
    }
    for (kv::Event& e : revision) {
      if (response.events_size() > 0 && bytes >= options_.frame_bytes) {
        flush(true, rev - 1);  // this revision alone fills frames
      }
      if (response.events_size() == 0) first = rev;
      bytes += e.ByteSizeLong();
      *response.add_events() = std::move(e);
    }
    i = end;
  }
  const int64_t last_rev = events.back()->kv().mod_revision();
  EmitResponse(w, response, first, std::max(through, last_rev), false, out);
  w->next_revision = std::max(w->next_revision, last_rev + 1);
}

int64_t WatchHub::Through(const Watch& w) const {
  return w.following ? revision_ : std::max<int64_t>(0, w.next_revision - 1);
}

void WatchHub::EmitEncoded(Watch* w, kv::WatchResponse& head,
                           const std::string& events, int64_t first,
                           int64_t through, std::vector<WatchFrame>* out) {
  FillHead(w, through, &head);
  out->push_back({w->key.first, w->key.second, first, through, false, false,
                  EncodeFrame(w->key.second, head, events)});
  w->last_frame = Clock::now();
}

void WatchHub::FillHead(const Watch* w, int64_t through,
                        kv::WatchResponse* response) const {
  kv::ResponseHeader* h = response->mutable_header();
  h->set_cluster_id(cluster_id_);
  h->set_member_id(options_.member_id);
  h->set_raft_term(raft_term_);
  // Everything this watch matches up to `through` has been sent once this
  // frame is.
  h->set_revision(through);
  response->set_watch_id(w->key.second);
}

void WatchHub::EmitResponse(Watch* w, kv::WatchResponse& response,
                            int64_t first, int64_t through, bool canceled,
                            std::vector<WatchFrame>* out) {
  FillHead(w, through, &response);
  kv::ClientResponse frame;
  frame.set_request_id(w->key.second);
  *frame.mutable_watch() = std::move(response);
  out->push_back({w->key.first, w->key.second, first, through, canceled, false,
                  frame.SerializeAsString()});
  w->last_frame = Clock::now();
}

}  // namespace raftkv::server
