// Runs the raftkvctl binary next to the running test (build/bin) as a user
// would, for the integration tests of its commands. Test-only; never talks
// to anything but the endpoints it is given.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace raftkv::integration {

struct CtlRun {
  int exit_code = -1;
  std::string out;
};

inline std::string RaftkvctlPath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / "raftkvctl").string();
}

// Runs raftkvctl with `args` (shell words, no quoting needed) against
// `endpoints`; stdout only.
inline CtlRun Ctl(const std::string& endpoints, const std::string& args) {
  const std::string cmd = RaftkvctlPath() + " --endpoints=" + endpoints +
                          " --deadline_ms=10000 " + args + " 2>/dev/null";
  CtlRun run;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    run.out.append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

inline std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace raftkv::integration
