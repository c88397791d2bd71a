// AuthGuard (see auth_guard.h): etcd 3.4's permission rules for each
// request. Never touches the disk and never hashes a password.
#include "server/auth_guard.h"

#include <glog/logging.h>

#include <utility>

namespace raftkv::server {
namespace {

using Perm = kv::Permission;

// A key for the log: printable bytes as is, others as \xNN, at most 64.
std::string Printable(const std::string& key) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < key.size() && i < 64; ++i) {
    const unsigned char c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (key.size() > 64) out += "...";
  return out;
}

std::string RangeText(const std::string& key, const std::string& range_end) {
  if (range_end.empty()) return "key '" + Printable(key) + "'";
  if (range_end == std::string(1, '\0')) {
    return "range ['" + Printable(key) + "', <open ended>)";
  }
  return "range ['" + Printable(key) + "', '" + Printable(range_end) + "')";
}

// What a request needs beyond a valid token.
enum class Need { kNothing, kToken, kRoot, kKeys };

Need NeedOf(const kv::ClientRequest& request) {
  switch (request.request_case()) {
    case kv::ClientRequest::kStatus:
    case kv::ClientRequest::kAuthStatus:
    case kv::ClientRequest::kAuthenticate:
      return Need::kNothing;
    case kv::ClientRequest::kCommand:
      // Auth commands are made by the server from auth requests, which
      // were checked as such (a client's are refused).
      if (storage::IsAuthCommand(request.command())) return Need::kNothing;
      switch (request.command().op_case()) {
        case kv::Command::kRegisterClient:
          return Need::kNothing;
        case kv::Command::kPut:
        case kv::Command::kDeleteRange:
        case kv::Command::kTxn:
          return Need::kKeys;
        case kv::Command::kLeaseGrant:
        case kv::Command::kLeaseRevoke:
          return Need::kToken;
        default:
          return Need::kRoot;  // compact (and anything new: admin first)
      }
    case kv::ClientRequest::kRange:
    case kv::ClientRequest::kWatchCreate:
      return Need::kKeys;
    case kv::ClientRequest::kWatchCancel:
    case kv::ClientRequest::kWatchProgress:
    case kv::ClientRequest::kLeaseKeepAlive:
    case kv::ClientRequest::kLeaseTimeToLive:
    case kv::ClientRequest::kLeaseLeases:
    case kv::ClientRequest::kMemberList:
      return Need::kToken;
    default:
      // Member changes, leader transfer, snapshot_save, every auth, user
      // and role request (etcd: admin).
      return Need::kRoot;
  }
}

const char* OpName(const kv::ClientRequest& request) {
  const auto* field = kv::ClientRequest::descriptor()->FindFieldByNumber(
      request.request_case());
  if (field == nullptr) return "empty request";
  if (request.has_command()) {
    const auto* op = kv::Command::descriptor()->FindFieldByNumber(
        request.command().op_case());
    return op == nullptr ? "command" : op->name().c_str();
  }
  return field->name().c_str();
}

}  // namespace

AuthGuard::AuthGuard(uint64_t node_id, AuthGuardOptions options)
    : node_id_(node_id),
      options_(options),
      checker_(std::make_unique<storage::AuthChecker>(
          std::make_shared<const kv::AuthState>())) {}

void AuthGuard::SetState(std::shared_ptr<const kv::AuthState> state,
                         uint64_t index) {
  if (state == nullptr || (index < state_index_)) return;
  state_index_ = index;
  if (state->enabled() != enabled()) {
    LOG(INFO) << "raftkvd " << node_id_ << ": authentication "
              << (state->enabled() ? "enabled" : "disabled")
              << " (auth revision " << state->revision() << ")";
  }
  checker_ = std::make_unique<storage::AuthChecker>(std::move(state));
  tokens_.clear();
}

kv::ErrorCode AuthGuard::CheckToken(const std::string& token, uint64_t now_ms,
                                    std::string* user) {
  if (token.empty()) return kv::INVALID_AUTH_TOKEN;
  auto cached = tokens_.find(token);
  if (cached == tokens_.end()) {
    TokenClaims claims;
    if (!VerifyToken(state().token_secret(), token, &claims)) {
      return kv::INVALID_AUTH_TOKEN;
    }
    if (tokens_.size() >= options_.max_cached_tokens) tokens_.clear();
    cached = tokens_.emplace(token, std::move(claims)).first;
  }
  const TokenClaims& claims = cached->second;
  if (now_ms >= claims.expires_at_ms) return kv::INVALID_AUTH_TOKEN;
  const kv::AuthUser* u = storage::FindUser(state(), claims.user);
  // Deleted, or re-created or its password changed after the token.
  if (u == nullptr || claims.auth_revision < u->token_revision()) {
    return kv::INVALID_AUTH_TOKEN;
  }
  *user = claims.user;
  return kv::OK;
}

std::string AuthGuard::IssueToken(const std::string& user,
                                  uint64_t now_ms) const {
  TokenClaims claims;
  claims.user = user;
  claims.auth_revision = state().revision();
  claims.expires_at_ms = now_ms + options_.token_ttl.count();
  return SignToken(state().token_secret(), claims);
}

kv::ErrorCode AuthGuard::Authorize(const kv::ClientRequest& request,
                                   uint64_t now_ms, std::string* user) {
  const kv::ErrorCode code = Authenticate(request, now_ms, user);
  return code != kv::OK ? code : Permit(request, *user);
}

kv::ErrorCode AuthGuard::Authenticate(const kv::ClientRequest& request,
                                      uint64_t now_ms, std::string* user) {
  user->clear();
  if (!enabled() || NeedOf(request) == Need::kNothing) return kv::OK;
  if (request.auth_token().empty()) {
    // etcd: no token is no user name.
    LogDenial("(no token)", OpName(request), kv::USER_EMPTY);
    return kv::USER_EMPTY;
  }
  if (CheckToken(request.auth_token(), now_ms, user) != kv::OK) {
    LogDenial("(invalid token)", OpName(request), kv::INVALID_AUTH_TOKEN);
    user->clear();
    return kv::INVALID_AUTH_TOKEN;
  }
  return kv::OK;
}

kv::ErrorCode AuthGuard::Permit(const kv::ClientRequest& request,
                                const std::string& user) {
  if (!enabled()) return kv::OK;
  const Need need = NeedOf(request);
  if (need == Need::kNothing || need == Need::kToken) return kv::OK;
  std::string what = OpName(request);
  kv::ErrorCode code = kv::OK;
  if (need == Need::kRoot) {
    if (!checker_->IsRoot(user)) code = kv::PERMISSION_DENIED;
  } else {
    code = CheckPermissions(request, user, &what);
  }
  if (code != kv::OK) LogDenial(user, what, code);
  return code;
}

kv::ErrorCode AuthGuard::CheckPermissions(const kv::ClientRequest& request,
                                          const std::string& user,
                                          std::string* what) {
  bool ok = true;
  // Checks one range; on the first refusal names it in *what.
  auto need = [&](Perm::Type type, const std::string& key,
                  const std::string& range_end) {
    if (!ok) return;
    if (!checker_->Permitted(user, type, key, range_end)) {
      ok = false;
      *what += std::string(type == Perm::READ ? " (read " : " (write ") +
               RangeText(key, range_end) + ")";
    }
  };
  auto ops =
      [&](const google::protobuf::RepeatedPtrField<kv::RequestOp>& list) {
        for (const kv::RequestOp& op : list) {
          if (op.has_request_range()) {
            need(Perm::READ, op.request_range().key(),
                 op.request_range().range_end());
          } else if (op.has_request_put()) {
            need(Perm::WRITE, op.request_put().key(), "");
            if (op.request_put().prev_kv()) {
              need(Perm::READ, op.request_put().key(), "");
            }
          } else if (op.has_request_delete_range()) {
            const kv::DeleteRangeRequest& d = op.request_delete_range();
            if (d.prev_kv()) need(Perm::READ, d.key(), d.range_end());
            need(Perm::WRITE, d.key(), d.range_end());
          }
        }
      };
  switch (request.request_case()) {
    case kv::ClientRequest::kRange:
      need(Perm::READ, request.range().key(), request.range().range_end());
      break;
    case kv::ClientRequest::kWatchCreate:
      need(Perm::READ, request.watch_create().key(),
           request.watch_create().range_end());
      break;
    case kv::ClientRequest::kCommand: {
      const kv::Command& command = request.command();
      if (command.has_put()) {
        need(Perm::WRITE, command.put().key(), "");
        if (command.put().prev_kv()) need(Perm::READ, command.put().key(), "");
      } else if (command.has_delete_range()) {
        const kv::DeleteRangeRequest& d = command.delete_range();
        need(Perm::WRITE, d.key(), d.range_end());
        if (d.prev_kv()) need(Perm::READ, d.key(), d.range_end());
      } else if (command.has_txn()) {
        for (const kv::Compare& c : command.txn().compare()) {
          need(Perm::READ, c.key(), "");
        }
        ops(command.txn().success());
        ops(command.txn().failure());
      }
      break;
    }
    default:
      break;
  }
  return ok ? kv::OK : kv::PERMISSION_DENIED;
}

void AuthGuard::LogDenial(const std::string& user, const std::string& what,
                          kv::ErrorCode code) {
  ++denials_;
  const auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= std::chrono::seconds(1)) {
    window_start_ = now;
    logged_in_window_ = 0;
  }
  if (logged_in_window_ >= options_.max_denials_logged_per_second) {
    ++not_logged_;
    return;
  }
  ++logged_in_window_;
  ++denials_logged_;
  LOG(WARNING) << "raftkvd " << node_id_ << ": denied " << what << " to user '"
               << Printable(user) << "': " << storage::AuthErrorMessage(code)
               << (not_logged_ > 0 ? " (and " + std::to_string(not_logged_) +
                                         " earlier denials not logged)"
                                   : "");
  not_logged_ = 0;
}

}  // namespace raftkv::server
