// raftkvctl auth|user|role: etcdctl 3.4's commands, syntax and output text
// (etcd's error messages as "Error: <message>" on stderr):
//   auth enable | disable | status
//   user add NAME[:PASSWORD] [--no-password] [--interactive=false]
//   user get NAME [--detail] | list | delete NAME
//   user passwd NAME [--interactive=false]
//   user grant-role USER ROLE | revoke-role USER ROLE
//   role add NAME | get NAME | list | delete NAME
//   role grant-permission [--prefix|--from-key] ROLE read|write|readwrite
//       KEY [ENDKEY]
//   role revoke-permission [--prefix|--from-key] ROLE KEY [ENDKEY]
// A password not on the command line is prompted for (twice for a new
// one) on a terminal, or read as one line of stdin otherwise
// (--interactive=false reads stdin always).
#pragma once

#include <string>
#include <vector>

#include "client/client.h"
#include "tools/raftkvctl_common.h"

namespace raftkv::ctl {

struct AuthOptions {
  bool no_password = false;
  bool interactive = true;
  bool prefix = false;
  bool from_key = false;
  bool detail = false;
};

int RunAuth(Client& client, const std::vector<std::string>& args,
            const AuthOptions& options);
int RunUser(Client& client, const std::vector<std::string>& args,
            const AuthOptions& options);
int RunRole(Client& client, const std::vector<std::string>& args,
            const AuthOptions& options);

// --user=NAME[:PASSWORD]: the password after the first ':', or prompted
// for / read from stdin (`password` if given).
bool ParseUserFlag(const std::string& flag, const std::string& password,
                   std::string* name, std::string* pass);

}  // namespace raftkv::ctl
