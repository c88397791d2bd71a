#include "server/cluster_identity.h"

#include <cstdio>
#include <cstring>

#include "storage/coding.h"

namespace raftkv::server {
namespace {

constexpr char kHelloMagic[] = "RKVPEER1";
constexpr char kRemovedMagic[] = "RKVGONE1";
constexpr size_t kHelloMagicSize = 8;
constexpr size_t kHelloSize = 1 + kHelloMagicSize + 8 + 8;

// FNV-1a, 64 bits: stable across builds and machines (std::hash is not).
uint64_t Fnv1a64(const std::string& bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace

uint64_t BootstrapClusterId(
    const std::string& token,
    const std::map<uint64_t, std::string>& peer_addresses) {
  std::string canonical = token;
  for (const auto& [id, address] : peer_addresses) {  // ordered by id
    canonical += "\n" + std::to_string(id) + "=" + address;
  }
  const uint64_t id = Fnv1a64(canonical);
  return id == 0 ? 1 : id;
}

std::string ClusterIdText(uint64_t cluster_id) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx",
                static_cast<unsigned long long>(cluster_id));
  return text;
}

namespace {

// A zero byte, the 8-byte magic, two 8-byte big-endian ids.
std::string EncodeTwoIds(const char* magic, uint64_t a, uint64_t b) {
  std::string frame(1, '\0');
  frame.append(magic, kHelloMagicSize);
  storage::PutBigEndian64(&frame, a);
  storage::PutBigEndian64(&frame, b);
  return frame;
}

// Decodes the fixed part of a frame that may carry `max_extra` more bytes.
bool DecodeTwoIds(const char* magic, const std::string& payload, uint64_t* a,
                  uint64_t* b, size_t max_extra = 0) {
  if (payload.size() < kHelloSize || payload.size() > kHelloSize + max_extra ||
      payload[0] != '\0' ||
      std::memcmp(payload.data() + 1, magic, kHelloMagicSize) != 0) {
    return false;
  }
  *a = storage::GetBigEndian64(payload.data() + 1 + kHelloMagicSize);
  *b = storage::GetBigEndian64(payload.data() + 1 + kHelloMagicSize + 8);
  return true;
}

}  // namespace

std::string EncodePeerHello(uint64_t cluster_id, uint64_t from,
                            const std::string& address) {
  return EncodeTwoIds(kHelloMagic, cluster_id, from) +
         address.substr(0, kMaxHelloAddress);
}

bool DecodePeerHello(const std::string& payload, uint64_t* cluster_id,
                     uint64_t* from, std::string* address) {
  if (!DecodeTwoIds(kHelloMagic, payload, cluster_id, from, kMaxHelloAddress)) {
    return false;
  }
  *address = payload.substr(kHelloSize);
  return true;
}

std::string EncodePeerRemoved(uint64_t cluster_id, uint64_t node) {
  return EncodeTwoIds(kRemovedMagic, cluster_id, node);
}

bool DecodePeerRemoved(const std::string& payload, uint64_t* cluster_id,
                       uint64_t* node) {
  return DecodeTwoIds(kRemovedMagic, payload, cluster_id, node);
}

}  // namespace raftkv::server
