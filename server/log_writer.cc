// LogWriter: group commit of the Raft log on its own thread, and snapshot
// installs (see log_writer.h). Never reports a task durable before its
// fsync, never reorders tasks.
#include "server/log_writer.h"

#include <glog/logging.h>

#include <chrono>
#include <filesystem>
#include <iterator>
#include <vector>

#include "server/applier.h"
#include "server/stage_thread.h"
#include "storage/engine.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot_install.h"

namespace raftkv::server {

LogWriter::LogWriter(storage::Engine* engine, storage::RaftLog* log,
                     storage::KvStateMachine* state_machine, Applier* applier,
                     std::function<void(Persisted)> persisted,
                     std::function<void(const Status&)> failed)
    : engine_(engine),
      log_(log),
      state_machine_(state_machine),
      applier_(applier),
      persisted_(std::move(persisted)),
      failed_hook_(std::move(failed)) {}

LogWriter::~LogWriter() { Stop(); }

void LogWriter::Start() {
  thread_ = std::thread([this] {
    SetUpStageThread("rkv-logwriter", kLogWriterNice);
    Run();
  });
}

void LogWriter::Stop() {
  stopping_ = true;
  inbox_.Wake();
  if (thread_.joinable()) thread_.join();
}

void LogWriter::Push(Job job) {
  if (!stopping_) inbox_.Push(std::move(job));
}

void LogWriter::Submit(PersistTask task) { Push(std::move(task)); }

void LogWriter::CompactTo(uint64_t index) { Push(Compact{index}); }

void LogWriter::Release(std::vector<EntryBatch> batches) {
  if (!batches.empty()) Push(Released{std::move(batches)});
}

void LogWriter::Discard(std::string staging_dir) {
  Push(Discarded{std::move(staging_dir)});
}

void LogWriter::RecordClusterId(uint64_t cluster_id) {
  Push(ClusterId{cluster_id});
}

void LogWriter::Run() {
  while (!stopping_) {
    std::vector<Job> taken = inbox_.Take();
    if (taken.empty()) {
      inbox_.Wait();
      continue;
    }
    std::deque<Job> jobs(std::make_move_iterator(taken.begin()),
                         std::make_move_iterator(taken.end()));
    while (!jobs.empty() && !failed_) {
      if (auto* task = std::get_if<PersistTask>(&jobs.front())) {
        if (task->snapshot) {
          const PersistTask install = std::move(*task);
          jobs.pop_front();
          if (!Install(install)) failed_ = true;
        } else if (!WriteGroup(&jobs)) {
          failed_ = true;
        }
      } else if (auto* c = std::get_if<Compact>(&jobs.front())) {
        DoCompact(c->index);
        jobs.pop_front();
      } else if (std::holds_alternative<Released>(jobs.front())) {
        jobs.pop_front();  // the last references: frees the entries here
      } else if (auto* id = std::get_if<ClusterId>(&jobs.front())) {
        Status s =
            log_->cluster_id() == 0 ? log_->SetClusterId(id->id) : Status::OK();
        if (!s.ok() && failed_hook_) failed_hook_(s);
        jobs.pop_front();
      } else {
        std::error_code ec;
        std::filesystem::remove_all(std::get<Discarded>(jobs.front()).dir, ec);
        jobs.pop_front();
      }
    }
  }
}

bool LogWriter::WriteGroup(std::deque<Job>* jobs) {
  // Every plain task at the front of the queue goes into one batch.
  std::vector<storage::RaftLog::Write> writes;
  std::vector<PersistTask> group;
  bool sync = false;
  while (!jobs->empty()) {
    auto* task = std::get_if<PersistTask>(&jobs->front());
    if (task == nullptr || task->snapshot) break;
    sync = sync || task->sync;
    group.push_back(std::move(*task));
    jobs->pop_front();
  }
  Persisted done;
  for (const PersistTask& t : group) {
    writes.push_back({t.hard_state ? &*t.hard_state : nullptr,
                      t.entries ? t.entries.get() : nullptr});
    done.wrote =
        done.wrote || t.hard_state || (t.entries && !t.entries->empty());
  }
  const auto start = std::chrono::steady_clock::now();
  done.status = log_->SaveAll(writes, sync);
  done.write_us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  done.tasks = group.size();
  done.through_seq = group.back().seq;
  const bool ok = done.status.ok();
  if (!ok && failed_hook_) failed_hook_(done.status);
  persisted_(std::move(done));
  return ok;
}

bool LogWriter::Install(const PersistTask& task) {
  const auto start = std::chrono::steady_clock::now();
  LOG(INFO) << "installing the snapshot at " << task.snapshot->term() << "/"
            << task.snapshot->index() << " from " << task.staging_dir;
  // Everything handed to the applier before this snapshot is applied
  // first; then the applier waits while its state is replaced.
  applier_->Pause();
  Status s = storage::InstallStagedSnapshot(task.staging_dir, *task.snapshot,
                                            log_, state_machine_);
  // The entries and hard state that came with the snapshot.
  if (s.ok()) {
    std::vector<storage::RaftLog::Write> writes = {
        {task.hard_state ? &*task.hard_state : nullptr,
         task.entries ? task.entries.get() : nullptr}};
    s = log_->SaveAll(writes, /*sync=*/true);
  }
  // Read while the applier is still paused: it may apply changes next.
  std::optional<kv::Membership> membership;
  if (s.ok() && state_machine_->membership()) {
    membership = *state_machine_->membership();
  }
  std::shared_ptr<const kv::AuthState> auth;
  const uint64_t auth_index = state_machine_->applied_index();
  if (s.ok())
    auth = std::make_shared<const kv::AuthState>(state_machine_->auth());
  applier_->Resume();
  if (!s.ok() && failed_hook_) failed_hook_(s);
  Persisted done;
  done.status = s;
  done.membership = std::move(membership);
  done.auth = std::move(auth);
  done.auth_index = auth_index;
  done.tasks = 1;
  done.wrote = true;
  done.through_seq = task.seq;
  done.write_us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  if (s.ok()) {
    LOG(INFO) << "installed the snapshot at " << task.snapshot->term() << "/"
              << task.snapshot->index() << " in " << done.write_us / 1000
              << " ms";
  }
  persisted_(std::move(done));
  return s.ok();
}

void LogWriter::DoCompact(uint64_t index) {
  // The state machine's writes up to `index` were made without sync: make
  // them durable before the entries that could replay them are gone.
  Status s = engine_->SyncWal();
  if (s.ok()) s = log_->Compact(index);
  if (!s.ok() && failed_hook_) failed_hook_(s);
}

}  // namespace raftkv::server
