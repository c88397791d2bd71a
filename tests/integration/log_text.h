// Reading and counting what a command printed or a node logged, for the
// integration tests' assertions. Must never depend on anything but its
// arguments (and, for ReadFile, the file named).
#pragma once

#include <cstddef>
#include <fstream>
#include <iterator>
#include <string>

namespace raftkv::integration {

// The whole file at `path` ("" if it cannot be read).
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

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
