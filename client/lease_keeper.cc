// Client::KeepAlive: a lease kept alive from the client's I/O thread (see
// LeaseKeeper in client.h). Never reports a lease alive past the time the
// leader could have expired it.
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <future>

#include "client/client.h"
#include "client/client_impl.h"
#include "client/kv.pb.h"

namespace raftkv {

class LeaseKeeper::Impl : public std::enable_shared_from_this<Impl> {
 public:
  using Clock = std::chrono::steady_clock;

  Impl(Client::Impl* client, int64_t id, int64_t ttl_seconds,
       std::function<void(Status)> on_lost)
      : id_(id),
        client_(client),
        ttl_(std::chrono::seconds(std::max<int64_t>(1, ttl_seconds))),
        on_lost_(std::move(on_lost)),
        timer_(client->io()),
        // Granted just now, at the latest: alive for a TTL from here.
        expires_(Clock::now() + ttl_) {}

  void Start() { Send(); }

  void Stop() {
    stopped_ = true;
    timer_.cancel();
  }

  Client::Impl* client() const { return client_; }
  const int64_t id_;
  std::atomic<bool> alive{true};

 private:
  void Send() {
    if (stopped_) return;
    kv::ClientRequest request;
    request.mutable_lease_keep_alive()->set_id(id_);
    const auto sent = Clock::now();
    // Retried by the client within what is left of the lease.
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(expires_ - sent);
    if (left.count() <= 0)
      return Lost(Status::Unavailable(
          "lease " + std::to_string(id_) +
          " could not be kept alive before it would expire"));
    std::weak_ptr<Impl> weak = weak_from_this();
    client_->Submit(std::move(request), left,
                    [weak, sent](StatusOr<kv::ClientResponse> r) {
                      if (auto self = weak.lock()) self->OnAnswer(sent, r);
                    });
  }

  void OnAnswer(Clock::time_point sent,
                const StatusOr<kv::ClientResponse>& answer) {
    if (stopped_) return;
    if (!answer.ok() && answer.status().code() == Status::Code::kNotFound) {
      return Lost(answer.status());
    }
    if (answer.ok()) {
      // The leader renewed it at some point after `sent`.
      const auto ttl = std::chrono::seconds(answer->lease_keep_alive().ttl());
      expires_ = std::max(expires_, sent + ttl);
      Schedule(ttl / 3);
      return;
    }
    // Not answered in time (the cluster is electing, or unreachable):
    // again soon, while the lease may still live.
    if (Clock::now() >= expires_) {
      return Lost(Status::Unavailable(
          "lease " + std::to_string(id_) +
          " expired unrenewed: " + answer.status().ToString()));
    }
    Schedule(std::chrono::milliseconds(100));
  }

  void Schedule(Clock::duration after) {
    timer_.expires_after(after);
    std::weak_ptr<Impl> weak = weak_from_this();
    timer_.async_wait([weak](const std::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->Send();
    });
  }

  void Lost(Status why) {
    if (stopped_) return;
    stopped_ = true;
    alive = false;
    if (on_lost_) on_lost_(std::move(why));
  }

  Client::Impl* const client_;
  const Clock::duration ttl_;
  const std::function<void(Status)> on_lost_;
  asio::steady_timer timer_;
  Clock::time_point expires_;
  bool stopped_ = false;
};

LeaseKeeper::LeaseKeeper(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

LeaseKeeper::~LeaseKeeper() {
  std::shared_ptr<Impl> impl = impl_;
  Client::Impl* client = impl->client();
  if (client->io().get_executor().running_in_this_thread()) {
    impl->Stop();
    return;
  }
  std::promise<void> stopped;
  asio::post(client->io(), [&stopped, impl] {
    impl->Stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
}

int64_t LeaseKeeper::id() const { return impl_->id_; }

bool LeaseKeeper::alive() const { return impl_->alive; }

std::unique_ptr<LeaseKeeper> Client::KeepAlive(
    int64_t id, int64_t ttl_seconds, std::function<void(Status)> on_lost) {
  auto impl = std::make_shared<LeaseKeeper::Impl>(impl_.get(), id, ttl_seconds,
                                                  std::move(on_lost));
  asio::post(impl_->io(), [impl] { impl->Start(); });
  return std::make_unique<LeaseKeeper>(impl);
}

}  // namespace raftkv
