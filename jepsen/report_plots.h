// The report's two charts, as complete SVG documents: latency.svg (every
// completed operation at its invocation time and latency, log scale) and
// rate.svg (completions per second by outcome). Both shade the fault
// intervals and share the same time axis and margins, so they line up when
// stacked in index.html. Pure functions; must never do I/O.
#pragma once

#include <string>
#include <vector>

#include "jepsen/report_model.h"

namespace raftkv::jepsen {

// One point per op (class "pts" paths, one "M" per point), coloured by
// outcome, shaped by f; one rect of class "fault" per fault interval.
// `end_s` is the length of the time axis (the end of the history).
std::string LatencySvg(const std::vector<CompletedOp>& ops,
                       const std::vector<FaultInterval>& faults, double end_s);

// Completions per second in 1-second buckets (wider if the test ran for
// more than 1000 s), one line per outcome; fault rects as above.
std::string RateSvg(const std::vector<CompletedOp>& ops,
                    const std::vector<FaultInterval>& faults, double end_s);

// Colour of an outcome in both charts and in index.html.
const char* OutcomeColor(EventType outcome);

}  // namespace raftkv::jepsen
