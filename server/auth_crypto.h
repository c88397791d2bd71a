// The cryptography of authentication (OpenSSL libcrypto): password hashes
// (PBKDF2-HMAC-SHA256 with a random salt) and auth tokens.
//
// A token is valid on every member: it is the user name, the auth revision
// at which it was issued and its expiry (wall clock, ms since the epoch),
// signed with HMAC-SHA256 under the secret of the replicated auth state
// (made at `auth enable`). Text form: hex(payload) "." hex(mac).
//
// Must never: run HashPassword or CheckPassword on the event loop (each
// costs tens of milliseconds by design; server/password_worker.h runs
// them), compare secrets in variable time, or accept a token whose MAC
// does not verify.
// Thread-safety: plain functions; safe from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "client/kv.pb.h"

namespace raftkv::server {

// PBKDF2 iterations of new password hashes (about 40 ms on this machine's
// cores; etcd's bcrypt cost 10 is of that order).
inline constexpr uint32_t kPasswordIterations = 100000;

// `n` random bytes from OpenSSL's CSPRNG (CHECK-fails if it has none).
std::string RandomBytes(size_t n);

struct PasswordHash {
  std::string hashed_password;  // 32 bytes
  std::string salt;             // 16 bytes
  uint32_t iterations = 0;
};
PasswordHash HashPassword(const std::string& password, uint32_t iterations);
// Whether `password` is the user's (false for a user without a password).
bool CheckPassword(const std::string& password, const kv::AuthUser& user);

struct TokenClaims {
  std::string user;
  uint64_t auth_revision = 0;  // the auth state's revision at issue
  uint64_t expires_at_ms = 0;  // wall clock
};
std::string SignToken(const std::string& secret, const TokenClaims& claims);
// False unless `token` is well formed and signed with `secret`; fills
// *claims then (expiry and user are for the caller to check).
bool VerifyToken(const std::string& secret, const std::string& token,
                 TokenClaims* claims);

}  // namespace raftkv::server
