// Byte strings in JSON output (see json_bytes.h).
#include "util/json_bytes.h"

#include <cstdint>

namespace raftkv {
namespace {

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The 6-bit value of a base64 character, or -1.
int Base64Digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool InRange(uint8_t byte, uint8_t low, uint8_t high) {
  return byte >= low && byte <= high;
}

}  // namespace

bool IsValidUtf8(std::string_view bytes) {
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const auto lead = static_cast<uint8_t>(bytes[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    // The sequence length and the range of its second byte (Unicode 15,
    // table 3-7): the narrow ranges exclude overlong forms (E0, F0),
    // surrogates (ED) and code points above U+10FFFF (F4).
    size_t length = 0;
    uint8_t low = 0x80, high = 0xBF;
    if (InRange(lead, 0xC2, 0xDF)) {
      length = 2;
    } else if (InRange(lead, 0xE0, 0xEF)) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;
      if (lead == 0xED) high = 0x9F;
    } else if (InRange(lead, 0xF0, 0xF4)) {
      length = 4;
      if (lead == 0xF0) low = 0x90;
      if (lead == 0xF4) high = 0x8F;
    } else {
      return false;  // a continuation byte, C0, C1 or F5..FF
    }
    if (n - i < length) return false;
    if (!InRange(static_cast<uint8_t>(bytes[i + 1]), low, high)) return false;
    for (size_t k = 2; k < length; ++k) {
      if (!InRange(static_cast<uint8_t>(bytes[i + k]), 0x80, 0xBF)) {
        return false;
      }
    }
    i += length;
  }
  return true;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = static_cast<uint8_t>(bytes[i]) << 16 |
                       static_cast<uint8_t>(bytes[i + 1]) << 8 |
                       static_cast<uint8_t>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) {
      out.push_back(kBase64Alphabet[(v >> shift) & 0x3F]);
    }
  }
  const size_t rest = bytes.size() - i;  // 0, 1 or 2
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out.push_back(kBase64Alphabet[(v >> 18) & 0x3F]);
    out.push_back(kBase64Alphabet[(v >> 12) & 0x3F]);
    out.push_back(rest == 2 ? kBase64Alphabet[(v >> 6) & 0x3F] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') {
    padding = text[text.size() - 2] == '=' ? 2 : 1;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const size_t digits = last ? 4 - padding : 4;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int d = k < digits ? Base64Digit(text[i + k]) : 0;
      if (d < 0) return std::nullopt;  // also '=' before the end
      v = v << 6 | static_cast<uint32_t>(d);
    }
    const size_t produced = digits - 1;  // 4 digits -> 3 bytes, 3 -> 2, 2 -> 1
    // Canonical form only: the bits the padding leaves unused must be zero.
    if (produced < 3 && (v & ((1u << (8 * (3 - produced))) - 1)) != 0) {
      return std::nullopt;
    }
    for (size_t k = 0; k < produced; ++k) {
      out.push_back(static_cast<char>((v >> (16 - 8 * k)) & 0xFF));
    }
  }
  return out;
}

void PutBytes(nlohmann::ordered_json& object, const std::string& name,
              std::string_view bytes) {
  if (IsValidUtf8(bytes)) {
    object[name] = std::string(bytes);
  } else {
    object[name + "_base64"] = Base64Encode(bytes);
  }
}

std::string DumpJson(const nlohmann::ordered_json& json, int indent) {
  return json.dump(indent, ' ', false,
                   nlohmann::ordered_json::error_handler_t::replace);
}

std::string DumpJson(const nlohmann::json& json, int indent) {
  return json.dump(indent, ' ', false,
                   nlohmann::json::error_handler_t::replace);
}

}  // namespace raftkv
