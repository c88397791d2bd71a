// Small file-system helpers of storage/ for what RocksDB does not do for
// us: making a file or a directory entry durable, and writing a small file
// atomically. Errors name the path. Internal to storage/.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace raftkv::storage {

// fsync(2) of a file or a directory (for the entries in it).
Status SyncPath(const std::string& path);
// Creates the directory `path` and any missing parent, fsyncing the
// directory that holds each new one, so that they survive a power loss.
Status CreateDirectories(const std::string& path);
// Writes `contents` to `path` through a temporary file, fsyncs it, renames
// it into place and fsyncs the directory.
Status WriteFileDurably(const std::string& path, std::string_view contents);
// Reads a whole (small) file.
Status ReadSmallFile(const std::string& path, std::string* contents);

}  // namespace raftkv::storage
