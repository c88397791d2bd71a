#include "tools/raftkvctl_common.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "client/kv.pb.h"
#include "util/json_bytes.h"

namespace raftkv::ctl {

void PrintJson(const Json& json) {
  std::cout << DumpJson(json) << std::endl;  // flushed: watch reads it live
}

int ExitCodeOf(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNotFound:
      return kNotFound;
    case Status::Code::kTooLarge:
    case Status::Code::kInvalidArgument:
    case Status::Code::kCompacted:           // a revision compacted
    case Status::Code::kFailedPrecondition:  // a revision not reached yet
    case Status::Code::kPermissionDenied:
    case Status::Code::kUnauthenticated:
      return kRefused;
    default:
      return kUnavailable;
  }
}

int Fail(const Status& s) {
  std::cerr << "raftkvctl: " << s.ToString() << "\n";
  return ExitCodeOf(s);
}

int UsageError(const std::string& message) {
  std::cerr << "raftkvctl: " << message << "\n";
  return kUsage;
}

bool ParseInt64(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool ParseLeaseId(const std::string& text, int64_t* id) {
  if (text.empty() || text.size() > 16 ||
      text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return false;
  }
  const unsigned long long v = std::strtoull(text.c_str(), nullptr, 16);
  *id = static_cast<int64_t>(v);
  return v != 0;
}

std::string LeaseIdHex(int64_t id) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(id));
  return hex;
}

KeyValue FromProto(const kv::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

Json KeyValueJson(const KeyValue& kv, bool with_value) {
  Json j = Json::object();
  PutBytes(j, "key", kv.key);
  if (with_value) PutBytes(j, "value", kv.value);
  j["create_revision"] = kv.create_revision;
  j["mod_revision"] = kv.mod_revision;
  j["version"] = kv.version;
  return j;
}

}  // namespace raftkv::ctl
