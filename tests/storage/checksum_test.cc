// Tests of Crc32c, the snapshot image's checksum: the standard CRC32C
// values (RFC 3720's test vectors), continuation across pieces, and the
// CPU's CRC32 instruction path giving exactly the table's value for every
// length and alignment (a node with it and one without must agree).
#include "storage/checksum.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace raftkv::storage {
namespace {

TEST(Crc32cTest, MatchesTheStandardTestVectors) {
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending.push_back(static_cast<char>(i));
    descending.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(descending), 0x113FDB5Cu);
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  for (const auto& data : {std::string(32, '\0'), ascending}) {
    EXPECT_EQ(Crc32cPortable(data), Crc32c(data));
  }
}

TEST(Crc32cTest, ContinuesAcrossPieces) {
  const std::string data = "the quick brown fox jumps over the lazy dog";
  for (size_t cut = 0; cut <= data.size(); ++cut) {
    const std::string_view a(data.data(), cut);
    const std::string_view b(data.data() + cut, data.size() - cut);
    EXPECT_EQ(Crc32c(b, Crc32c(a)), Crc32c(data)) << "cut at " << cut;
  }
}

TEST(Crc32cTest, EveryLengthAndAlignmentMatchesTheTable) {
  std::mt19937 random(42);
  std::string data(4096 + 16, '\0');
  for (char& c : data) c = static_cast<char>(random());
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t length : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096}) {
      const std::string_view piece(data.data() + offset, length);
      const uint32_t seed = static_cast<uint32_t>(random());
      ASSERT_EQ(Crc32c(piece, seed), Crc32cPortable(piece, seed))
          << "offset " << offset << " length " << length;
    }
  }
}

}  // namespace
}  // namespace raftkv::storage
