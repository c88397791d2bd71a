// Key encoding helpers for storage/: fixed-width big-endian integers, so
// that RocksDB's bytewise order equals numeric order (log indexes, client
// ids, sequences). Pure functions; must never allocate more than the key.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace raftkv::storage {

inline void PutBigEndian64(std::string* dst, uint64_t value) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  dst->append(buf, sizeof(buf));
}

// Reads 8 bytes at `src`; the caller checks the length.
inline uint64_t GetBigEndian64(const char* src) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) {
    value = (value << 8) | static_cast<unsigned char>(src[i]);
  }
  return value;
}

// A log index read back from storage must be below this bound (Corruption
// otherwise), so that index + 1 never overflows. No log reaches it.
inline constexpr uint64_t kIndexLimit = UINT64_MAX;

// Raft log key: the entry's index, 8 bytes big-endian.
inline std::string LogKey(uint64_t index) {
  std::string key;
  PutBigEndian64(&key, index);
  return key;
}

// Decodes a log key; false if it is not 8 bytes long.
inline bool ParseLogKey(std::string_view key, uint64_t* index) {
  if (key.size() != 8) return false;
  *index = GetBigEndian64(key.data());
  return true;
}

// Session header key: the client id, 8 bytes big-endian.
inline std::string SessionKey(uint64_t client_id) {
  std::string key;
  PutBigEndian64(&key, client_id);
  return key;
}

// Remembered result key: client id then sequence, 16 bytes big-endian, so
// one client's results sort right after its header, in sequence order.
inline std::string SessionResultKey(uint64_t client_id, uint64_t sequence) {
  std::string key = SessionKey(client_id);
  PutBigEndian64(&key, sequence);
  return key;
}

}  // namespace raftkv::storage
