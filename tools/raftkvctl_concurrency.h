// raftkvctl elect and lock: the Election and Mutex recipes
// (client/concurrency.h) from the command line, as etcdctl elect and lock.
// Both hold a Session (a lease of --ttl seconds, kept alive) and wait by
// watching; SIGINT or SIGTERM while waiting withdraws the candidacy or the
// waiting key and exits 0.
//
//   elect NAME PROPOSAL   campaigns on election NAME; once elected prints
//                         the leader key and PROPOSAL, a line each
//                         (--json: {"key":...,"value":...,"revision":N},
//                         revision the key's create revision), then leads
//                         until SIGINT or SIGTERM (resigns, exit 0) or
//                         until the session is lost (exit 3).
//   elect NAME            observes: prints the leader key and value, a
//                         line each (--json: one object per line, as
//                         above), now and at every change of leader or of
//                         its value, until SIGINT or SIGTERM (exit 0).
//   lock NAME [COMMAND...]
//                         takes lock NAME, prints its key and "revision N"
//                         (its create revision, the fencing token), a line
//                         each (--json: {"key":...,"revision":N}); then
//                         runs COMMAND with RAFTKV_LOCK_KEY and
//                         RAFTKV_LOCK_REVISION in its environment, unlocks
//                         and exits with COMMAND's exit code (128 + N if
//                         a signal N ended it, 127 if it could not be
//                         started; SIGTERM is passed on to it, SIGINT
//                         reaches it from the terminal); without COMMAND
//                         holds the lock until SIGINT or SIGTERM (unlocks,
//                         exit 0) or until the session is lost (exit 3).
//
// A lost session means the leadership or lock is gone (the keys went with
// the lease) though this process did not notice in time: see
// client/concurrency.h on fencing.
#pragma once

#include <string>
#include <vector>

#include "client/client.h"
#include "tools/raftkvctl_common.h"

namespace raftkv::ctl {

// Both need BlockStopSignals() before the client was created.
int RunElect(Client& client, const std::vector<std::string>& args,
             const Options& options);
int RunLock(Client& client, const std::vector<std::string>& args,
            const Options& options);

}  // namespace raftkv::ctl
