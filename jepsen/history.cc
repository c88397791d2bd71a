// JSON-lines (de)serialisation of a Jepsen-style history (see history.h).
//
// A small parser for exactly the flat objects ToJsonLine writes: fields
// process (integer >= 0 or "nemesis"), type, f, key, value (string, null or
// [string|null, string|null]) and time (integer). It must never accept a line
// it cannot represent faithfully (unknown or repeated fields, fractions,
// trailing garbage): those are InvalidArgument errors naming the line.
#include "jepsen/history.h"

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>

namespace raftkv::jepsen {
namespace {

constexpr size_t kMaxQuotedLineChars = 200;

// The line as quoted in error messages: shortened when very long.
std::string Excerpt(const std::string& line) {
  if (line.size() <= kMaxQuotedLineChars) return line;
  return line.substr(0, kMaxQuotedLineChars) + "...";
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// A JSON value of the history format: null, a string, an integer, or an
// array of two (string or null).
struct Value {
  enum class Kind { kNull, kString, kInteger, kPair } kind = Kind::kNull;
  std::string str;
  int64_t integer = 0;
  std::optional<std::string> first, second;  // kPair
};

// Recursive-descent parser over one line. Every method returns false after
// recording the first error in `error_`.
class LineParser {
 public:
  explicit LineParser(const std::string& line) : s_(line) {}

  StatusOr<Event> Parse();

 private:
  bool Fail(const std::string& reason) {
    if (error_.empty()) {
      error_ = reason + " at column " + std::to_string(pos_ + 1);
    }
    return false;
  }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' ||
                                s_[pos_] == '\r' || s_[pos_] == '\n')) {
      ++pos_;
    }
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Expect(char c) {
    if (Consume(c)) return true;
    return Fail(std::string("expected '") + c + "'");
  }
  bool ParseHex4(uint32_t* out);
  bool ParseString(std::string* out);
  bool ParseInteger(int64_t* out);
  bool ParseNullableString(std::optional<std::string>* out);
  bool ParseValue(Value* out);
  bool ApplyField(const std::string& name, const Value& v, Event* event);

  const std::string& s_;
  size_t pos_ = 0;
  std::string error_;
};

bool LineParser::ParseHex4(uint32_t* out) {
  if (pos_ + 4 > s_.size()) return Fail("truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) {
    char c = s_[pos_++];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= static_cast<uint32_t>(c - 'A' + 10);
    } else {
      --pos_;
      return Fail("bad hex digit in \\u escape");
    }
  }
  *out = v;
  return true;
}

bool LineParser::ParseString(std::string* out) {
  SkipSpace();
  if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a string");
  ++pos_;
  out->clear();
  while (true) {
    if (pos_ >= s_.size()) return Fail("unterminated string");
    char c = s_[pos_];
    if (c == '"') {
      ++pos_;
      return true;
    }
    if (static_cast<unsigned char>(c) < 0x20) {
      return Fail("raw control character in string");
    }
    if (c != '\\') {
      out->push_back(c);
      ++pos_;
      continue;
    }
    ++pos_;
    if (pos_ >= s_.size()) return Fail("unterminated escape");
    char e = s_[pos_++];
    switch (e) {
      case '"':
      case '\\':
      case '/':
        out->push_back(e);
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        uint32_t cp = 0;
        if (!ParseHex4(&cp)) return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("lone low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low = 0;
          if (s_.compare(pos_, 2, "\\u") != 0) {
            return Fail("high surrogate without its low half");
          }
          pos_ += 2;
          if (!ParseHex4(&low)) return false;
          if (low < 0xDC00 || low > 0xDFFF) {
            return Fail("high surrogate without its low half");
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        AppendUtf8(cp, out);
        break;
      }
      default:
        --pos_;
        return Fail(std::string("unknown escape '\\") + e + "'");
    }
  }
}

bool LineParser::ParseInteger(int64_t* out) {
  SkipSpace();
  bool negative = false;
  if (pos_ < s_.size() && s_[pos_] == '-') {
    negative = true;
    ++pos_;
  }
  size_t start = pos_;
  // Accumulate as a negative number so INT64_MIN is representable.
  int64_t v = 0;
  while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
    int digit = s_[pos_] - '0';
    if (v < (INT64_MIN + digit) / 10) return Fail("integer out of range");
    v = v * 10 - digit;
    ++pos_;
  }
  if (pos_ == start) return Fail("expected an integer");
  if (pos_ - start > 1 && s_[start] == '0') {
    pos_ = start;
    return Fail("leading zero in integer");
  }
  if (pos_ < s_.size() &&
      (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) {
    return Fail("not an integer");
  }
  if (!negative) {
    if (v == INT64_MIN) return Fail("integer out of range");
    v = -v;
  }
  *out = v;
  return true;
}

bool LineParser::ParseNullableString(std::optional<std::string>* out) {
  SkipSpace();
  if (s_.compare(pos_, 4, "null") == 0) {
    pos_ += 4;
    out->reset();
    return true;
  }
  std::string str;
  if (!ParseString(&str)) return false;
  *out = std::move(str);
  return true;
}

bool LineParser::ParseValue(Value* out) {
  SkipSpace();
  if (pos_ >= s_.size()) return Fail("expected a value");
  char c = s_[pos_];
  if (c == '"') {
    out->kind = Value::Kind::kString;
    return ParseString(&out->str);
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    out->kind = Value::Kind::kInteger;
    return ParseInteger(&out->integer);
  }
  if (s_.compare(pos_, 4, "null") == 0) {
    pos_ += 4;
    out->kind = Value::Kind::kNull;
    return true;
  }
  if (c == '[') {
    ++pos_;
    out->kind = Value::Kind::kPair;
    if (!ParseNullableString(&out->first) || !Expect(',') ||
        !ParseNullableString(&out->second)) {
      return Fail("expected an array of two strings or nulls");
    }
    if (!Consume(']')) return Fail("expected ']' after two elements");
    return true;
  }
  return Fail("expected a string, an integer, null or an array");
}

bool LineParser::ApplyField(const std::string& name, const Value& v,
                            Event* event) {
  using Kind = Value::Kind;
  if (name == "process") {
    if (v.kind == Kind::kString && v.str == "nemesis") {
      event->process = kNemesis;
    } else if (v.kind == Kind::kInteger && v.integer >= 0) {
      event->process = v.integer;
    } else {
      return Fail("\"process\" must be an integer >= 0 or \"nemesis\"");
    }
  } else if (name == "type") {
    if (v.kind != Kind::kString) return Fail("\"type\" must be a string");
    if (v.str == "invoke") {
      event->type = EventType::kInvoke;
    } else if (v.str == "ok") {
      event->type = EventType::kOk;
    } else if (v.str == "fail") {
      event->type = EventType::kFail;
    } else if (v.str == "info") {
      event->type = EventType::kInfo;
    } else {
      return Fail("\"type\" must be invoke, ok, fail or info");
    }
  } else if (name == "f") {
    if (v.kind != Kind::kString || v.str.empty()) {
      return Fail("\"f\" must be a non-empty string");
    }
    event->f = v.str;
  } else if (name == "key") {
    if (v.kind == Kind::kString) {
      event->key = v.str;
    } else if (v.kind != Kind::kNull) {
      return Fail("\"key\" must be a string or null");
    }
  } else if (name == "value") {
    if (v.kind == Kind::kString) {
      event->value = v.str;
    } else if (v.kind == Kind::kPair) {
      event->value = v.first;
      event->value2 = v.second;
    } else if (v.kind != Kind::kNull) {
      return Fail("\"value\" must be a string, null or [expected, new]");
    }
  } else if (name == "time") {
    if (v.kind != Kind::kInteger) return Fail("\"time\" must be an integer");
    event->time_ns = v.integer;
  } else {
    return Fail("unknown field \"" + name + "\"");
  }
  return true;
}

StatusOr<Event> LineParser::Parse() {
  Event event;
  constexpr const char* kFields[] = {"process", "type",  "f",
                                     "key",     "value", "time"};
  bool seen[6] = {false, false, false, false, false, false};
  bool ok = Expect('{');
  if (ok && !Consume('}')) {
    do {
      std::string name;
      Value value;
      ok = ParseString(&name) && Expect(':');
      size_t value_pos = pos_;
      ok = ok && ParseValue(&value);
      if (!ok) break;
      for (int i = 0; i < 6; ++i) {
        if (name != kFields[i]) continue;
        if (seen[i]) {
          pos_ = value_pos;
          ok = Fail("repeated field \"" + name + "\"");
        }
        seen[i] = true;
      }
      if (ok) {
        size_t end_pos = pos_;
        pos_ = value_pos;
        ok = ApplyField(name, value, &event);
        if (ok) pos_ = end_pos;
      }
    } while (ok && Consume(','));
    ok = ok && Expect('}');
  }
  if (ok) {
    SkipSpace();
    if (pos_ != s_.size()) ok = Fail("trailing characters after the object");
  }
  for (int i : {0, 1, 2, 5}) {
    if (ok && !seen[i]) {
      ok = Fail(std::string("missing field \"") + kFields[i] + "\"");
    }
  }
  if (!ok) {
    return Status::InvalidArgument("malformed history line (" + error_ +
                                   "): " + Excerpt(s_));
  }
  return event;
}

}  // namespace

const char* EventTypeName(EventType type) {
  switch (type) {
    case EventType::kInvoke:
      return "invoke";
    case EventType::kOk:
      return "ok";
    case EventType::kFail:
      return "fail";
    case EventType::kInfo:
      return "info";
  }
  return "unknown";
}

std::string JsonQuote(const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) {
          out += "\\u00";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 0xF]);
        } else {
          out.push_back(c);  // UTF-8 bytes pass through unchanged
        }
      }
    }
  }
  out.push_back('"');
  return out;
}

std::string ToJsonLine(const Event& event) {
  auto nullable = [](const std::optional<std::string>& v) {
    return v ? JsonQuote(*v) : std::string("null");
  };
  std::string out = "{\"process\": ";
  out += event.is_nemesis() ? std::string("\"nemesis\"")
                            : std::to_string(event.process);
  out += ", \"type\": ";
  out += JsonQuote(EventTypeName(event.type));
  out += ", \"f\": " + JsonQuote(event.f);
  if (!event.key.empty()) out += ", \"key\": " + JsonQuote(event.key);
  out += ", \"value\": ";
  if (event.f == "cas" || event.value2.has_value()) {
    out += "[" + nullable(event.value) + ", " + nullable(event.value2) + "]";
  } else {
    out += nullable(event.value);
  }
  out += ", \"time\": " + std::to_string(event.time_ns) + "}";
  return out;
}

StatusOr<Event> ParseJsonLine(const std::string& line) {
  return LineParser(line).Parse();
}

Status WriteHistory(const History& history, std::ostream& out) {
  for (const Event& event : history) {
    out << ToJsonLine(event) << '\n';
    if (!out) return Status::IOError("writing the history failed");
  }
  out.flush();
  if (!out) return Status::IOError("flushing the history failed");
  return Status::OK();
}

StatusOr<History> ReadHistory(std::istream& in) {
  History history;
  std::string line;
  uint64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    StatusOr<Event> event = ParseJsonLine(line);
    if (!event.ok()) {
      return Status::InvalidArgument("history line " +
                                     std::to_string(line_number) + ": " +
                                     event.status().message());
    }
    history.push_back(std::move(event).value());
  }
  if (in.bad()) return Status::IOError("reading the history failed");
  return history;
}

}  // namespace raftkv::jepsen
