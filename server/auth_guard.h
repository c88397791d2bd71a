// AuthGuard: authentication and authorisation of client requests, on the
// event loop, against this member's copy of the replicated auth state
// (storage/auth.h). While authentication is enabled, every request but
// status, auth_status, authenticate and register_client needs a valid
// token, and what it touches needs a permission, as etcd 3.4 decides:
//   range, watch_create                 READ on the range
//   put / delete_range                  WRITE on the key / range (and READ
//                                       with prev_kv)
//   txn                                 READ on every compare's key and
//                                       every range op, WRITE (READ too
//                                       with prev_kv) on every put and
//                                       delete, in both branches
//   lease grant/revoke/keep-alive/ttl,  any user (a revoke, and a put with
//   watch cancel/progress, member_list  a lease, also need WRITE on the
//                                       lease's keys: the state machine
//                                       checks those at apply)
//   compact, member changes, transfer   role root
//   leader, snapshot_save, every auth
//   and user/role request
// Every denial is logged (WARNING: user, operation, key range), at most
// `max_denials_logged_per_second` a second; the rest are counted in the
// next line logged.
//
// Cheap by construction: no disk, no password hashing (password_worker.h);
// a token is verified once (HMAC-SHA256) and cached until the auth state
// changes; each user's permissions are merged once per auth state.
//
// Must never: accept a token that is expired, not signed with the current
// secret, of a user that no longer exists or was re-created or had its
// password changed since; or allow a key range that the user's current
// roles do not cover.
// Thread-safety: the loop's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "client/kv.pb.h"
#include "server/auth_crypto.h"
#include "storage/auth.h"

namespace raftkv::server {

struct AuthGuardOptions {
  // etcd's simple-token TTL.
  std::chrono::milliseconds token_ttl{5 * 60 * 1000};
  size_t max_cached_tokens = 10000;
  int max_denials_logged_per_second = 10;
};

class AuthGuard {
 public:
  AuthGuard(uint64_t node_id, AuthGuardOptions options = AuthGuardOptions());

  // Adopts the auth state as applied through log index `index`, unless
  // one applied later was adopted already (results may arrive out of
  // order around a snapshot install).
  void SetState(std::shared_ptr<const kv::AuthState> state, uint64_t index);
  const kv::AuthState& state() const { return checker_->state(); }
  bool enabled() const { return state().enabled(); }

  // kv::OK, with *user the authenticated user ("" while authentication is
  // disabled or for requests that need no token), or the error to answer
  // (USER_EMPTY without a token, as etcd; INVALID_AUTH_TOKEN;
  // PERMISSION_DENIED; logged). `now_ms`: wall
  // clock.
  kv::ErrorCode Authorize(const kv::ClientRequest& request, uint64_t now_ms,
                          std::string* user);
  // Authorize's two halves: the token (kv::OK with *user, "" when none is
  // needed), then what `user` may do. ClientRequests checks the second
  // where the state is current enough: writes on the leader, linearizable
  // reads once their read index is applied.
  kv::ErrorCode Authenticate(const kv::ClientRequest& request, uint64_t now_ms,
                             std::string* user);
  kv::ErrorCode Permit(const kv::ClientRequest& request,
                       const std::string& user);
  // The user a token names, if it is valid at `now_ms`.
  kv::ErrorCode CheckToken(const std::string& token, uint64_t now_ms,
                           std::string* user);
  // A token for `user` (whose password was checked), valid for token_ttl.
  std::string IssueToken(const std::string& user, uint64_t now_ms) const;
  // Logs one denial (rate-limited): also for denials found elsewhere
  // (the state machine's lease checks).
  void LogDenial(const std::string& user, const std::string& what,
                 kv::ErrorCode code);

  uint64_t denials() const { return denials_; }
  uint64_t denials_logged() const { return denials_logged_; }

 private:
  // The permission `request` needs, for an authenticated `user`.
  kv::ErrorCode CheckPermissions(const kv::ClientRequest& request,
                                 const std::string& user, std::string* what);

  const uint64_t node_id_;
  const AuthGuardOptions options_;
  std::unique_ptr<storage::AuthChecker> checker_;
  uint64_t state_index_ = 0;
  std::map<std::string, TokenClaims> tokens_;  // verified, this state
  uint64_t denials_ = 0;
  uint64_t denials_logged_ = 0;
  // Denial log rate limit: the current one-second window.
  std::chrono::steady_clock::time_point window_start_;
  int logged_in_window_ = 0;
  uint64_t not_logged_ = 0;
};

}  // namespace raftkv::server
