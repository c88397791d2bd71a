// gRPC channels to etcd-API endpoints (see etcd_channel.h).
#include "tools/etcd_channel.h"

namespace raftkv {

std::shared_ptr<grpc::Channel> NewEtcdChannel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(),
                                   args);
}

std::string GrpcError(const std::string& endpoint, const grpc::Status& s) {
  return endpoint + ": gRPC code " + std::to_string(s.error_code()) + ": " +
         s.error_message();
}

std::chrono::system_clock::time_point GrpcDeadline(
    std::chrono::milliseconds d) {
  return std::chrono::system_clock::now() + d;
}

}  // namespace raftkv
