// What every raftkvctl command shares: the exit codes scripts rely on, the
// options parsed from its flags (raftkvctl.cc reads the flags, in one
// place), the JSON and text forms of a key-value pair, and the form of
// lease ids (hex, as etcdctl writes them).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "client/client.h"
#include "util/status.h"

namespace raftkv {
namespace kv {
class KeyValue;
}  // namespace kv

namespace ctl {

// The exit codes (a contract, see the header of raftkvctl.cc).
enum Exit {
  kOk = 0,
  kNotFound = 1,  // key not found, comparison failed, lease gone
  kUsage = 2,
  kUnavailable = 3,  // deadline passed, no quorum: a write's outcome unknown
  kRefused = 4,      // too large, invalid, revision compacted or not reached
};

// The command-line options that the commands read (from raftkvctl's flags).
struct Options {
  bool json = false;
  std::chrono::milliseconds deadline{5000};  // of one call
  bool serializable = false;
  bool prefix = false;     // get, watch: every key with KEY as prefix
  int64_t rev = 0;         // get: read at; watch: start at (0: now)
  int64_t limit = 0;       // get: at most this many keys (0: all)
  bool keys_only = false;  // get
  bool prev_kv = false;    // watch
  std::string lease;       // put: attach to this lease (hex id; "": none)
  bool keys = false;       // lease timetolive: list the attached keys
  int64_t ttl = 60;        // elect, lock: the session's lease TTL (seconds)
};

using Json = nlohmann::ordered_json;

// Prints `json` compactly on one line and flushes stdout.
void PrintJson(const Json& json);
// The exit code of a failed call.
int ExitCodeOf(const Status& s);
// Reports `s` on stderr ("raftkvctl: <status>") and returns its exit code.
int Fail(const Status& s);
// Reports a usage error on stderr ("raftkvctl: <message>"); returns kUsage.
int UsageError(const std::string& message);

// A decimal int64 (the whole text); false if it is not one.
bool ParseInt64(const std::string& text, int64_t* out);
// A lease id as etcdctl writes it: hexadecimal, without "0x", non-zero.
bool ParseLeaseId(const std::string& text, int64_t* id);
// "694d77aa9e3c7d05": 16 hex digits, as etcdctl prints lease ids.
std::string LeaseIdHex(int64_t id);

KeyValue FromProto(const kv::KeyValue& kv);
// {"key", "value", "create_revision", "mod_revision", "version"} (the
// fields of `get --json`, a contract); without "value" if !with_value.
// Bytes that are not UTF-8 as key_base64 / value_base64.
Json KeyValueJson(const KeyValue& kv, bool with_value = true);

}  // namespace ctl
}  // namespace raftkv
