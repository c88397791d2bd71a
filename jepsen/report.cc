// WriteReport and results.json: renders every file of the report in memory
// (results.json with nlohmann-json, keys by the key/key_base64 rule of
// util/json_bytes.h), then writes each one next to its final name and
// renames it into place, so a reader never sees a half-written file. Must
// never touch files in OUT other than the four it owns.
#include "jepsen/report.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "jepsen/report_html.h"
#include "jepsen/report_model.h"
#include "jepsen/report_plots.h"
#include "util/json_bytes.h"

namespace raftkv::jepsen {
namespace {

using Json = nlohmann::ordered_json;

// A JSON number; null for NaN and infinities, which JSON cannot express.
Json Number(double value) {
  return std::isfinite(value) ? Json(value) : Json(nullptr);
}

// true, false or "unknown" (check_result.h).
Json ValidityJson(Validity validity) {
  switch (validity) {
    case Validity::kValid:
      return true;
    case Validity::kInvalid:
      return false;
    case Validity::kUnknown:
      break;
  }
  return "unknown";
}

Json FaultsJson(const std::vector<FaultInterval>& faults) {
  Json all = Json::array();
  for (const FaultInterval& f : faults) {
    all.push_back({{"f", f.f},
                   {"description", f.description},
                   {"heal", f.heal},
                   {"start_s", Number(f.start_s)},
                   {"end_s", Number(f.end_s)},
                   {"healed", f.healed}});
  }
  return all;
}

Json AnomalyJson(const Anomaly& a) {
  Json j = {{"kind", a.kind}};
  PutBytes(j, "key", a.key);
  j["description"] = a.description;
  j["rendering"] = a.rendering;
  Json slice = Json::array();
  for (const Event& e : a.slice) slice.push_back(EventToJson(e));
  j["slice"] = std::move(slice);
  return j;
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
  Json anomalies = Json::array();
  for (const Anomaly& a : r.anomalies) anomalies.push_back(AnomalyJson(a));
  Json j = {{"valid", ValidityJson(r.validity)},
            {"workload", in.workload},
            {"nemesis", in.nemesis},
            {"seed", in.seed},
            {"nodes", in.nodes},
            {"time_limit_s", Number(in.time_limit_s)},
            {"rate", Number(in.rate)},
            {"concurrency", in.concurrency},
            {"ops", r.ops},
            {"ok", r.ok},
            {"fail", r.fail},
            {"info", r.info}};
  if (!r.figures.empty()) {
    Json figures = Json::object();
    for (const auto& [name, value] : r.figures) figures[name] = value;
    j["figures"] = std::move(figures);
  }
  if (!r.checks.empty()) j["checks"] = r.checks;
  j["faults"] = faults.size();
  j["fault_intervals"] = FaultsJson(faults);
  j["anomalies"] = std::move(anomalies);
  j["summary"] = r.summary;
  j["notes"] = in.notes;
  return DumpJson(j, 2) + "\n";
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
