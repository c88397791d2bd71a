// raftkvctl txn: a transaction in etcdctl's txn syntax, read from stdin in
// three sections, each ended by a blank line (or the end of the input):
//
//   compares:                      one per line, all must hold
//     value("key") = "v"           also version|ver, create|c, mod|m
//     version("k") > "3"           operators = == != > <
//   success requests:              one per line, run if they all hold
//     put KEY VALUE [--lease=ID]
//     get KEY [END] [--prefix] [--limit=N] [--rev=N] [--keys-only]
//         [--count-only]
//     del KEY [END] [--prefix] [--prev-kv]
//   failure requests:              run otherwise
//
// Words are bare, "double-quoted" with Go's escapes (\n, \t, \", \\,
// \xHH, \ooo, \uHHHH...: any bytes) or 'single-quoted' (literal). When
// stdin is a terminal each section is prompted for, as etcdctl txn -i
// does. Output as etcdctl's: SUCCESS or FAILURE, then per request a blank
// line and its result (put: OK; get: key and value lines; del: the number
// deleted, then the keys and values before, with --prev-kv). With --json,
// one object (a contract):
//   {"succeeded":B,"responses":[R,...]} where R is
//   {"type":"put","revision":N} | {"type":"del","deleted":N[,"prev_kvs":
//   [...]]} | {"type":"get","kvs":[get's objects],"more":B,"count":N}
// Exit codes: 0 the compares held, 1 they did not (the failure requests
// ran), 2 the input is not valid txn syntax (nothing sent).
#pragma once

#include <istream>
#include <ostream>

#include "client/client.h"
#include "tools/raftkvctl_common.h"

namespace raftkv::ctl {

// Parses a transaction from `in`; with `prompts`, writes each section's
// prompt there first. InvalidArgument naming the line on bad syntax.
StatusOr<kv::TxnRequest> ReadTxn(std::istream& in, std::ostream* prompts);

int RunTxn(Client& client, const std::vector<std::string>& args,
           const Options& options);

}  // namespace raftkv::ctl
