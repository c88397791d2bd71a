// AutoCompactor: the leader's automatic compaction of the retained history
// (etcd's --auto-compaction-mode/--auto-compaction-retention): in revision
// mode it keeps the last N revisions, in periodic mode the revisions of the
// last period (sampled on the leader's clock). It only proposes a
// compaction command; every member forgets the same history when it applies
// it.
//
// Must never: compact on a follower's own decision, or compact above the
// applied revision. Thread-safety: the loop's thread only.
#pragma once

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <utility>

#include "server/handoff.h"
#include "server/server_config.h"

namespace raftkv::server {

class RaftLoop;

class AutoCompactor {
 public:
  AutoCompactor(AutoCompactionOptions options, asio::io_context& io,
                RaftLoop* loop, int64_t compacted_revision);
  void Start();
  void Stop();
  void OnApplied(const Applied& applied);

 private:
  using Clock = std::chrono::steady_clock;
  void OnCheck();
  // The revision to compact to now (0: none).
  int64_t Target(Clock::time_point now);

  const AutoCompactionOptions options_;
  RaftLoop* const loop_;
  asio::steady_timer timer_;
  int64_t compacted_;
  int64_t proposed_ = 0;
  // Periodic mode: (when, revision) samples, oldest first.
  std::deque<std::pair<Clock::time_point, int64_t>> samples_;
  bool stopped_ = false;
};

}  // namespace raftkv::server
