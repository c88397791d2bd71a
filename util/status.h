// Status and StatusOr: explicit error values returned across module
// boundaries (raft, storage, server, client). Modelled on LevelDB's Status.
//
// A Status is cheap to copy when OK. It must never be used to signal a broken
// invariant: those are CHECK failures that stop the process.
#pragma once

#include <glog/logging.h>

#include <optional>
#include <string>
#include <utility>

namespace raftkv {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,
    kCorruption,
    kInvalidArgument,
    kIOError,
    kNotLeader,        // this node is not the leader; message names it
    kCompacted,        // requested log index was compacted away
    kUnavailable,      // no quorum or data not available yet; retry later
    kTimeout,          // deadline passed
    kTooLarge,         // key, value or frame over its limit
    kProposalDropped,  // the proposal was not accepted; retry later
    kFailedPrecondition,
    kAborted,
    kPermissionDenied,  // authenticated, not allowed (etcd's permissions)
    kUnauthenticated,   // no valid auth token, or wrong user or password
  };

  Status() = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string msg) { return {Code::kNotFound, msg}; }
  static Status Corruption(std::string msg) {
    return {Code::kCorruption, std::move(msg)};
  }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status IOError(std::string msg) {
    return {Code::kIOError, std::move(msg)};
  }
  static Status NotLeader(std::string msg) {
    return {Code::kNotLeader, std::move(msg)};
  }
  static Status Compacted(std::string msg) {
    return {Code::kCompacted, std::move(msg)};
  }
  static Status Unavailable(std::string msg) {
    return {Code::kUnavailable, std::move(msg)};
  }
  static Status Timeout(std::string msg) {
    return {Code::kTimeout, std::move(msg)};
  }
  static Status TooLarge(std::string msg) {
    return {Code::kTooLarge, std::move(msg)};
  }
  static Status ProposalDropped(std::string msg) {
    return {Code::kProposalDropped, std::move(msg)};
  }
  static Status FailedPrecondition(std::string msg) {
    return {Code::kFailedPrecondition, std::move(msg)};
  }
  static Status Aborted(std::string msg) {
    return {Code::kAborted, std::move(msg)};
  }
  static Status PermissionDenied(std::string msg) {
    return {Code::kPermissionDenied, std::move(msg)};
  }
  static Status Unauthenticated(std::string msg) {
    return {Code::kUnauthenticated, std::move(msg)};
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsNotLeader() const { return code_ == Code::kNotLeader; }
  bool IsCompacted() const { return code_ == Code::kCompacted; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsTimeout() const { return code_ == Code::kTimeout; }

  // "NotLeader: leader is 2", or "OK".
  std::string ToString() const;
  static const char* CodeName(Code code);

 private:
  Status(Code code, std::string message)
      : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

inline const char* Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "NotFound";
    case Code::kCorruption:
      return "Corruption";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kIOError:
      return "IOError";
    case Code::kNotLeader:
      return "NotLeader";
    case Code::kCompacted:
      return "Compacted";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kTimeout:
      return "Timeout";
    case Code::kTooLarge:
      return "TooLarge";
    case Code::kProposalDropped:
      return "ProposalDropped";
    case Code::kFailedPrecondition:
      return "FailedPrecondition";
    case Code::kAborted:
      return "Aborted";
    case Code::kPermissionDenied:
      return "PermissionDenied";
    case Code::kUnauthenticated:
      return "Unauthenticated";
  }
  return "Unknown";
}

inline std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message_;
}

// Either a value or a non-OK Status.
template <typename T>
class StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT
    CHECK(!status_.ok()) << "StatusOr built from an OK status without value";
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  const T& value() const& {
    CHECK(ok()) << status_.ToString();
    return *value_;
  }
  T& value() & {
    CHECK(ok()) << status_.ToString();
    return *value_;
  }
  T&& value() && {
    CHECK(ok()) << status_.ToString();
    return std::move(*value_);
  }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace raftkv

// Returns early from the enclosing function when `expr` is not OK.
#define RAFTKV_RETURN_IF_ERROR(expr)   \
  do {                                 \
    ::raftkv::Status _status = (expr); \
    if (!_status.ok()) return _status; \
  } while (0)
