// Counting what a command printed or a node logged, for the integration
// tests' assertions. Must never depend on anything but its arguments.
#pragma once

#include <cstddef>
#include <string>

namespace raftkv::integration {

// Occurrences of `what` in `text` (overlapping ones counted).
inline size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace raftkv::integration
