// Builds a ServerConfig from raftkvd's command-line flags. The only place
// in server/ that reads flags.
#pragma once

#include "server/server_config.h"

namespace raftkv::server {

StatusOr<ServerConfig> ConfigFromFlags();

}  // namespace raftkv::server
