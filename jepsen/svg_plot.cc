// SVG canvas, scales, axes, legends, markers and fault bands for the
// report's charts. Must never emit unescaped text or raw doubles.
#include "jepsen/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace raftkv::jepsen {
namespace {

constexpr double kLegendRow = 17;
constexpr double kLaneHeight = 13;
constexpr int kLabelLanes = 3;
constexpr double kLabelCharWidth = 6.5;  // bold 10.5 px, generous
constexpr char kAxisColor[] = "#888";
constexpr char kGridColor[] = "#ececec";
constexpr char kTextColor[] = "#333";

// A tick label: "0", "0.5", "20", "1500".
std::string TickLabel(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", value);
  return buf;
}

std::string Attr(const char* name, const std::string& value) {
  return std::string(" ") + name + "=\"" + XmlEscape(value) + "\"";
}

}  // namespace

std::string SvgNumber(double value) {
  double rounded = std::round(value * 10) / 10;
  if (rounded == 0 || !std::isfinite(rounded)) return "0";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", rounded);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) {
    s.resize(s.size() - 2);
  }
  return s;
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

double Scale::Map(double value) const {
  double t = 0;
  if (log) {
    double l0 = std::log10(lo), l1 = std::log10(hi);
    double v = std::log10(std::max(value, lo));
    t = l1 > l0 ? (v - l0) / (l1 - l0) : 0;
  } else {
    t = hi > lo ? (value - lo) / (hi - lo) : 0;
  }
  return p_lo + t * (p_hi - p_lo);
}

std::vector<double> LinearTicks(double max, int target) {
  if (!(max > 0)) max = 1;
  double raw = max / std::max(target, 1);
  double magnitude = std::pow(10, std::floor(std::log10(raw)));
  double norm = raw / magnitude;
  double step = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10;
  step *= magnitude;
  int count = static_cast<int>(std::ceil(max / step - 1e-9));
  std::vector<double> ticks;
  for (int i = 0; i <= std::max(count, 1); ++i) ticks.push_back(i * step);
  return ticks;
}

std::vector<double> DecadeTicks(double lo, double hi) {
  int first = static_cast<int>(std::floor(std::log10(lo) + 1e-9));
  int last = static_cast<int>(std::ceil(std::log10(hi) - 1e-9));
  if (last <= first) last = first + 1;
  std::vector<double> ticks;
  for (int e = first; e <= last; ++e) ticks.push_back(std::pow(10.0, e));
  return ticks;
}

std::string FaultColor(const std::string& f) {
  if (f == "partition") return "#7b4fc4";
  if (f == "kill") return "#8c564b";
  if (f == "pause") return "#1f77b4";
  if (f == "clock") return "#17becf";
  if (f == "member") return "#bcbd22";
  return "#7f7f7f";
}

SvgCanvas::SvgCanvas(int width, int height, const std::string& title)
    : width_(width), height_(height) {
  Text(16, 22, title, "start", " font-size=\"15\" font-weight=\"bold\"");
}

void SvgCanvas::Rect(double x, double y, double w, double h,
                     const std::string& attrs) {
  body_ += "<rect x=\"" + SvgNumber(x) + "\" y=\"" + SvgNumber(y) +
           "\" width=\"" + SvgNumber(w) + "\" height=\"" + SvgNumber(h) + "\"" +
           attrs + "/>\n";
}

void SvgCanvas::Line(double x1, double y1, double x2, double y2,
                     const std::string& attrs) {
  body_ += "<line x1=\"" + SvgNumber(x1) + "\" y1=\"" + SvgNumber(y1) +
           "\" x2=\"" + SvgNumber(x2) + "\" y2=\"" + SvgNumber(y2) + "\"" +
           attrs + "/>\n";
}

void SvgCanvas::Text(double x, double y, const std::string& text,
                     const std::string& anchor, const std::string& attrs) {
  body_ += "<text x=\"" + SvgNumber(x) + "\" y=\"" + SvgNumber(y) + "\"" +
           Attr("text-anchor", anchor) + attrs + ">" + XmlEscape(text) +
           "</text>\n";
}

void SvgCanvas::Path(const std::string& d, const std::string& attrs) {
  body_ += "<path d=\"" + d + "\"" + attrs + "/>\n";
}

void SvgCanvas::TimeAxis(const Frame& frame, const Scale& x,
                         const std::vector<double>& ticks) {
  const std::string grid = Attr("stroke", kGridColor);
  const std::string axis = Attr("stroke", kAxisColor);
  for (double tick : ticks) {
    double px = x.Map(tick);
    Line(px, frame.top, px, frame.bottom, grid);
    Line(px, frame.bottom, px, frame.bottom + 5, axis);
    Text(px, frame.bottom + 17, TickLabel(tick), "middle",
         Attr("fill", kTextColor));
  }
  Text((frame.left + frame.right) / 2, frame.bottom + 36, "time (s)", "middle",
       Attr("fill", kTextColor));
}

void SvgCanvas::ValueAxis(const Frame& frame, const Scale& y,
                          const std::vector<double>& ticks,
                          const std::vector<std::string>& labels,
                          const std::string& title) {
  const std::string grid = Attr("stroke", kGridColor);
  const std::string axis = Attr("stroke", kAxisColor);
  for (size_t i = 0; i < ticks.size(); ++i) {
    double py = y.Map(ticks[i]);
    Line(frame.left, py, frame.right, py, grid);
    Line(frame.left - 5, py, frame.left, py, axis);
    if (i < labels.size()) {
      Text(frame.left - 8, py + 4, labels[i], "end", Attr("fill", kTextColor));
    }
  }
  double cy = (frame.top + frame.bottom) / 2;
  Text(16, cy, title, "middle",
       Attr("fill", kTextColor) +
           Attr("transform", "rotate(-90 16 " + SvgNumber(cy) + ")"));
}

void SvgCanvas::FaultBands(const Frame& frame, const Scale& x,
                           const std::vector<FaultInterval>& faults) {
  for (const FaultInterval& fault : faults) {
    const std::string color = FaultColor(fault.f);
    double x0 = x.Map(fault.start_s);
    double x1 = std::max(x.Map(fault.end_s), x0 + 1.5);
    std::string tip =
        fault.f + ": " + fault.description + " (" + SvgNumber(fault.start_s) +
        "s to " +
        (fault.healed ? SvgNumber(fault.end_s) + "s)" : "end, not healed)");
    body_ += "<rect class=\"fault\" x=\"" + SvgNumber(x0) + "\" y=\"" +
             SvgNumber(frame.top) + "\" width=\"" + SvgNumber(x1 - x0) +
             "\" height=\"" + SvgNumber(frame.bottom - frame.top) + "\"" +
             Attr("fill", color) + " fill-opacity=\"0.13\"><title>" +
             XmlEscape(tip) + "</title></rect>\n";
    Line(x0, frame.top, x0, frame.bottom,
         Attr("stroke", color) + " stroke-opacity=\"0.6\"");
    if (fault.healed) {
      Line(x1, frame.top, x1, frame.bottom,
           Attr("stroke", color) +
               " stroke-opacity=\"0.6\" stroke-dasharray=\"3 3\"");
    }
  }
}

void SvgCanvas::FaultLabels(const Frame& frame, const Scale& x,
                            const std::vector<FaultInterval>& faults) {
  std::vector<double> lane_end(kLabelLanes, -1e9);  // right end, pixels
  for (const FaultInterval& fault : faults) {
    const double left = x.Map(fault.start_s) + 3;
    auto lane = std::find_if(lane_end.begin(), lane_end.end(),
                             [left](double end) { return end < left; });
    if (lane == lane_end.end()) continue;
    *lane = left + kLabelCharWidth * fault.f.size() + 4;
    Text(left, frame.top + 13 + (lane - lane_end.begin()) * kLaneHeight,
         fault.f, "start",
         Attr("fill", FaultColor(fault.f)) +
             " font-size=\"10.5\" font-weight=\"bold\" stroke=\"#fff\""
             " stroke-width=\"3\" stroke-opacity=\"0.85\""
             " paint-order=\"stroke\"");
  }
}

void SvgCanvas::Legend(double x, double y,
                       const std::vector<LegendEntry>& entries) {
  using Swatch = LegendEntry::Swatch;
  for (const LegendEntry& entry : entries) {
    double cy = y - 4;  // vertical centre of the swatch
    const std::string color = Attr("fill", entry.color);
    switch (entry.swatch) {
      case Swatch::kHeading:  // an empty heading is a gap
        if (!entry.label.empty()) {
          Text(x, y, entry.label, "start",
               Attr("fill", kTextColor) + " font-weight=\"bold\"");
        }
        y += kLegendRow;
        continue;
      case Swatch::kBox:
        Rect(x, cy - 5, 10, 10, color);
        break;
      case Swatch::kLine:
        Line(x - 2, cy, x + 12, cy,
             Attr("stroke", entry.color) + " stroke-width=\"2\"");
        break;
      case Swatch::kMarker:  // drawn at the origin, moved and enlarged
        Path(MarkerPath(entry.marker, 0, 0),
             MarkerAttrs(entry.marker, "#555") + " transform=\"translate(" +
                 SvgNumber(x + 5) + " " + SvgNumber(cy) + ") scale(1.6)\"");
        break;
      case Swatch::kBand:
        Rect(x - 1, cy - 6, 12, 12,
             color + " fill-opacity=\"0.25\"" + Attr("stroke", entry.color));
        break;
    }
    Text(x + 18, y, entry.label, "start", Attr("fill", kTextColor));
    y += kLegendRow;
  }
}

std::string SvgCanvas::Finish() {
  std::string w = std::to_string(width_), h = std::to_string(height_);
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + w +
         "\" height=\"" + h + "\" viewBox=\"0 0 " + w + " " + h +
         "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n"
         "<rect width=\"" +
         w + "\" height=\"" + h + "\" fill=\"#fff\"/>\n" + body_ + "</svg>\n";
}

std::string MarkerPath(Marker marker, double x, double y) {
  switch (marker) {
    case Marker::kCircle:
    case Marker::kSquare:
      return "M" + SvgNumber(x) + " " + SvgNumber(y) + "h0";
    case Marker::kDiamond:
      return "M" + SvgNumber(x) + " " + SvgNumber(y - 2.8) +
             "l2.8 2.8-2.8 2.8-2.8-2.8z";
    case Marker::kTriangle:
      return "M" + SvgNumber(x) + " " + SvgNumber(y - 2.8) + "l2.6 4.6h-5.2z";
    case Marker::kCross:
      return "M" + SvgNumber(x - 2) + " " + SvgNumber(y - 2) + "l4 4m0-4l-4 4";
  }
  return "";
}

std::string MarkerAttrs(Marker marker, const std::string& color) {
  switch (marker) {
    case Marker::kCircle:
      return " fill=\"none\"" + Attr("stroke", color) +
             " stroke-width=\"4.4\" stroke-linecap=\"round\"";
    case Marker::kSquare:
      return " fill=\"none\"" + Attr("stroke", color) +
             " stroke-width=\"3.8\" stroke-linecap=\"square\"";
    case Marker::kCross:
      return " fill=\"none\"" + Attr("stroke", color) + " stroke-width=\"1.3\"";
    case Marker::kDiamond:
    case Marker::kTriangle:
      break;
  }
  return Attr("fill", color);
}

std::vector<LegendEntry> FaultLegend(const std::vector<FaultInterval>& faults) {
  std::vector<LegendEntry> entries;
  std::vector<std::string> seen;
  for (const FaultInterval& fault : faults) {
    if (std::find(seen.begin(), seen.end(), fault.f) != seen.end()) continue;
    seen.push_back(fault.f);
    if (entries.empty()) {
      entries.push_back(
          {LegendEntry::Swatch::kHeading, "", Marker::kCircle, "faults"});
    }
    entries.push_back({LegendEntry::Swatch::kBand, FaultColor(fault.f),
                       Marker::kCircle, fault.f});
  }
  return entries;
}

}  // namespace raftkv::jepsen
