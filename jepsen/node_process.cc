// One raftkvd child process, signalled only by the pid it was spawned as.
// Must never signal a pid after it has been reaped (it may be reused).
#include "jepsen/node_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <thread>

namespace raftkv::jepsen {

NodeProcess::~NodeProcess() { (void)Kill(); }

Status NodeProcess::Start() {
  if (running()) return Status::FailedPrecondition("already running");
  auto pid = fault::Spawn(spawn_);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  paused_ = false;
  return Status::OK();
}

void NodeProcess::Reaped(int status) {
  if (WIFEXITED(status)) {
    last_exit_ = "exit " + std::to_string(WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    last_exit_ = "signal " + std::to_string(WTERMSIG(status));
  } else {
    last_exit_ = "status " + std::to_string(status);
  }
  pid_ = 0;
  paused_ = false;
}

bool NodeProcess::ExitedOnItsOwn() {
  if (!running()) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    Reaped(status);
    return true;
  }
  return false;
}

bool NodeProcess::AwaitExit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (ExitedOnItsOwn()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

Status NodeProcess::Kill() {
  if (!running()) return Status::OK();
  ::kill(pid_, SIGCONT);
  if (::kill(pid_, SIGKILL) != 0 && errno != ESRCH) {
    return Status::IOError("kill " + std::to_string(pid_) + " failed");
  }
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  Reaped(status);
  return Status::OK();
}

Status NodeProcess::Terminate() {
  if (!running()) return Status::OK();
  ::kill(pid_, SIGCONT);
  if (::kill(pid_, SIGTERM) != 0 && errno != ESRCH) {
    return Status::IOError("SIGTERM to " + std::to_string(pid_) + " failed");
  }
  paused_ = false;
  return Status::OK();
}

Status NodeProcess::Stop(std::chrono::milliseconds grace) {
  if (!running()) return Status::OK();
  RAFTKV_RETURN_IF_ERROR(Terminate());
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      Reaped(status);
      return Status::OK();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  RAFTKV_RETURN_IF_ERROR(Kill());
  return Status::Timeout("did not stop within " +
                         std::to_string(grace.count()) +
                         " ms of SIGTERM; killed");
}

Status NodeProcess::Pause() {
  if (!running()) return Status::FailedPrecondition("not running");
  if (::kill(pid_, SIGSTOP) != 0) return Status::IOError("SIGSTOP failed");
  paused_ = true;
  return Status::OK();
}

Status NodeProcess::Resume() {
  if (!running()) return Status::FailedPrecondition("not running");
  if (::kill(pid_, SIGCONT) != 0) return Status::IOError("SIGCONT failed");
  paused_ = false;
  return Status::OK();
}

}  // namespace raftkv::jepsen
