// AutoCompactor: proposes compactions of the history on the leader (see
// auto_compactor.h).
#include "server/auto_compactor.h"

#include <glog/logging.h>

#include <algorithm>

#include "server/raft_loop.h"

namespace raftkv::server {
namespace {

uint64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Checks this often (periodic mode: also the sampling period, at most a
// tenth of the retention).
std::chrono::milliseconds CheckInterval(const AutoCompactionOptions& o) {
  if (o.mode == AutoCompactionOptions::Mode::kPeriodic) {
    return std::clamp(o.retain_for / 10, std::chrono::milliseconds(100),
                      std::chrono::milliseconds(60000));
  }
  return std::chrono::milliseconds(1000);
}

}  // namespace

AutoCompactor::AutoCompactor(AutoCompactionOptions options,
                             asio::io_context& io, RaftLoop* loop,
                             int64_t compacted_revision)
    : options_(options),
      loop_(loop),
      timer_(io),
      compacted_(compacted_revision) {}

void AutoCompactor::Start() { OnCheck(); }

void AutoCompactor::Stop() {
  stopped_ = true;
  timer_.cancel();
}

void AutoCompactor::OnApplied(const Applied& applied) {
  compacted_ = std::max(compacted_, applied.compacted_revision);
}

int64_t AutoCompactor::Target(Clock::time_point now) {
  const int64_t revision = loop_->revision();
  if (options_.mode == AutoCompactionOptions::Mode::kRevision) {
    if (options_.retain_revisions <= 0) return 0;
    const int64_t target = revision - options_.retain_revisions;
    // In steps of a tenth of the retention: one command per many writes.
    const int64_t step = std::max<int64_t>(1, options_.retain_revisions / 10);
    return target - compacted_ >= step ? target : 0;
  }
  if (options_.retain_for.count() <= 0) return 0;
  samples_.emplace_back(now, revision);
  // The newest sample at least a period old is the revision to keep from.
  int64_t target = 0;
  while (!samples_.empty() &&
         now - samples_.front().first >= options_.retain_for) {
    target = samples_.front().second;
    samples_.pop_front();
  }
  if (target > 0) samples_.emplace_front(now - options_.retain_for, target);
  return target > compacted_ ? target : 0;
}

void AutoCompactor::OnCheck() {
  if (stopped_) return;
  const Clock::time_point now = Clock::now();
  if (loop_->raft().role() != raft::Role::kLeader) {
    samples_.clear();  // a new leader samples afresh
  } else {
    const int64_t target = Target(now);
    if (target > compacted_ && target > proposed_) {
      kv::Command command;
      command.set_proposed_at_ms(WallClockMs());
      command.mutable_compact()->set_revision(target);
      if (loop_->raft().Propose(command.SerializeAsString()).ok()) {
        proposed_ = target;
        LOG(INFO) << "auto-compaction: forgetting the history at and below "
                  << "revision " << target << " (revision now "
                  << loop_->revision() << ")";
      }
    }
  }
  timer_.expires_after(CheckInterval(options_));
  timer_.async_wait([this](const std::error_code& ec) {
    if (!ec) OnCheck();
  });
}

}  // namespace raftkv::server
