// The auth store's operations (see auth.h), following etcd 3.4's
// auth/store.go rule by rule. Must never change the state when it answers
// an error.
#include "storage/auth.h"

#include <algorithm>
#include <utility>

namespace raftkv::storage {
namespace {

using Perm = kv::Permission;

template <typename T>
T* FindByName(google::protobuf::RepeatedPtrField<T>* items,
              const std::string& name) {
  for (T& item : *items) {
    if (item.name() == name) return &item;
  }
  return nullptr;
}

// Inserts `item` keeping the field sorted by name.
template <typename T>
void InsertByName(google::protobuf::RepeatedPtrField<T>* items, T item) {
  *items->Add() = std::move(item);
  for (int i = items->size() - 1;
       i > 0 && items->Get(i - 1).name() > items->Get(i).name(); --i) {
    items->SwapElements(i - 1, i);
  }
}

template <typename T>
void EraseByName(google::protobuf::RepeatedPtrField<T>* items,
                 const std::string& name) {
  for (int i = 0; i < items->size(); ++i) {
    if (items->Get(i).name() == name) {
      items->erase(items->begin() + i);
      return;
    }
  }
}

bool PermLess(const Perm& a, const Perm& b) {
  if (a.key() != b.key()) return a.key() < b.key();
  return a.range_end() < b.range_end();
}

kv::ErrorCode UserAdd(const kv::AuthUserAddRequest& r, kv::AuthState* state) {
  if (r.name().empty()) return kv::USER_EMPTY;
  if (FindUser(*state, r.name()) != nullptr) return kv::USER_ALREADY_EXISTS;
  const bool no_password = r.options().no_password();
  if (!no_password && (r.hashed_password().empty() || r.salt().empty() ||
                       r.iterations() == 0)) {
    return kv::INVALID;  // a server hashes every password it proposes
  }
  kv::AuthUser user;
  user.set_name(r.name());
  user.set_no_password(no_password);
  if (!no_password) {
    user.set_hashed_password(r.hashed_password());
    user.set_salt(r.salt());
    user.set_iterations(r.iterations());
  }
  user.set_token_revision(state->revision() + 1);
  InsertByName(state->mutable_users(), std::move(user));
  return kv::OK;
}

kv::ErrorCode ChangePassword(const kv::AuthUserChangePasswordRequest& r,
                             kv::AuthState* state) {
  kv::AuthUser* user = FindByName(state->mutable_users(), r.name());
  if (user == nullptr) return kv::USER_NOT_FOUND;
  if (r.hashed_password().empty() || r.salt().empty() || r.iterations() == 0) {
    return kv::INVALID;
  }
  user->set_hashed_password(r.hashed_password());
  user->set_salt(r.salt());
  user->set_iterations(r.iterations());
  user->set_no_password(false);
  user->set_token_revision(state->revision() + 1);  // old tokens die
  return kv::OK;
}

kv::ErrorCode GrantRole(const kv::AuthUserGrantRoleRequest& r,
                        kv::AuthState* state, bool* changed) {
  kv::AuthUser* user = FindByName(state->mutable_users(), r.user());
  if (user == nullptr) return kv::USER_NOT_FOUND;
  if (r.role() != kRootRole && FindRole(*state, r.role()) == nullptr) {
    return kv::ROLE_NOT_FOUND;
  }
  auto* roles = user->mutable_roles();
  auto at = std::lower_bound(roles->begin(), roles->end(), r.role());
  if (at != roles->end() && *at == r.role()) return kv::OK;  // held: no-op
  const int pos = static_cast<int>(at - roles->begin());
  roles->Add(std::string(r.role()));
  for (int i = roles->size() - 1; i > pos; --i) roles->SwapElements(i - 1, i);
  *changed = true;
  return kv::OK;
}

kv::ErrorCode RevokeRole(const kv::AuthUserRevokeRoleRequest& r,
                         kv::AuthState* state) {
  if (state->enabled() && r.name() == kRootUser && r.role() == kRootRole) {
    return kv::INVALID_AUTH_MGMT;
  }
  kv::AuthUser* user = FindByName(state->mutable_users(), r.name());
  if (user == nullptr) return kv::USER_NOT_FOUND;
  auto* roles = user->mutable_roles();
  auto at = std::find(roles->begin(), roles->end(), r.role());
  if (at == roles->end()) return kv::ROLE_NOT_GRANTED;
  roles->erase(at);
  return kv::OK;
}

kv::ErrorCode RoleDelete(const kv::AuthRoleDeleteRequest& r,
                         kv::AuthState* state) {
  if (state->enabled() && r.role() == kRootRole) return kv::INVALID_AUTH_MGMT;
  if (FindRole(*state, r.role()) == nullptr) return kv::ROLE_NOT_FOUND;
  EraseByName(state->mutable_roles(), r.role());
  // As etcd: the role is revoked from every user that had it.
  for (kv::AuthUser& user : *state->mutable_users()) {
    auto* roles = user.mutable_roles();
    auto at = std::find(roles->begin(), roles->end(), r.role());
    if (at != roles->end()) roles->erase(at);
  }
  return kv::OK;
}

kv::ErrorCode GrantPermission(const kv::AuthRoleGrantPermissionRequest& r,
                              kv::AuthState* state) {
  kv::AuthRole* role = FindByName(state->mutable_roles(), r.name());
  if (role == nullptr) return kv::ROLE_NOT_FOUND;
  if (!r.has_perm()) return kv::PERMISSION_NOT_GIVEN;
  if (!Perm::Type_IsValid(r.perm().perm_type())) return kv::INVALID;
  auto* perms = role->mutable_perms();
  for (Perm& p : *perms) {
    if (p.key() == r.perm().key() && p.range_end() == r.perm().range_end()) {
      p.set_perm_type(r.perm().perm_type());  // replaced, as etcd does
      return kv::OK;
    }
  }
  *perms->Add() = r.perm();
  for (int i = perms->size() - 1;
       i > 0 && PermLess(perms->Get(i), perms->Get(i - 1)); --i) {
    perms->SwapElements(i - 1, i);
  }
  return kv::OK;
}

kv::ErrorCode RevokePermission(const kv::AuthRoleRevokePermissionRequest& r,
                               kv::AuthState* state) {
  kv::AuthRole* role = FindByName(state->mutable_roles(), r.role());
  if (role == nullptr) return kv::ROLE_NOT_FOUND;
  auto* perms = role->mutable_perms();
  for (int i = 0; i < perms->size(); ++i) {
    if (perms->Get(i).key() == r.key() &&
        perms->Get(i).range_end() == r.range_end()) {
      perms->erase(perms->begin() + i);
      return kv::OK;
    }
  }
  return kv::PERMISSION_NOT_GRANTED;
}

// Applies the command to *state; *changed tells whether it changed.
kv::ErrorCode Mutate(const kv::Command& command, kv::AuthState* state,
                     kv::CommandResult* result, bool* changed) {
  *changed = true;
  switch (command.op_case()) {
    case kv::Command::kAuthEnable: {
      result->mutable_auth_enable();
      if (state->enabled()) {
        *changed = false;  // etcd: already enabled is not an error
        return kv::OK;
      }
      const kv::AuthUser* root = FindUser(*state, kRootUser);
      if (root == nullptr) return kv::ROOT_USER_NOT_EXIST;
      if (!HasRootRole(*root)) return kv::ROOT_ROLE_NOT_EXIST;
      if (command.auth_enable().token_secret().size() < 16) return kv::INVALID;
      state->set_enabled(true);
      state->set_token_secret(command.auth_enable().token_secret());
      return kv::OK;
    }
    case kv::Command::kAuthDisable:
      result->mutable_auth_disable();
      if (!state->enabled()) {
        *changed = false;
        return kv::OK;
      }
      state->set_enabled(false);
      state->clear_token_secret();  // every token issued so far dies
      return kv::OK;
    case kv::Command::kAuthUserAdd:
      result->mutable_auth_user_add();
      return UserAdd(command.auth_user_add(), state);
    case kv::Command::kAuthUserDelete: {
      result->mutable_auth_user_delete();
      const std::string& name = command.auth_user_delete().name();
      if (state->enabled() && name == kRootUser) return kv::INVALID_AUTH_MGMT;
      if (FindUser(*state, name) == nullptr) return kv::USER_NOT_FOUND;
      EraseByName(state->mutable_users(), name);
      return kv::OK;
    }
    case kv::Command::kAuthUserChangePassword:
      result->mutable_auth_user_change_password();
      return ChangePassword(command.auth_user_change_password(), state);
    case kv::Command::kAuthUserGrantRole:
      result->mutable_auth_user_grant_role();
      *changed = false;
      return GrantRole(command.auth_user_grant_role(), state, changed);
    case kv::Command::kAuthUserRevokeRole:
      result->mutable_auth_user_revoke_role();
      return RevokeRole(command.auth_user_revoke_role(), state);
    case kv::Command::kAuthRoleAdd: {
      result->mutable_auth_role_add();
      const std::string& name = command.auth_role_add().name();
      if (name.empty()) return kv::ROLE_EMPTY;
      if (FindRole(*state, name) != nullptr) return kv::ROLE_ALREADY_EXISTS;
      kv::AuthRole role;
      role.set_name(name);
      InsertByName(state->mutable_roles(), std::move(role));
      return kv::OK;
    }
    case kv::Command::kAuthRoleDelete:
      result->mutable_auth_role_delete();
      return RoleDelete(command.auth_role_delete(), state);
    case kv::Command::kAuthRoleGrantPermission:
      result->mutable_auth_role_grant_permission();
      return GrantPermission(command.auth_role_grant_permission(), state);
    case kv::Command::kAuthRoleRevokePermission:
      result->mutable_auth_role_revoke_permission();
      return RevokePermission(command.auth_role_revoke_permission(), state);
    default:
      return kv::INVALID;
  }
}

}  // namespace

std::string AuthErrorMessage(kv::ErrorCode code) {
  switch (code) {
    case kv::PERMISSION_DENIED:
      return "etcdserver: permission denied";
    case kv::INVALID_AUTH_TOKEN:
      return "etcdserver: invalid auth token";
    case kv::AUTH_FAILED:
      return "etcdserver: authentication failed, invalid user ID or password";
    case kv::AUTH_NOT_ENABLED:
      return "etcdserver: authentication is not enabled";
    case kv::USER_NOT_FOUND:
      return "etcdserver: user name not found";
    case kv::USER_ALREADY_EXISTS:
      return "etcdserver: user name already exists";
    case kv::USER_EMPTY:
      return "etcdserver: user name is empty";
    case kv::ROLE_NOT_FOUND:
      return "etcdserver: role name not found";
    case kv::ROLE_ALREADY_EXISTS:
      return "etcdserver: role name already exists";
    case kv::ROLE_EMPTY:
      return "etcdserver: role name is empty";
    case kv::ROOT_USER_NOT_EXIST:
      return "etcdserver: root user does not exist";
    case kv::ROOT_ROLE_NOT_EXIST:
      return "etcdserver: root user does not have root role";
    case kv::PERMISSION_NOT_GRANTED:
      return "etcdserver: permission is not granted to the role";
    case kv::ROLE_NOT_GRANTED:
      return "etcdserver: role is not granted to the user";
    case kv::INVALID_AUTH_MGMT:
      return "etcdserver: invalid auth management";
    case kv::PERMISSION_NOT_GIVEN:
      return "etcdserver: permission not given";
    default:
      return "";
  }
}

bool IsAuthCommand(const kv::Command& command) {
  switch (command.op_case()) {
    case kv::Command::kAuthEnable:
    case kv::Command::kAuthDisable:
    case kv::Command::kAuthUserAdd:
    case kv::Command::kAuthUserDelete:
    case kv::Command::kAuthUserChangePassword:
    case kv::Command::kAuthUserGrantRole:
    case kv::Command::kAuthUserRevokeRole:
    case kv::Command::kAuthRoleAdd:
    case kv::Command::kAuthRoleDelete:
    case kv::Command::kAuthRoleGrantPermission:
    case kv::Command::kAuthRoleRevokePermission:
      return true;
    default:
      return false;
  }
}

kv::ErrorCode ApplyAuthCommand(const kv::Command& command, kv::AuthState* state,
                               kv::CommandResult* result) {
  kv::AuthState next = *state;
  bool changed = false;
  const kv::ErrorCode code = Mutate(command, &next, result, &changed);
  if (code != kv::OK) return code;
  if (changed) {
    next.set_revision(state->revision() + 1);
    *state = std::move(next);
  }
  return kv::OK;
}

const kv::AuthUser* FindUser(const kv::AuthState& state,
                             const std::string& name) {
  for (const kv::AuthUser& user : state.users()) {
    if (user.name() == name) return &user;
  }
  return nullptr;
}

const kv::AuthRole* FindRole(const kv::AuthState& state,
                             const std::string& name) {
  for (const kv::AuthRole& role : state.roles()) {
    if (role.name() == name) return &role;
  }
  return nullptr;
}

bool HasRootRole(const kv::AuthUser& user) {
  return std::find(user.roles().begin(), user.roles().end(), kRootRole) !=
         user.roles().end();
}

kv::ErrorCode AnswerAuthQuery(const kv::AuthState& state,
                              const kv::ClientRequest& request,
                              kv::ClientResponse* response) {
  switch (request.request_case()) {
    case kv::ClientRequest::kAuthStatus: {
      kv::AuthStatusResponse* status = response->mutable_auth_status();
      status->set_enabled(state.enabled());
      status->set_auth_revision(state.revision());
      return kv::OK;
    }
    case kv::ClientRequest::kAuthUserGet: {
      const kv::AuthUser* user =
          FindUser(state, request.auth_user_get().name());
      if (user == nullptr) return kv::USER_NOT_FOUND;
      *response->mutable_auth_user_get()->mutable_roles() = user->roles();
      return kv::OK;
    }
    case kv::ClientRequest::kAuthUserList: {
      kv::AuthUserListResponse* list = response->mutable_auth_user_list();
      for (const kv::AuthUser& user : state.users())
        list->add_users(user.name());
      return kv::OK;
    }
    case kv::ClientRequest::kAuthRoleGet: {
      const kv::AuthRole* role =
          FindRole(state, request.auth_role_get().role());
      if (role == nullptr) return kv::ROLE_NOT_FOUND;
      *response->mutable_auth_role_get()->mutable_perm() = role->perms();
      return kv::OK;
    }
    case kv::ClientRequest::kAuthRoleList: {
      kv::AuthRoleListResponse* list = response->mutable_auth_role_list();
      for (const kv::AuthRole& role : state.roles())
        list->add_roles(role.name());
      return kv::OK;
    }
    default:
      return kv::INVALID;
  }
}

AuthChecker::AuthChecker(std::shared_ptr<const kv::AuthState> state)
    : state_(std::move(state)) {}

bool AuthChecker::IsRoot(const std::string& user) const {
  const kv::AuthUser* u = FindUser(*state_, user);
  return u != nullptr && HasRootRole(*u);
}

namespace {

// etcd's interval of a range: [key, range_end), a point [key, key+"\0"),
// or [key, +inf) (end "") for range_end "\0".
void IntervalOf(const std::string& key, const std::string& range_end,
                std::string* start, std::string* end) {
  *start = key;
  if (range_end.empty()) {
    *end = key + std::string(1, '\0');
  } else if (range_end == std::string(1, '\0')) {
    end->clear();
  } else {
    *end = range_end;
  }
}

// a <= b for interval ends, "" being +inf.
bool EndAtMost(const std::string& a, const std::string& b) {
  if (b.empty()) return true;
  if (a.empty()) return false;
  return a <= b;
}

}  // namespace

const AuthChecker::Merged& AuthChecker::MergedFor(const std::string& user) {
  auto cached = cache_.find(user);
  if (cached != cache_.end()) return cached->second;
  std::vector<Interval> read;
  std::vector<Interval> write;
  if (const kv::AuthUser* u = FindUser(*state_, user)) {
    for (const std::string& role_name : u->roles()) {
      const kv::AuthRole* role = FindRole(*state_, role_name);
      if (role == nullptr) continue;
      for (const Perm& p : role->perms()) {
        Interval ivl;
        IntervalOf(p.key(), p.range_end(), &ivl.start, &ivl.end);
        if (!ivl.end.empty() && ivl.end <= ivl.start) continue;  // empty
        if (p.perm_type() == Perm::READ || p.perm_type() == Perm::READWRITE) {
          read.push_back(ivl);
        }
        if (p.perm_type() == Perm::WRITE || p.perm_type() == Perm::READWRITE) {
          write.push_back(ivl);
        }
      }
    }
  }
  auto merge = [](std::vector<Interval> v) {
    std::sort(v.begin(), v.end(), [](const Interval& a, const Interval& b) {
      return a.start < b.start;
    });
    std::vector<Interval> out;
    for (Interval& ivl : v) {
      if (!out.empty() &&
          (out.back().end.empty() || ivl.start <= out.back().end)) {
        if (!EndAtMost(ivl.end, out.back().end)) out.back().end = ivl.end;
      } else {
        out.push_back(std::move(ivl));
      }
    }
    return out;
  };
  Merged merged{merge(std::move(read)), merge(std::move(write))};
  return cache_.emplace(user, std::move(merged)).first->second;
}

bool AuthChecker::Permitted(const std::string& user, kv::Permission::Type type,
                            const std::string& key,
                            const std::string& range_end) {
  if (IsRoot(user)) return true;
  const Merged& merged = MergedFor(user);
  const std::vector<Interval>& have =
      type == Perm::READ ? merged.read : merged.write;
  std::string start;
  std::string end;
  IntervalOf(key, range_end, &start, &end);
  // An empty range (range_end <= key) asks for no key; as etcd's interval
  // tree would not, allow it only where the key itself is allowed.
  if (!end.empty() && end <= start) end = key + std::string(1, '\0');
  // The one merged interval that could hold `start`: the last one at or
  // before it.
  auto after = std::upper_bound(
      have.begin(), have.end(), start,
      [](const std::string& s, const Interval& ivl) { return s < ivl.start; });
  if (after == have.begin()) return false;
  const Interval& ivl = *std::prev(after);
  if (!ivl.end.empty() && start >= ivl.end) return false;
  return EndAtMost(end, ivl.end);
}

}  // namespace raftkv::storage
