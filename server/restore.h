// raftkvd --restore_from=FILE: starts a member of a NEW cluster from a
// backup (raftkvctl snapshot save, storage/backup_file.h). Every founding
// member of the new cluster restores the same file with the same --cluster
// and --cluster_token; each installs the image as a snapshot at the
// backup's index and term, with the new founding members as the membership
// and a cluster id of its own (a hash of the token, the members and the
// backup's identity), so the new cluster never mistakes the old one's
// nodes for its own.
//
// Never touches a data dir that already holds state (the flag is then
// ignored, logged), so a restored node can restart with the same flags.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "util/status.h"

namespace raftkv::storage {
class KvStateMachine;
class RaftLog;
}  // namespace raftkv::storage

namespace raftkv::server {

struct RestoreOptions {
  std::string backup_path;
  std::string data_dir;
  std::string cluster_token;
  std::map<uint64_t, std::string> peer_addresses;    // the new cluster's
  std::map<uint64_t, std::string> client_addresses;  // (may be partial)
};

// Restores into an empty data dir (`log` and `state_machine` opened on
// it); *restored tells whether it did. Corruption naming the file if the
// backup is damaged; nothing is installed then.
Status RestoreFromBackup(const RestoreOptions& options, storage::RaftLog* log,
                         storage::KvStateMachine* state_machine,
                         bool* restored);

}  // namespace raftkv::server
