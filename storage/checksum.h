// CRC32C (Castagnoli) of byte strings, for the snapshot image's checksum.
// Software table implementation, deterministic on every platform. Must
// never depend on host byte order (the image travels between nodes).
#pragma once

#include <cstdint>
#include <string_view>

namespace raftkv::storage {

// CRC32C of `data`, continuing from `crc` (0 for a fresh checksum).
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

}  // namespace raftkv::storage
