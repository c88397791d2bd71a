// index.html of the Jepsen report, written by hand: sections for the
// verdict, the plots, the faults, the operations, the anomalies, the
// parameters and the files. Must never emit unescaped user text (keys,
// values, descriptions and file names all pass through XmlEscape/HrefFor).
#include "jepsen/report_html.h"

#include <algorithm>
#include <cstdio>

#include "jepsen/report_plots.h"
#include "jepsen/svg_plot.h"

namespace raftkv::jepsen {
namespace {

constexpr char kStyle[] = R"css(
body{margin:0;background:#f4f5f7;color:#222;
 font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif}
header{background:#fff;border-bottom:1px solid #dde0e4;padding:18px 32px;
 display:flex;align-items:center;gap:28px}
header h1{margin:0;font-size:22px}
header .sub{color:#666;margin-top:4px}
header .summary{margin-top:6px}
.badge{font-size:30px;font-weight:800;letter-spacing:.06em;color:#fff;
 padding:12px 26px;border-radius:10px;white-space:nowrap}
.valid{background:#2ca02c}.invalid{background:#d62728}
.unknown{background:#e08e0b}
main{max-width:1100px;margin:0 auto;padding:8px 24px 40px}
section{background:#fff;border:1px solid #e1e3e8;border-radius:8px;
 padding:14px 20px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:15px;margin:14px 0 6px}
.counts{display:flex;gap:10px}
.count{flex:1;text-align:center;background:#f3f4f6;border-radius:6px;
 padding:8px 4px;color:#555}
.count b{display:block;font-size:24px;color:#222}
table{border-collapse:collapse}
th,td{padding:4px 12px 4px 0;border-bottom:1px solid #eee;text-align:left;
 vertical-align:top}
th{color:#555;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.sw{display:inline-block;width:11px;height:11px;border-radius:2px;
 margin-right:6px;vertical-align:-1px}
.track{position:relative;width:220px;height:10px;background:#eceef1;
 border-radius:3px;margin-top:4px}
.track span{position:absolute;top:0;bottom:0;border-radius:2px;min-width:2px}
.plot{display:block;margin:6px 0}
.plot img{width:100%;height:auto;border:1px solid #eee;border-radius:4px}
.caption{color:#666;font-size:13px}
pre{background:#1f2125;color:#e6e6e6;padding:10px 12px;border-radius:6px;
 overflow-x:auto;font-size:12.5px;line-height:1.35}
.anomaly{border-left:4px solid #d62728;padding-left:12px;margin:12px 0}
.notes{white-space:pre-wrap}
footer{color:#888;font-size:12px;text-align:center;margin-top:24px}
)css";

std::string Fixed(double value, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

std::string General(double value) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%g", value);
  return buf;
}

const char* BadgeClass(Validity validity) {
  switch (validity) {
    case Validity::kValid:
      return "valid";
    case Validity::kInvalid:
      return "invalid";
    case Validity::kUnknown:
      break;
  }
  return "unknown";
}

const char* BadgeText(Validity validity) {
  switch (validity) {
    case Validity::kValid:
      return "VALID";
    case Validity::kInvalid:
      return "INVALID";
    case Validity::kUnknown:
      break;
  }
  return "UNKNOWN";
}

std::string Link(const std::string& file) {
  return "<a href=\"" + XmlEscape(HrefFor(file)) + "\">" + XmlEscape(file) +
         "</a>";
}

std::string Row(const std::vector<std::string>& cells, const char* tag) {
  std::string row = "<tr>";
  for (const std::string& cell : cells) {
    row += std::string("<") + tag + ">" + cell + "</" + tag + ">";
  }
  return row + "</tr>\n";
}

std::string Header(const ReportInput& in) {
  return "<header><div class=\"badge " +
         std::string(BadgeClass(in.result.validity)) + "\">" +
         BadgeText(in.result.validity) +
         "</div><div><h1>raftkv-jepsen: " + XmlEscape(in.workload) + " under " +
         XmlEscape(in.nemesis) + "</h1><div class=\"sub\">seed " +
         std::to_string(in.seed) + " &middot; " + std::to_string(in.nodes) +
         " nodes &middot; " + General(in.time_limit_s) +
         " s</div><div class=\"summary\">" + XmlEscape(in.result.summary) +
         "</div></div></header>\n";
}

std::string Count(const std::string& label, uint64_t value,
                  const char* color = nullptr) {
  std::string style =
      color == nullptr ? "" : std::string(" style=\"color:") + color + "\"";
  return "<div class=\"count\"><b" + style + ">" + std::to_string(value) +
         "</b>" + label + "</div>";
}

std::string Counts(const ReportInput& in, size_t faults) {
  const CheckResult& r = in.result;
  return "<section><div class=\"counts\">" + Count("operations", r.ops) +
         Count("ok", r.ok, OutcomeColor(EventType::kOk)) +
         Count("fail", r.fail, OutcomeColor(EventType::kFail)) +
         Count("info (unknown)", r.info, OutcomeColor(EventType::kInfo)) +
         Count("faults", faults) +
         Count("anomalies", r.anomalies.size(),
               r.anomalies.empty() ? nullptr : "#d62728") +
         "</div></section>\n";
}

// The checker's figures and the properties it checked (watch and lease
// workloads); nothing for the others.
std::string Checks(const CheckResult& result) {
  if (result.figures.empty() && result.checks.empty()) return "";
  std::string html = "<section><h2>What the checker looked at</h2>\n";
  if (!result.figures.empty()) {
    html += "<table>";
    for (const auto& [name, value] : result.figures) {
      html += Row({XmlEscape(name), std::to_string(value)}, "td");
    }
    html += "</table>\n";
  }
  if (!result.checks.empty()) {
    html += "<ul>";
    for (const std::string& line : result.checks) {
      html += "<li>" + XmlEscape(line) + "</li>";
    }
    html += "</ul>\n";
  }
  return html + "</section>\n";
}

std::string Plots() {
  return "<section><h2>What the cluster did</h2>"
         "<a class=\"plot\" href=\"latency.svg\"><img src=\"latency.svg\" "
         "alt=\"latency of every operation\"></a>"
         "<a class=\"plot\" href=\"rate.svg\"><img src=\"rate.svg\" "
         "alt=\"completions per second\"></a><div class=\"caption\">"
         "Shaded bands: faults, from their start (solid edge) to the heal "
         "(dashed edge). Green: ok; red: fail (definitely not applied); "
         "orange: info (outcome unknown, e.g. a timeout).</div></section>\n";
}

// A small bar showing where [start, end] lies within [0, total].
std::string Track(double start_s, double end_s, double total_s,
                  const std::string& color) {
  double total = std::max(total_s, 1e-9);
  double left = std::clamp(start_s / total * 100, 0.0, 100.0);
  double width = std::clamp((end_s - start_s) / total * 100, 0.0, 100 - left);
  return "<div class=\"track\"><span style=\"left:" + Fixed(left, 1) +
         "%;width:" + Fixed(width, 1) + "%;background:" + color +
         "\"></span></div>";
}

std::string Faults(const std::vector<FaultInterval>& faults, double end_s) {
  std::string html =
      "<section><h2>Faults (" + std::to_string(faults.size()) + ")</h2>\n";
  if (faults.empty()) {
    return html + "<p>The nemesis injected no faults.</p></section>\n";
  }
  html += "<table>" + Row({"#", "fault", "description", "heal", "start (s)",
                           "end (s)", "duration (s)", "when"},
                          "th");
  for (size_t i = 0; i < faults.size(); ++i) {
    const FaultInterval& f = faults[i];
    const std::string color = FaultColor(f.f);
    html +=
        Row({std::to_string(i + 1),
             "<span class=\"sw\" style=\"background:" + color + "\"></span>" +
                 XmlEscape(f.f),
             XmlEscape(f.description), XmlEscape(f.heal), Fixed(f.start_s, 3),
             f.healed ? Fixed(f.end_s, 3) : "not healed",
             Fixed(f.end_s - f.start_s, 3),
             Track(f.start_s, f.end_s, end_s, color)},
            "td");
  }
  return html + "</table></section>\n";
}

std::string Latency(double ms) {
  return ms >= 1000 ? Fixed(ms / 1000, 2) + " s" : Fixed(ms, 1) + " ms";
}

std::string Operations(const std::vector<CompletedOp>& ops) {
  std::string html =
      "<section><h2>Operations by kind</h2>\n<table>" +
      Row({"f", "ok", "fail", "info", "p50 (ok)", "p99 (ok)", "max (ok)"},
          "th");
  for (const auto& [f, s] : StatsByFunction(ops)) {
    html += Row({XmlEscape(f), std::to_string(s.ok), std::to_string(s.fail),
                 std::to_string(s.info), Latency(s.p50_ms), Latency(s.p99_ms),
                 Latency(s.max_ms)},
                "td");
  }
  return html + "</table></section>\n";
}

std::string Anomalies(const CheckResult& result) {
  std::string html = "<section><h2>Anomalies (" +
                     std::to_string(result.anomalies.size()) + ")</h2>\n";
  if (result.anomalies.empty()) {
    return html + "<p>The checker found none.</p></section>\n";
  }
  int number = 0;
  for (const Anomaly& a : result.anomalies) {
    std::string slice;
    for (const Event& event : a.slice) slice += ToJsonLine(event) + "\n";
    html += "<div class=\"anomaly\"><h3>" + std::to_string(++number) + ". " +
            XmlEscape(a.kind) +
            (a.key.empty() ? "" : " on key " + XmlEscape(a.key)) + "</h3><p>" +
            XmlEscape(a.description) + "</p>";
    if (!a.rendering.empty()) {
      html += "<pre>" + XmlEscape(a.rendering) + "</pre>";
    }
    if (!a.slice.empty()) {
      html += "<details><summary>The history around it (" +
              std::to_string(a.slice.size()) + " events)</summary><pre>" +
              XmlEscape(slice) + "</pre></details>";
    }
    html += "</div>\n";
  }
  return html + "</section>\n";
}

std::string Parameters(const ReportInput& in, size_t completed) {
  std::string html = "<section><h2>Parameters</h2>\n<table>";
  html += Row({"workload", XmlEscape(in.workload)}, "td");
  html += Row({"nemesis", XmlEscape(in.nemesis)}, "td");
  html += Row({"seed", std::to_string(in.seed)}, "td");
  html += Row({"nodes", std::to_string(in.nodes)}, "td");
  html += Row({"time limit", General(in.time_limit_s) + " s"}, "td");
  html += Row({"rate", General(in.rate) + " ops/s"}, "td");
  html += Row({"concurrency", std::to_string(in.concurrency)}, "td");
  html += Row(
      {"history", std::to_string(in.history.size()) + " events, " +
                      std::to_string(completed) + " completed operations, " +
                      Fixed(HistoryEndSeconds(in.history), 3) + " s"},
      "td");
  html += "</table>\n";
  if (!in.notes.empty()) {
    html += "<h3>Notes</h3><div class=\"notes\">" + XmlEscape(in.notes) +
            "</div>\n";
  }
  return html + "</section>\n";
}

std::string Files(const ReportInput& in) {
  std::string html = "<section><h2>Files</h2>\n<ul>";
  html +=
      "<li>" + Link("history.jsonl") + ": every event, one JSON per line</li>";
  html +=
      "<li>" + Link("results.json") + ": the verdict, machine-readable</li>";
  html += "<li>" + Link("latency.svg") + " and " + Link("rate.svg") + "</li>";
  for (const std::string& log : in.node_logs) {
    html += "<li>" + Link(log) + "</li>";
  }
  return html + "</ul></section>\n";
}

}  // namespace

std::string HrefFor(const std::string& file_name) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : file_name) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                 c == '~' || c == '/';
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string IndexHtml(const ReportInput& input,
                      const std::vector<CompletedOp>& ops,
                      const std::vector<FaultInterval>& faults) {
  std::string title = "raftkv-jepsen " + input.workload + " / " +
                      input.nemesis + " seed " + std::to_string(input.seed) +
                      ": " + BadgeText(input.result.validity);
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<title>" +
         XmlEscape(title) + "</title>\n<style>" + kStyle +
         "</style></head>\n<body>\n" + Header(input) + "<main>\n" +
         Counts(input, faults.size()) + Checks(input.result) + Plots() +
         Faults(faults, HistoryEndSeconds(input.history)) +
         Anomalies(input.result) + Operations(ops) +
         Parameters(input, ops.size()) + Files(input) +
         "<footer>raftkv-jepsen report</footer>\n</main>\n</body></html>\n";
}

}  // namespace raftkv::jepsen
