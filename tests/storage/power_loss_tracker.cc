// The C library functions the crash child replaces to log what it does to
// the simulated disk (see power_loss_tracker.h and, for the event log,
// power_loss.h). Each one calls the C library's own function (looked up
// with dlsym(RTLD_NEXT)) and, for a path on the disk, logs the change it
// made. The list covers what storage/, RocksDB and the C++ library call:
// `nm -D --undefined-only` on the child and librocksdb shows them. Must never
// change the result or errno the caller sees.
#include "tests/storage/power_loss_tracker.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>

namespace raftkv::storage::crash {
namespace {

template <typename Fn>
Fn* Next(const char* name) {
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn == nullptr) {
    std::fprintf(stderr, "power_loss_tracker: no %s after this binary\n", name);
    std::abort();
  }
  return reinterpret_cast<Fn*>(fn);
}

// The functions this file replaces, as the C library provides them.
struct Libc {
  decltype(::open)* open = Next<decltype(::open)>("open");
  decltype(::open64)* open64 = Next<decltype(::open64)>("open64");
  decltype(::openat)* openat = Next<decltype(::openat)>("openat");
  decltype(::openat64)* openat64 = Next<decltype(::openat64)>("openat64");
  decltype(::rename)* rename = Next<decltype(::rename)>("rename");
  decltype(::renameat)* renameat = Next<decltype(::renameat)>("renameat");
  decltype(::link)* link = Next<decltype(::link)>("link");
  decltype(::linkat)* linkat = Next<decltype(::linkat)>("linkat");
  decltype(::unlink)* unlink = Next<decltype(::unlink)>("unlink");
  decltype(::unlinkat)* unlinkat = Next<decltype(::unlinkat)>("unlinkat");
  decltype(::remove)* remove = Next<decltype(::remove)>("remove");
  decltype(::rmdir)* rmdir = Next<decltype(::rmdir)>("rmdir");
  decltype(::mkdir)* mkdir = Next<decltype(::mkdir)>("mkdir");
  decltype(::mkdirat)* mkdirat = Next<decltype(::mkdirat)>("mkdirat");
  decltype(::fsync)* fsync = Next<decltype(::fsync)>("fsync");
  decltype(::fdatasync)* fdatasync = Next<decltype(::fdatasync)>("fdatasync");
};

const Libc& C() {
  static const Libc libc;
  return libc;
}

struct Tracker {
  std::string root;
  std::string attic;
  int events_fd = -1;
  // Held while an entry change or a directory fsync is made and logged.
  std::mutex mu;
  // Events left before the process kills itself; 0: never. Under `mu`.
  uint64_t kill_countdown = 0;
};

// Set once, before other threads exist; never freed.
Tracker* tracker = nullptr;

[[noreturn]] void Fail(const char* what, const std::string& path) {
  std::fprintf(stderr, "power_loss_tracker: %s %s: %s\n", what, path.c_str(),
               std::strerror(errno));
  std::abort();
}

// Called with tracker->mu held.
void Log(const std::string& event) {
  const std::string line = event + "\n";
  if (::write(tracker->events_fd, line.data(), line.size()) !=
      static_cast<ssize_t>(line.size())) {
    Fail("write", "the event log");
  }
  if (tracker->kill_countdown > 0 && --tracker->kill_countdown == 0) {
    ::kill(::getpid(), SIGKILL);
  }
}

std::string FdPath(int fd) {
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  char buf[4096];
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  const std::string deleted = " (deleted)";
  if (path.size() > deleted.size() &&
      path.compare(path.size() - deleted.size(), deleted.size(), deleted) ==
          0) {
    path.resize(path.size() - deleted.size());
  }
  return path;
}

// `path` (relative to the directory `dirfd`) made absolute and normal;
// empty while nothing is tracked.
std::string Absolute(int dirfd, const char* path) {
  if (tracker == nullptr) return "";
  std::string full;
  if (path[0] != '/') {
    if (dirfd == AT_FDCWD) {
      char cwd[4096];
      if (::getcwd(cwd, sizeof(cwd)) != nullptr) full = cwd;
    } else {
      full = FdPath(dirfd);
    }
    full += '/';
  }
  full = std::filesystem::path(full + path).lexically_normal().string();
  while (full.size() > 1 && full.back() == '/') full.pop_back();
  return full;
}

// Whether `path` is the disk's root or below it.
bool OnDisk(const std::string& path) {
  const std::string& root = tracker->root;
  return path.compare(0, root.size(), root) == 0 &&
         (path.size() == root.size() || path[root.size()] == '/');
}

// Whether `path` names an entry of a directory on the disk.
bool Tracked(const std::string& path) {
  return tracker != nullptr && OnDisk(path) &&
         path.size() > tracker->root.size();
}

std::string Parent(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

std::string Name(const std::string& path) {
  const std::string name = path.substr(path.rfind('/') + 1);
  if (name.find_first_of(" \n") != std::string::npos) {
    Fail("cannot log a name with a space or newline:", path);
  }
  return name;
}

std::string Ino(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) Fail("lstat", path);
  return std::to_string(st.st_ino);
}

// Hard-links the regular file `path` (if it is one) into the attic.
void KeepInAttic(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  const std::string kept = tracker->attic + "/" + std::to_string(st.st_ino);
  if (C().link(path.c_str(), kept.c_str()) != 0 && errno != EEXIST) {
    Fail("link into the attic:", path);
  }
}

// Runs `change`, which returns like the C library call it makes; if it
// succeeded, logs `event()`. errno stays as `change` left it.
template <typename Change, typename Event>
int Logged(Change change, Event event) {
  const int rc = change();
  if (rc < 0) return rc;
  const int saved = errno;
  Log(event());
  errno = saved;
  return rc;
}

// An entry `path` added by `change`: kind 'f' (file), 'd' or 'l' (link).
template <typename Change>
int Added(const std::string& path, char kind, Change change) {
  return Logged(change, [&] {
    return std::string("+ ") + Ino(Parent(path)) + " " + Name(path) + " " +
           Ino(path) + " " + kind;
  });
}

template <typename Call>
int TrackOpen(int dirfd, const char* path, int flags, Call call) {
  if (tracker == nullptr || (flags & (O_CREAT | O_TRUNC)) == 0) return call();
  const std::string abs = Absolute(dirfd, path);
  if (!Tracked(abs)) return call();
  std::lock_guard<std::mutex> lock(tracker->mu);
  struct stat before;
  if (::lstat(abs.c_str(), &before) != 0) return Added(abs, 'f', call);
  if ((flags & O_TRUNC) == 0 || !S_ISREG(before.st_mode) ||
      before.st_size == 0) {
    return call();
  }
  return Logged(call, [&] { return "t " + std::to_string(before.st_ino); });
}

template <typename Call>
int TrackAdd(const std::string& path, char kind, Call call) {
  if (!Tracked(path)) return call();
  std::lock_guard<std::mutex> lock(tracker->mu);
  return Added(path, kind, call);
}

template <typename Call>
int TrackRemove(const std::string& path, Call call) {
  if (!Tracked(path)) return call();
  std::lock_guard<std::mutex> lock(tracker->mu);
  KeepInAttic(path);
  return Logged(call,
                [&] { return "- " + Ino(Parent(path)) + " " + Name(path); });
}

template <typename Call>
int TrackRename(const std::string& from, const std::string& to, Call call) {
  if (!Tracked(from) && !Tracked(to)) return call();
  if (!Tracked(from) || !Tracked(to) || Parent(from) != Parent(to)) {
    Fail("rename out of its directory (not modelled):", from + " -> " + to);
  }
  std::lock_guard<std::mutex> lock(tracker->mu);
  KeepInAttic(to);
  return Logged(call, [&] {
    return "r " + Ino(Parent(to)) + " " + Name(from) + " " + Name(to) + " " +
           Ino(to);
  });
}

template <typename Call>
int TrackSync(int fd, Call call) {
  struct stat st;
  if (tracker == nullptr || ::fstat(fd, &st) != 0 ||
      !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) || !OnDisk(FdPath(fd))) {
    return call();
  }
  const std::string ino = std::to_string(st.st_ino);
  if (S_ISDIR(st.st_mode)) {
    // Under the lock: no entry change can slip between the fsync and its
    // event.
    std::lock_guard<std::mutex> lock(tracker->mu);
    return Logged(call, [&] { return "F " + ino; });
  }
  // The bytes written before the call are durable once it returns.
  const std::string size = std::to_string(st.st_size);
  const int rc = call();
  if (rc < 0) return rc;
  std::lock_guard<std::mutex> lock(tracker->mu);
  Log("s " + ino + " " + size);
  return rc;
}

bool TakesMode(int flags) {
  return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

}  // namespace

void StartPowerLossTracking(const std::string& root,
                            const std::string& events_path,
                            const std::string& attic) {
  auto* t = new Tracker;
  t->root = std::filesystem::path(root).lexically_normal().string();
  while (t->root.size() > 1 && t->root.back() == '/') t->root.pop_back();
  t->attic = attic;
  t->events_fd = C().open(events_path.c_str(),
                          O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (t->events_fd < 0) Fail("open", events_path);
  tracker = t;
}

void KillAfterEvents(uint64_t events) {
  std::lock_guard<std::mutex> lock(tracker->mu);
  tracker->kill_countdown = events;
}

}  // namespace raftkv::storage::crash

// The replacements.
namespace crash = raftkv::storage::crash;

extern "C" {

int open(const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = crash::TakesMode(flags) ? va_arg(args, mode_t) : 0;
  va_end(args);
  return crash::TrackOpen(AT_FDCWD, path, flags,
                          [&] { return crash::C().open(path, flags, mode); });
}

int open64(const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = crash::TakesMode(flags) ? va_arg(args, mode_t) : 0;
  va_end(args);
  return crash::TrackOpen(AT_FDCWD, path, flags,
                          [&] { return crash::C().open64(path, flags, mode); });
}

int openat(int dirfd, const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = crash::TakesMode(flags) ? va_arg(args, mode_t) : 0;
  va_end(args);
  return crash::TrackOpen(dirfd, path, flags, [&] {
    return crash::C().openat(dirfd, path, flags, mode);
  });
}

int openat64(int dirfd, const char* path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = crash::TakesMode(flags) ? va_arg(args, mode_t) : 0;
  va_end(args);
  return crash::TrackOpen(dirfd, path, flags, [&] {
    return crash::C().openat64(dirfd, path, flags, mode);
  });
}

int rename(const char* from, const char* to) noexcept {
  return crash::TrackRename(crash::Absolute(AT_FDCWD, from),
                            crash::Absolute(AT_FDCWD, to),
                            [&] { return crash::C().rename(from, to); });
}

int renameat(int from_dirfd, const char* from, int to_dirfd,
             const char* to) noexcept {
  return crash::TrackRename(
      crash::Absolute(from_dirfd, from), crash::Absolute(to_dirfd, to),
      [&] { return crash::C().renameat(from_dirfd, from, to_dirfd, to); });
}

int link(const char* from, const char* to) noexcept {
  return crash::TrackAdd(crash::Absolute(AT_FDCWD, to), 'l',
                         [&] { return crash::C().link(from, to); });
}

int linkat(int from_dirfd, const char* from, int to_dirfd, const char* to,
           int flags) noexcept {
  return crash::TrackAdd(crash::Absolute(to_dirfd, to), 'l', [&] {
    return crash::C().linkat(from_dirfd, from, to_dirfd, to, flags);
  });
}

int unlink(const char* path) noexcept {
  return crash::TrackRemove(crash::Absolute(AT_FDCWD, path),
                            [&] { return crash::C().unlink(path); });
}

int unlinkat(int dirfd, const char* path, int flags) noexcept {
  return crash::TrackRemove(crash::Absolute(dirfd, path), [&] {
    return crash::C().unlinkat(dirfd, path, flags);
  });
}

int remove(const char* path) noexcept {
  return crash::TrackRemove(crash::Absolute(AT_FDCWD, path),
                            [&] { return crash::C().remove(path); });
}

int rmdir(const char* path) noexcept {
  return crash::TrackRemove(crash::Absolute(AT_FDCWD, path),
                            [&] { return crash::C().rmdir(path); });
}

int mkdir(const char* path, mode_t mode) noexcept {
  return crash::TrackAdd(crash::Absolute(AT_FDCWD, path), 'd',
                         [&] { return crash::C().mkdir(path, mode); });
}

int mkdirat(int dirfd, const char* path, mode_t mode) noexcept {
  return crash::TrackAdd(crash::Absolute(dirfd, path), 'd',
                         [&] { return crash::C().mkdirat(dirfd, path, mode); });
}

int fsync(int fd) {
  return crash::TrackSync(fd, [&] { return crash::C().fsync(fd); });
}

int fdatasync(int fd) {
  return crash::TrackSync(fd, [&] { return crash::C().fdatasync(fd); });
}

}  // extern "C"
