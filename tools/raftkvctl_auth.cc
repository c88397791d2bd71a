// raftkvctl auth, user and role commands (see raftkvctl_auth.h). Output
// and errors as etcdctl 3.4 prints them; never echoes a password.
#include "tools/raftkvctl_auth.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>

namespace raftkv::ctl {
namespace {

constexpr char kAuthEnableRootRoleMissing[] =
    "etcdserver: root user does not have root role";

// etcdctl's ExitWithError: "Error: <message>" and a non-zero exit.
int Error(const Status& s) {
  std::cerr << "Error: " << s.message() << "\n";
  return ExitCodeOf(s);
}

int Usage(const std::string& message) {
  std::cerr << "Error: " << message << "\n";
  return kUsage;
}

// A password from the terminal (no echo) or one line of stdin.
bool ReadPassword(const std::string& prompt, bool interactive,
                  std::string* out) {
  if (interactive && ::isatty(0)) {
    const char* p = ::getpass(prompt.c_str());
    if (p == nullptr) return false;
    *out = p;
    return true;
  }
  if (!std::getline(std::cin, *out)) return false;
  if (!out->empty() && out->back() == '\r') out->pop_back();
  return true;
}

bool NewPassword(const std::string& name, bool interactive, std::string* out) {
  if (!ReadPassword("Password of " + name + ": ", interactive, out)) {
    return false;
  }
  if (interactive && ::isatty(0)) {
    std::string again;
    if (!ReadPassword("Type password of " + name + " again for confirmation: ",
                      interactive, &again) ||
        again != *out) {
      std::cerr << "Error: given passwords are different.\n";
      return false;
    }
  }
  return true;
}

// etcdctl's printRange / key lines of `role get`.
void PrintPermissions(const std::vector<Permission>& perms, bool write) {
  for (const Permission& p : perms) {
    const bool match = write ? p.type != Permission::Type::kRead
                             : p.type != Permission::Type::kWrite;
    if (!match) continue;
    if (p.range_end.empty()) {
      std::printf("\t%s\n", p.key.c_str());
      continue;
    }
    if (p.range_end != std::string(1, '\0')) {
      std::printf("\t[%s, %s)", p.key.c_str(), p.range_end.c_str());
    } else {
      std::printf("\t[%s, <open ended>", p.key.c_str());
    }
    if (PrefixRangeEnd(p.key) == p.range_end) {
      std::printf(" (prefix %s)", p.key.c_str());
    }
    std::printf("\n");
  }
}

int PrintRole(Client& client, const std::string& role) {
  auto perms = client.RoleGet(role);
  if (!perms.ok()) return Error(perms.status());
  std::printf("Role %s\n", role.c_str());
  std::printf("KV Read:\n");
  PrintPermissions(*perms, /*write=*/false);
  std::printf("KV Write:\n");
  PrintPermissions(*perms, /*write=*/true);
  return kOk;
}

// etcdctl's rangeEndFromPermFlags: the range end of KEY [ENDKEY].
bool RangeEnd(const std::vector<std::string>& keys, const AuthOptions& options,
              std::string* end, std::string* error) {
  if (keys.size() == 1) {
    if (options.prefix && options.from_key) {
      *error = "--from-key and --prefix flags are mutually exclusive";
      return false;
    }
    if (options.prefix) {
      *end = PrefixRangeEnd(keys[0]);
    } else if (options.from_key) {
      *end = std::string(1, '\0');
    } else {
      end->clear();
    }
    return true;
  }
  if (options.prefix) {
    *error = "unexpected endkey argument with --prefix flag";
    return false;
  }
  if (options.from_key) {
    *error = "unexpected endkey argument with --from-key flag";
    return false;
  }
  *end = keys[1];
  return true;
}

}  // namespace

bool ParseUserFlag(const std::string& flag, const std::string& password,
                   std::string* name, std::string* pass) {
  const size_t colon = flag.find(':');
  if (colon != std::string::npos) {
    *name = flag.substr(0, colon);
    *pass = flag.substr(colon + 1);
    return true;
  }
  *name = flag;
  if (!password.empty()) {
    *pass = password;
    return true;
  }
  return ReadPassword("Password: ", /*interactive=*/true, pass);
}

int RunAuth(Client& client, const std::vector<std::string>& args,
            const AuthOptions& options) {
  (void)options;
  const std::string sub = args.size() == 2 ? args[1] : "";
  if (sub == "enable") {
    // As etcdctl: a missing root role is added and granted to root.
    Status s;
    while (true) {
      s = client.AuthEnable();
      if (s.ok() || s.message() != kAuthEnableRootRoleMissing) break;
      s = client.RoleAdd("root");
      if (s.ok()) s = client.UserGrantRole("root", "root");
      if (!s.ok()) break;
    }
    if (!s.ok()) return Error(s);
    std::printf("Authentication Enabled\n");
    return kOk;
  }
  if (sub == "disable") {
    Status s = client.AuthDisable();
    if (!s.ok()) return Error(s);
    std::printf("Authentication Disabled\n");
    return kOk;
  }
  if (sub == "status") {
    auto r = client.AuthStatus();
    if (!r.ok()) return Error(r.status());
    std::printf("Authentication Status: %s\nAuthRevision: %llu\n",
                r->enabled ? "true" : "false",
                static_cast<unsigned long long>(r->auth_revision));
    return kOk;
  }
  return Usage("usage: auth enable | disable | status");
}

int RunUser(Client& client, const std::vector<std::string>& args,
            const AuthOptions& options) {
  const std::string sub = args.size() >= 2 ? args[1] : "";
  const size_t n = args.size();
  if (sub == "add" && n == 3) {
    std::string name = args[2];
    std::string password;
    const size_t colon = name.find(':');
    if (colon != std::string::npos) {
      password = name.substr(colon + 1);
      name.resize(colon);
    } else if (!options.no_password &&
               !NewPassword(name, options.interactive, &password)) {
      return kUsage;
    }
    if (name.empty()) return Usage("empty user name is not allowed");
    Status s = client.UserAdd(name, password, options.no_password);
    if (!s.ok()) return Error(s);
    std::printf("User %s created\n", name.c_str());
    return kOk;
  }
  if (sub == "get" && n == 3) {
    auto roles = client.UserGet(args[2]);
    if (!roles.ok()) return Error(roles.status());
    std::printf("User: %s\n", args[2].c_str());
    if (options.detail) {
      for (const std::string& role : *roles) {
        std::printf("\n");
        if (int rc = PrintRole(client, role); rc != kOk) return rc;
      }
      return kOk;
    }
    std::printf("Roles:");
    for (const std::string& role : *roles) std::printf(" %s", role.c_str());
    std::printf("\n");
    return kOk;
  }
  if (sub == "list" && n == 2) {
    auto users = client.UserList();
    if (!users.ok()) return Error(users.status());
    for (const std::string& u : *users) std::printf("%s\n", u.c_str());
    return kOk;
  }
  if (sub == "delete" && n == 3) {
    Status s = client.UserDelete(args[2]);
    if (!s.ok()) return Error(s);
    std::printf("User %s deleted\n", args[2].c_str());
    return kOk;
  }
  if (sub == "passwd" && n == 3) {
    std::string password;
    if (!NewPassword(args[2], options.interactive, &password)) return kUsage;
    Status s = client.UserChangePassword(args[2], password);
    if (!s.ok()) return Error(s);
    std::printf("Password updated\n");
    return kOk;
  }
  if (sub == "grant-role" && n == 4) {
    Status s = client.UserGrantRole(args[2], args[3]);
    if (!s.ok()) return Error(s);
    std::printf("Role %s is granted to user %s\n", args[3].c_str(),
                args[2].c_str());
    return kOk;
  }
  if (sub == "revoke-role" && n == 4) {
    Status s = client.UserRevokeRole(args[2], args[3]);
    if (!s.ok()) return Error(s);
    std::printf("Role %s is revoked from user %s\n", args[3].c_str(),
                args[2].c_str());
    return kOk;
  }
  return Usage(
      "usage: user add NAME[:PASSWORD] [--no-password] | get NAME "
      "[--detail] | list | delete NAME | passwd NAME | grant-role USER ROLE "
      "| revoke-role USER ROLE");
}

int RunRole(Client& client, const std::vector<std::string>& args,
            const AuthOptions& options) {
  const std::string sub = args.size() >= 2 ? args[1] : "";
  const size_t n = args.size();
  if (sub == "add" && n == 3) {
    Status s = client.RoleAdd(args[2]);
    if (!s.ok()) return Error(s);
    std::printf("Role %s created\n", args[2].c_str());
    return kOk;
  }
  if (sub == "get" && n == 3) return PrintRole(client, args[2]);
  if (sub == "list" && n == 2) {
    auto roles = client.RoleList();
    if (!roles.ok()) return Error(roles.status());
    for (const std::string& r : *roles) std::printf("%s\n", r.c_str());
    return kOk;
  }
  if (sub == "delete" && n == 3) {
    Status s = client.RoleDelete(args[2]);
    if (!s.ok()) return Error(s);
    std::printf("Role %s deleted\n", args[2].c_str());
    return kOk;
  }
  if (sub == "grant-permission") {
    if (n < 5 || n > 6) {
      return Usage(
          "role grant command requires role name, permission type, and key "
          "[endkey] as its argument");
    }
    std::string type = args[3];
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    Permission perm;
    if (type == "READ") {
      perm.type = Permission::Type::kRead;
    } else if (type == "WRITE") {
      perm.type = Permission::Type::kWrite;
    } else if (type == "READWRITE") {
      perm.type = Permission::Type::kReadWrite;
    } else {
      return Usage("invalid permission type: " + args[3]);
    }
    perm.key = args[4];
    std::string error;
    if (!RangeEnd({args.begin() + 4, args.end()}, options, &perm.range_end,
                  &error)) {
      return Usage(error);
    }
    Status s = client.RoleGrantPermission(args[2], perm);
    if (!s.ok()) return Error(s);
    std::printf("Role %s updated\n", args[2].c_str());
    return kOk;
  }
  if (sub == "revoke-permission") {
    if (n < 4 || n > 5) {
      return Usage(
          "role revoke-permission command requires role name and key "
          "[endkey] as its argument");
    }
    std::string end;
    std::string error;
    if (!RangeEnd({args.begin() + 3, args.end()}, options, &end, &error)) {
      return Usage(error);
    }
    Status s = client.RoleRevokePermission(args[2], args[3], end);
    if (!s.ok()) return Error(s);
    if (end.empty()) {
      std::printf("Permission of key %s is revoked from role %s\n",
                  args[3].c_str(), args[2].c_str());
    } else if (end != std::string(1, '\0')) {
      std::printf("Permission of range [%s, %s) is revoked from role %s\n",
                  args[3].c_str(), end.c_str(), args[2].c_str());
    } else {
      std::printf(
          "Permission of range [%s, <open ended> is revoked from role %s\n",
          args[3].c_str(), args[2].c_str());
    }
    return kOk;
  }
  return Usage(
      "usage: role add NAME | get NAME | list | delete NAME | "
      "grant-permission [--prefix|--from-key] ROLE TYPE KEY [ENDKEY] | "
      "revoke-permission [--prefix|--from-key] ROLE KEY [ENDKEY]");
}

}  // namespace raftkv::ctl
