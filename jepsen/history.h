// The history of a Jepsen-style test: every operation's invocation and
// completion, and every fault, in real-time order. One event per line in
// OUT/history.jsonl (compact JSON, fields in this order):
//
//   {"process":3,"type":"invoke","f":"write","key":"r4","value":"17",
//   "time":123456789}
//   {"process":3,"type":"ok","f":"write","key":"r4","value":"17",
//   "time":123999000}
//   {"process":"nemesis","type":"info","f":"partition","value":"isolate
//   leader 2","time":...}
//
// A key or value that is not valid UTF-8 is written as "key_base64" or
// "value_base64", its base64 (util/json_bytes.h); for cas both elements of
// [expected, new] are then base64. The reader takes either form.
//
// type: invoke, then exactly one of ok (took effect), fail (definitely did
// not), info (unknown: it may take effect at any later time, or never).
// f: read (invoke value null; ok value = the value read, null if absent),
// write (value written), cas (value [expected, new]; fail = comparison
// failed), delete, add (set workload: value = the element), and for the
// nemesis the fault's name (kill, pause, partition, clock, heal, ...).
// time: monotonic nanoseconds since the start of the test.
//
// Optional fields, written only when set (after "value", before "time"):
//   "revision": a store revision (> 0): of an acknowledged write, of a
//               read's answer, of a watch event, a fencing token;
//   "lease":    a lease id (> 0) the operation is about;
//   "node":     the node that answered ("n3"), for per-node reads.
// Each workload's header says what they mean in its records
// (jepsen/watch_workload.h, jepsen/lease_workload.h).
//
// Observations: an event with f "event" (a change a watch delivered) or
// "lost" (a lease keeper reporting its lease lost) is a single ok event
// without an invocation: something a client was told, not an operation it
// issued. PairOperations and the report skip them; the watch and lease
// checkers read them.
//
// Pure data and (de)serialisation: no I/O beyond the streams it is given.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace raftkv::jepsen {

enum class EventType { kInvoke, kOk, kFail, kInfo };
const char* EventTypeName(EventType type);

// The process that issued an event; kNemesis for faults.
constexpr int64_t kNemesis = -1;

struct Event {
  int64_t process = 0;  // client process id, or kNemesis
  EventType type = EventType::kInvoke;
  std::string f;    // read, write, cas, delete, add; or the fault
  std::string key;  // empty for nemesis events
  // The value: absent = JSON null. For cas: `value` is the expected value
  // and `value2` the new one (JSON [expected, new]).
  std::optional<std::string> value;
  std::optional<std::string> value2;
  int64_t revision = 0;  // 0: none
  int64_t lease = 0;     // 0: none
  std::string node;      // empty: none
  int64_t time_ns = 0;

  bool is_nemesis() const { return process == kNemesis; }
  // A watch event or a keeper's loss (see "Observations" above).
  bool is_observation() const {
    return !is_nemesis() && type == EventType::kOk &&
           (f == "event" || f == "lost");
  }
};

using History = std::vector<Event>;

// The event as the JSON object of its history line.
nlohmann::ordered_json EventToJson(const Event& event);
// One JSON object, without the trailing newline.
std::string ToJsonLine(const Event& event);
// Parses one line written by ToJsonLine (or by hand, as in the tests).
StatusOr<Event> ParseJsonLine(const std::string& line);

Status WriteHistory(const History& history, std::ostream& out);
StatusOr<History> ReadHistory(std::istream& in);

// `s` quoted for anomaly descriptions and renderings: as a JSON string when
// it is valid UTF-8, else as base64:"<base64>" (exact either way).
std::string QuoteForText(const std::string& s);

}  // namespace raftkv::jepsen
