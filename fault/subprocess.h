// Child processes of the tools that inject faults into real clusters
// (raftkv-jepsen, raftkv-bench failover): short helper
// commands (ip, iptables-restore) run to completion, and long-lived
// children (raftkvd) spawned with their own process group, group id and
// environment.
//
// Must never signal or wait for a process it did not start, search PATH
// after fork (paths are resolved before), or leave a child running when its
// deadline has passed: a helper that overruns is SIGKILLed by its pid.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "util/status.h"

namespace raftkv::fault {

// Absolute path of `program`: itself if it contains a '/', else the first
// executable match in $PATH, /usr/sbin or /sbin. NotFound otherwise.
StatusOr<std::string> FindProgram(const std::string& program);

// Runs argv (argv[0] resolved by FindProgram) with `input` on its stdin and
// returns its combined stdout and stderr. IOError (with that output) when
// it exits non-zero; Timeout when it runs longer than `timeout` (it is then
// killed).
StatusOr<std::string> RunCommand(
    const std::vector<std::string>& argv, const std::string& input = "",
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

// "iptables -w -A X" style rendering of argv, for logs and notes.
std::string CommandLine(const std::vector<std::string>& argv);

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0]: an absolute path
  std::vector<std::string> env;   // "NAME=value", added to our environment
  std::string output_path;        // stdout and stderr appended here
  gid_t gid = 0;  // if non-zero, the child's real, effective and only group
};

// Starts a long-lived child in a new process group, with stdin from
// /dev/null and no file descriptors of ours but 0-2. It gets SIGKILL if the
// spawning thread exits (PR_SET_PDEATHSIG), so spawn only from a thread
// that outlives the child (e.g. the program's main thread). Returns its
// pid.
StatusOr<pid_t> Spawn(const SpawnOptions& options);

}  // namespace raftkv::fault
