// fork/exec of helper commands and raftkvd (fault/subprocess.h). Between fork
// and exec the child makes async-signal-safe system calls only; it never
// allocates, logs or searches PATH. Must never signal a pid it did not
// spawn, nor leave a helper running past its deadline.
#include "fault/subprocess.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

extern char** environ;

namespace raftkv::fault {

namespace {

using Clock = std::chrono::steady_clock;

std::string ErrnoText(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

// Closes every descriptor from `first` up (Linux 5.9+), in the child.
void CloseFrom(unsigned int first) {
  ::syscall(SYS_close_range, first, ~0U, 0);
}

// NUL-terminated pointer arrays over strings that outlive the exec.
std::vector<char*> PointerArray(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Our environment with `extra` added (an extra NAME= replaces ours).
std::vector<std::string> Environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const std::string& x : extra) {
      replaced = replaced || x.compare(0, name.size() + 1, name + "=") == 0;
    }
    if (!replaced) env.push_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// Waits for `pid` until `deadline`; SIGKILLs it (by pid) after that.
// Returns its wait status, and whether it had to be killed.
std::pair<int, bool> WaitUntil(pid_t pid, Clock::time_point deadline) {
  int status = 0;
  for (int i = 0; i < 1000000; ++i) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return {status, false};
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return {status, true};
}

// Pumps `input` into `in_fd` and collects `out_fd` until EOF or deadline.
// Both descriptors are non-blocking and closed on return.
std::string Pump(int in_fd, int out_fd, const std::string& input,
                 Clock::time_point deadline) {
  std::string output;
  size_t written = 0;
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  while (out_fd >= 0 && Clock::now() < deadline) {
    pollfd fds[2] = {{out_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
    const int wait_ms =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                             deadline - Clock::now())
                             .count());
    if (::poll(fds, in_fd >= 0 ? 2 : 1, std::max(wait_ms, 1)) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (in_fd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n =
          ::write(in_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 || written == input.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buffer[4096];
      const ssize_t n = ::read(out_fd, buffer, sizeof(buffer));
      if (n > 0) {
        output.append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EAGAIN) {
        ::close(out_fd);
        out_fd = -1;
      }
    }
  }
  if (in_fd >= 0) ::close(in_fd);
  if (out_fd >= 0) ::close(out_fd);
  return output;
}

}  // namespace

StatusOr<std::string> FindProgram(const std::string& program) {
  if (program.empty()) return Status::InvalidArgument("empty program name");
  if (program.find('/') != std::string::npos) {
    if (::access(program.c_str(), X_OK) == 0) return program;
    return Status::NotFound(program + " is not an executable file");
  }
  const char* path_env = std::getenv("PATH");
  std::string dirs = path_env != nullptr ? path_env : "";
  dirs += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream stream(dirs);
  std::string dir;
  while (std::getline(stream, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return Status::NotFound(program + " not found in PATH, /usr/sbin or /sbin");
}

std::string CommandLine(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    const bool quote = a.empty() || a.find_first_of(" \t'\"$") != a.npos;
    out += quote ? "'" + a + "'" : a;
  }
  return out;
}

StatusOr<std::string> RunCommand(const std::vector<std::string>& argv,
                                 const std::string& input,
                                 std::chrono::milliseconds timeout) {
  if (argv.empty()) return Status::InvalidArgument("empty command");
  auto path = FindProgram(argv[0]);
  if (!path.ok()) return path.status();
  std::vector<std::string> args = argv;
  args[0] = *path;
  std::vector<char*> arg_ptrs = PointerArray(args);
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return Status::IOError("pipe2");
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    ::close(in_pipe[0]);
    ::close(in_pipe[1]);
    return Status::IOError(ErrnoText("pipe2"));
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) {
      ::close(fd);
    }
    return Status::IOError(ErrnoText("fork"));
  }
  if (pid == 0) {
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(out_pipe[1], STDERR_FILENO);
    CloseFrom(3);
    ::execve(arg_ptrs[0], arg_ptrs.data(), environ);
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  ::fcntl(out_pipe[0], F_SETFL, O_NONBLOCK);
  // SIGPIPE from a helper that exits without reading its input must not
  // end the program that runs it.
  ::signal(SIGPIPE, SIG_IGN);
  const auto deadline = Clock::now() + timeout;
  std::string output = Pump(in_pipe[1], out_pipe[0], input, deadline);
  const auto [status, killed] = WaitUntil(pid, deadline);
  const std::string line = CommandLine(argv);
  if (killed) {
    return Status::Timeout(line + " ran longer than " +
                           std::to_string(timeout.count()) + " ms: " + output);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return Status::IOError(line + " exited with " + std::to_string(code) +
                           ": " + output);
  }
  return output;
}

StatusOr<pid_t> Spawn(const SpawnOptions& options) {
  if (options.argv.empty() || options.argv[0].empty() ||
      options.argv[0][0] != '/') {
    return Status::InvalidArgument("Spawn needs an absolute program path");
  }
  std::vector<std::string> args = options.argv;
  std::vector<std::string> env = Environment(options.env);
  std::vector<char*> arg_ptrs = PointerArray(args);
  std::vector<char*> env_ptrs = PointerArray(env);
  const int out = ::open(options.output_path.c_str(),
                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) return Status::IOError(ErrnoText(options.output_path));
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int err_pipe[2] = {-1, -1};
  if (null_fd < 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out);
    if (null_fd >= 0) ::close(null_fd);
    return Status::IOError(ErrnoText("open /dev/null or pipe2"));
  }
  const pid_t parent = ::getpid();
  const gid_t gid = options.gid;
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Child: report a failing step's errno through err_pipe (fd 3).
    auto fail = [](int fd) {
      const int e = errno;
      (void)!::write(fd, &e, sizeof(e));
      ::_exit(127);
    };
    ::setpgid(0, 0);
    if (gid != 0 &&
        (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0)) {
      fail(err_pipe[1]);
    }
    // After the group change, which would clear it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    if (::dup2(null_fd, STDIN_FILENO) < 0 || ::dup2(out, STDOUT_FILENO) < 0 ||
        ::dup2(out, STDERR_FILENO) < 0 || ::dup2(err_pipe[1], 3) < 0) {
      fail(err_pipe[1]);
    }
    ::fcntl(3, F_SETFD, FD_CLOEXEC);
    CloseFrom(4);
    ::execve(arg_ptrs[0], arg_ptrs.data(), env_ptrs.data());
    fail(3);
  }
  const int fork_errno = errno;
  ::close(out);
  ::close(null_fd);
  ::close(err_pipe[1]);
  if (pid < 0) {
    ::close(err_pipe[0]);
    errno = fork_errno;
    return Status::IOError(ErrnoText("fork"));
  }
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(err_pipe[0]);
  if (n > 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return Status::IOError("cannot start " + options.argv[0] + ": " +
                           std::strerror(child_errno));
  }
  return pid;
}

}  // namespace raftkv::fault
