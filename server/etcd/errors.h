// etcd's gRPC errors: the code and message etcd answers with for each
// failure raftkv can have, so that etcd clients, which match on both (etcd's
// rpctypes), behave as they do against etcd. The native server already
// words its errors as etcd does ("mvcc: required revision has been
// compacted"); this picks the gRPC code for each.
#pragma once

#include <grpcpp/support/status.h>

#include "client/kv.pb.h"
#include "util/status.h"

namespace raftkv::server::etcd {

// The etcd answer for a failed native call.
grpc::Status ToGrpc(const raftkv::Status& status);
// The etcd answer for a native command's error (OK if it has none).
grpc::Status ToGrpc(const kv::CommandResult& result);

}  // namespace raftkv::server::etcd
