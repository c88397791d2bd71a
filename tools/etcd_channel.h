// Connections to etcd's v3 API over gRPC for the tools that drive it
// (raftkv-bench --api=etcd, raftkv-soak --front_door=etcd): a channel that
// is a connection of its own, and errors that name the endpoint.
//
// Must never share a connection between two channels it made: a tool that
// asks for N connections gets N, as etcd's benchmark and clients do.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

namespace raftkv {

// A channel of its own (its own TCP connection: channels with equal
// arguments would otherwise share one subchannel, and so one connection).
std::shared_ptr<grpc::Channel> NewEtcdChannel(const std::string& endpoint);

// "HOST:PORT: gRPC code N: message".
std::string GrpcError(const std::string& endpoint, const grpc::Status& s);

// gRPC takes deadlines on the system clock only: now + `d`.
std::chrono::system_clock::time_point GrpcDeadline(std::chrono::milliseconds d);

}  // namespace raftkv
