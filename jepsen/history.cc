// JSON-lines (de)serialisation of a Jepsen-style history (see history.h),
// with nlohmann-json.
//
// The reader must never accept a line it cannot represent faithfully: not
// JSON, not an object, unknown or repeated fields, a field of the wrong
// type, fractions, integers beyond int64, invalid base64. Those are
// InvalidArgument errors naming the reason and quoting the line. nlohmann's
// parser reports errors by exceptions: ParseJsonLine catches them and
// returns such errors; nothing else in this file throws (writing goes
// through DumpJson).
#include "jepsen/history.h"

#include <cstdint>
#include <istream>
#include <limits>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <string>

#include "util/json_bytes.h"

namespace raftkv::jepsen {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxQuotedLineChars = 200;
constexpr size_t kMaxReasonChars = 150;

// `text` as quoted in error messages: shortened when very long.
std::string Excerpt(const std::string& text, size_t max_chars) {
  if (text.size() <= max_chars) return text;
  return text.substr(0, max_chars) + "...";
}

Status Malformed(const std::string& reason, const std::string& line) {
  return Status::InvalidArgument("malformed history line (" + reason +
                                 "): " + Excerpt(line, kMaxQuotedLineChars));
}

// nlohmann's parse error without its "[json.exception...] " prefix, e.g.
// "parse error at line 1, column 9: syntax error while parsing value -
// invalid literal; last read: '1} x'; expected end of input", or "number
// overflow parsing '1e999'".
std::string ParseErrorReason(const Json::exception& e) {
  std::string what = e.what();
  const size_t prefix_end = what.find("] ");
  if (what.rfind("[json.exception.", 0) == 0 &&
      prefix_end != std::string::npos) {
    what = what.substr(prefix_end + 2);
  }
  return Excerpt(what, kMaxReasonChars);
}

// An integer that fits int64_t (nlohmann keeps those above INT64_MAX as
// unsigned, fractions and exponents as floating point).
bool GetInt64(const Json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return false;
    }
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (!v.is_number_integer()) return false;
  *out = v.get<int64_t>();
  return true;
}

// A string (base64 when `base64`) or null, into `out`.
bool GetNullableBytes(const Json& v, bool base64,
                      std::optional<std::string>* out) {
  if (v.is_null()) {
    out->reset();
    return true;
  }
  if (!v.is_string()) return false;
  if (!base64) {
    *out = v.get<std::string>();
    return true;
  }
  *out = Base64Decode(v.get_ref<const std::string&>());
  return out->has_value();
}

// "value" or "value_base64": one nullable string, or [expected, new].
bool GetValue(const Json& v, bool base64, Event* event) {
  if (!v.is_array()) return GetNullableBytes(v, base64, &event->value);
  return v.size() == 2 && GetNullableBytes(v[0], base64, &event->value) &&
         GetNullableBytes(v[1], base64, &event->value2);
}

// Sets the event's field `name` from `v`; the reason when it cannot.
std::string ApplyField(const std::string& name, const Json& v, Event* event) {
  if (name == "process") {
    if (v.is_string() && v.get_ref<const std::string&>() == "nemesis") {
      event->process = kNemesis;
    } else if (!GetInt64(v, &event->process) || event->process < 0) {
      return "\"process\" must be an integer >= 0 or \"nemesis\"";
    }
  } else if (name == "type") {
    if (!v.is_string()) return "\"type\" must be a string";
    const std::string& type = v.get_ref<const std::string&>();
    if (type == "invoke") {
      event->type = EventType::kInvoke;
    } else if (type == "ok") {
      event->type = EventType::kOk;
    } else if (type == "fail") {
      event->type = EventType::kFail;
    } else if (type == "info") {
      event->type = EventType::kInfo;
    } else {
      return "\"type\" must be invoke, ok, fail or info";
    }
  } else if (name == "f") {
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      return "\"f\" must be a non-empty string";
    }
    event->f = v.get<std::string>();
  } else if (name == "key") {
    std::optional<std::string> key;
    if (!GetNullableBytes(v, false, &key)) {
      return "\"key\" must be a string or null";
    }
    event->key = key.value_or("");
  } else if (name == "key_base64") {
    std::optional<std::string> key;
    if (!v.is_string() || !GetNullableBytes(v, true, &key)) {
      return "\"key_base64\" must be a base64 string";
    }
    event->key = *key;
  } else if (name == "value") {
    if (!GetValue(v, false, event)) {
      return "\"value\" must be a string, null or [expected, new]";
    }
  } else if (name == "value_base64") {
    if (!GetValue(v, true, event)) {
      return "\"value_base64\" must be base64, null or [expected, new] of "
             "those";
    }
  } else if (name == "revision" || name == "lease") {
    int64_t n = 0;
    if (!GetInt64(v, &n) || n <= 0) {
      return "\"" + name + "\" must be an integer > 0";
    }
    (name == "revision" ? event->revision : event->lease) = n;
  } else if (name == "node") {
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      return "\"node\" must be a non-empty string";
    }
    event->node = v.get<std::string>();
  } else if (name == "time") {
    if (!GetInt64(v, &event->time_ns)) {
      return "\"time\" must be an integer (int64)";
    }
  } else {
    return "unknown field \"" + name + "\"";
  }
  return "";
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

std::string QuoteForText(const std::string& s) {
  if (!IsValidUtf8(s)) return "base64:\"" + Base64Encode(s) + "\"";
  return DumpJson(Json(s));
}

nlohmann::ordered_json EventToJson(const Event& event) {
  Json j = Json::object();
  j["process"] = event.is_nemesis() ? Json("nemesis") : Json(event.process);
  j["type"] = EventTypeName(event.type);
  j["f"] = event.f;
  if (!event.key.empty()) PutBytes(j, "key", event.key);
  if (event.f == "cas" || event.value2.has_value()) {
    // [expected, new]: both as text, or (either not UTF-8) both as base64.
    const bool text = (!event.value || IsValidUtf8(*event.value)) &&
                      (!event.value2 || IsValidUtf8(*event.value2));
    auto element = [text](const std::optional<std::string>& v) {
      if (!v) return Json(nullptr);
      return Json(text ? *v : Base64Encode(*v));
    };
    j[text ? "value" : "value_base64"] =
        Json::array({element(event.value), element(event.value2)});
  } else if (event.value) {
    PutBytes(j, "value", *event.value);
  } else {
    j["value"] = nullptr;
  }
  if (event.revision != 0) j["revision"] = event.revision;
  if (event.lease != 0) j["lease"] = event.lease;
  if (!event.node.empty()) j["node"] = event.node;
  j["time"] = event.time_ns;
  return j;
}

std::string ToJsonLine(const Event& event) {
  return DumpJson(EventToJson(event));
}

StatusOr<Event> ParseJsonLine(const std::string& line) {
  // nlohmann keeps one of two equal keys; the callback sees both.
  std::set<std::string> names;
  std::string repeated;
  Json j;
  try {
    j = Json::parse(line, [&](int depth, Json::parse_event_t event,
                              Json& parsed) {
      if (depth == 1 && event == Json::parse_event_t::key &&
          !names.insert(parsed.get<std::string>()).second && repeated.empty()) {
        repeated = parsed.get<std::string>();
      }
      return true;
    });
  } catch (const Json::exception& e) {  // parse_error, out_of_range (1e999)
    return Malformed(ParseErrorReason(e), line);
  }
  if (!j.is_object()) return Malformed("not a JSON object", line);
  if (!repeated.empty()) {
    return Malformed("repeated field \"" + repeated + "\"", line);
  }
  if (j.contains("key") && j.contains("key_base64")) {
    return Malformed("both \"key\" and \"key_base64\"", line);
  }
  if (j.contains("value") && j.contains("value_base64")) {
    return Malformed("both \"value\" and \"value_base64\"", line);
  }
  Event event;
  for (const auto& [name, value] : j.items()) {
    const std::string reason = ApplyField(name, value, &event);
    if (!reason.empty()) return Malformed(reason, line);
  }
  for (const char* required : {"process", "type", "f", "time"}) {
    if (!j.contains(required)) {
      return Malformed(std::string("missing field \"") + required + "\"", line);
    }
  }
  return event;
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
