// raftkvctl snapshot save FILE: a consistent backup of one member's state
// machine, streamed over a client connection and checked chunk by chunk
// (storage/backup_file.h) before it is renamed into place.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "client/client.h"
#include "util/status.h"

namespace raftkv {

struct BackupResult {
  std::string endpoint;  // the member that streamed it
  uint64_t member_id = 0;
  uint64_t cluster_id = 0;
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  double seconds = 0;
};

// Tries `endpoints` in order until one streams a complete backup into
// `path` (which must not exist). `io_timeout` bounds every wait. Over TLS
// as `tls` says (or an "https://" endpoint). With `user`, authenticated
// as that user first (a backup needs role root while auth is enabled).
StatusOr<BackupResult> SaveBackup(const std::vector<std::string>& endpoints,
                                  const std::string& path,
                                  std::chrono::milliseconds io_timeout,
                                  const ClientTlsOptions& tls = {},
                                  const std::string& user = "",
                                  const std::string& password = "");

}  // namespace raftkv
