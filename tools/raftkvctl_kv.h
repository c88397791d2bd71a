// raftkvctl's key-value commands: put, get, del, cas, range and compact.
// Each takes the command line's words (args[0] is the command) and returns
// the exit code; results go to stdout, errors to stderr.
//
// Output (text; --json, a contract):
//   put       "OK revision N"; {"revision":N}
//   get KEY   the value (--keys-only: the key); {"key","value",
//             "create_revision","mod_revision","version"} (no "value" with
//             --keys-only); exit 1 if absent (at --rev)
//   get KEY --prefix
//             KEY<TAB>VALUE lines as range prints them (--keys-only: KEY
//             lines); a JSON array of get's objects
//   del       the number deleted; {"deleted":N}
//   cas       "OK" or "compare failed" (exit 1); {"swapped":B}
//   range     KEY<TAB>VALUE lines; [{"key","value"},...]
//   compact   "compacted revision N"; {"revision":N}
// A read at a compacted revision, or beyond the current one: exit 4.
#pragma once

#include <string>
#include <vector>

#include "client/client.h"
#include "tools/raftkvctl_common.h"

namespace raftkv::ctl {

// put KEY [VALUE] [--lease=ID]: without VALUE, the value is stdin's bytes.
int RunPut(Client& client, const std::vector<std::string>& args,
           const Options& options);
// get KEY [--prefix] [--rev=N] [--limit=N] [--keys-only].
int RunGet(Client& client, const std::vector<std::string>& args,
           const Options& options);
int RunDel(Client& client, const std::vector<std::string>& args,
           const Options& options);
int RunCas(Client& client, const std::vector<std::string>& args,
           const Options& options);
int RunRange(Client& client, const std::vector<std::string>& args,
             const Options& options);
// compact REV: forgets the history at and below REV on every member.
int RunCompact(Client& client, const std::vector<std::string>& args,
               const Options& options);

}  // namespace raftkv::ctl
