// index.html of the Jepsen report: one self-contained page (inline CSS, no
// scripts, no external resources) with the verdict badge, the counts, the
// parameters, both plots, the fault list, each anomaly's rendering and
// links to every file of the run. Pure function of its inputs: must never
// do I/O or embed anything that makes two runs of the same input differ
// (no timestamps).
#pragma once

#include <string>
#include <vector>

#include "jepsen/report.h"
#include "jepsen/report_model.h"

namespace raftkv::jepsen {

// The page. `ops` and `faults` are CompletedOps / FaultIntervals of
// input.history.
std::string IndexHtml(const ReportInput& input,
                      const std::vector<CompletedOp>& ops,
                      const std::vector<FaultInterval>& faults);

// A relative file name as an href value: percent-encodes everything but
// letters, digits and -._~/ (so "n 1#.log" stays a file name).
std::string HrefFor(const std::string& file_name);

}  // namespace raftkv::jepsen
