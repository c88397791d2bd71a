// etcd's gRPC error codes and messages (see errors.h).
#include "server/etcd/errors.h"

#include <map>
#include <string>

namespace raftkv::server::etcd {
namespace {

// etcd's messages and the codes it sends them with (etcd's
// api/v3rpc/rpctypes).
const std::map<std::string, grpc::StatusCode>& KnownErrors() {
  static const auto* known = new std::map<std::string, grpc::StatusCode>{
      {"etcdserver: key is not provided", grpc::INVALID_ARGUMENT},
      {"etcdserver: key not found", grpc::INVALID_ARGUMENT},
      {"etcdserver: value is provided", grpc::INVALID_ARGUMENT},
      {"etcdserver: lease is provided", grpc::INVALID_ARGUMENT},
      {"etcdserver: too many operations in txn request",
       grpc::INVALID_ARGUMENT},
      {"etcdserver: duplicate key given in txn request",
       grpc::INVALID_ARGUMENT},
      {"etcdserver: mvcc: required revision has been compacted",
       grpc::OUT_OF_RANGE},
      {"etcdserver: mvcc: required revision is a future revision",
       grpc::OUT_OF_RANGE},
      {"etcdserver: mvcc: database space exceeded", grpc::RESOURCE_EXHAUSTED},
      {"etcdserver: requested lease not found", grpc::NOT_FOUND},
      {"etcdserver: lease already exists", grpc::FAILED_PRECONDITION},
      {"etcdserver: too large lease TTL", grpc::OUT_OF_RANGE},
      {"etcdserver: member ID already exist", grpc::FAILED_PRECONDITION},
      {"etcdserver: Peer URLs already exists", grpc::FAILED_PRECONDITION},
      {"etcdserver: member not found", grpc::NOT_FOUND},
      {"etcdserver: can only promote a learner member",
       grpc::FAILED_PRECONDITION},
      {"etcdserver: given member URLs are invalid", grpc::INVALID_ARGUMENT},
      {"etcdserver: request is too large", grpc::INVALID_ARGUMENT},
      {"etcdserver: too many requests", grpc::RESOURCE_EXHAUSTED},
      {"etcdserver: root user does not exist", grpc::FAILED_PRECONDITION},
      {"etcdserver: root user does not have root role",
       grpc::FAILED_PRECONDITION},
      {"etcdserver: user name already exists", grpc::FAILED_PRECONDITION},
      {"etcdserver: user name is empty", grpc::INVALID_ARGUMENT},
      {"etcdserver: user name not found", grpc::FAILED_PRECONDITION},
      {"etcdserver: role name already exists", grpc::FAILED_PRECONDITION},
      {"etcdserver: role name not found", grpc::FAILED_PRECONDITION},
      {"etcdserver: role name is empty", grpc::INVALID_ARGUMENT},
      {"etcdserver: authentication failed, invalid user ID or password",
       grpc::INVALID_ARGUMENT},
      {"etcdserver: permission denied", grpc::PERMISSION_DENIED},
      {"etcdserver: role is not granted to the user",
       grpc::FAILED_PRECONDITION},
      {"etcdserver: permission is not granted to the role",
       grpc::FAILED_PRECONDITION},
      {"etcdserver: permission not granted to the role",
       grpc::FAILED_PRECONDITION},
      {"etcdserver: authentication is not enabled", grpc::FAILED_PRECONDITION},
      {"etcdserver: invalid auth token", grpc::UNAUTHENTICATED},
      {"etcdserver: invalid auth management", grpc::INVALID_ARGUMENT},
      {"etcdserver: no leader", grpc::UNAVAILABLE},
      {"etcdserver: request timed out", grpc::UNAVAILABLE},
      {"etcdserver: bad leader transferee", grpc::FAILED_PRECONDITION},
  };
  return *known;
}

grpc::Status Known(const std::string& message, grpc::StatusCode fallback) {
  // The client library may prefix the member's address ("host:port: ").
  const auto& known = KnownErrors();
  auto it = known.find(message);
  if (it != known.end()) return grpc::Status(it->second, message);
  for (const auto& [text, code] : known) {
    if (message.size() > text.size() &&
        message.compare(message.size() - text.size(), text.size(), text) == 0) {
      return grpc::Status(code, text);
    }
  }
  return grpc::Status(fallback, message);
}

}  // namespace

grpc::Status ToGrpc(const raftkv::Status& status) {
  using Code = raftkv::Status::Code;
  const std::string message(status.message());
  switch (status.code()) {
    case Code::kOk:
      return grpc::Status::OK;
    case Code::kCompacted:
      return grpc::Status(
          grpc::OUT_OF_RANGE,
          "etcdserver: mvcc: required revision has been compacted");
    case Code::kNotFound:
      return Known(message, grpc::NOT_FOUND);
    case Code::kTooLarge:
      return grpc::Status(grpc::INVALID_ARGUMENT,
                          "etcdserver: request is too large");
    case Code::kFailedPrecondition:
      // The native server words it as etcd's storage layer does; etcd's
      // gRPC layer adds its prefix.
      if (message.find("mvcc: required revision is a future revision") !=
          std::string::npos) {
        return grpc::Status(
            grpc::OUT_OF_RANGE,
            "etcdserver: mvcc: required revision is a future revision");
      }
      return Known(message, grpc::FAILED_PRECONDITION);
    case Code::kNotLeader:
    case Code::kUnavailable:
    case Code::kTimeout:
      // Retried until the deadline without an answer (no leader, or no
      // quorum): clients retry these.
      return grpc::Status(grpc::UNAVAILABLE, "etcdserver: request timed out");
    case Code::kAborted:
      return grpc::Status(grpc::UNAVAILABLE,
                          "etcdserver: request timed out, possibly due to "
                          "previous leader failure");
    default:
      return Known(message, grpc::INVALID_ARGUMENT);
  }
}

grpc::Status ToGrpc(const kv::CommandResult& result) {
  switch (result.error()) {
    case kv::CommandResult::OK:
      return grpc::Status::OK;
    case kv::CommandResult::LEASE_NOT_FOUND:
      return grpc::Status(grpc::NOT_FOUND,
                          "etcdserver: requested lease not found");
    case kv::CommandResult::COMPACTED:
      return grpc::Status(
          grpc::OUT_OF_RANGE,
          "etcdserver: mvcc: required revision has been compacted");
    case kv::CommandResult::FUTURE_REVISION:
      return grpc::Status(
          grpc::OUT_OF_RANGE,
          "etcdserver: mvcc: required revision is a future revision");
    case kv::CommandResult::SESSION_EXPIRED:
      return grpc::Status(grpc::UNAVAILABLE,
                          "etcdserver: request timed out, possibly due to "
                          "previous leader failure");
    default:
      return Known(result.error_message(), grpc::INVALID_ARGUMENT);
  }
}

}  // namespace raftkv::server::etcd
