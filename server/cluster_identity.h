// Cluster identity: which cluster a node's data and its peers belong to.
//
// A cluster's id is fixed when it is formed: a hash of --cluster_token and
// the founding members' ids and peer addresses (as etcd derives its cluster
// id from --initial-cluster and --initial-cluster-token), so every founding
// member computes the same id on its own. It is recorded in the data dir
// and from then on the data dir's id is the node's, whatever the flags say.
// Every peer connection opens with a hello naming the sender's cluster id,
// and snapshot streams carry it in their preamble: a node refuses any peer
// of another cluster (a node started on another cluster's data dir, or
// pointed at the wrong addresses), logging both ids, so two clusters can
// never mix their logs. Pure functions; never touches sockets or disk.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace raftkv::server {

// The id of a cluster formed by `peer_addresses` (id -> host:port) under
// `token`. Never 0.
uint64_t BootstrapClusterId(
    const std::string& token,
    const std::map<uint64_t, std::string>& peer_addresses);

// 16 lowercase hex digits, as the logs and `raftkvctl status` show it.
std::string ClusterIdText(uint64_t cluster_id);

// The first frame of every peer connection: a zero byte, "RKVPEER1", the
// cluster id and the sender's node id (8 bytes each, big-endian), then the
// sender's peer address (host:port, at most kMaxHelloAddress bytes; may be
// empty), so that a node which does not know the sender yet (a member
// added by a change it has not received) can answer it.
constexpr size_t kMaxHelloAddress = 128;
std::string EncodePeerHello(uint64_t cluster_id, uint64_t from,
                            const std::string& address);
// Whether `payload` is a hello; if so fills the ids and the address.
bool DecodePeerHello(const std::string& payload, uint64_t* cluster_id,
                     uint64_t* from, std::string* address);

// The answer a node sends on a peer connection whose hello names a node
// the cluster removed: a zero byte, "RKVGONE1", the cluster id and the
// removed node's id. The removed node stops (it learns it was removed even
// when it never received the change).
std::string EncodePeerRemoved(uint64_t cluster_id, uint64_t node);
bool DecodePeerRemoved(const std::string& payload, uint64_t* cluster_id,
                       uint64_t* node);

}  // namespace raftkv::server
