// KvStateMachine: applying committed entries (sessions, revisions, applied
// index, all in one WriteBatch) and reads. Must never
// let a command's outcome depend on anything but the log and the state.
#include "storage/kv_state_machine.h"

#include <algorithm>

#include "storage/auth.h"
#include "storage/coding.h"
#include "storage/history.h"
#include "storage/kv_ops.h"
#include "storage/leases.h"
#include "storage/membership.h"
#include "storage/read_snapshot.h"
#include "storage/sessions.h"
#include "storage/storage.pb.h"
#include "storage/write_view.h"

namespace raftkv::storage {
namespace {

constexpr char kAppliedKey[] = "applied";
constexpr char kMembershipKey[] = "membership";
constexpr char kAuthKey[] = "auth";

void SetError(kv::CommandResult::Error error, const std::string& message,
              kv::CommandResult* result) {
  result->Clear();
  result->set_error(error);
  result->set_error_message(message);
}

// Stamps the store revision on every response header of `result`.
void SetRevision(int64_t revision, kv::CommandResult* result) {
  switch (result->result_case()) {
    case kv::CommandResult::kPut:
      result->mutable_put()->mutable_header()->set_revision(revision);
      break;
    case kv::CommandResult::kDeleteRange:
      result->mutable_delete_range()->mutable_header()->set_revision(revision);
      break;
    case kv::CommandResult::kTxn: {
      kv::TxnResponse* txn = result->mutable_txn();
      txn->mutable_header()->set_revision(revision);
      for (kv::ResponseOp& op : *txn->mutable_responses()) {
        if (op.has_response_range()) {
          op.mutable_response_range()->mutable_header()->set_revision(revision);
        } else if (op.has_response_put()) {
          op.mutable_response_put()->mutable_header()->set_revision(revision);
        } else if (op.has_response_delete_range()) {
          op.mutable_response_delete_range()->mutable_header()->set_revision(
              revision);
        }
      }
      break;
    }
    case kv::CommandResult::kRegisterClient:
      result->mutable_register_client()->mutable_header()->set_revision(
          revision);
      break;
    case kv::CommandResult::kCompact:
      result->mutable_compact()->mutable_header()->set_revision(revision);
      break;
    case kv::CommandResult::kLeaseGrant:
      result->mutable_lease_grant()->mutable_header()->set_revision(revision);
      break;
    case kv::CommandResult::kLeaseRevoke:
      result->mutable_lease_revoke()->mutable_header()->set_revision(revision);
      break;
    default:
      // An auth response: every one has a header as its field 1.
      if (result->result_case() != kv::CommandResult::RESULT_NOT_SET) {
        const auto* field = kv::CommandResult::descriptor()->FindFieldByNumber(
            result->result_case());
        auto* response = result->GetReflection()->MutableMessage(result, field);
        auto* header = static_cast<kv::ResponseHeader*>(
            response->GetReflection()->MutableMessage(
                response, response->GetDescriptor()->FindFieldByNumber(1)));
        header->set_revision(revision);
      }
      break;
  }
}

}  // namespace

struct KvStateMachine::State {
  AppliedState applied;
  SessionTable sessions;
  kv::Membership membership;
  bool has_membership = false;
  kv::AuthState auth;
};

// The result error of a command the state refuses (CheckCommand).
kv::CommandResult::Error ErrorOf(const Status& refused) {
  switch (refused.code()) {
    case Status::Code::kNotFound:
      return kv::CommandResult::LEASE_NOT_FOUND;
    case Status::Code::kCompacted:
      return kv::CommandResult::COMPACTED;
    case Status::Code::kFailedPrecondition:
      return kv::CommandResult::FUTURE_REVISION;
    default:
      return kv::CommandResult::INVALID;
  }
}

bool IsRefusal(const Status& s) {
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
    case Status::Code::kNotFound:
    case Status::Code::kCompacted:
    case Status::Code::kFailedPrecondition:
      return true;
    default:
      return false;
  }
}

// etcd's limit on a lease's TTL, in seconds.
constexpr int64_t kMaxLeaseTtl = 9000000000;

// Applies one batch of entries into one WriteView.
class KvStateMachine::Applier {
 public:
  Applier(KvStateMachine* sm, ApplyEffects* effects)
      : sm_(sm),
        effects_(effects),
        view_(sm->engine_->rep()),
        next_(sm->state_->applied) {}

  Status ApplyEntry(const raft::Entry& entry, kv::CommandResult* result) {
    next_.set_index(entry.index());
    next_.set_term(entry.term());
    if (entry.type() == raft::ENTRY_CONF_CHANGE) {
      if (!membership_) membership_ = sm_->state_->membership;
      Status s = ApplyMembershipChange(entry, &*membership_);
      if (!s.ok()) {
        // The core refused it too: it has no effect on any node.
        LOG(ERROR) << "membership change at index " << entry.index()
                   << " has no effect: " << s.ToString();
      }
      return Status::OK();
    }
    if (entry.type() != raft::ENTRY_NORMAL || entry.data().empty()) {
      return Status::OK();  // no-op or rejoin record: index only
    }
    kv::Command command;
    if (!command.ParseFromString(entry.data())) {
      SetError(
          kv::CommandResult::INVALID,
          "entry " + std::to_string(entry.index()) + " is not a valid Command",
          result);
      return Status::OK();
    }
    return ApplyCommand(entry.index(), command, result);
  }

  // Writes the batch with the new applied state; adopts it on success.
  Status Finish() {
    sm_->state_->sessions.Flush(&view_);
    std::string value;
    CHECK(next_.SerializeToString(&value));
    view_.Put(view_.rep()->kv_meta, kAppliedKey, value);
    if (membership_) {
      view_.Put(view_.rep()->kv_meta, kMembershipKey,
                membership_->SerializeAsString());
    }
    if (auth_) {
      view_.Put(view_.rep()->kv_meta, kAuthKey, auth_->SerializeAsString());
    }
    if (next_.compacted_revision() >
        sm_->state_->applied.compacted_revision()) {
      ForgetHistory(&view_, next_.compacted_revision());
      // Published before the write: a watcher's history read that began
      // before it sees every record it needs, one that begins after it
      // sees the compaction (history.h: ReadHistory).
      view_.rep()->compacted_revision = next_.compacted_revision();
    }
    RAFTKV_RETURN_IF_ERROR(view_.rep()->Write(view_.batch(), sm_->options_.sync,
                                              "apply committed entries"));
    sm_->state_->applied = next_;
    if (membership_) {
      sm_->state_->membership = std::move(*membership_);
      sm_->state_->has_membership = true;
    }
    if (auth_) sm_->state_->auth = std::move(*auth_);
    return Status::OK();
  }

 private:
  Status ApplyCommand(uint64_t index, const kv::Command& command,
                      kv::CommandResult* result) {
    const KvStateMachineOptions& opts = sm_->options_;
    SessionTable& sessions = sm_->state_->sessions;
    next_.set_log_time_ms(
        std::max(next_.log_time_ms(), command.proposed_at_ms()));
    const uint64_t now = next_.log_time_ms();
    sessions.ExpireIdle(now, opts.session_expiry_ms);

    if (command.has_register_client()) {
      sessions.Register(index, now, opts.max_sessions);
      result->mutable_register_client()->set_client_id(index);
      SetRevision(next_.revision(), result);
      return Status::OK();
    }
    const uint64_t client = command.client_id();
    if (client == 0) return Execute(index, command, result);

    const SessionTable::Session* session = sessions.Find(client);
    if (session == nullptr) {
      SetError(
          kv::CommandResult::SESSION_EXPIRED,
          "client session " + std::to_string(client) + " is unknown or expired",
          result);
      return Status::OK();
    }
    const uint64_t seq = command.sequence();
    if (seq == 0) {
      SetError(kv::CommandResult::INVALID,
               "sequence 0 in client session " + std::to_string(client),
               result);
      return Status::OK();
    }
    sessions.Touch(client, now, command.first_outstanding());
    if (seq < session->first_outstanding) {
      SetError(kv::CommandResult::SESSION_EXPIRED,
               "sequence " + std::to_string(seq) + " of client " +
                   std::to_string(client) +
                   " was acknowledged and its result discarded",
               result);
      return Status::OK();
    }
    if (session->sequences.count(seq) > 0) {
      return sessions.Lookup(client, seq, &view_, result);  // a retry
    }
    if (session->sequences.size() >= opts.max_results_per_session) {
      SetError(kv::CommandResult::INVALID,
               "client " + std::to_string(client) + " has " +
                   std::to_string(session->sequences.size()) +
                   " unacknowledged results (limit)",
               result);
      return Status::OK();
    }
    RAFTKV_RETURN_IF_ERROR(Execute(index, command, result));
    sessions.Remember(client, seq, *result, &view_);
    return Status::OK();
  }

  // Runs the command's operation; bad input becomes an error result
  // before anything is written.
  Status Execute(uint64_t index, const kv::Command& command,
                 kv::CommandResult* result) {
    OpContext ctx;
    ctx.view = &view_;
    ctx.revisions = {next_.revision(), next_.compacted_revision()};
    ctx.write_revision = next_.revision() + 1;
    Status invalid = Validate(command);
    if (invalid.ok()) {
      invalid = CheckCommand(&view_, ctx.revisions, command);
      if (!invalid.ok() && !IsRefusal(invalid)) return invalid;
    }
    if (!invalid.ok()) {
      SetError(ErrorOf(invalid), invalid.message(), result);
      return Status::OK();
    }
    if (IsAuthCommand(command)) return ExecuteAuth(command, result);
    bool permitted = true;
    RAFTKV_RETURN_IF_ERROR(CheckLeasePermissions(command, &permitted));
    if (!permitted) {
      SetAuthError(kv::PERMISSION_DENIED, result);
      return Status::OK();
    }
    Status s;
    switch (command.op_case()) {
      case kv::Command::kPut:
        s = ExecPut(&ctx, command.put(), result->mutable_put());
        break;
      case kv::Command::kDeleteRange:
        s = ExecDeleteRange(&ctx, command.delete_range(),
                            result->mutable_delete_range());
        break;
      case kv::Command::kTxn:
        s = ExecTxn(&ctx, command.txn(), result->mutable_txn());
        break;
      case kv::Command::kCompact:
        next_.set_compacted_revision(command.compact().revision());
        result->mutable_compact();
        break;
      case kv::Command::kLeaseGrant:
        s = GrantLease(index, command.lease_grant(),
                       result->mutable_lease_grant());
        break;
      case kv::Command::kLeaseRevoke:
        s = ExecLeaseRevoke(&ctx, command.lease_revoke().id());
        if (s.ok()) {
          result->mutable_lease_revoke();
          if (effects_) {
            effects_->leases_revoked.push_back(command.lease_revoke().id());
          }
        }
        break;
      default:
        LOG(FATAL) << "command not validated";
    }
    RAFTKV_RETURN_IF_ERROR(s);
    if (ctx.wrote) {
      next_.set_revision(ctx.write_revision);
      RecordHistory(&view_, ctx.events);
      if (effects_) {
        for (kv::Event& e : ctx.events)
          effects_->events.push_back(std::move(e));
      }
    }
    SetRevision(next_.revision(), result);
    return Status::OK();
  }

  static void SetAuthError(kv::ErrorCode code, kv::CommandResult* result) {
    result->Clear();
    result->set_error(kv::CommandResult::AUTH);
    result->set_auth_error(code);
    result->set_error_message(AuthErrorMessage(code));
  }

  const kv::AuthState& auth() const {
    return auth_ ? *auth_ : sm_->state_->auth;
  }

  Status ExecuteAuth(const kv::Command& command, kv::CommandResult* result) {
    kv::AuthState next = auth();
    const kv::ErrorCode code = ApplyAuthCommand(command, &next, result);
    if (code == kv::INVALID) {
      SetError(kv::CommandResult::INVALID, "malformed auth command", result);
      return Status::OK();
    }
    if (code != kv::OK) {
      SetAuthError(code, result);
      return Status::OK();
    }
    if (next.revision() != auth().revision()) {
      auth_ = std::move(next);
      if (effects_) effects_->auth_changed = true;
    }
    SetRevision(next_.revision(), result);
    return Status::OK();
  }

  // etcd's lease rules while auth is enabled: revoking a lease, or putting
  // a key with one, needs WRITE on every key the lease holds (the server
  // checks the keys of the request itself before proposing).
  Status CheckLeasePermissions(const kv::Command& command, bool* permitted) {
    *permitted = true;
    if (!auth().enabled() || command.auth_user().empty()) return Status::OK();
    std::vector<int64_t> leases;
    if (command.has_lease_revoke())
      leases.push_back(command.lease_revoke().id());
    if (command.has_put()) leases.push_back(command.put().lease());
    if (command.has_txn()) {
      for (const auto* ops :
           {&command.txn().success(), &command.txn().failure()}) {
        for (const kv::RequestOp& op : *ops) {
          if (op.has_request_put()) leases.push_back(op.request_put().lease());
        }
      }
    }
    if (leases.empty()) return Status::OK();
    AuthChecker checker(std::make_shared<const kv::AuthState>(auth()));
    for (int64_t id : leases) {
      if (id == 0) continue;
      std::vector<std::string> keys;
      RAFTKV_RETURN_IF_ERROR(storage::LeaseKeys(&view_, id, &keys));
      for (const std::string& key : keys) {
        if (!checker.Permitted(command.auth_user(), kv::Permission::WRITE, key,
                               "")) {
          *permitted = false;
          return Status::OK();
        }
      }
    }
    return Status::OK();
  }

  // What needs no state: the request's own shape.
  Status Validate(const kv::Command& command) const {
    switch (command.op_case()) {
      case kv::Command::kPut:
        return ValidatePut(command.put());
      case kv::Command::kDeleteRange:
        return ValidateDeleteRange(command.delete_range());
      case kv::Command::kTxn:
        return ValidateTxn(command.txn());
      case kv::Command::kCompact: {
        const int64_t rev = command.compact().revision();
        if (rev > next_.revision()) {
          return Status::FailedPrecondition(
              FutureRevisionMessage(rev, next_.revision()));
        }
        if (rev <= next_.compacted_revision()) {
          return Status::Compacted(
              CompactedMessage(rev, next_.compacted_revision()));
        }
        return Status::OK();
      }
      case kv::Command::kLeaseGrant: {
        const kv::LeaseGrantRequest& grant = command.lease_grant();
        if (grant.id() < 0) {
          return Status::InvalidArgument("lease grant: negative lease id");
        }
        if (grant.ttl() <= 0) {
          return Status::InvalidArgument("lease grant: TTL must be positive");
        }
        if (grant.ttl() > kMaxLeaseTtl) {
          return Status::InvalidArgument("etcdserver: too large lease TTL");
        }
        return Status::OK();
      }
      case kv::Command::kLeaseRevoke:
        return Status::OK();
      default:
        if (IsAuthCommand(command)) return Status::OK();
        return Status::InvalidArgument("command has no operation");
    }
  }

  // A new lease; id 0 takes the entry's index (or the next free id above
  // it), so every member picks the same one.
  Status GrantLease(uint64_t index, const kv::LeaseGrantRequest& grant,
                    kv::LeaseGrantResponse* response) {
    Lease lease;
    bool found = false;
    int64_t id = grant.id();  // free: CheckCommand refused a taken one
    if (id == 0) {
      id = static_cast<int64_t>(index);
      for (;; ++id) {
        RAFTKV_RETURN_IF_ERROR(FindLease(&view_, id, &lease, &found));
        if (!found) break;
      }
    }
    lease.set_id(id);
    lease.set_ttl(grant.ttl());
    StoreLease(&view_, lease);
    response->set_id(id);
    response->set_ttl(grant.ttl());
    if (effects_) effects_->leases_granted.push_back({id, grant.ttl()});
    return Status::OK();
  }

  KvStateMachine* sm_;
  ApplyEffects* effects_;
  std::optional<kv::Membership> membership_;  // changed by this batch
  std::optional<kv::AuthState> auth_;         // changed by this batch
  WriteView view_;
  AppliedState next_;
};

Status CheckAppliedState(const AppliedState& applied, const std::string& what) {
  if (applied.index() >= kIndexLimit) {
    return Status::Corruption(what + ": applied index " +
                              std::to_string(applied.index()) +
                              " out of range");
  }
  if (applied.revision() < 0 || applied.revision() == INT64_MAX ||
      static_cast<uint64_t>(applied.revision()) > applied.index()) {
    return Status::Corruption(
        what + ": revision " + std::to_string(applied.revision()) +
        " at applied index " + std::to_string(applied.index()));
  }
  if (applied.compacted_revision() < 0 ||
      applied.compacted_revision() > applied.revision()) {
    return Status::Corruption(what + ": compacted revision " +
                              std::to_string(applied.compacted_revision()) +
                              " above revision " +
                              std::to_string(applied.revision()));
  }
  return Status::OK();
}

StatusOr<std::unique_ptr<KvStateMachine::State>> KvStateMachine::LoadState(
    Engine* engine) {
  Engine::Rep* rep = engine->rep();
  auto state = std::make_unique<State>();
  std::string value;
  rocksdb::Status s =
      rep->db->Get(rocksdb::ReadOptions(), rep->kv_meta, kAppliedKey, &value);
  if (s.ok()) {
    if (!state->applied.ParseFromString(value)) {
      return Status::Corruption(rep->dir +
                                ": kv_meta/applied record does not parse");
    }
    RAFTKV_RETURN_IF_ERROR(
        CheckAppliedState(state->applied, rep->dir + ": kv_meta/applied"));
  } else if (!s.IsNotFound()) {
    return rep->Error(s, "read applied state");
  }
  s = rep->db->Get(rocksdb::ReadOptions(), rep->kv_meta, kMembershipKey,
                   &value);
  if (s.ok()) {
    if (!state->membership.ParseFromString(value)) {
      return Status::Corruption(rep->dir +
                                ": kv_meta/membership record does not parse");
    }
    state->has_membership = true;
  } else if (!s.IsNotFound()) {
    return rep->Error(s, "read membership");
  }
  s = rep->db->Get(rocksdb::ReadOptions(), rep->kv_meta, kAuthKey, &value);
  if (s.ok()) {
    if (!state->auth.ParseFromString(value)) {
      return Status::Corruption(rep->dir +
                                ": kv_meta/auth record does not parse");
    }
  } else if (!s.IsNotFound()) {
    return rep->Error(s, "read auth state");
  }
  std::unique_ptr<rocksdb::Iterator> it(
      rep->db->NewIterator(rocksdb::ReadOptions(), rep->kv_sessions));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    RAFTKV_RETURN_IF_ERROR(state->sessions.Load(
        it->key().ToStringView(), it->value().ToStringView(),
        state->applied.index(), rep->dir));
  }
  if (!it->status().ok()) return rep->Error(it->status(), "load sessions");
  const int64_t compacted = state->applied.compacted_revision();
  rep->compacted_revision = compacted;
  std::unique_ptr<rocksdb::Iterator> first(
      rep->db->NewIterator(rocksdb::ReadOptions(), rep->kv_history));
  first->SeekToFirst();
  if (first->Valid() &&
      first->key().compare(HistoryKey(compacted + 1, 0)) < 0) {
    // A compaction whose range deletion was lost (or a snapshot's records
    // at or below it): forget them now.
    rocksdb::WriteBatch batch = NewWriteBatch();
    CHECK(batch
              .DeleteRange(rep->kv_history, HistoryKey(0, 0),
                           HistoryKey(compacted + 1, 0))
              .ok());
    RAFTKV_RETURN_IF_ERROR(rep->Write(&batch, false, "forget history"));
  }
  return state;
}

StatusOr<std::unique_ptr<KvStateMachine>> KvStateMachine::Open(
    Engine* engine, const KvStateMachineOptions& options) {
  auto state = LoadState(engine);
  if (!state.ok()) return state.status();
  return std::unique_ptr<KvStateMachine>(
      new KvStateMachine(engine, options, std::move(state).value()));
}

Status KvStateMachine::Reload() {
  auto state = LoadState(engine_);
  if (!state.ok()) return state.status();
  state_ = std::move(state).value();
  failed_ = Status::OK();
  return Status::OK();
}

KvStateMachine::KvStateMachine(Engine* engine,
                               const KvStateMachineOptions& options,
                               std::unique_ptr<State> state)
    : engine_(engine), options_(options), state_(std::move(state)) {}

KvStateMachine::~KvStateMachine() = default;

StatusOr<kv::CommandResult> KvStateMachine::Apply(const raft::Entry& entry) {
  std::vector<kv::CommandResult> results;
  RAFTKV_RETURN_IF_ERROR(ApplyBatch({entry}, &results));
  return std::move(results.front());
}

Status KvStateMachine::ApplyBatch(const std::vector<raft::Entry>& entries,
                                  std::vector<kv::CommandResult>* results,
                                  ApplyEffects* effects) {
  results->clear();
  if (!failed_.ok()) return failed_;
  RAFTKV_RETURN_IF_ERROR(engine_->write_error());
  uint64_t expected = state_->applied.index() + 1;
  for (const raft::Entry& entry : entries) {
    if (entry.index() != expected) {
      return Status::FailedPrecondition(
          engine_->dir() + ": entry " + std::to_string(entry.index()) +
          " applied out of order (expected " + std::to_string(expected) + ")");
    }
    ++expected;
  }
  if (entries.empty()) return Status::OK();
  results->resize(entries.size());
  Applier applier(this, effects);
  Status s;
  for (size_t i = 0; i < entries.size() && s.ok(); ++i) {
    s = applier.ApplyEntry(entries[i], &(*results)[i]);
  }
  if (s.ok()) s = applier.Finish();
  if (!s.ok()) {
    failed_ = s;  // the session table may be ahead of the disk now
    results->clear();
  }
  return s;
}

StatusOr<kv::RangeResponse> KvStateMachine::Range(
    const kv::RangeRequest& request) const {
  return ReadSnapshot(*this).Range(request);
}

StatusOr<std::vector<LeaseInfo>> KvStateMachine::Leases() const {
  WriteView view(engine_->rep());
  std::vector<Lease> leases;
  RAFTKV_RETURN_IF_ERROR(ListLeases(&view, &leases));
  std::vector<LeaseInfo> out;
  out.reserve(leases.size());
  for (const Lease& l : leases) out.push_back({l.id(), l.ttl()});
  return out;
}

StatusOr<std::vector<std::string>> KvStateMachine::LeaseKeys(int64_t id) const {
  return ReadSnapshot(*this).LeaseKeys(id);
}

int64_t KvStateMachine::compacted_revision() const {
  return state_->applied.compacted_revision();
}

uint64_t KvStateMachine::applied_index() const {
  return state_->applied.index();
}

uint64_t KvStateMachine::applied_term() const { return state_->applied.term(); }

int64_t KvStateMachine::revision() const { return state_->applied.revision(); }

uint64_t KvStateMachine::log_time_ms() const {
  return state_->applied.log_time_ms();
}

size_t KvStateMachine::session_count() const { return state_->sessions.size(); }

const kv::AuthState& KvStateMachine::auth() const { return state_->auth; }

const kv::Membership* KvStateMachine::membership() const {
  return state_->has_membership ? &state_->membership : nullptr;
}

Status KvStateMachine::RecordFoundingMembership(
    const kv::Membership& membership) {
  if (state_->has_membership) return Status::OK();
  if (state_->applied.index() != 0) {
    return Status::FailedPrecondition(
        engine_->rep()->dir + ": the state machine applied up to index " +
        std::to_string(state_->applied.index()) +
        " without a membership record");
  }
  rocksdb::WriteBatch batch = NewWriteBatch();
  CHECK(batch
            .Put(engine_->rep()->kv_meta, kMembershipKey,
                 membership.SerializeAsString())
            .ok());
  RAFTKV_RETURN_IF_ERROR(
      engine_->rep()->Write(&batch, /*sync=*/true, "record membership"));
  state_->membership = membership;
  state_->has_membership = true;
  return Status::OK();
}

}  // namespace raftkv::storage
