// raftkvctl lease grant|revoke|keep-alive|timetolive|list, with etcdctl's
// text output and lease ids in hex (16 digits, as etcdctl prints them; read
// with or without leading zeros). --json gives ids as numbers (a
// contract):
//   grant TTL                {"id":N,"ttl":N}
//   revoke ID                {"id":N}
//   keep-alive ID            {"id":N,"ttl":N} per renewal, until SIGINT or
//                            SIGTERM (exit 0) or the lease is lost (exit 1
//                            if it is gone, 3 if it could not be renewed
//                            before it would expire)
//   timetolive ID [--keys]   {"id":N,"ttl":N,"granted_ttl":N,"keys":[...]}
//                            (keys_base64 if one of them is not UTF-8)
//   list                     [N,...]
// A lease that does not exist: exit 1.
#pragma once

#include <string>
#include <vector>

#include "client/client.h"
#include "tools/raftkvctl_common.h"

namespace raftkv::ctl {

// keep-alive needs BlockStopSignals() before the client was created.
int RunLease(Client& client, const std::vector<std::string>& args,
             const Options& options);

}  // namespace raftkv::ctl
