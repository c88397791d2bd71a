#include "tools/raftkvctl_concurrency.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <iostream>
#include <optional>
#include <thread>

#include "client/concurrency.h"
#include "tools/raftkvctl_wait.h"
#include "util/json_bytes.h"

extern char** environ;

namespace raftkv::ctl {
namespace {

// How long a campaign or a lock waits: until stopped, in effect.
constexpr std::chrono::milliseconds kForever = std::chrono::hours(24 * 365);

// Runs `acquire` (a Lock or a Campaign) on a thread of its own while this
// one waits for a stop signal, which ends the session: `acquire` then
// returns (Aborted), its waiting key withdrawn. Its status, or nullopt if
// a stop signal came.
std::optional<Status> AcquireUnlessStopped(Session* session,
                                           std::function<Status()> acquire) {
  std::packaged_task<Status()> task(std::move(acquire));
  std::future<Status> done = task.get_future();
  std::thread thread(std::move(task));
  bool stopped = false;
  while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (stopped) {
      done.wait();
    } else if (StopSignalWithin(kStopPollInterval) != 0) {
      stopped = true;
      (void)session->Close();  // revokes the lease: the key goes with it
    }
  }
  thread.join();
  Status status = done.get();
  if (stopped) return std::nullopt;
  return status;
}

// Waits for SIGINT or SIGTERM (true) or for the session's end (false).
bool HoldUntilStopped(const Session& session) {
  for (;;) {
    if (StopSignalWithin(kStopPollInterval) != 0) return true;
    if (!session.alive()) return false;
  }
}

int SessionLost(const std::string& what) {
  std::cerr << "raftkvctl: " << what
            << " lost: the session's lease expired or was revoked\n";
  return kUnavailable;
}

void PrintLeader(const std::string& key, const std::string& value,
                 int64_t revision, const Options& options) {
  if (options.json) {
    Json j = Json::object();
    PutBytes(j, "key", key);
    PutBytes(j, "value", value);
    j["revision"] = revision;
    PrintJson(j);
  } else {
    std::cout << key << "\n" << value << std::endl;
  }
}

// elect NAME: the leader now and at every change, until stopped.
int Observe(Election& election, const Options& options) {
  Inbox<StatusOr<KeyValue>> inbox;
  std::unique_ptr<Watcher> watcher = election.Observe(
      [&inbox](StatusOr<KeyValue> leader) { inbox.Push(std::move(leader)); });
  if (watcher == nullptr) {
    // The first read failed and on_leader was told why, before Observe
    // returned. (Also seen with nothing wrong: on a store still at
    // revision 0 Observe starts no watch; nothing would ever come.)
    Status why = Status::Unavailable("observing the election could not start");
    for (StatusOr<KeyValue>& told : inbox.Take(std::chrono::milliseconds(0))) {
      if (!told.ok() && !told.status().IsNotFound()) why = told.status();
    }
    return Fail(why);
  }
  for (;;) {
    std::vector<StatusOr<KeyValue>> told = inbox.Take(kStopPollInterval);
    for (StatusOr<KeyValue>& leader : told) {
      if (leader.status().IsNotFound()) continue;  // none for now
      if (!leader.ok()) {
        watcher.reset();
        std::cerr << "raftkvctl: observing ended: "
                  << leader.status().ToString() << "\n";
        return ExitCodeOf(leader.status());
      }
      PrintLeader(leader->key, leader->value, leader->create_revision, options);
    }
    if (StopSignalWithin(std::chrono::milliseconds(0)) != 0) break;
  }
  watcher.reset();
  return kOk;
}

// The environment of COMMAND: ours with the lock's key and revision.
std::vector<std::string> LockEnvironment(const std::string& key,
                                         int64_t revision) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string var = *e;
    if (var.rfind("RAFTKV_LOCK_KEY=", 0) == 0 ||
        var.rfind("RAFTKV_LOCK_REVISION=", 0) == 0) {
      continue;
    }
    env.push_back(var);
  }
  env.push_back("RAFTKV_LOCK_KEY=" + key);
  env.push_back("RAFTKV_LOCK_REVISION=" + std::to_string(revision));
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& words) {
  std::vector<char*> out;
  for (std::string& w : words) out.push_back(w.data());
  out.push_back(nullptr);
  return out;
}

// Runs `command` (found in PATH) with the lock's environment and the
// signal mask raftkvctl started with; its exit code (128 + N if signal N
// ended it; 127 if it could not be started). SIGTERM is passed on.
int RunCommand(std::vector<std::string> command, const std::string& key,
               int64_t revision, const Session& session) {
  std::vector<std::string> env = LockEnvironment(key, revision);
  std::vector<char*> argv = Pointers(command);
  std::vector<char*> envp = Pointers(env);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setsigmask(&attr, &OriginalSignalMask());
  pid_t pid = 0;
  const int error =
      posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  if (error != 0) {
    std::cerr << "raftkvctl: cannot run " << command[0] << ": "
              << std::strerror(error) << "\n";
    return 127;
  }
  bool warned = false;
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (done < 0 && errno != EINTR) return 127;
    if (StopSignalWithin(kStopPollInterval) == SIGTERM) kill(pid, SIGTERM);
    if (!warned && !session.alive()) {
      warned = true;
      std::cerr << "raftkvctl: lock lost while " << command[0]
                << " runs: the session's lease expired or was revoked\n";
    }
  }
}

StatusOr<std::unique_ptr<Session>> NewSession(Client& client,
                                              const Options& options) {
  if (options.ttl <= 0) return Status::InvalidArgument("--ttl must be > 0");
  return Session::Create(&client, options.ttl);
}

}  // namespace

int RunElect(Client& client, const std::vector<std::string>& args,
             const Options& options) {
  if (args.size() != 2 && args.size() != 3) {
    return UsageError("usage: elect NAME [PROPOSAL]");
  }
  auto created = NewSession(client, options);
  if (!created.ok()) return Fail(created.status());
  std::unique_ptr<Session> session = std::move(created).value();
  Election election(session.get(), args[1]);
  if (args.size() == 2) return Observe(election, options);
  const std::string& proposal = args[2];
  auto campaign = AcquireUnlessStopped(
      session.get(), [&] { return election.Campaign(proposal, kForever); });
  if (!campaign.has_value()) return kOk;  // stopped while campaigning
  if (!campaign->ok()) return Fail(*campaign);
  PrintLeader(election.key(), proposal, election.revision(), options);
  if (!HoldUntilStopped(*session)) return SessionLost("leadership");
  Status resigned = election.Resign();
  if (!resigned.ok()) return Fail(resigned);
  Status closed = session->Close();
  return closed.ok() ? kOk : Fail(closed);
}

int RunLock(Client& client, const std::vector<std::string>& args,
            const Options& options) {
  if (args.size() < 2) return UsageError("usage: lock NAME [COMMAND...]");
  auto created = NewSession(client, options);
  if (!created.ok()) return Fail(created.status());
  std::unique_ptr<Session> session = std::move(created).value();
  Mutex mutex(session.get(), args[1]);
  auto locked =
      AcquireUnlessStopped(session.get(), [&] { return mutex.Lock(kForever); });
  if (!locked.has_value()) return kOk;  // stopped while waiting
  if (!locked->ok()) return Fail(*locked);
  if (options.json) {
    Json j = Json::object();
    PutBytes(j, "key", mutex.key());
    j["revision"] = mutex.revision();
    PrintJson(j);
  } else {
    std::cout << mutex.key() << "\nrevision " << mutex.revision() << std::endl;
  }
  int code = kOk;
  if (args.size() > 2) {
    code = RunCommand({args.begin() + 2, args.end()}, mutex.key(),
                      mutex.revision(), *session);
  } else if (!HoldUntilStopped(*session)) {
    return SessionLost("lock");
  }
  Status unlocked = mutex.Unlock();
  if (!unlocked.ok()) {
    std::cerr << "raftkvctl: unlock failed (the lock goes with the session's "
                 "lease): "
              << unlocked.ToString() << "\n";
  }
  (void)session->Close();
  return code;
}

}  // namespace raftkv::ctl
