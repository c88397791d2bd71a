// Applier: the state machine's thread (see applier.h). Never applies an
// entry twice or out of order, and never answers a read before its index is
// applied.
#include "server/applier.h"

#include <glog/logging.h>

#include <chrono>

#include "server/stage_thread.h"
#include "storage/kv_state_machine.h"
#include "storage/read_snapshot.h"
#include "storage/snapshot.h"

namespace raftkv::server {
Applier::Applier(storage::KvStateMachine* state_machine, Hooks hooks,
                 std::chrono::microseconds testonly_delay)
    : state_machine_(state_machine),
      hooks_(std::move(hooks)),
      testonly_delay_(testonly_delay),
      read_pool_(kReadThreads, hooks_.reads_served) {}

Applier::~Applier() { Stop(); }

void Applier::Start() {
  thread_ = std::thread([this] {
    SetUpStageThread("rkv-applier", kApplierNice);
    Run();
  });
}

void Applier::Stop() {
  {
    std::lock_guard<std::mutex> lock(pause_mu_);
    stopping_ = true;
    resume_ = true;
  }
  pause_cv_.notify_all();
  inbox_.Wake();
  if (thread_.joinable()) thread_.join();
  read_pool_.Stop();
}

void Applier::Push(Work work) {
  if (stopping_) return;
  if (auto* a = std::get_if<ApplyWork>(&work)) {
    queued_entries_ += a->entries.size();
  }
  inbox_.Push(std::move(work));
}

void Applier::Apply(std::vector<raft::Entry> entries) {
  if (!entries.empty()) Push(ApplyWork{std::move(entries)});
}

void Applier::Read(uint64_t read_index, std::vector<ReadRequest> reads) {
  Push(ReadWork{read_index, std::move(reads)});
}

void Applier::MakeSnapshotPoint() { Push(PointWork{}); }

void Applier::ListLeases(uint64_t term) { Push(LeasesWork{term}); }

void Applier::Pause() {
  {
    std::lock_guard<std::mutex> lock(pause_mu_);
    if (stopping_) return;
    resume_ = false;
    paused_ = false;
  }
  Push(PauseWork{});
  std::unique_lock<std::mutex> lock(pause_mu_);
  pause_cv_.wait(lock, [this] { return paused_ || stopping_; });
}

void Applier::Resume() {
  {
    std::lock_guard<std::mutex> lock(pause_mu_);
    resume_ = true;
  }
  pause_cv_.notify_all();
}

size_t Applier::queued_entries() const { return queued_entries_; }

void Applier::Run() {
  // Everything handed over is done, in order, even when stopping.
  while (true) {
    std::vector<Work> taken = inbox_.Take();
    if (taken.empty()) {
      if (stopping_) return;
      inbox_.Wait();
      continue;
    }
    for (size_t i = 0; i < taken.size(); ++i) {
      Work& work = taken[i];
      if (auto* a = std::get_if<ApplyWork>(&work)) {
        // Consecutive hand-offs become one batch (one WriteBatch, one
        // answer): the loop hands over what each Ready committed, and
        // under load many small ones queue up while a batch is applied.
        while (i + 1 < taken.size() &&
               std::holds_alternative<ApplyWork>(taken[i + 1])) {
          auto& next = std::get<ApplyWork>(taken[++i]).entries;
          a->entries.insert(a->entries.end(),
                            std::make_move_iterator(next.begin()),
                            std::make_move_iterator(next.end()));
        }
        const size_t n = a->entries.size();
        DoApply(*a);
        queued_entries_ -= n;
      } else if (auto* r = std::get_if<ReadWork>(&work)) {
        DoRead(*r);
      } else if (std::holds_alternative<PointWork>(work)) {
        DoPoint();
      } else if (auto* l = std::get_if<LeasesWork>(&work)) {
        LeasesListed listed;
        listed.term = l->term;
        auto leases = state_machine_->Leases();
        listed.status = leases.status();
        if (leases.ok()) listed.leases = std::move(leases).value();
        hooks_.leases_listed(std::move(listed));
      } else {
        DoPause();
      }
    }
  }
}

void Applier::DoApply(ApplyWork& work) {
  Applied out;
  if (failed_) return;
  // Entries the state machine already holds (a snapshot installed after
  // they were handed over) are skipped, never applied twice.
  std::vector<raft::Entry> entries;
  entries.reserve(work.entries.size());
  for (raft::Entry& e : work.entries) {
    if (e.index() > state_machine_->applied_index()) {
      entries.push_back(std::move(e));
    }
  }
  if (entries.empty()) return;
  if (testonly_delay_.count() > 0) {
    std::this_thread::sleep_for(testonly_delay_ * entries.size());
  }
  std::vector<kv::CommandResult> results;
  storage::ApplyEffects effects;
  const auto start = std::chrono::steady_clock::now();
  out.status = state_machine_->ApplyBatch(entries, &results, &effects);
  out.apply_us = std::chrono::duration_cast<std::chrono::microseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count();
  if (!out.status.ok()) {
    failed_ = true;
    if (hooks_.failed) hooks_.failed(out.status);
    LOG(ERROR) << "applier stops: " << out.status.ToString();
    hooks_.applied(std::move(out));
    return;
  }
  out.index = state_machine_->applied_index();
  out.revision = state_machine_->revision();
  out.compacted_revision = state_machine_->compacted_revision();
  out.leases_granted = std::move(effects.leases_granted);
  out.leases_revoked = std::move(effects.leases_revoked);
  if (effects.auth_changed) {
    out.auth = std::make_shared<const kv::AuthState>(state_machine_->auth());
  }
  if (hooks_.published) {
    hooks_.published(out.revision, std::move(effects.events));
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].type() == raft::ENTRY_CONF_CHANGE) {
      out.conf_changes.emplace_back(entries[i].index(), entries[i].term());
      if (state_machine_->membership()) {
        out.membership = *state_machine_->membership();
      }
      continue;
    }
    if (entries[i].type() != raft::ENTRY_NORMAL || entries[i].data().empty()) {
      continue;
    }
    out.results.push_back(
        {entries[i].index(), entries[i].term(), std::move(results[i])});
  }
  hooks_.applied(std::move(out));
  ServeWaitingReads();
}

void Applier::DoRead(ReadWork& work) {
  if (work.read_index <= state_machine_->applied_index()) {
    read_pool_.Serve(std::make_shared<storage::ReadSnapshot>(*state_machine_),
                     std::move(work.reads));
    return;
  }
  waiting_reads_.emplace(work.read_index, std::move(work.reads));
}

void Applier::ServeWaitingReads() {
  const uint64_t applied = state_machine_->applied_index();
  std::shared_ptr<const storage::ReadSnapshot> at;
  while (!waiting_reads_.empty() && waiting_reads_.begin()->first <= applied) {
    if (!at) at = std::make_shared<storage::ReadSnapshot>(*state_machine_);
    read_pool_.Serve(at, std::move(waiting_reads_.begin()->second));
    waiting_reads_.erase(waiting_reads_.begin());
  }
}

void Applier::DoPoint() {
  auto point = storage::SnapshotSource::Create(*state_machine_);
  if (!point.ok()) {
    LOG(WARNING) << "cannot make a snapshot point: "
                 << point.status().ToString();
    return;
  }
  hooks_.snapshot_point(std::move(point).value());
}

void Applier::DoPause() {
  std::unique_lock<std::mutex> lock(pause_mu_);
  paused_ = true;
  pause_cv_.notify_all();
  pause_cv_.wait(lock, [this] { return resume_; });
  paused_ = false;
  lock.unlock();
  // The state machine may have jumped ahead (a snapshot was installed).
  failed_ = false;
  if (hooks_.jumped) hooks_.jumped(state_machine_->revision());
  ServeWaitingReads();
}

}  // namespace raftkv::server
