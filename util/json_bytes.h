// Byte strings in JSON output. raftkv's keys and values are arbitrary bytes;
// a JSON string is Unicode text, and nlohmann-json's dump() throws on bytes
// that are not UTF-8. Every JSON the project writes (raftkvctl --json, the
// Jepsen history and results.json, raftkv-bench --json, /health) goes
// through this file, with one rule for keys and values:
//
//   "key": "<text>"            when the bytes are valid UTF-8 (RFC 3629)
//   "key_base64": "<base64>"   otherwise (RFC 4648, standard alphabet,
//                              padded), as etcd's JSON carries bytes
//
// and the same for "value" (or any field name). A reader takes whichever of
// the two it finds, so it always gets the exact bytes back.
//
// Must never throw, and never lose or alter a byte of a key or value. Text
// that is not a key or value (messages, addresses) goes through DumpJson,
// which replaces invalid UTF-8 with U+FFFD instead of throwing.
//
// The UTF-8 check and base64 are written here (about 90 lines, tested in
// tests/util/json_bytes_test.cc) rather than taken from a linked library:
// protobuf's Base64Escape and UTF-8 check are in its internal stubs/ headers
// (gone from later protobuf releases) and accept non-canonical base64;
// OpenSSL is not linked by these programs; nlohmann-json keeps its decoder
// private.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace raftkv {

// Whether `bytes` is well-formed UTF-8: no overlong forms, no surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF, no truncated sequence. NUL and
// other control characters are valid (JSON escapes them).
bool IsValidUtf8(std::string_view bytes);

// RFC 4648 base64, standard alphabet, '=' padded.
std::string Base64Encode(std::string_view bytes);
// The bytes of canonical base64 as Base64Encode writes it; nullopt for
// anything else (wrong length, other characters, misplaced padding, unused
// bits set).
std::optional<std::string> Base64Decode(std::string_view text);

// Sets object[name] to `bytes` if they are valid UTF-8, else
// object[name + "_base64"] to their base64 (the rule above).
void PutBytes(nlohmann::ordered_json& object, const std::string& name,
              std::string_view bytes);

// dump() that cannot throw: compact with indent -1, else pretty. Invalid
// UTF-8 in text fields becomes U+FFFD (keys and values go through PutBytes).
std::string DumpJson(const nlohmann::ordered_json& json, int indent = -1);
std::string DumpJson(const nlohmann::json& json, int indent = -1);

}  // namespace raftkv
