// Password hashes and signed tokens (see auth_crypto.h). Never logs a
// password, a hash or a secret.
#include "server/auth_crypto.h"

#include <glog/logging.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace raftkv::server {
namespace {

constexpr size_t kHashBytes = 32;
constexpr size_t kSaltBytes = 16;
constexpr size_t kMaxTokenBytes = 4096;

std::string Pbkdf2(const std::string& password, const std::string& salt,
                   uint32_t iterations) {
  std::string out(kHashBytes, '\0');
  CHECK_EQ(PKCS5_PBKDF2_HMAC(
               password.data(), static_cast<int>(password.size()),
               reinterpret_cast<const unsigned char*>(salt.data()),
               static_cast<int>(salt.size()), static_cast<int>(iterations),
               EVP_sha256(), static_cast<int>(out.size()),
               reinterpret_cast<unsigned char*>(out.data())),
           1)
      << "PBKDF2";
  return out;
}

std::string Mac(const std::string& secret, const std::string& payload) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  CHECK(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(payload.data()),
             payload.size(), mac, &len) != nullptr)
      << "HMAC";
  return std::string(reinterpret_cast<char*>(mac), len);
}

std::string Hex(const std::string& bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

bool Unhex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = digit(hex[i]);
    const int lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

bool ParseUint(std::string_view text, uint64_t* value) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return false;  // overflow
    v = next;
  }
  *value = v;
  return true;
}

}  // namespace

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  CHECK_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                      static_cast<int>(n)),
           1)
      << "RAND_bytes";
  return out;
}

PasswordHash HashPassword(const std::string& password, uint32_t iterations) {
  PasswordHash hash;
  hash.salt = RandomBytes(kSaltBytes);
  hash.iterations = iterations;
  hash.hashed_password = Pbkdf2(password, hash.salt, iterations);
  return hash;
}

bool CheckPassword(const std::string& password, const kv::AuthUser& user) {
  if (user.no_password() || user.hashed_password().size() != kHashBytes ||
      user.iterations() == 0) {
    return false;
  }
  const std::string hash = Pbkdf2(password, user.salt(), user.iterations());
  return CRYPTO_memcmp(hash.data(), user.hashed_password().data(),
                       kHashBytes) == 0;
}

std::string SignToken(const std::string& secret, const TokenClaims& claims) {
  // The user name last: it may hold any byte, ':' included.
  const std::string payload = std::to_string(claims.expires_at_ms) + ":" +
                              std::to_string(claims.auth_revision) + ":" +
                              claims.user;
  return Hex(payload) + "." + Hex(Mac(secret, payload));
}

bool VerifyToken(const std::string& secret, const std::string& token,
                 TokenClaims* claims) {
  if (secret.empty() || token.size() > kMaxTokenBytes) return false;
  const size_t dot = token.find('.');
  if (dot == std::string::npos) return false;
  std::string payload;
  std::string mac;
  if (!Unhex(std::string_view(token).substr(0, dot), &payload) ||
      !Unhex(std::string_view(token).substr(dot + 1), &mac)) {
    return false;
  }
  const std::string expected = Mac(secret, payload);
  if (mac.size() != expected.size() ||
      CRYPTO_memcmp(mac.data(), expected.data(), mac.size()) != 0) {
    return false;
  }
  const size_t first = payload.find(':');
  const size_t second =
      first == std::string::npos ? first : payload.find(':', first + 1);
  if (second == std::string::npos) return false;
  TokenClaims parsed;
  if (!ParseUint(std::string_view(payload).substr(0, first),
                 &parsed.expires_at_ms) ||
      !ParseUint(
          std::string_view(payload).substr(first + 1, second - first - 1),
          &parsed.auth_revision)) {
    return false;
  }
  parsed.user = payload.substr(second + 1);
  if (parsed.user.empty()) return false;
  *claims = std::move(parsed);
  return true;
}

}  // namespace raftkv::server
