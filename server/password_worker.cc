// PasswordWorker (see password_worker.h). Never blocks the loop: the loop
// only pushes to a lock-free mailbox and drains another.
#include "server/password_worker.h"

#include <unistd.h>

#include "server/stage_thread.h"

namespace raftkv::server {

PasswordWorker::PasswordWorker(asio::io_context& io, size_t max_queued)
    : max_queued_(max_queued), results_watch_(io, ::dup(results_.fd())) {}

PasswordWorker::~PasswordWorker() { Stop(); }

void PasswordWorker::Start() {
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] {
    SetUpStageThread("rkv-password", kApplierNice);
    Run();
  });
  WatchResults();
}

void PasswordWorker::Stop() {
  stopping_ = true;
  jobs_.Wake();
  if (thread_.joinable()) thread_.join();
  std::error_code ec;
  results_watch_.cancel(ec);
}

bool PasswordWorker::Submit(Job job) {
  if (stopping_ || !started_ || queued_ >= max_queued_) return false;
  ++queued_;
  jobs_.Push(std::move(job));
  return true;
}

void PasswordWorker::Run() {
  while (!stopping_) {
    std::vector<Job> taken = jobs_.Take();
    if (taken.empty()) {
      jobs_.Wait();
      continue;
    }
    for (Job& job : taken) {
      if (stopping_) return;
      Continuation next = job();
      --queued_;
      if (next) results_.Push(std::move(next));
    }
  }
}

void PasswordWorker::WatchResults() {
  results_watch_.async_wait(asio::posix::stream_descriptor::wait_read,
                            [this](std::error_code ec) {
                              if (ec || stopping_) return;
                              for (Continuation& c : results_.Take()) c();
                              WatchResults();
                            });
}

}  // namespace raftkv::server
