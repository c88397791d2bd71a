// Checker of the set workload of raftkv-jepsen: clients add unique elements
// to named sets during the test, then read each set once or more at the end;
// every acknowledged add must be in the final read, and nothing else.
//
// Encoding in the history (the runner writes it, this file reads it):
//   add:   f = "add",  key = the set's name, value = the element, a decimal
//          string ("17").
//   read:  f = "read", key = the set's name, invoke value null; the ok
//          completion's value is the elements present, as decimal strings
//          joined by "," without spaces, in any order ("3,1,2"); "" or null
//          is the empty set. A token that is not an element some add
//          attempted (including an empty or non-decimal token) is
//          "unexpected".
// Outcomes, as in the register checker (linearizability.h): an ok add took
// effect; a failed add certainly did not (the workload records fail only
// for a request the cluster refused), so an element whose every add failed
// must never be read: if one is, that is the anomaly "failed-add-present",
// just as a read of a value only failed writes wrote is non-linearizable;
// an info add may take effect at any later time or never, so its element
// may or may not be read ("recovered" when it is, not an anomaly).
// Keys with a write, cas or delete belong to the register workload and are
// ignored here, as are nemesis events.
//
// Pure computation: never does I/O, never claims kValid for a set that has
// adds but no ok read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jepsen/check_result.h"
#include "jepsen/history.h"
#include "util/status.h"

namespace raftkv::jepsen {

// What the history says about one set. Element lists are sorted numerically
// and hold each element once.
struct SetTally {
  std::string set;
  uint64_t attempted = 0;     // distinct elements of add invocations
  uint64_t acknowledged = 0;  // distinct elements with an ok add
  bool has_final_read = false;
  // The final read: the ok read of the set invoked last.
  uint64_t final_read_size = 0;  // tokens in it, duplicates included
  // Acknowledged (add completed ok before the final read began) but absent
  // from the final read.
  std::vector<std::string> lost;
  // In some ok read but never attempted by any add.
  std::vector<std::string> unexpected;
  // Present more than once in a single ok read.
  std::vector<std::string> duplicated;
  // In the final read without an ok add, but with an info one (not an
  // anomaly: its outcome was unknown).
  std::vector<std::string> recovered;
  // In some ok read although every add of it failed (definitely not
  // applied): an anomaly.
  std::vector<std::string> failed_present;
};

// One tally per set, ordered by set name. InvalidArgument if the events do
// not pair up (see PairOperations in linearizability.h).
StatusOr<std::vector<SetTally>> TallySets(const History& history);

// kInvalid iff some set has a lost, unexpected, duplicated or failed-add-
// present element (one anomaly per set and kind, with the counts in its
// description); kUnknown if
// the history is malformed or a set has adds but no ok read; else kValid.
CheckResult CheckSet(const History& history);

}  // namespace raftkv::jepsen
