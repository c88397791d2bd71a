// PasswordWorker: the thread that hashes and checks passwords, so that the
// event loop never does (PBKDF2 costs tens of milliseconds by design). The
// loop submits a job; the job runs on the worker's thread and returns a
// continuation, which runs back on the loop's thread (through a Mailbox
// the loop watches, like the other stages' results: handoff.h).
//
// At most `max_queued` jobs wait: Submit refuses more, so a flood of
// authentication requests costs the worker's CPU, never the loop's
// memory or time.
//
// Must never: run a job on the loop's thread, or a continuation on the
// worker's.
// Thread-safety: Submit, Start and Stop on the loop's thread only.
#pragma once

#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <atomic>
#include <cstddef>
#include <functional>
#include <thread>

#include "server/mailbox.h"

namespace raftkv::server {

class PasswordWorker {
 public:
  using Continuation = std::function<void()>;  // runs on the loop
  using Job = std::function<Continuation()>;   // runs on the worker

  PasswordWorker(asio::io_context& io, size_t max_queued);
  ~PasswordWorker();
  PasswordWorker(const PasswordWorker&) = delete;
  PasswordWorker& operator=(const PasswordWorker&) = delete;

  void Start();
  // Joins the worker; jobs not yet run, and continuations not yet run,
  // are dropped.
  void Stop();
  // False (and `job` dropped) when max_queued jobs are waiting or the
  // worker is stopped.
  bool Submit(Job job);

 private:
  void Run();
  void WatchResults();

  const size_t max_queued_;
  Mailbox<Job> jobs_;
  Mailbox<Continuation> results_;
  asio::posix::stream_descriptor results_watch_;
  std::atomic<size_t> queued_{0};
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  std::thread thread_;
};

}  // namespace raftkv::server
