// Tests of the JSON-lines history format (jepsen/history.h): round trips of
// every kind of event (keys and values that are not UTF-8 included),
// hand-written lines, and malformed lines that must be rejected with an
// error naming the line. Must never depend on files.
#include "jepsen/history.h"

#include <gtest/gtest.h>

#include <sstream>
#include <utility>

namespace raftkv::jepsen {
namespace {

Event MakeEvent(int64_t process, EventType type, std::string f, std::string key,
                std::optional<std::string> value,
                std::optional<std::string> value2, int64_t time_ns) {
  Event e;
  e.process = process;
  e.type = type;
  e.f = std::move(f);
  e.key = std::move(key);
  e.value = std::move(value);
  e.value2 = std::move(value2);
  e.time_ns = time_ns;
  return e;
}

void ExpectSameEvent(const Event& a, const Event& b) {
  EXPECT_EQ(a.process, b.process);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.f, b.f);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.value, b.value);
  EXPECT_EQ(a.value2, b.value2);
  EXPECT_EQ(a.revision, b.revision);
  EXPECT_EQ(a.lease, b.lease);
  EXPECT_EQ(a.node, b.node);
  EXPECT_EQ(a.time_ns, b.time_ns);
}

History Representative() {
  return {
      MakeEvent(3, EventType::kInvoke, "write", "r4", "17", std::nullopt,
                123456789),
      MakeEvent(3, EventType::kOk, "write", "r4", "17", std::nullopt,
                123999000),
      MakeEvent(0, EventType::kInvoke, "read", "r4", std::nullopt, std::nullopt,
                0),
      MakeEvent(0, EventType::kOk, "read", "r4", std::nullopt, std::nullopt, 5),
      MakeEvent(1, EventType::kInvoke, "cas", "r1", "1", "2", 7),
      MakeEvent(1, EventType::kFail, "cas", "r1", "1", "2", 9),
      MakeEvent(2, EventType::kInvoke, "cas", "r1", std::nullopt, "9", 10),
      MakeEvent(2, EventType::kInfo, "cas", "r1", std::nullopt, "9", 11),
      MakeEvent(kNemesis, EventType::kInfo, "partition", "", "isolate leader 2",
                std::nullopt, 12),
      MakeEvent(4, EventType::kInvoke, "delete", "k", std::nullopt,
                std::nullopt, 13),
      MakeEvent(5, EventType::kInvoke, "add", "set \"a\"\\b",
                "tab\there\nnl \x01 \x7f caf\xc3\xa9 /", std::nullopt,
                INT64_MAX),
      MakeEvent(6, EventType::kInvoke, "write", "neg", "", std::nullopt,
                INT64_MIN),
  };
}

TEST(HistoryTest, EveryEventRoundTripsThroughOneLine) {
  for (const Event& e : Representative()) {
    std::string line = ToJsonLine(e);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    StatusOr<Event> back = ParseJsonLine(line);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ExpectSameEvent(e, back.value());
  }
}

// The fields of the watch and lease workloads: written only when set, after
// the value; observations are single ok events.
TEST(HistoryTest, RevisionLeaseAndNodeRoundTripAndAreOptional) {
  Event e = MakeEvent(7, EventType::kOk, "event", "w/1", std::nullopt,
                      std::nullopt, 42);
  e.revision = 1234;
  EXPECT_EQ(ToJsonLine(e),
            R"({"process":7,"type":"ok","f":"event","key":"w/1",)"
            R"("value":null,"revision":1234,"time":42})");
  EXPECT_TRUE(e.is_observation());
  e.f = "read";
  e.lease = 5;
  e.node = "127.0.0.11:8000";
  EXPECT_FALSE(e.is_observation());
  const std::string line = ToJsonLine(e);
  EXPECT_NE(line.find(R"("revision":1234,"lease":5,"node":"127.0.0.11:8000")"),
            std::string::npos)
      << line;
  StatusOr<Event> back = ParseJsonLine(line);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameEvent(e, back.value());
  // Absent, they stay 0 and empty; zero, negative or empty are refused.
  back = ParseJsonLine(R"({"process":1,"type":"ok","f":"read","time":1})");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->revision, 0);
  EXPECT_EQ(back->lease, 0);
  EXPECT_EQ(back->node, "");
  for (const char* bad :
       {R"({"process":1,"type":"ok","f":"read","revision":0,"time":1})",
        R"({"process":1,"type":"ok","f":"read","lease":-3,"time":1})",
        R"({"process":1,"type":"ok","f":"read","revision":"7","time":1})",
        R"({"process":1,"type":"ok","f":"read","node":"","time":1})"}) {
    EXPECT_FALSE(ParseJsonLine(bad).ok()) << bad;
  }
  Event lost =
      MakeEvent(3, EventType::kOk, "lost", "reg/3", "expired", std::nullopt, 9);
  EXPECT_TRUE(lost.is_observation());
  lost.type = EventType::kInfo;
  EXPECT_FALSE(lost.is_observation());
}

TEST(HistoryTest, WritesTheDocumentedFormat) {
  History h = Representative();
  EXPECT_EQ(ToJsonLine(h[0]),
            R"({"process":3,"type":"invoke","f":"write","key":"r4",)"
            R"("value":"17","time":123456789})");
  EXPECT_EQ(ToJsonLine(h[2]),
            R"({"process":0,"type":"invoke","f":"read","key":"r4",)"
            R"("value":null,"time":0})");
  EXPECT_EQ(ToJsonLine(h[4]),
            R"({"process":1,"type":"invoke","f":"cas","key":"r1",)"
            R"("value":["1","2"],"time":7})");
  EXPECT_EQ(ToJsonLine(h[8]),
            R"({"process":"nemesis","type":"info","f":"partition",)"
            R"("value":"isolate leader 2","time":12})");
}

// Bytes that are not UTF-8 (0x80, 0xff), with a NUL among them.
const std::string kBinary("a\x80\0\xff", 4);

TEST(HistoryTest, BytesThatAreNotUtf8GoAsBase64) {
  EXPECT_EQ(ToJsonLine(MakeEvent(1, EventType::kOk, "write", kBinary, kBinary,
                                 std::nullopt, 3)),
            R"({"process":1,"type":"ok","f":"write","key_base64":"YYAA/w==",)"
            R"("value_base64":"YYAA/w==","time":3})");
  // cas: both elements as base64 when either is not text.
  EXPECT_EQ(ToJsonLine(
                MakeEvent(1, EventType::kInvoke, "cas", "k", "17", kBinary, 4)),
            R"({"process":1,"type":"invoke","f":"cas","key":"k",)"
            R"("value_base64":["MTc=","YYAA/w=="],"time":4})");
  // Text with a NUL is still text.
  EXPECT_EQ(
      ToJsonLine(MakeEvent(1, EventType::kOk, "read", std::string("\0", 1),
                           std::nullopt, std::nullopt, 5)),
      R"({"process":1,"type":"ok","f":"read","key":"\u0000",)"
      R"("value":null,"time":5})");
}

TEST(HistoryTest, BytesThatAreNotUtf8RoundTrip) {
  const History h = {
      MakeEvent(1, EventType::kInvoke, "write", kBinary, kBinary, std::nullopt,
                1),
      MakeEvent(1, EventType::kOk, "read", "r1", std::string("\xff"),
                std::nullopt, 2),
      MakeEvent(2, EventType::kInvoke, "cas", kBinary, std::nullopt, kBinary,
                3),
      MakeEvent(2, EventType::kFail, "cas", "r1", kBinary, "new", 4),
      MakeEvent(3, EventType::kInvoke, "add", std::string("\x80"),
                std::string("\0", 1), std::nullopt, 5),
  };
  std::stringstream buffer;
  ASSERT_TRUE(WriteHistory(h, buffer).ok());
  StatusOr<History> back = ReadHistory(buffer);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), h.size());
  for (size_t i = 0; i < h.size(); ++i) ExpectSameEvent(h[i], (*back)[i]);
}

TEST(HistoryTest, StreamRoundTripSkipsBlankLines) {
  History h = Representative();
  std::stringstream buffer;
  ASSERT_TRUE(WriteHistory(h, buffer).ok());
  std::string text = "\n" + buffer.str() + "   \n\r\n";
  std::istringstream in(text);
  StatusOr<History> back = ReadHistory(in);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), h.size());
  for (size_t i = 0; i < h.size(); ++i) ExpectSameEvent(h[i], (*back)[i]);
}

TEST(HistoryTest, ParsesHandWrittenLines) {
  StatusOr<Event> e = ParseJsonLine(
      " { \"time\":42 ,\"value\" : [ null , \"n\" ],\"f\":\"cas\", "
      "\"type\":\"ok\",\"key\":\"k\\u00e9\\ud83d\\ude00\\/\",\"process\":7}\r");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->process, 7);
  EXPECT_EQ(e->type, EventType::kOk);
  EXPECT_EQ(e->f, "cas");
  EXPECT_EQ(e->key, "k\xc3\xa9\xf0\x9f\x98\x80/");
  EXPECT_EQ(e->value, std::nullopt);
  EXPECT_EQ(e->value2, "n");
  EXPECT_EQ(e->time_ns, 42);

  StatusOr<Event> nemesis = ParseJsonLine(
      R"({"process": "nemesis", "type": "info", "f": "heal", "time": 5})");
  ASSERT_TRUE(nemesis.ok()) << nemesis.status().ToString();
  EXPECT_TRUE(nemesis->is_nemesis());
  EXPECT_EQ(nemesis->key, "");
  EXPECT_EQ(nemesis->value, std::nullopt);

  StatusOr<Event> null_key = ParseJsonLine(
      R"({"process": 0, "type": "invoke", "f": "read", "key": null, )"
      R"("value": null, "time": -3})");
  ASSERT_TRUE(null_key.ok()) << null_key.status().ToString();
  EXPECT_EQ(null_key->key, "");
  EXPECT_EQ(null_key->time_ns, -3);
}

TEST(HistoryTest, RejectsMalformedLinesNamingThem) {
  const char* kBad[] = {
      "",
      "not json",
      R"({"process": 1, "type": "ok", "f": "read", "time": 1)",
      R"({"process": 1, "type": "ok", "f": "read", "time": 1} x)",
      R"({"process": 1, "type": "ok", "f": "read"})",
      R"({"type": "ok", "f": "read", "time": 1})",
      R"({"process": 1, "type": "done", "f": "read", "time": 1})",
      R"({"process": 1, "type": "ok", "f": "", "time": 1})",
      R"({"process": -1, "type": "ok", "f": "read", "time": 1})",
      R"({"process": "client", "type": "ok", "f": "read", "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "time": 1.5})",
      R"({"process": 1, "type": "ok", "f": "read", "time": 1e3})",
      R"({"process": 1, "type": "ok", "f": "read", "time": 01})",
      R"({"process": 1, "type": "ok", "f": "read", "time": 9223372036854775808})",
      R"({"process": 1, "type": "ok", "f": "read", "time": "1"})",
      R"({"process": 1, "type": "ok", "f": "read", "time": 1, "time": 2})",
      R"({"process": 1, "type": "ok", "f": "read", "time": 1, "vaule": "x"})",
      R"({"process": 1, "type": "ok", "f": "cas", "value": ["a"], "time": 1})",
      R"({"process": 1, "type": "ok", "f": "cas", "value": ["a", "b", "c"], "time": 1})",
      R"({"process": 1, "type": "ok", "f": "cas", "value": ["a", 2], "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "value": 17, "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "value": "abc, "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "value": "a\qb", "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "value": "\ud83d", "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "value": "\u12g4", "time": 1})",
      "{\"process\": 1, \"type\": \"ok\", \"f\": \"read\", \"value\": "
      "\"a\tb\", "
      "\"time\": 1}",
      R"({"process": 1, "type": "ok", "f": "read", "value": true, "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "key": 3, "time": 1})",
      R"({"process": 1 "type": "ok", "f": "read", "time": 1})",
      R"([{"process": 1, "type": "ok", "f": "read", "time": 1}])",
      R"({"process": 1, "type": "ok", "f": "read", "time": 1e999})",
      R"({"process": 1, "type": "ok", "f": "read", "value": {"a": "b"}, "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "key": "k", "key_base64": "aw==", "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "value": "v", "value_base64": "dg==", "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "key_base64": "aw=", "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "key_base64": null, "time": 1})",
      R"({"process": 1, "type": "ok", "f": "read", "value_base64": "not base64!", "time": 1})",
      R"({"process": 1, "type": "ok", "f": "cas", "value_base64": ["aw==", "x"], "time": 1})",
      "{\"process\": 1, \"type\": \"ok\", \"f\": \"read\", \"value\": "
      "\"\x80\", \"time\": 1}",
  };
  for (const char* line : kBad) {
    StatusOr<Event> e = ParseJsonLine(line);
    ASSERT_FALSE(e.ok()) << "accepted: " << line;
    EXPECT_EQ(e.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(e.status().message().find(line), std::string::npos)
        << e.status().message();
  }
}

TEST(HistoryTest, ErrorNamesTheReason) {
  const std::pair<const char*, const char*> kCases[] = {
      {R"({"process": 1, "type": "ok", "f": "read", "time": 1, "vaule": "x"})",
       "unknown field \"vaule\""},
      {R"({"process": 1, "type": "ok", "f": "read", "time": 1, "time": 2})",
       "repeated field \"time\""},
      {R"({"process": 1, "type": "ok", "f": "read"})",
       "missing field \"time\""},
      {R"({"process": 1, "type": "ok", "f": "read", "time": 1.5})",
       "\"time\" must be an integer"},
      {R"({"process": 1, "type": "ok", "f": "read", "time": 9223372036854775808})",
       "\"time\" must be an integer"},
      {R"({"process": -1, "type": "ok", "f": "read", "time": 1})",
       "\"process\" must be an integer >= 0 or \"nemesis\""},
      {R"({"process": 1, "type": "done", "f": "read", "time": 1})",
       "\"type\" must be invoke, ok, fail or info"},
      {R"({"process": 1, "type": "ok", "f": "cas", "value": ["a"], "time": 1})",
       "\"value\" must be a string, null or [expected, new]"},
      {R"({"process": 1, "type": "ok", "f": "read", "key": "k", "key_base64": "aw==", "time": 1})",
       "both \"key\" and \"key_base64\""},
      {R"({"process": 1, "type": "ok", "f": "read", "key_base64": "aw=", "time": 1})",
       "\"key_base64\" must be a base64 string"},
      {R"([1, 2])", "not a JSON object"},
      {R"({"process": 1, "type": "ok", "f": "read", "time": 1} x)",
       "parse error at line 1, column 54"},
      {R"({"process": 1, "type": "ok", "f": "read", "value": "\ud83d", "time": 1})",
       "surrogate"},
  };
  for (const auto& [line, reason] : kCases) {
    StatusOr<Event> e = ParseJsonLine(line);
    ASSERT_FALSE(e.ok()) << line;
    EXPECT_NE(e.status().message().find(reason), std::string::npos)
        << reason << " not in: " << e.status().message();
  }
}

TEST(HistoryTest, ReadHistoryNamesTheBadLineNumber) {
  std::istringstream in(
      "{\"process\": 1, \"type\": \"invoke\", \"f\": \"read\", \"key\": \"x\", "
      "\"time\": 1}\n"
      "\n"
      "{\"process\": 1, \"type\": \"ok\", \"f\": \"read\", \"time\": }\n");
  StatusOr<History> h = ReadHistory(in);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(h.status().message().find("line 3"), std::string::npos)
      << h.status().message();
}

TEST(HistoryTest, LongLinesAreShortenedInErrors) {
  std::string line = "{\"process\": 1, \"f\": \"" + std::string(5000, 'a');
  StatusOr<Event> e = ParseJsonLine(line);
  ASSERT_FALSE(e.ok());
  EXPECT_LT(e.status().message().size(), 400u);
}

TEST(HistoryTest, QuoteForTextEscapesTextAndGivesOtherBytesAsBase64) {
  EXPECT_EQ(QuoteForText("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
  EXPECT_EQ(QuoteForText(""), R"("")");
  EXPECT_EQ(QuoteForText("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(QuoteForText(kBinary), R"(base64:"YYAA/w==")");
}

}  // namespace
}  // namespace raftkv::jepsen
