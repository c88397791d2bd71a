// Validation and parsing for ServerConfig. Reads no flags.
#include "server/server_config.h"

#include <sstream>

namespace raftkv::server {

StatusOr<std::map<uint64_t, std::string>> ParseMemberList(
    const std::string& text) {
  std::map<uint64_t, std::string> members;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument("'" + item + "' is not ID=HOST:PORT");
    }
    char* end = nullptr;
    const uint64_t id = std::strtoull(item.c_str(), &end, 10);
    if (end != item.c_str() + eq || id == 0) {
      return Status::InvalidArgument("'" + item + "': bad node id");
    }
    if (!members.emplace(id, item.substr(eq + 1)).second) {
      return Status::InvalidArgument("node " + std::to_string(id) +
                                     " listed twice");
    }
  }
  if (members.empty()) return Status::InvalidArgument("empty member list");
  return members;
}

void ServerConfig::PlanMemory() {
  const uint64_t budget = memory_budget_mb << 20;
  rocksdb_memory_bytes = budget * 45 / 100;
  max_log_cache_bytes = budget * 25 / 100;
  const uint64_t peers =
      peer_addresses.size() > 1 ? peer_addresses.size() - 1 : 1;
  peer_queue_bytes = budget * 10 / 100 / peers;
}

Status ServerConfig::Validate() const {
  if (id == 0) return Status::InvalidArgument("--id must be set (non-zero)");
  // A client connection queues at most 64 MiB (wire::ConnectionLimits):
  // the watches' limit must leave room for the other answers on it.
  if (watch_max_unsent_bytes == 0 || watch_max_unsent_bytes > (32u << 20)) {
    return Status::InvalidArgument("--watch_max_unsent_mb must be 1..32");
  }
  if (peer_addresses.count(id) == 0) {
    return Status::InvalidArgument("--id " + std::to_string(id) +
                                   " is not in --cluster");
  }
  if ((join ? 1 : 0) + (force_new_cluster ? 1 : 0) +
          (restore_from.empty() ? 0 : 1) >
      1) {
    return Status::InvalidArgument(
        "--join, --force_new_cluster and --restore_from exclude each other");
  }
  if (listen_client.empty()) {
    return Status::InvalidArgument("--listen_client must be set");
  }
  if (data_dir.empty())
    return Status::InvalidArgument("--data_dir must be set");
  if (event_loop_rt_priority < 0 || event_loop_rt_priority > 99) {
    return Status::InvalidArgument(
        "--event_loop_rt_priority must be 0 (none) or 1-99");
  }
  if (memory_budget_mb < 32) {
    return Status::InvalidArgument("--memory_budget_mb must be at least 32");
  }
  if (max_unapplied_entries < 16) {
    return Status::InvalidArgument(
        "--max_unapplied_entries must be at least 16");
  }
  if (tick.count() <= 0)
    return Status::InvalidArgument("--tick_ms must be > 0");
  if (heartbeat_ticks <= 0 || election_ticks <= heartbeat_ticks) {
    return Status::InvalidArgument(
        "need 0 < --heartbeat_ticks < --election_ticks");
  }
  for (const auto& [node, address] : client_addresses) {
    if (peer_addresses.count(node) == 0) {
      return Status::InvalidArgument("--cluster_clients names node " +
                                     std::to_string(node) +
                                     " that is not in --cluster");
    }
  }
  return Status::OK();
}

}  // namespace raftkv::server
