// CRC32C (Castagnoli) of byte strings, for the snapshot image's checksums.
// Uses the CPU's CRC32 instruction (SSE 4.2) when it has one, else a
// table; both give the same value on every platform. Must never depend on
// host byte order (the image travels between nodes).
#pragma once

#include <cstdint>
#include <string_view>

namespace raftkv::storage {

// CRC32C of `data`, continuing from `crc` (0 for a fresh checksum):
// Crc32c(b, Crc32c(a)) == Crc32c(a + b).
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

// The table implementation alone, which Crc32c falls back to (exposed so
// tests can compare the two).
uint32_t Crc32cPortable(std::string_view data, uint32_t crc = 0);

}  // namespace raftkv::storage
