// What raftkvd does when its storage fails (a full disk, an I/O error): it
// stops at once, on the thread that saw the failure, with a message that
// says what happened and what to do, and exit code kStorageFailureExitCode.
// Nothing it acknowledged is lost (acknowledgements follow fsyncs), the
// other nodes carry on, and a restart once the disk is fixed catches up.
// Stopping, rather than serving on, is what etcd does for a failed WAL
// write too: a RocksDB whose write-ahead log failed must not be written,
// synced or flushed again (its log writer is in an undefined state; in
// RocksDB 7.8 a later sync aborts on an assertion), and it would be after
// any further step. Must never return.
#pragma once

#include <string>

#include "util/status.h"

namespace raftkv::server {

// EX_TEMPFAIL: the node may start again once the cause is fixed.
inline constexpr int kStorageFailureExitCode = 75;

[[noreturn]] void ExitOnStorageFailure(uint64_t node_id,
                                       const std::string& data_dir,
                                       const Status& status);

}  // namespace raftkv::server
