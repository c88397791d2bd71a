// NodeProcess: one raftkvd child of raftkv-jepsen, owned by pid. Starting,
// SIGKILL, SIGSTOP/SIGCONT and a graceful stop (SIGTERM, then SIGKILL after
// a grace period). The destructor kills and reaps a running child, so no
// raftkvd outlives the object that started it.
//
// Must never signal any pid but the one it spawned and has not yet reaped.
// Not thread-safe: raftkv-jepsen drives its nodes from the main thread only
// (see Spawn() in fault/subprocess.h on why that thread matters).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "fault/subprocess.h"
#include "util/status.h"

namespace raftkv::jepsen {

class NodeProcess {
 public:
  explicit NodeProcess(fault::SpawnOptions spawn) : spawn_(std::move(spawn)) {}
  ~NodeProcess();
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  // FailedPrecondition if it is already running.
  Status Start();
  // SIGKILL (after SIGCONT, in case it is paused) and reap. OK if it is not
  // running.
  Status Kill();
  // SIGCONT and SIGTERM, without waiting.
  Status Terminate();
  // Terminate(), then SIGKILL if it has not exited within `grace`.
  Status Stop(std::chrono::milliseconds grace);
  Status Pause();   // SIGSTOP
  Status Resume();  // SIGCONT

  bool running() const { return pid_ > 0; }
  bool paused() const { return paused_; }
  pid_t pid() const { return pid_; }
  // How the last run ended ("exit 0", "signal 9"), or "" if never reaped.
  const std::string& last_exit() const { return last_exit_; }
  // Whether it exited on its own since the last Start (polls, no wait).
  bool ExitedOnItsOwn();
  // Waits up to `timeout` for it to exit on its own (reaping it); true if it
  // did (or was not running). Sends no signal.
  bool AwaitExit(std::chrono::milliseconds timeout);

 private:
  void Reaped(int status);

  fault::SpawnOptions spawn_;
  pid_t pid_ = 0;
  bool paused_ = false;
  std::string last_exit_;
};

}  // namespace raftkv::jepsen
