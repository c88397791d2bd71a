// The crash test's power-loss simulation, parent side. The child
// (storage_crash_child, with power_loss_tracker.h) records every change to
// the directory tree of a simulated disk, and every fsync, as lines of an
// event log; after the child is killed, DiskModel replays that log over the
// state the disk had when the child started and rewrites the disk as a
// power loss could have left it:
//   - a file keeps only the bytes of its last fsync/fdatasync (a file never
//     synced is empty);
//   - in each directory, the entry changes (create, link, rename, remove)
//     made since the directory's last fsync survive only as a prefix, in
//     order: all, none or some. A lost create makes the file disappear, a
//     lost rename brings the old name (and the file it replaced) back, a
//     lost remove brings the file back. This is ext4 (data=ordered) without
//     a directory fsync; a rename is atomic within its directory.
//
// Event log, one line per event (inode numbers in decimal; names never hold
// spaces):
//   + <dir ino> <name> <ino> f|d|l  entry added: a new file, a new
//                                   directory, a hard link to a file
//   - <dir ino> <name>              entry removed (unlink, rmdir)
//   r <dir ino> <name> <new name> <ino>  rename within a directory
//   t <ino>                         a file truncated to empty at open
//   s <ino> <size>                  a file's first <size> bytes are durable
//   F <dir ino>                     a directory's entries are durable
// A removed or replaced file is first hard-linked into the attic as
// "<attic>/<ino>", so its bytes are there if its removal is undone.
//
// Must never touch anything but the disk, the attic and the directory it
// builds the disk's next state in ("<disk>.after-power-loss").
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "util/status.h"

namespace raftkv::storage::crash {

// What one simulated power loss did.
struct PowerLossStats {
  uint64_t files_cut = 0;          // files that lost bytes
  uint64_t files_emptied = 0;      // of those, files never synced
  uint64_t creates_lost = 0;       // entries added, then lost
  uint64_t renames_undone = 0;     // renames lost
  uint64_t removes_undone = 0;     // removals lost
  uint64_t changes_kept = 0;       // unsynced entry changes that survived
  uint64_t untracked_changes = 0;  // entries changed by an unlogged change
};

class DiskModel {
 public:
  // The state of the disk `root` (a directory) now, all of it durable: the
  // state a power loss returns to if the child synced nothing.
  static StatusOr<DiskModel> Scan(const std::string& root);

  // Replays the child's event log (a torn last line is ignored). Corruption
  // if the log contradicts itself or the model (an event the tracker
  // should have seen is missing).
  Status Replay(const std::string& events_path);

  // Replaces the disk by what a power loss could leave, the choices drawn
  // from `rng`, taking the bytes of removed files from `attic`. Before
  // that, compares the tree the log describes with the disk: the one
  // change the kill may have interrupted between doing it and logging it
  // may differ, nothing more (Corruption otherwise: the tracker missed a
  // change).
  Status PowerLoss(const std::string& attic, std::mt19937_64& rng,
                   PowerLossStats* stats);

 private:
  // One entry change within a directory: names set to a node, or removed
  // (-1). A rename is one change with two names.
  struct Change {
    char kind = 0;  // '+', '-' or 'r'
    std::vector<std::pair<std::string, int>> names;
  };
  struct Node {
    bool dir = false;
    uint64_t ino = 0;
    uint64_t synced = 0;                 // files: durable bytes
    std::map<std::string, int> now;      // directories: current entries
    std::map<std::string, int> durable;  // as of the last fsync
    std::vector<Change> unsynced;        // changes since, in order
  };

  explicit DiskModel(std::string root) : root_(std::move(root)) {}
  int AddNode(bool dir, uint64_t ino, uint64_t synced);
  Status Apply(const std::string& line);
  Status Live(uint64_t ino, int* id) const;
  Status Record(int dir, Change change);

  std::string root_;
  std::vector<Node> nodes_;       // id -> node; the root is id 0
  std::map<uint64_t, int> live_;  // inode number -> id of the node
};

}  // namespace raftkv::storage::crash
