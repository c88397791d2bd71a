// Tests of the raftkv-jepsen report (jepsen/report.h and its helpers): the
// history model (paired operations, fault intervals), SVG number and escape
// helpers, and the four files WriteReport writes for a small synthetic run.
// Must never depend on a cluster, the network or wall-clock time.
#include "jepsen/report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "jepsen/report_html.h"
#include "jepsen/report_model.h"
#include "jepsen/report_plots.h"
#include "jepsen/svg_plot.h"

namespace raftkv::jepsen {
namespace {

constexpr int64_t kMs = 1'000'000;  // nanoseconds

Event Op(int64_t process, EventType type, const std::string& f, int64_t time_ms,
         std::optional<std::string> value = std::nullopt) {
  Event e;
  e.process = process;
  e.type = type;
  e.f = f;
  e.key = "r1";
  e.value = std::move(value);
  e.time_ns = time_ms * kMs;
  return e;
}

Event Nemesis(const std::string& f, int64_t time_ms,
              const std::string& description,
              EventType type = EventType::kInfo) {
  Event e;
  e.process = kNemesis;
  e.type = type;
  e.f = f;
  e.value = description;
  e.time_ns = time_ms * kMs;
  return e;
}

// A 10-second run of three clients: a partition from 2 s to 5 s (healed), a
// kill from 7 s that is never healed; ok, fail and info outcomes; process
// 2's last invocation never completes.
History SyntheticHistory() {
  History h;
  auto add = [&h](Event e) { h.push_back(std::move(e)); };
  for (int i = 0; i < 10; ++i) {
    const int64_t t = i * 1000;
    add(Op(0, EventType::kInvoke, "write", t, std::to_string(i)));
    add(Op(0, EventType::kOk, "write", t + 3, std::to_string(i)));
    add(Op(1, EventType::kInvoke, "read", t + 10));
    add(Op(1, i == 3 ? EventType::kFail : EventType::kOk, "read", t + 30, "0"));
    if (i == 2) add(Nemesis("partition", t + 100, "isolate leader n1 <&>"));
    if (i == 5) add(Nemesis("heal", t + 50, "heal all"));
    if (i == 7) add(Nemesis("kill", t + 200, "kill n2"));
    add(Op(2, EventType::kInvoke, "cas", t + 300));
    if (i < 9) {
      add(Op(2, i == 4 ? EventType::kInfo : EventType::kOk, "cas", t + 900));
    }
  }
  return h;
}

constexpr size_t kCompletedOps = 29;  // 10 writes, 10 reads, 9 cas

CheckResult InvalidResult() {
  CheckResult r;
  r.validity = Validity::kInvalid;
  r.ops = 30;
  r.ok = 27;
  r.fail = 1;
  r.info = 2;
  Anomaly a;
  a.kind = "stale-read";
  a.key = "r1";
  a.description = "read of 0 after write of 3 completed <stale>";
  a.slice = {Op(0, EventType::kOk, "write", 3003, "3"),
             Op(1, EventType::kOk, "read", 3030, "0")};
  a.rendering = "p0 |--write 3--|\np1            |--read 0--|";
  r.anomalies.push_back(a);
  r.summary = "1 anomaly on 1 key";
  return r;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + needle.size())) {
    ++count;
  }
  return count;
}

// Number of points: one "M" per point in the d of every class="pts" path.
size_t CountPoints(const std::string& svg) {
  size_t points = 0;
  const std::string open = "<path d=\"";
  for (size_t pos = svg.find(open); pos != std::string::npos;
       pos = svg.find(open, pos + 1)) {
    size_t d_begin = pos + open.size();
    size_t d_end = svg.find('"', d_begin);
    size_t tag_end = svg.find("/>", d_end);
    std::string d = svg.substr(d_begin, d_end - d_begin);
    std::string rest = svg.substr(d_end, tag_end - d_end);
    if (rest.find("class=\"pts\"") == std::string::npos) continue;
    for (char c : d) points += c == 'M';
  }
  return points;
}

// True if every element is closed in order (a small XML well-formedness
// check: no attributes containing '>' are emitted by the report; HTML's
// void elements need no end tag).
bool TagsBalanced(const std::string& xml) {
  std::vector<std::string> open;
  for (size_t pos = xml.find('<'); pos != std::string::npos;
       pos = xml.find('<', pos + 1)) {
    size_t end = xml.find('>', pos);
    if (end == std::string::npos) return false;
    std::string tag = xml.substr(pos + 1, end - pos - 1);
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
    if (tag.back() == '/') continue;
    std::string name = tag.substr(0, tag.find_first_of(" \n"));
    if (name == "meta" || name == "img" || name == "br") continue;  // void
    if (name[0] == '/') {
      if (open.empty() || open.back() != name.substr(1)) return false;
      open.pop_back();
    } else {
      open.push_back(name);
    }
  }
  return open.empty();
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           (std::string("jepsen_report_") + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    input_.out_dir = dir_.string();
    input_.workload = "register";
    input_.nemesis = "partition,kill";
    input_.seed = 42;
    input_.nodes = 3;
    input_.time_limit_s = 10;
    input_.rate = 30;
    input_.concurrency = 3;
    input_.history = SyntheticHistory();
    input_.result = InvalidResult();
    input_.node_logs = {"n1.log", "n2.log", "logs/n 3.log"};
    input_.notes = "network namespace: yes";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Read(const std::string& name) { return ReadFile(dir_ / name); }

  std::filesystem::path dir_;
  ReportInput input_;
};

TEST(ReportModelTest, PairsInvocationsWithCompletionsPerProcess) {
  std::vector<CompletedOp> ops = CompletedOps(SyntheticHistory());
  ASSERT_EQ(ops.size(), kCompletedOps);
  EXPECT_EQ(ops[0].f, "write");
  EXPECT_EQ(ops[0].process, 0);
  EXPECT_DOUBLE_EQ(ops[0].latency_ms(), 3);
  EXPECT_EQ(ops[1].f, "read");
  EXPECT_EQ(ops[2].f, "cas");
  EXPECT_DOUBLE_EQ(ops[1].invoke_s, 0.010);
  EXPECT_DOUBLE_EQ(ops[1].latency_ms(), 20);
  size_t fails = 0, infos = 0;
  for (const CompletedOp& op : ops) {
    fails += op.outcome == EventType::kFail;
    infos += op.outcome == EventType::kInfo;
  }
  EXPECT_EQ(fails, 1u);
  EXPECT_EQ(infos, 1u);
}

TEST(ReportModelTest, HealEndsEveryActiveFault) {
  History h = {
      Nemesis("partition", 1000, "halves"), Nemesis("kill", 2000, "kill n3"),
      Nemesis("heal", 3000, "restart n3"), Nemesis("pause", 4000, "pause n1"),
      Op(0, EventType::kInvoke, "read", 5000)};
  std::vector<FaultInterval> faults = FaultIntervals(h);
  ASSERT_EQ(faults.size(), 3u);
  EXPECT_EQ(faults[0].f, "partition");
  EXPECT_EQ(faults[0].description, "halves");
  // The heal's description goes with every fault it ended.
  EXPECT_EQ(faults[0].heal, "restart n3");
  EXPECT_EQ(faults[1].heal, "restart n3");
  EXPECT_EQ(faults[2].heal, "");
  EXPECT_DOUBLE_EQ(faults[0].start_s, 1);
  EXPECT_DOUBLE_EQ(faults[0].end_s, 3);
  EXPECT_TRUE(faults[0].healed);
  EXPECT_DOUBLE_EQ(faults[1].end_s, 3);
  EXPECT_FALSE(faults[2].healed);  // runs to the end of the history
  EXPECT_DOUBLE_EQ(faults[2].end_s, 5);
}

TEST(ReportModelTest, NemesisInvokeAndCompletionAreOneFault) {
  History h = {Nemesis("partition", 1000, "", EventType::kInvoke),
               Nemesis("partition", 1200, "isolate n2"),
               Nemesis("heal", 4000, "", EventType::kInvoke),
               Nemesis("heal", 4100, "")};
  std::vector<FaultInterval> faults = FaultIntervals(h);
  ASSERT_EQ(faults.size(), 1u);
  EXPECT_DOUBLE_EQ(faults[0].start_s, 1.0);
  EXPECT_DOUBLE_EQ(faults[0].end_s, 4.0);
  EXPECT_EQ(faults[0].description, "isolate n2");
}

TEST(ReportModelTest, StatsByFunctionCountsOutcomesAndQuantiles) {
  std::map<std::string, OpStats> stats =
      StatsByFunction(CompletedOps(SyntheticHistory()));
  ASSERT_EQ(stats.size(), 3u);
  EXPECT_EQ(stats["read"].ok, 9u);
  EXPECT_EQ(stats["read"].fail, 1u);
  EXPECT_EQ(stats["cas"].info, 1u);
  EXPECT_NEAR(stats["write"].p50_ms, 3, 1e-6);
  EXPECT_NEAR(stats["cas"].max_ms, 600, 1e-6);
}

TEST(SvgPlotTest, NumbersHaveAtMostOneDecimal) {
  EXPECT_EQ(SvgNumber(12.34), "12.3");
  EXPECT_EQ(SvgNumber(40.01), "40");
  EXPECT_EQ(SvgNumber(-2.54), "-2.5");
  EXPECT_EQ(SvgNumber(-0.04), "0");
  EXPECT_EQ(XmlEscape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
  EXPECT_EQ(HrefFor("logs/n 3#.log"), "logs/n%203%23.log");
}

TEST(SvgPlotTest, TicksCoverTheRange) {
  EXPECT_EQ(LinearTicks(10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(LinearTicks(61, 12).back(), 70);
  EXPECT_EQ(DecadeTicks(0.3, 2500),
            (std::vector<double>{0.1, 1, 10, 100, 1000, 10000}));
  EXPECT_EQ(DecadeTicks(5, 5).size(), 2u);
}

TEST_F(ReportTest, WritesTheFourFiles) {
  ASSERT_TRUE(WriteReport(input_).ok());
  for (const char* name :
       {"results.json", "latency.svg", "rate.svg", "index.html"}) {
    EXPECT_TRUE(std::filesystem::is_regular_file(dir_ / name)) << name;
    EXPECT_FALSE(std::filesystem::exists(dir_ / (std::string(name) + ".tmp")));
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ / "history.jsonl"));
}

TEST_F(ReportTest, MissingDirectoryIsInvalidArgument) {
  input_.out_dir = (dir_ / "missing").string();
  Status status = WriteReport(input_);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << status.ToString();
}

TEST_F(ReportTest, ResultsJsonHasTheVerdictAndCounts) {
  ASSERT_TRUE(WriteReport(input_).ok());
  const std::string json = Read("results.json");
  EXPECT_NE(json.find("\"valid\": false,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"workload\": \"register\""), std::string::npos);
  EXPECT_NE(json.find("\"nemesis\": \"partition,kill\""), std::string::npos);
  EXPECT_NE(json.find("\"seed\": 42,"), std::string::npos);
  EXPECT_NE(json.find("\"nodes\": 3,"), std::string::npos);
  EXPECT_NE(json.find("\"ops\": 30,"), std::string::npos);
  EXPECT_NE(json.find("\"ok\": 27,"), std::string::npos);
  EXPECT_NE(json.find("\"fail\": 1,"), std::string::npos);
  EXPECT_NE(json.find("\"info\": 2,"), std::string::npos);
  EXPECT_NE(json.find("\"faults\": 2,"), std::string::npos);
  EXPECT_NE(json.find("\"kind\": \"stale-read\""), std::string::npos);
  EXPECT_NE(json.find("\"summary\": \"1 anomaly on 1 key\""),
            std::string::npos);
  // Valid JSON, fields in the documented order; the slice holds the
  // events as history.jsonl objects.
  const auto parsed = nlohmann::ordered_json::parse(json, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << json;
  std::vector<std::string> fields;
  for (const auto& [name, value] : parsed.items()) fields.push_back(name);
  EXPECT_EQ(fields,
            (std::vector<std::string>{
                "valid", "workload", "nemesis", "seed", "nodes", "time_limit_s",
                "rate", "concurrency", "ops", "ok", "fail", "info", "faults",
                "fault_intervals", "anomalies", "summary", "notes"}));
  EXPECT_EQ(parsed["time_limit_s"], 10.0);
  ASSERT_EQ(parsed["fault_intervals"].size(), 2u);
  EXPECT_EQ(parsed["fault_intervals"][0]["f"], "partition");
  EXPECT_EQ(parsed["fault_intervals"][0]["description"],
            "isolate leader n1 <&>");
  EXPECT_EQ(parsed["fault_intervals"][0]["healed"], true);
  EXPECT_EQ(parsed["fault_intervals"][1]["healed"], false);
  const auto& anomaly = parsed["anomalies"][0];
  EXPECT_EQ(anomaly["key"], "r1");
  const std::vector<Event>& slice = input_.result.anomalies[0].slice;
  ASSERT_EQ(anomaly["slice"].size(), slice.size());
  for (size_t i = 0; i < slice.size(); ++i) {
    EXPECT_EQ(anomaly["slice"][i], EventToJson(slice[i]));
    EXPECT_EQ(anomaly["slice"][i].dump(), ToJsonLine(slice[i]));
  }
}

TEST_F(ReportTest, ResultsJsonCarriesBytesThatAreNotUtf8) {
  const std::string binary("r\x80\0\xff", 4);
  Anomaly& a = input_.result.anomalies[0];
  a.key = binary;
  a.slice[0].key = binary;
  a.slice[0].value = binary;
  input_.notes = "not text: \xff";  // not a key or value: replaced, not lost
  const std::string json = ResultsJson(input_);
  const auto parsed = nlohmann::ordered_json::parse(json, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << json;
  const auto& anomaly = parsed["anomalies"][0];
  EXPECT_FALSE(anomaly.contains("key"));
  EXPECT_EQ(anomaly["key_base64"], "coAA/w==");
  EXPECT_EQ(anomaly["slice"][0]["key_base64"], "coAA/w==");
  EXPECT_EQ(anomaly["slice"][0]["value_base64"], "coAA/w==");
  EXPECT_EQ(parsed["notes"], "not text: \xef\xbf\xbd");
  StatusOr<Event> back = ParseJsonLine(anomaly["slice"][0].dump());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->key, binary);
  EXPECT_EQ(back->value, binary);
}

TEST_F(ReportTest, ResultsJsonValidIsABooleanOrUnknown) {
  input_.result.validity = Validity::kValid;
  EXPECT_NE(ResultsJson(input_).find("\"valid\": true,"), std::string::npos);
  input_.result.validity = Validity::kUnknown;
  EXPECT_NE(ResultsJson(input_).find("\"valid\": \"unknown\","),
            std::string::npos);
}

TEST_F(ReportTest, LatencySvgHasOnePointPerOpAndOneBandPerFault) {
  ASSERT_TRUE(WriteReport(input_).ok());
  const std::string svg = Read("latency.svg");
  EXPECT_TRUE(StartsWith(svg, "<svg ")) << svg.substr(0, 40);
  EXPECT_TRUE(EndsWith(svg, "</svg>\n"));
  EXPECT_TRUE(TagsBalanced(svg));
  EXPECT_EQ(CountOf(svg, "class=\"fault\""), 2u);
  EXPECT_EQ(CountPoints(svg), kCompletedOps);
  // Escaped fault description in the band's tooltip; labels and legend.
  EXPECT_NE(svg.find("isolate leader n1 &lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">partition</text>"), std::string::npos);
  EXPECT_NE(svg.find(">fail (1)</text>"), std::string::npos);
  EXPECT_NE(svg.find(">cas (9)</text>"), std::string::npos);
}

TEST_F(ReportTest, RateSvgHasOneLinePerOutcomeAndOneBandPerFault) {
  ASSERT_TRUE(WriteReport(input_).ok());
  const std::string svg = Read("rate.svg");
  EXPECT_TRUE(StartsWith(svg, "<svg ")) << svg.substr(0, 40);
  EXPECT_TRUE(EndsWith(svg, "</svg>\n"));
  EXPECT_TRUE(TagsBalanced(svg));
  EXPECT_EQ(CountOf(svg, "class=\"fault\""), 2u);
  EXPECT_EQ(CountOf(svg, "class=\"rate\""), 3u);
}

TEST_F(ReportTest, IndexHtmlLinksEveryFileAndShowsTheAnomaly) {
  ASSERT_TRUE(WriteReport(input_).ok());
  const std::string html = Read("index.html");
  EXPECT_TRUE(StartsWith(html, "<!DOCTYPE html>"));
  EXPECT_TRUE(TagsBalanced(html.substr(html.find("<html"))));
  for (const char* href : {"history.jsonl", "results.json", "latency.svg",
                           "rate.svg", "n1.log", "n2.log", "logs/n%203.log"}) {
    EXPECT_NE(html.find(std::string("href=\"") + href + "\""),
              std::string::npos)
        << href;
  }
  EXPECT_NE(html.find("<img src=\"latency.svg\""), std::string::npos);
  EXPECT_NE(html.find("<img src=\"rate.svg\""), std::string::npos);
  EXPECT_NE(html.find(">INVALID<"), std::string::npos);
  EXPECT_NE(html.find("<pre>p0 |--write 3--|\np1"), std::string::npos);
  EXPECT_NE(html.find("after write of 3 completed &lt;stale&gt;"),
            std::string::npos);
  EXPECT_NE(html.find("isolate leader n1 &lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(html.find("network namespace: yes"), std::string::npos);
  // No external resources: every src/href is relative.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

// The watch and lease checkers' figures and checks: in results.json
// after "info" (only when there are any), and in a section of the page.
TEST_F(ReportTest, FiguresAndChecksAreReportedWhenGiven) {
  input_.workload = "watch";
  input_.result.figures = {{"events", 4449}, {"watchers", 3}};
  input_.result.checks = {"watcher p0: <checked>"};
  ASSERT_TRUE(WriteReport(input_).ok());
  const auto parsed =
      nlohmann::ordered_json::parse(Read("results.json"), nullptr, false);
  ASSERT_FALSE(parsed.is_discarded());
  std::vector<std::string> fields;
  for (const auto& [name, value] : parsed.items()) fields.push_back(name);
  EXPECT_EQ(fields, (std::vector<std::string>{
                        "valid", "workload", "nemesis", "seed", "nodes",
                        "time_limit_s", "rate", "concurrency", "ops", "ok",
                        "fail", "info", "figures", "checks", "faults",
                        "fault_intervals", "anomalies", "summary", "notes"}));
  EXPECT_EQ(parsed["figures"]["events"], 4449);
  EXPECT_EQ(parsed["figures"].begin().key(), "events");  // in order
  EXPECT_EQ(parsed["checks"][0], "watcher p0: <checked>");
  const std::string html = Read("index.html");
  EXPECT_TRUE(TagsBalanced(html.substr(html.find("<html"))));
  EXPECT_NE(html.find("<td>events</td><td>4449</td>"), std::string::npos);
  EXPECT_NE(html.find("<li>watcher p0: &lt;checked&gt;</li>"),
            std::string::npos);
}

// Observations (watch events, keeper losses) are not operations.
TEST(ReportModelTest, ObservationsAreNotOperations) {
  History h = SyntheticHistory();
  Event seen;
  seen.process = 0;
  seen.type = EventType::kOk;
  seen.f = "event";
  seen.key = "w/1";
  seen.revision = 3;
  seen.time_ns = 1;
  h.insert(h.begin() + 1, seen);  // between p0's invocation and completion
  EXPECT_EQ(CompletedOps(h).size(), kCompletedOps);
  EXPECT_DOUBLE_EQ(CompletedOps(h)[0].latency_ms(), 3);
}

TEST_F(ReportTest, EmptyHistoryStillWritesAReport) {
  input_.history.clear();
  input_.result = CheckResult();
  input_.result.validity = Validity::kUnknown;
  ASSERT_TRUE(WriteReport(input_).ok());
  const std::string latency = Read("latency.svg");
  EXPECT_TRUE(TagsBalanced(latency));
  EXPECT_EQ(CountPoints(latency), 0u);
  EXPECT_EQ(CountOf(latency, "class=\"fault\""), 0u);
  EXPECT_TRUE(TagsBalanced(Read("rate.svg")));
  EXPECT_NE(Read("results.json").find("\"valid\": \"unknown\","),
            std::string::npos);
  const std::string html = Read("index.html");
  EXPECT_NE(html.find(">UNKNOWN<"), std::string::npos);
  EXPECT_NE(html.find("The nemesis injected no faults."), std::string::npos);
}

TEST(SvgPlotTest, CrowdedFaultLabelsUseAtMostThreeLines) {
  History h;
  for (int i = 0; i < 40; ++i) {  // a partition every 0.5 s for 20 s
    h.push_back(Nemesis("partition", i * 500, "f"));
    h.push_back(Nemesis("heal", i * 500 + 250, ""));
  }
  std::vector<FaultInterval> faults = FaultIntervals(h);
  ASSERT_EQ(faults.size(), 40u);
  const std::string svg = LatencySvg({}, faults, 40);
  EXPECT_EQ(CountOf(svg, "class=\"fault\""), 40u);
  // Labels are the bold 10.5 px texts; at most 3 distinct baselines.
  std::set<std::string> baselines;
  size_t labels = 0;
  for (size_t pos = svg.find("<text"); pos != std::string::npos;
       pos = svg.find("<text", pos + 1)) {
    std::string tag = svg.substr(pos, svg.find('>', pos) - pos);
    if (tag.find("font-size=\"10.5\"") == std::string::npos) continue;
    ++labels;
    size_t y = tag.find(" y=\"") + 4;
    baselines.insert(tag.substr(y, tag.find('"', y) - y));
  }
  EXPECT_GT(labels, 10u);
  EXPECT_LT(labels, 40u);  // some bands stay unlabelled
  EXPECT_LE(baselines.size(), 3u);
}

TEST_F(ReportTest, TwelveThousandOpsStayOneFileOfSaneSize) {
  History h;
  for (int i = 0; i < 12000; ++i) {
    const int64_t t = i * 5 * kMs;
    Event invoke = Op(i % 10, EventType::kInvoke, i % 3 ? "read" : "write", 0);
    invoke.time_ns = t;
    Event done = invoke;
    done.type = i % 97 == 0 ? EventType::kInfo : EventType::kOk;
    done.time_ns = t + (1 + i % 50) * kMs / 10;
    h.push_back(invoke);
    h.push_back(done);
  }
  h.push_back(Nemesis("partition", 20000, "majority/minority"));
  h.push_back(Nemesis("heal", 40000, ""));
  std::vector<CompletedOp> ops = CompletedOps(h);
  const std::string svg = LatencySvg(ops, FaultIntervals(h), 60);
  EXPECT_EQ(CountPoints(svg), 12000u);
  EXPECT_LT(svg.size(), 300u * 1024) << svg.size();
}

}  // namespace
}  // namespace raftkv::jepsen
