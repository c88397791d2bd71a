// Hand-written SVG charts for the Jepsen report: a canvas that accumulates
// elements, linear and log10 scales with tick placement, axes, legends,
// point markers and the translucent bands that show fault intervals.
// Knows nothing about histories beyond FaultInterval. Must never emit
// unescaped text or coordinates with more than one decimal (file size).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "jepsen/report_model.h"

namespace raftkv::jepsen {

// `value` with at most one decimal ("12.3", "40", "-2.5"); never "-0".
std::string SvgNumber(double value);
// Escapes & < > " ' for XML/HTML text and attribute values.
std::string XmlEscape(std::string_view text);

// Maps data values in [lo, hi] to pixels in [p_lo, p_hi] (p_hi < p_lo for a
// y axis that grows upwards). Log scales need lo > 0; values below lo are
// clamped to it.
struct Scale {
  double lo = 0, hi = 1;
  double p_lo = 0, p_hi = 1;
  bool log = false;
  double Map(double value) const;
};

// Ticks of a linear axis from 0 to at least `max`: 0, step, 2*step, ... with
// a 1/2/5 x 10^k step and at most about `target` ticks. The last tick is
// >= max, so it can serve as the axis end.
std::vector<double> LinearTicks(double max, int target);
// Decades 10^a .. 10^b covering [lo, hi] (lo > 0), at least two of them.
std::vector<double> DecadeTicks(double lo, double hi);

// Plot rectangle, in pixels from the top-left corner of the image.
struct Frame {
  double left = 0, top = 0, right = 0, bottom = 0;
};

// Point shapes, one per kind of operation.
enum class Marker { kCircle, kSquare, kDiamond, kTriangle, kCross };

// One legend line: a swatch (a filled square, a line, a marker or a
// translucent band) and its label; kHeading is a bold label alone.
struct LegendEntry {
  enum class Swatch { kHeading, kBox, kLine, kMarker, kBand };
  Swatch swatch = Swatch::kBox;
  std::string color;
  Marker marker = Marker::kCircle;
  std::string label;
};

// Colour of a fault's band (partition, kill, pause, clock, other).
std::string FaultColor(const std::string& f);

class SvgCanvas {
 public:
  // An empty white image with a title line at the top.
  SvgCanvas(int width, int height, const std::string& title);

  void Rect(double x, double y, double w, double h, const std::string& attrs);
  void Line(double x1, double y1, double x2, double y2,
            const std::string& attrs);
  // `anchor`: start, middle or end.
  void Text(double x, double y, const std::string& text,
            const std::string& anchor, const std::string& attrs = "");
  // A <path> with precomputed data (see MarkerPath, PolylinePath).
  void Path(const std::string& d, const std::string& attrs);

  // Grid lines, ticks and labels of the horizontal time axis (seconds).
  void TimeAxis(const Frame& frame, const Scale& x,
                const std::vector<double>& ticks);
  // Grid lines, ticks and `labels[i]` for `ticks[i]` of the vertical axis,
  // and the rotated axis title.
  void ValueAxis(const Frame& frame, const Scale& y,
                 const std::vector<double>& ticks,
                 const std::vector<std::string>& labels,
                 const std::string& title);
  // One translucent rect (class "fault") per interval, over the whole
  // height of the frame, with a solid start edge and a dashed heal edge.
  void FaultBands(const Frame& frame, const Scale& x,
                  const std::vector<FaultInterval>& faults);
  // Each fault's name at the top of its band, with a white halo: drawn
  // after the data so that points never hide it. A label that would overlap
  // an earlier one goes a line lower (up to 3 lines); a fault that finds no
  // free line keeps its band unlabelled (its colour is in the legend).
  void FaultLabels(const Frame& frame, const Scale& x,
                   const std::vector<FaultInterval>& faults);
  // Legend entries stacked downwards from (x, y).
  void Legend(double x, double y, const std::vector<LegendEntry>& entries);

  // The whole document, from "<svg" to "</svg>\n".
  std::string Finish();

 private:
  std::string body_;
  int width_, height_;
};

// Path data of one marker centred on (x, y), starting with "M". Circles,
// squares and crosses are stroked (see MarkerAttrs), the others filled.
std::string MarkerPath(Marker marker, double x, double y);
// Attributes that draw a path of `marker`s in `color`.
std::string MarkerAttrs(Marker marker, const std::string& color);

// Legend entries for the fault kinds present in `faults`, in first-seen
// order; empty if there are none.
std::vector<LegendEntry> FaultLegend(const std::vector<FaultInterval>& faults);

}  // namespace raftkv::jepsen
