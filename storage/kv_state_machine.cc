// KvStateMachine: applying committed entries (sessions, revisions, applied
// index, all in one WriteBatch) and reads. Must never
// let a command's outcome depend on anything but the log and the state.
#include "storage/kv_state_machine.h"

#include <algorithm>

#include "storage/coding.h"
#include "storage/kv_ops.h"
#include "storage/membership.h"
#include "storage/sessions.h"
#include "storage/storage.pb.h"
#include "storage/write_view.h"

namespace raftkv::storage {
namespace {

constexpr char kAppliedKey[] = "applied";
constexpr char kMembershipKey[] = "membership";

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
    default:
      break;
  }
}

}  // namespace

struct KvStateMachine::State {
  AppliedState applied;
  SessionTable sessions;
  kv::Membership membership;
  bool has_membership = false;
};

// Applies one batch of entries into one WriteView.
class KvStateMachine::Applier {
 public:
  explicit Applier(KvStateMachine* sm)
      : sm_(sm), view_(sm->engine_->rep()), next_(sm->state_->applied) {}

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
    RAFTKV_RETURN_IF_ERROR(view_.rep()->Write(view_.batch(), sm_->options_.sync,
                                              "apply committed entries"));
    sm_->state_->applied = next_;
    if (membership_) {
      sm_->state_->membership = std::move(*membership_);
      sm_->state_->has_membership = true;
    }
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
    if (client == 0) return Execute(command, result);

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
    RAFTKV_RETURN_IF_ERROR(Execute(command, result));
    sessions.Remember(client, seq, *result, &view_);
    return Status::OK();
  }

  // Runs the command's operation; bad input becomes an INVALID result
  // before anything is written.
  Status Execute(const kv::Command& command, kv::CommandResult* result) {
    OpContext ctx;
    ctx.view = &view_;
    ctx.write_revision = next_.revision() + 1;
    Status invalid;
    Status s;
    switch (command.op_case()) {
      case kv::Command::kPut:
        invalid = ValidatePut(command.put());
        if (invalid.ok()) {
          s = ExecPut(&ctx, command.put(), result->mutable_put());
        }
        break;
      case kv::Command::kDeleteRange:
        invalid = ValidateDeleteRange(command.delete_range());
        if (invalid.ok()) {
          s = ExecDeleteRange(&ctx, command.delete_range(),
                              result->mutable_delete_range());
        }
        break;
      case kv::Command::kTxn:
        invalid = ValidateTxn(command.txn());
        if (invalid.ok()) {
          s = ExecTxn(&ctx, command.txn(), result->mutable_txn());
        }
        break;
      default:
        invalid = Status::InvalidArgument("command has no operation");
    }
    RAFTKV_RETURN_IF_ERROR(s);
    if (!invalid.ok()) {
      SetError(kv::CommandResult::INVALID, invalid.message(), result);
      return Status::OK();
    }
    if (ctx.wrote) next_.set_revision(ctx.write_revision);
    SetRevision(next_.revision(), result);
    return Status::OK();
  }

  KvStateMachine* sm_;
  std::optional<kv::Membership> membership_;  // changed by this batch
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
  std::unique_ptr<rocksdb::Iterator> it(
      rep->db->NewIterator(rocksdb::ReadOptions(), rep->kv_sessions));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    RAFTKV_RETURN_IF_ERROR(state->sessions.Load(
        it->key().ToStringView(), it->value().ToStringView(),
        state->applied.index(), rep->dir));
  }
  if (!it->status().ok()) return rep->Error(it->status(), "load sessions");
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
                                  std::vector<kv::CommandResult>* results) {
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
  Applier applier(this);
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
  RAFTKV_RETURN_IF_ERROR(ValidateRange(request));
  WriteView view(engine_->rep());
  kv::RangeResponse response;
  RAFTKV_RETURN_IF_ERROR(ExecRange(&view, request, &response));
  response.mutable_header()->set_revision(state_->applied.revision());
  return response;
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
