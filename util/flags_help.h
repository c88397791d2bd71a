// Keeps a program's --help to its own flags. librocksdb and glog define
// dozens of flags of their own that would otherwise flood --help; gflags'
// --helpon=FILE lists only the flags defined in FILE.cc.
#pragma once

#include <cstring>

namespace raftkv {

// Rewrites "--help"/"-help" in argv to "--helpon=<flags_file_basename>".
// Call before gflags::ParseCommandLineFlags. `replacement` must outlive the
// parse, e.g. a static string "--helpon=flags".
inline void RestrictHelpToOwnFlags(int argc, char** argv, char* replacement) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 ||
        std::strcmp(argv[i], "-help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      argv[i] = replacement;
    }
  }
}

}  // namespace raftkv
