// Client::Watch: a watch that resumes itself (see Watcher in client.h).
// Everything runs on the client's I/O thread except Cancel(), which waits
// for it. Never delivers a revision twice or out of order, and never
// resumes above a revision it has not delivered.
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <future>

#include "client/client.h"
#include "client/client_impl.h"
#include "client/kv.pb.h"

namespace raftkv {
namespace {

WatchEvent ToEvent(const kv::Event& e) {
  WatchEvent out;
  out.type = e.type() == kv::Event::DELETE ? WatchEvent::Type::kDelete
                                           : WatchEvent::Type::kPut;
  out.kv = FromProto(e.kv());
  out.has_prev_kv = e.has_prev_kv();
  if (out.has_prev_kv) out.prev_kv = FromProto(e.prev_kv());
  return out;
}

}  // namespace

class Watcher::Impl : public std::enable_shared_from_this<Watcher::Impl> {
 public:
  Impl(Client::Impl* client, std::string key, WatchOptions options,
       std::function<void(StatusOr<WatchUpdate>)> on_update)
      : client_(client),
        key_(std::move(key)),
        options_(std::move(options)),
        on_update_(std::move(on_update)),
        retry_(client->io()),
        next_revision_(options_.start_revision) {}

  void Start() {
    endpoint_ = client_->NextEndpoint();
    Create();
  }

  void Cancel() {
    if (done_) return;
    done_ = true;
    retry_.cancel();
    if (request_id_ != 0) {
      kv::ClientRequest cancel;
      cancel.mutable_watch_cancel()->set_watch_id(request_id_);
      client_->CloseStream(endpoint_, request_id_, &cancel);
      request_id_ = 0;
    }
  }

  Client::Impl* client() const { return client_; }
  std::atomic<int64_t> delivered{0};

 private:
  void Create() {
    if (done_) return;
    kv::ClientRequest request;
    if (!options_.auth_token.empty()) {
      request.set_auth_token(options_.auth_token);
    }
    kv::WatchCreateRequest* c = request.mutable_watch_create();
    c->set_key(key_);
    c->set_range_end(options_.range_end);
    c->set_start_revision(next_revision_);
    c->set_prev_kv(options_.prev_kv);
    c->set_progress_notify(options_.progress_notify);
    if (options_.no_put) c->add_filters(kv::WatchCreateRequest::NOPUT);
    if (options_.no_delete) c->add_filters(kv::WatchCreateRequest::NODELETE);
    fragments_.clear();
    std::weak_ptr<Impl> weak = weak_from_this();
    request_id_ =
        client_->OpenStream(endpoint_, std::move(request),
                            [weak](StatusOr<kv::ClientResponse> frame) {
                              if (auto self = weak.lock())
                                self->OnFrame(std::move(frame));
                            });
  }

  void OnFrame(StatusOr<kv::ClientResponse> frame) {
    if (done_) return;
    if (!frame.ok()) {
      request_id_ = 0;
      if (frame.status().code() == Status::Code::kAborted) {
        done_ = true;  // the client is closing
        return;
      }
      Resume(/*elsewhere=*/true);
      return;
    }
    switch (frame->error()) {
      case kv::OK:
        break;
      case kv::NOT_LEADER:
      case kv::UNAVAILABLE:
      case kv::TIMEOUT:
      case kv::STORAGE:
        // That member cannot serve it now (overloaded, no leader, a
        // failing disk): another can.
        client_->CloseStream(endpoint_, request_id_, nullptr);
        request_id_ = 0;
        Resume(/*elsewhere=*/true);
        return;
      case kv::INVALID_AUTH_TOKEN:
      case kv::USER_EMPTY:
        // The client's token expired or is outdated (a watch resumed long
        // after it began): authenticate again, once in a row, and resume.
        if (options_.auth_token.empty() && !reauthenticated_) {
          reauthenticated_ = true;
          client_->CloseStream(endpoint_, request_id_, nullptr);
          request_id_ = 0;
          std::weak_ptr<Impl> weak = weak_from_this();
          client_->RefreshToken([weak](Status s) {
            auto self = weak.lock();
            if (!self || self->done_) return;
            if (!s.ok()) {
              self->End(s);
              return;
            }
            self->Resume(/*elsewhere=*/false);
          });
          return;
        }
        End(Status::Unauthenticated("watch refused: " +
                                    frame->error_message()));
        return;
      case kv::PERMISSION_DENIED:
        End(Status::PermissionDenied("watch refused: " +
                                     frame->error_message()));
        return;
      default:
        End(Status::InvalidArgument("watch refused: " +
                                    frame->error_message()));
        return;
    }
    reauthenticated_ = false;
    const kv::WatchResponse& w = frame->watch();
    const int64_t through = w.header().revision();
    if (w.created()) {
      backoff_ = std::chrono::milliseconds(0);
      // Started "now": from the member's revision at creation on.
      if (next_revision_ == 0) next_revision_ = through + 1;
      if (options_.report_lifecycle && !reported_created_) {
        reported_created_ = true;
        WatchUpdate created;
        created.created = true;
        created.revision = std::max<int64_t>(through, next_revision_ - 1);
        on_update_(std::move(created));
        if (done_) return;
      }
    }
    for (const kv::Event& e : w.events()) fragments_.push_back(ToEvent(e));
    if (w.fragment()) return;  // the rest of this revision follows
    if (w.canceled()) {
      client_->CloseStream(endpoint_, request_id_, nullptr);
      request_id_ = 0;
      if (w.compact_revision() > 0) {
        if (options_.report_lifecycle) {
          WatchUpdate compacted;
          compacted.compact_revision = w.compact_revision();
          compacted.revision = next_revision_ - 1;
          on_update_(std::move(compacted));
        }
        End(Status::Compacted(w.cancel_reason()));
        return;
      }
      // A revision cut short is not delivered; the resumed watch sends it
      // again, whole.
      fragments_.clear();
      if (w.resume_revision() > 0) {
        // The member stopped sending (a slow reader, or it has no leader):
        // go on from there, on the next member.
        next_revision_ = std::max(next_revision_, w.resume_revision());
        Resume(/*elsewhere=*/true);
        return;
      }
      Resume(/*elsewhere=*/true);
      return;
    }
    if (!w.created() || !fragments_.empty()) Deliver(through);
  }

  // Delivers the events gathered, saying everything through `through`
  // was delivered.
  void Deliver(int64_t through) {
    WatchUpdate update;
    update.events = std::move(fragments_);
    fragments_.clear();
    // A member behind the last one (after a resume) may say less.
    update.revision = std::max(through, next_revision_ - 1);
    if (!update.events.empty()) {
      update.revision =
          std::max(update.revision, update.events.back().kv.mod_revision);
    }
    next_revision_ = std::max(next_revision_, update.revision + 1);
    delivered = update.revision;
    if (update.events.empty() && !options_.progress_notify) return;
    on_update_(std::move(update));
  }

  void End(Status status) {
    if (done_) return;
    done_ = true;
    if (request_id_ != 0) client_->CloseStream(endpoint_, request_id_, nullptr);
    request_id_ = 0;
    on_update_(std::move(status));
  }

  void Resume(bool elsewhere) {
    if (done_) return;
    fragments_.clear();  // a revision cut short is delivered again, whole
    if (elsewhere) endpoint_ = client_->EndpointAfter(endpoint_);
    backoff_ = std::min(std::max(backoff_ * 2, std::chrono::milliseconds(5)),
                        std::chrono::milliseconds(500));
    retry_.expires_after(backoff_);
    std::weak_ptr<Impl> weak = weak_from_this();
    retry_.async_wait([weak](const std::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->Create();
    });
  }

  Client::Impl* const client_;
  const std::string key_;
  const WatchOptions options_;
  const std::function<void(StatusOr<WatchUpdate>)> on_update_;
  asio::steady_timer retry_;
  size_t endpoint_ = 0;
  uint64_t request_id_ = 0;  // of the watch on its member (0: none)
  int64_t next_revision_;    // the first revision not delivered (0: now)
  std::vector<WatchEvent> fragments_;
  std::chrono::milliseconds backoff_{0};
  bool done_ = false;
  bool reported_created_ = false;
  bool reauthenticated_ = false;  // since the last frame that was not refused
};

Watcher::Watcher(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Watcher::~Watcher() { Cancel(); }

void Watcher::Cancel() {
  if (cancelled_) return;
  cancelled_ = true;
  std::shared_ptr<Impl> impl = impl_;
  // From the I/O thread (a callback cancelling its own watch) it runs at
  // once; from any other, this waits until it has.
  Client::Impl* client = impl->client();
  if (client->io().get_executor().running_in_this_thread()) {
    impl->Cancel();
    return;
  }
  std::promise<void> cancelled;
  asio::post(client->io(), [&cancelled, impl] {
    impl->Cancel();
    cancelled.set_value();
  });
  cancelled.get_future().wait();
}

int64_t Watcher::revision() const { return impl_->delivered.load(); }

std::unique_ptr<Watcher> Client::Watch(
    const std::string& key, const WatchOptions& options,
    std::function<void(StatusOr<WatchUpdate>)> on_update) {
  auto impl = std::make_shared<Watcher::Impl>(impl_.get(), key, options,
                                              std::move(on_update));
  asio::post(impl_->io(), [impl] { impl->Start(); });
  return std::make_unique<Watcher>(impl);
}

}  // namespace raftkv
