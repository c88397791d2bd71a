// The crash child's side of the power-loss simulation (power_loss.h): once
// started, every change the process makes under the simulated disk (files
// created or truncated, hard links, renames, removals, directories made or
// removed) and every fsync/fdatasync of a file or directory there is
// appended to an event log, whichever code made it: RocksDB, storage/'s own
// files (staging directories, STAGED, the data dir's creation) or the C++
// library. It works by replacing those C library functions in the child
// binary (power_loss_tracker.cc, linked into storage_crash_child only).
//
// Entry changes and directory fsyncs are made and logged under one lock, so
// the log's order is the order they happened in; a kill can leave at most
// the one change in progress unlogged. A file is removed or replaced only
// after a hard link to it was made in the attic.
//
// Must never change what the process writes to the disk, or track anything
// outside it; aborts the process if the log cannot be written.
#pragma once

#include <string>

namespace raftkv::storage::crash {

// Tracks everything under the directory `root` (absolute) from now on,
// appending to `events_path` and keeping removed files in `attic` (an
// existing directory on the same file system, outside `root`). Call once,
// before any other thread exists.
void StartPowerLossTracking(const std::string& root,
                            const std::string& events_path,
                            const std::string& attic);

// From now on, SIGKILLs the process right after its `events`-th event
// (>= 1) is logged: a crash at an exact point between two system calls.
void KillAfterEvents(uint64_t events);

}  // namespace raftkv::storage::crash
