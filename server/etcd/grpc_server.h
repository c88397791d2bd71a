// GrpcServer: etcd's v3 API over gRPC on --listen_etcd: the KV, Watch,
// Lease, Cluster, Maintenance and Auth services of etcdserverpb, each call
// handed to EtcdOps (etcd_ops.h), on gRPC's callback API, so no thread
// waits for the cluster. With TLS files it serves TLS (certificates and
// CAs re-read from disk when they change, no restart), requiring client
// certificates if asked.
//
// Must never block a gRPC thread on the cluster, or let one stream's slow
// reader grow memory without bound (its stream is ended instead).
// Thread-safety: Start and Stop from one thread; calls run on gRPC's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/etcd/etcd_ops.h"
#include "server/server_config.h"
#include "util/status.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace raftkv::server::etcd {

class GrpcServer {
 public:
  explicit GrpcServer(EtcdOps* ops);
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Listens on `address` (HOST:PORT); `tls` empty: plain TCP.
  raftkv::Status Start(const std::string& address, const TlsFiles& tls);
  // Ends every call and stops serving (waits for handlers to finish).
  void Stop();

 private:
  EtcdOps* const ops_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace raftkv::server::etcd
