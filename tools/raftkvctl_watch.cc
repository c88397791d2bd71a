#include "tools/raftkvctl_watch.h"

#include <iostream>

#include "tools/raftkvctl_wait.h"
#include "util/json_bytes.h"

namespace raftkv::ctl {
namespace {

void PrintEvent(const WatchEvent& e, const Options& options) {
  const char* type = e.type == WatchEvent::Type::kPut ? "PUT" : "DELETE";
  if (options.json) {
    Json j = {{"type", type}};
    PutBytes(j, "key", e.kv.key);
    PutBytes(j, "value", e.kv.value);
    j["mod_revision"] = e.kv.mod_revision;
    j["create_revision"] = e.kv.create_revision;
    j["version"] = e.kv.version;
    if (e.has_prev_kv) PutBytes(j, "prev_value", e.prev_kv.value);
    std::cout << DumpJson(j) << "\n";
    return;
  }
  std::cout << type << "\n";
  if (e.has_prev_kv)
    std::cout << e.prev_kv.key << "\n" << e.prev_kv.value << "\n";
  std::cout << e.kv.key << "\n" << e.kv.value << "\n";
}

}  // namespace

int RunWatch(Client& client, const std::vector<std::string>& args,
             const Options& options) {
  if (args.size() != 2 || options.rev < 0) {
    return UsageError("usage: watch KEY [--prefix] [--rev=N] [--prev-kv]");
  }
  std::string key = args[1];
  WatchOptions watch;
  if (options.prefix) {
    watch.range_end = PrefixRangeEnd(key);
    if (key.empty()) key = std::string(1, '\0');
  }
  watch.start_revision = options.rev;
  watch.prev_kv = options.prev_kv;
  Inbox<StatusOr<WatchUpdate>> inbox;
  std::unique_ptr<Watcher> watcher =
      client.Watch(key, watch, [&inbox](StatusOr<WatchUpdate> update) {
        inbox.Push(std::move(update));
      });
  for (;;) {
    for (StatusOr<WatchUpdate>& update : inbox.Take(kStopPollInterval)) {
      if (!update.ok()) {
        watcher.reset();
        std::cerr << "raftkvctl: the watch ended: "
                  << update.status().ToString() << "\n";
        return ExitCodeOf(update.status());
      }
      for (const WatchEvent& e : update->events) PrintEvent(e, options);
      std::cout.flush();
    }
    if (StopSignalWithin(std::chrono::milliseconds(0)) != 0) break;
  }
  watcher.reset();  // cancels it on its member
  return kOk;
}

}  // namespace raftkv::ctl
