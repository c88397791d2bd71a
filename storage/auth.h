// The replicated auth state (etcd's auth store): users, roles, key-range
// permissions, whether authentication is enabled, and the auth revision.
// The state is one kv::AuthState record (kv_meta "auth", part of every
// snapshot); the state machine applies auth commands to it with
// ApplyAuthCommand, and the server answers queries and checks permissions
// against a copy of it (AuthChecker).
//
// Must never: depend on anything but the command and the state (every
// member applies the same commands to the same state), hold or see a
// clear password (the server hashes before proposing), or grant a range
// that no permission of the user covers.
// Thread-safety: plain functions over values; an AuthChecker is used by
// one thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "client/kv.pb.h"

namespace raftkv::storage {

inline constexpr char kRootUser[] = "root";
inline constexpr char kRootRole[] = "root";

// etcd's message for an auth error code ("etcdserver: ..."); "" for codes
// that are not auth errors.
std::string AuthErrorMessage(kv::ErrorCode code);

// Whether `command` is an auth mutation (AuthEnable ... RoleRevoke-
// Permission).
bool IsAuthCommand(const kv::Command& command);

// Applies the auth mutation `command` to *state, as etcd 3.4's auth store
// does, and fills the response in *result. Returns kv::OK, an auth error
// code (*state unchanged; AuthErrorMessage says why) or kv::INVALID (a
// command no server makes, e.g. enable without a secret). Every change
// adds one to the auth revision; a no-op (enable when enabled, granting a
// role held) changes nothing.
kv::ErrorCode ApplyAuthCommand(const kv::Command& command, kv::AuthState* state,
                               kv::CommandResult* result);

// Lookups (nullptr: none).
const kv::AuthUser* FindUser(const kv::AuthState& state,
                             const std::string& name);
const kv::AuthRole* FindRole(const kv::AuthState& state,
                             const std::string& name);
bool HasRootRole(const kv::AuthUser& user);

// Read-only auth requests answered from the state: auth_status,
// auth_user_get, auth_user_list, auth_role_get, auth_role_list. Returns
// kv::OK and fills *response (without its header), or an error code.
kv::ErrorCode AnswerAuthQuery(const kv::AuthState& state,
                              const kv::ClientRequest& request,
                              kv::ClientResponse* response);

// Checks permissions against one auth state, caching each user's merged
// permissions (etcd's range permission cache). Make a new one when the
// state changes.
class AuthChecker {
 public:
  explicit AuthChecker(std::shared_ptr<const kv::AuthState> state);

  const kv::AuthState& state() const { return *state_; }
  const std::shared_ptr<const kv::AuthState>& shared_state() const {
    return state_;
  }
  // Whether the user exists and has role root (every permission, and the
  // admin operations).
  bool IsRoot(const std::string& user) const;
  // Whether `user` may read (READ) or write (WRITE) every key of the etcd
  // range `key`/`range_end` (range_end empty: the key alone; "\0": every
  // key >= key). The user's permissions together must cover it: a range
  // that two permissions cover between them is allowed.
  bool Permitted(const std::string& user, kv::Permission::Type type,
                 const std::string& key, const std::string& range_end);

 private:
  // Half-open [start, end); end "" means no upper bound. Sorted, disjoint,
  // not adjacent.
  struct Interval {
    std::string start;
    std::string end;
  };
  struct Merged {
    std::vector<Interval> read;
    std::vector<Interval> write;
  };
  const Merged& MergedFor(const std::string& user);

  std::shared_ptr<const kv::AuthState> state_;
  std::map<std::string, Merged> cache_;
};

}  // namespace raftkv::storage
