// raftkvctl watch KEY [--prefix] [--rev=N] [--prev-kv]: prints the changes
// to KEY (or every key with the prefix) as they are applied, from revision
// N on (default: from now), until SIGINT or SIGTERM (exit 0) or until the
// watch ends: its revision to resume from was compacted (exit 4, the
// message naming the oldest revision left).
//
// Text, as etcdctl watch prints it, per event: the type (PUT or DELETE),
// then (with --prev-kv, if the key existed) the key and value before, then
// the key and value (empty for a DELETE), a line each. With --json, one
// object per event and line (a contract):
//   {"type":"PUT"|"DELETE","key":...,"value":...,"mod_revision":N,
//    "create_revision":N,"version":N[,"prev_value":...]}
// keys and values that are not UTF-8 as key_base64 / value_base64 /
// prev_value_base64. Output is flushed after every revision.
#pragma once

#include <string>
#include <vector>

#include "client/client.h"
#include "tools/raftkvctl_common.h"

namespace raftkv::ctl {

// Needs BlockStopSignals() before the client was created.
int RunWatch(Client& client, const std::vector<std::string>& args,
             const Options& options);

}  // namespace raftkv::ctl
