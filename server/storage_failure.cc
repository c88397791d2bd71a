// Stopping raftkvd on a storage failure (see storage_failure.h). Never
// returns, never runs destructors (they would close RocksDB).
#include "server/storage_failure.h"

#include <glog/logging.h>

#include <cstdio>
#include <cstdlib>

namespace raftkv::server {

void ExitOnStorageFailure(uint64_t node_id, const std::string& data_dir,
                          const Status& status) {
  LOG(ERROR) << "raftkvd " << node_id << ": STORAGE FAILURE in " << data_dir
             << ": " << status.ToString() << ". This node stops now (exit code "
             << kStorageFailureExitCode
             << "); it acknowledged nothing it had not made durable, and the "
                "other nodes go on without it. Free space or fix the disk, "
                "then start it again: it catches up from the others.";
  google::FlushLogFiles(google::GLOG_INFO);
  std::fflush(stderr);
  std::_Exit(kStorageFailureExitCode);
}

}  // namespace raftkv::server
