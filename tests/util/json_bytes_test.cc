// Tests of util/json_bytes.h: the UTF-8 check (checked against
// nlohmann-json's own decoder over every short byte sequence), base64 (RFC
// 4648's vectors, every byte, only canonical text decoded) and the
// key/key_base64 rule. Must never depend on files or the network.
#include "util/json_bytes.h"

#include <gtest/gtest.h>

#include <string>

namespace raftkv {
namespace {

using nlohmann::ordered_json;

std::string Bytes(std::initializer_list<unsigned char> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

TEST(Utf8Test, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii ~"));
  EXPECT_TRUE(IsValidUtf8(std::string("nul \0 inside", 12)));
  EXPECT_TRUE(IsValidUtf8("\x01\x1f\x7f"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9"));               // U+00E9
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));              // U+20AC
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));          // U+1F600
  EXPECT_TRUE(IsValidUtf8("\xc2\x80\xdf\xbf"));          // U+0080, U+07FF
  EXPECT_TRUE(IsValidUtf8("\xe0\xa0\x80\xef\xbf\xbf"));  // U+0800, U+FFFF
  EXPECT_TRUE(IsValidUtf8("\xed\x9f\xbf\xee\x80\x80"));  // around surrogates
  EXPECT_TRUE(IsValidUtf8("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"));  // U+10000..
}

TEST(Utf8Test, RejectsOverlongForms) {
  EXPECT_FALSE(IsValidUtf8("\xc0\x80"));  // NUL in two bytes
  EXPECT_FALSE(IsValidUtf8("\xc1\xbf"));
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xe0\x9f\xbf"));
  EXPECT_FALSE(IsValidUtf8("\xf0\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xf0\x8f\xbf\xbf"));
}

TEST(Utf8Test, RejectsSurrogatesAndCodePointsAboveTheLast) {
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));              // U+D800
  EXPECT_FALSE(IsValidUtf8("\xed\xbf\xbf"));              // U+DFFF
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\xbd\xed\xb8\x80"));  // CESU-8 pair
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));          // U+110000
  EXPECT_FALSE(IsValidUtf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\xfe"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
}

TEST(Utf8Test, RejectsTruncatedAndStrayBytes) {
  EXPECT_FALSE(IsValidUtf8("\xc3"));
  EXPECT_FALSE(IsValidUtf8("caf\xc3"));
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));
  EXPECT_FALSE(IsValidUtf8("\xf0\x9f\x98"));
  EXPECT_FALSE(
      IsValidUtf8("\xe2\x82"
                  "A"));  // cut short by ASCII
  EXPECT_FALSE(IsValidUtf8(Bytes({0xf0, 0x9f, 0x00, 0x80})));
  EXPECT_FALSE(IsValidUtf8("\x80"));  // continuation without a lead
  EXPECT_FALSE(IsValidUtf8("a\xbf"));
  EXPECT_FALSE(IsValidUtf8("\xc3\xa9\xa9"));
}

// nlohmann-json must take exactly what IsValidUtf8 accepts, or PutBytes
// could hand dump() bytes it replaces. A dump that replaces invalid bytes
// and one that drops them agree exactly when there are none.
bool NlohmannTakes(const std::string& s) {
  const ordered_json j = s;
  return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace) ==
         j.dump(-1, ' ', false, ordered_json::error_handler_t::ignore);
}

TEST(Utf8Test, AgreesWithNlohmannOnEveryShortSequence) {
  std::string s;
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      s = Bytes({static_cast<unsigned char>(a), static_cast<unsigned char>(b)});
      ASSERT_EQ(IsValidUtf8(s), NlohmannTakes(s)) << a << " " << b;
    }
  }
  // Three-byte sequences with a three- or four-byte lead (shorter leads are
  // covered above, one byte at a time).
  for (int a = 0xe0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c = 0x70; c < 0xd0; ++c) {
        s = Bytes({static_cast<unsigned char>(a), static_cast<unsigned char>(b),
                   static_cast<unsigned char>(c)});
        ASSERT_EQ(IsValidUtf8(s), NlohmannTakes(s))
            << a << " " << b << " " << c;
      }
    }
  }
  for (int a = 0xf0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c : {0x41, 0x80, 0xbf, 0xc0}) {
        for (int d : {0x41, 0x80, 0xbf, 0xc0}) {
          s = Bytes(
              {static_cast<unsigned char>(a), static_cast<unsigned char>(b),
               static_cast<unsigned char>(c), static_cast<unsigned char>(d)});
          ASSERT_EQ(IsValidUtf8(s), NlohmannTakes(s)) << a << " " << b;
        }
      }
    }
  }
}

TEST(Base64Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(Bytes({0x80})), "gA==");
  EXPECT_EQ(Base64Encode(Bytes({0xff, 0xff})), "//8=");
  EXPECT_EQ(Base64Encode(Bytes({0xfb, 0xff, 0x00})), "+/8A");
  EXPECT_EQ(Base64Encode(std::string("\0", 1)), "AA==");
}

TEST(Base64Test, EveryByteAndEveryPaddingRoundTrips) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (size_t length = 0; length <= all.size(); ++length) {
    const std::string bytes = all.substr(all.size() - length);
    const std::string text = Base64Encode(bytes);
    EXPECT_EQ(text.size() % 4, 0u);
    EXPECT_EQ(Base64Decode(text), bytes) << text;
  }
}

TEST(Base64Test, DecodesOnlyCanonicalText) {
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_EQ(Base64Decode("Zm9vYmE="), "fooba");
  for (const char* bad : {
           "Zg",           // padding missing
           "Zg=",          // padding short
           "Zg===",        // padding long
           "Z===",         // a lone digit cannot hold a byte
           "====",         // nothing but padding
           "Zg==Zg==",     // padding in the middle
           "Zm=v",         // '=' between digits
           "Zh==",         // unused bits set (canonical: "Zg==")
           "Zm9=",         // unused bits set (canonical: "Zm8=")
           "Zm9v\n",       // whitespace
           "Zm 9",         // whitespace
           "-_8=",         // URL-safe alphabet
           "Zm9\xc3\xa9",  // not ASCII
       }) {
    EXPECT_EQ(Base64Decode(bad), std::nullopt) << bad;
  }
}

TEST(JsonBytesTest, TextGoesUnderItsNameOtherBytesUnderName_base64) {
  ordered_json j = ordered_json::object();
  PutBytes(j, "key", "caf\xc3\xa9");
  PutBytes(j, "value", Bytes({'a', 0x80, 0xff, 0x00, 'z'}));
  PutBytes(j, "empty", "");
  EXPECT_EQ(DumpJson(j),
            "{\"key\":\"caf\xc3\xa9\",\"value_base64\":\"YYD/AHo=\","
            "\"empty\":\"\"}");
  EXPECT_FALSE(j.contains("key_base64"));
  EXPECT_FALSE(j.contains("value"));
  EXPECT_EQ(Base64Decode(j["value_base64"].get<std::string>()),
            Bytes({'a', 0x80, 0xff, 0x00, 'z'}));
}

TEST(JsonBytesTest, ValidTextWithNulAndControlsStaysTextAndRoundTrips) {
  const std::string text("a\0b\x01\n\"\\", 7);
  ordered_json j = ordered_json::object();
  PutBytes(j, "key", text);
  const std::string dumped = DumpJson(j);
  EXPECT_EQ(dumped, R"({"key":"a\u0000b\u0001\n\"\\"})");
  EXPECT_EQ(ordered_json::parse(dumped)["key"].get<std::string>(), text);
}

TEST(JsonBytesTest, DumpNeverThrowsOnInvalidText) {
  ordered_json j = {{"error", "bad \xff byte"}};
  EXPECT_EQ(DumpJson(j), "{\"error\":\"bad \xef\xbf\xbd byte\"}");
  nlohmann::json plain = {{"reason", "\xc3"}};
  EXPECT_EQ(DumpJson(plain, 2), "{\n  \"reason\": \"\xef\xbf\xbd\"\n}");
}

}  // namespace
}  // namespace raftkv
