// WriteReport and results.json: renders every file of the report in memory,
// then writes each one next to its final name and renames it into place,
// so a reader never sees a half-written file. Must never touch files in
// OUT other than the four it owns.
#include "jepsen/report.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "jepsen/report_html.h"
#include "jepsen/report_model.h"
#include "jepsen/report_plots.h"

namespace raftkv::jepsen {
namespace {

// A JSON number; null for NaN and infinities, which JSON cannot express.
std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%.9g", value);
  return buf;
}

std::string JsonValidity(Validity validity) {
  switch (validity) {
    case Validity::kValid:
      return "true";
    case Validity::kInvalid:
      return "false";
    case Validity::kUnknown:
      break;
  }
  return "\"unknown\"";
}

std::string FaultsJson(const std::vector<FaultInterval>& faults) {
  std::string json = "[";
  for (size_t i = 0; i < faults.size(); ++i) {
    const FaultInterval& f = faults[i];
    json += std::string(i == 0 ? "\n" : ",\n") +
            "    {\"f\": " + JsonQuote(f.f) +
            ", \"description\": " + JsonQuote(f.description) +
            ", \"start_s\": " + JsonNumber(f.start_s) +
            ", \"end_s\": " + JsonNumber(f.end_s) +
            ", \"healed\": " + (f.healed ? "true" : "false") + "}";
  }
  return json + (faults.empty() ? "]" : "\n  ]");
}

std::string AnomalyJson(const Anomaly& a) {
  std::string json = "    {\"kind\": " + JsonQuote(a.kind) +
                     ", \"key\": " + JsonQuote(a.key) +
                     ",\n     \"description\": " + JsonQuote(a.description) +
                     ",\n     \"rendering\": " + JsonQuote(a.rendering) +
                     ",\n     \"slice\": [";
  for (size_t i = 0; i < a.slice.size(); ++i) {
    json += (i == 0 ? "\n       " : ",\n       ") + ToJsonLine(a.slice[i]);
  }
  return json + "]}";
}

std::string AnomaliesJson(const std::vector<Anomaly>& anomalies) {
  std::string json = "[";
  for (size_t i = 0; i < anomalies.size(); ++i) {
    json += (i == 0 ? "\n" : ",\n") + AnomalyJson(anomalies[i]);
  }
  return json + (anomalies.empty() ? "]" : "\n  ]");
}

// Writes `contents` to dir/name through dir/name.tmp and a rename.
Status WriteFile(const std::filesystem::path& dir, const std::string& name,
                 const std::string& contents) {
  const std::filesystem::path final_path = dir / name;
  const std::filesystem::path tmp_path = dir / (name + ".tmp");
  {
    std::ofstream out(tmp_path, std::ios::binary | std::ios::trunc);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.close();
    if (!out) {
      return Status::IOError("cannot write " + tmp_path.string() + ": " +
                             std::strerror(errno));
    }
  }
  std::error_code error;
  std::filesystem::rename(tmp_path, final_path, error);
  if (error) {
    std::filesystem::remove(tmp_path, error);
    return Status::IOError("cannot rename " + tmp_path.string() + " to " +
                           final_path.string() + ": " + error.message());
  }
  return Status::OK();
}

std::string ResultsJson(const ReportInput& in,
                        const std::vector<FaultInterval>& faults) {
  const CheckResult& r = in.result;
  return "{\n  \"valid\": " + JsonValidity(r.validity) +
         ",\n  \"workload\": " + JsonQuote(in.workload) +
         ",\n  \"nemesis\": " + JsonQuote(in.nemesis) +
         ",\n  \"seed\": " + std::to_string(in.seed) +
         ",\n  \"nodes\": " + std::to_string(in.nodes) +
         ",\n  \"time_limit_s\": " + JsonNumber(in.time_limit_s) +
         ",\n  \"rate\": " + JsonNumber(in.rate) +
         ",\n  \"concurrency\": " + std::to_string(in.concurrency) +
         ",\n  \"ops\": " + std::to_string(r.ops) +
         ",\n  \"ok\": " + std::to_string(r.ok) +
         ",\n  \"fail\": " + std::to_string(r.fail) +
         ",\n  \"info\": " + std::to_string(r.info) +
         ",\n  \"faults\": " + std::to_string(faults.size()) +
         ",\n  \"fault_intervals\": " + FaultsJson(faults) +
         ",\n  \"anomalies\": " + AnomaliesJson(r.anomalies) +
         ",\n  \"summary\": " + JsonQuote(r.summary) +
         ",\n  \"notes\": " + JsonQuote(in.notes) + "\n}\n";
}

}  // namespace

std::string ResultsJson(const ReportInput& input) {
  return ResultsJson(input, FaultIntervals(input.history));
}

Status WriteReport(const ReportInput& input) {
  std::error_code error;
  const std::filesystem::path dir(input.out_dir);
  if (input.out_dir.empty() || !std::filesystem::is_directory(dir, error)) {
    return Status::InvalidArgument("report directory does not exist: " +
                                   input.out_dir);
  }
  const std::vector<CompletedOp> ops = CompletedOps(input.history);
  const std::vector<FaultInterval> faults = FaultIntervals(input.history);
  const double end_s = HistoryEndSeconds(input.history);
  RAFTKV_RETURN_IF_ERROR(
      WriteFile(dir, "results.json", ResultsJson(input, faults)));
  RAFTKV_RETURN_IF_ERROR(
      WriteFile(dir, "latency.svg", LatencySvg(ops, faults, end_s)));
  RAFTKV_RETURN_IF_ERROR(
      WriteFile(dir, "rate.svg", RateSvg(ops, faults, end_s)));
  return WriteFile(dir, "index.html", IndexHtml(input, ops, faults));
}

}  // namespace raftkv::jepsen
