// latency.svg and rate.svg of the Jepsen report, drawn on SvgCanvas. Must
// never drop a completed operation from the latency plot: every op is one
// point, however crowded.
#include "jepsen/report_plots.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>

#include "jepsen/svg_plot.h"

namespace raftkv::jepsen {
namespace {

constexpr int kWidth = 1000;
constexpr int kLatencyHeight = 450;
constexpr int kRateHeight = 330;
// Same left and right edges in both charts: their time axes line up.
constexpr double kLeft = 72, kRight = 830, kTop = 36, kBottomMargin = 50;
constexpr double kLegendX = 852;
constexpr double kMinLatencyMs = 0.01;  // 10 us: floor of the log axis
constexpr int kMaxBuckets = 1000;
constexpr double kInset = 6;  // pixels between the latency axis ends and frame

// Outcomes in drawing order: ok underneath, rarer outcomes on top.
constexpr std::array<EventType, 3> kOutcomes = {
    EventType::kOk, EventType::kInfo, EventType::kFail};

int OutcomeIndex(EventType outcome) {
  return outcome == EventType::kOk ? 0 : outcome == EventType::kInfo ? 1 : 2;
}

Marker MarkerFor(const std::string& f, size_t order) {
  if (f == "read") return Marker::kCircle;
  if (f == "write") return Marker::kSquare;
  if (f == "cas") return Marker::kDiamond;
  if (f == "add") return Marker::kTriangle;
  if (f == "delete") return Marker::kCross;
  return static_cast<Marker>(order % 5);
}

Frame PlotFrame(int height) {
  return Frame{kLeft, kTop, kRight, height - kBottomMargin};
}

// The time axis: [0, end_s], ticks that fit inside it.
Scale TimeScale(const Frame& frame, double end_s, std::vector<double>* ticks) {
  double hi = std::max(end_s, 1e-3);
  *ticks = LinearTicks(hi, 12);
  while (ticks->size() > 1 && ticks->back() > hi * 1.0001) ticks->pop_back();
  return Scale{0, hi, frame.left, frame.right, false};
}

std::string LatencyLabel(double ms) {
  char buf[32];
  if (ms >= 1000) {
    std::snprintf(buf, sizeof(buf), "%g s", ms / 1000);
  } else {
    std::snprintf(buf, sizeof(buf), "%g ms", ms);
  }
  return buf;
}

std::string Counted(const std::string& label, uint64_t count) {
  return label + " (" + std::to_string(count) + ")";
}

// f values in first-seen order.
std::vector<std::string> Functions(const std::vector<CompletedOp>& ops) {
  std::vector<std::string> fs;
  for (const CompletedOp& op : ops) {
    if (std::find(fs.begin(), fs.end(), op.f) == fs.end()) fs.push_back(op.f);
  }
  return fs;
}

// Legend: outcomes with their counts, then the fault kinds.
std::vector<LegendEntry> OutcomeLegend(const std::vector<CompletedOp>& ops,
                                       LegendEntry::Swatch swatch) {
  std::array<uint64_t, 3> counts = {0, 0, 0};
  for (const CompletedOp& op : ops) ++counts[OutcomeIndex(op.outcome)];
  std::vector<LegendEntry> entries = {
      {LegendEntry::Swatch::kHeading, "", Marker::kCircle, "outcome"}};
  for (EventType outcome :
       {EventType::kOk, EventType::kFail, EventType::kInfo}) {
    entries.push_back(
        {swatch, OutcomeColor(outcome), Marker::kCircle,
         Counted(EventTypeName(outcome), counts[OutcomeIndex(outcome)])});
  }
  return entries;
}

void AppendLegend(std::vector<LegendEntry>* entries,
                  std::vector<LegendEntry> more) {
  if (more.empty()) return;
  if (!entries->empty()) {
    entries->push_back(
        {LegendEntry::Swatch::kHeading, "", Marker::kCircle, ""});
  }
  entries->insert(entries->end(), more.begin(), more.end());
}

// The latency axis: whole decades around the ops' latencies.
Scale LatencyScale(const Frame& frame, const std::vector<CompletedOp>& ops,
                   std::vector<double>* ticks) {
  double lo = 0, hi = 0;
  for (const CompletedOp& op : ops) {
    double ms = std::max(op.latency_ms(), kMinLatencyMs);
    lo = lo == 0 ? ms : std::min(lo, ms);
    hi = std::max(hi, ms);
  }
  if (ops.empty()) lo = 1, hi = 1000;
  *ticks = DecadeTicks(lo, hi);
  // Inset, so that points on the first or last decade stay off the frame.
  return Scale{ticks->front(), ticks->back(), frame.bottom - kInset,
               frame.top + kInset, true};
}

// One path per (outcome, f), one "M" per point; ok underneath.
void DrawPoints(const std::vector<CompletedOp>& ops,
                const std::vector<std::string>& fs, const Scale& x,
                const Scale& y, SvgCanvas* canvas) {
  std::map<std::pair<int, size_t>, std::string> series;
  for (const CompletedOp& op : ops) {
    size_t fi = std::find(fs.begin(), fs.end(), op.f) - fs.begin();
    series[{OutcomeIndex(op.outcome), fi}] += MarkerPath(
        MarkerFor(op.f, fi), x.Map(op.invoke_s), y.Map(op.latency_ms()));
  }
  for (EventType outcome : kOutcomes) {
    for (size_t fi = 0; fi < fs.size(); ++fi) {
      auto it = series.find({OutcomeIndex(outcome), fi});
      if (it == series.end()) continue;
      canvas->Path(it->second, " class=\"pts\" opacity=\"0.7\"" +
                                   MarkerAttrs(MarkerFor(fs[fi], fi),
                                               OutcomeColor(outcome)));
    }
  }
}

// Legend: one marker per f with its count.
std::vector<LegendEntry> OperationLegend(const std::vector<CompletedOp>& ops,
                                         const std::vector<std::string>& fs) {
  if (fs.empty()) return {};
  std::map<std::string, uint64_t> counts;
  for (const CompletedOp& op : ops) ++counts[op.f];
  std::vector<LegendEntry> entries = {
      {LegendEntry::Swatch::kHeading, "", Marker::kCircle, "operation"}};
  for (size_t fi = 0; fi < fs.size(); ++fi) {
    entries.push_back({LegendEntry::Swatch::kMarker, "", MarkerFor(fs[fi], fi),
                       Counted(fs[fi], counts[fs[fi]])});
  }
  return entries;
}

void DrawFrame(const Frame& frame, SvgCanvas* canvas) {
  canvas->Rect(frame.left, frame.top, frame.right - frame.left,
               frame.bottom - frame.top, " fill=\"none\" stroke=\"#888\"");
}

// Completions per second of each outcome, by completion time.
struct Rates {
  double bucket_s = 1;
  std::array<std::vector<double>, 3> per_outcome;  // by OutcomeIndex
};

Rates BucketRates(const std::vector<CompletedOp>& ops, double end_s) {
  Rates rates;
  rates.bucket_s = std::max(1.0, std::ceil(end_s / kMaxBuckets));
  const size_t buckets = std::max<size_t>(
      1, static_cast<size_t>(std::ceil(end_s / rates.bucket_s)));
  for (auto& r : rates.per_outcome) r.assign(buckets, 0);
  for (const CompletedOp& op : ops) {
    size_t b = std::min(buckets - 1,
                        static_cast<size_t>(op.complete_s / rates.bucket_s));
    rates.per_outcome[OutcomeIndex(op.outcome)][b] += 1 / rates.bucket_s;
  }
  return rates;
}

// A line through the middle of each bucket (the last one ends at x.hi).
std::string RatePath(const Rates& rates, int outcome, const Scale& x,
                     const Scale& y) {
  const std::vector<double>& r = rates.per_outcome[outcome];
  std::string d;
  for (size_t b = 0; b < r.size(); ++b) {
    double t = std::min((b + 0.5) * rates.bucket_s, x.hi);
    d += (b == 0   ? "M"
          : b == 1 ? "L"
                   : " ") +
         SvgNumber(x.Map(t)) + " " + SvgNumber(y.Map(r[b]));
  }
  return d;
}

}  // namespace

const char* OutcomeColor(EventType outcome) {
  switch (outcome) {
    case EventType::kOk:
      return "#2ca02c";
    case EventType::kFail:
      return "#e0245e";
    case EventType::kInfo:
      return "#ff9f1c";
    case EventType::kInvoke:
      break;
  }
  return "#7f7f7f";
}

std::string LatencySvg(const std::vector<CompletedOp>& ops,
                       const std::vector<FaultInterval>& faults, double end_s) {
  const Frame frame = PlotFrame(kLatencyHeight);
  std::vector<double> x_ticks, y_ticks;
  const Scale x = TimeScale(frame, end_s, &x_ticks);
  const Scale y = LatencyScale(frame, ops, &y_ticks);
  SvgCanvas canvas(kWidth, kLatencyHeight,
                   "Latency of client operations (" +
                       std::to_string(ops.size()) + " completed)");
  std::vector<std::string> y_labels;
  for (double tick : y_ticks) y_labels.push_back(LatencyLabel(tick));
  canvas.TimeAxis(frame, x, x_ticks);
  canvas.ValueAxis(frame, y, y_ticks, y_labels, "latency (log scale)");
  canvas.FaultBands(frame, x, faults);
  const std::vector<std::string> fs = Functions(ops);
  DrawPoints(ops, fs, x, y, &canvas);
  canvas.FaultLabels(frame, x, faults);
  DrawFrame(frame, &canvas);

  std::vector<LegendEntry> legend =
      OutcomeLegend(ops, LegendEntry::Swatch::kBox);
  AppendLegend(&legend, OperationLegend(ops, fs));
  AppendLegend(&legend, FaultLegend(faults));
  canvas.Legend(kLegendX, kTop + 10, legend);
  return canvas.Finish();
}

std::string RateSvg(const std::vector<CompletedOp>& ops,
                    const std::vector<FaultInterval>& faults, double end_s) {
  const Frame frame = PlotFrame(kRateHeight);
  std::vector<double> x_ticks;
  const Scale x = TimeScale(frame, end_s, &x_ticks);
  const Rates rates = BucketRates(ops, x.hi);
  double max_rate = 0;
  for (const auto& r : rates.per_outcome) {
    for (double v : r) max_rate = std::max(max_rate, v);
  }
  const std::vector<double> y_ticks = LinearTicks(max_rate, 6);
  const Scale y{0, y_ticks.back(), frame.bottom, frame.top, false};
  std::vector<std::string> y_labels;
  for (double tick : y_ticks) y_labels.push_back(SvgNumber(tick));

  char title[96];
  std::snprintf(title, sizeof(title), "Throughput (completions per %g s)",
                rates.bucket_s);
  SvgCanvas canvas(kWidth, kRateHeight, title);
  canvas.TimeAxis(frame, x, x_ticks);
  canvas.ValueAxis(frame, y, y_ticks, y_labels, "ops/s");
  canvas.FaultBands(frame, x, faults);
  for (EventType outcome : kOutcomes) {
    canvas.Path(RatePath(rates, OutcomeIndex(outcome), x, y),
                std::string(" class=\"rate\" fill=\"none\" stroke=\"") +
                    OutcomeColor(outcome) +
                    "\" stroke-width=\"1.6\" stroke-linejoin=\"round\"");
  }
  canvas.FaultLabels(frame, x, faults);
  DrawFrame(frame, &canvas);
  std::vector<LegendEntry> legend =
      OutcomeLegend(ops, LegendEntry::Swatch::kLine);
  AppendLegend(&legend, FaultLegend(faults));
  canvas.Legend(kLegendX, kTop + 10, legend);
  return canvas.Finish();
}

}  // namespace raftkv::jepsen
