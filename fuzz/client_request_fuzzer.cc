// Fuzz target: what a client can send to raftkvd.
//
// Feeds: the bytes of one client connection -> wire::FrameReader (client/
// frame.h) -> each frame parsed as a kv::ClientRequest, as ClientService
// does (a frame that does not parse closes the connection: the rest of the
// input is ignored) -> what Node does with it:
//   - command: the server's MALFORMED check (no operation), then the
//     command, re-serialized as Node::HandleWrite proposes it, becomes the
//     data of the next raft::Entry, applied through
//     KvStateMachine::ApplyBatch (all commands up to the next read in one
//     batch, like one Ready's committed entries);
//   - range: KvStateMachine::Range, as Node::ServeRead does;
//   - status and transfer-leader requests touch only the Node: ignored.
// The state machine runs over a real storage::Engine in a temp dir, emptied
// before every input, with small session limits so that eviction, expiry
// and the per-session result limit are reachable. proposed_at_ms is the
// fuzzer's (the leader stamps its clock there), so log time can jump.
// Node::CheckSizes (key and value limits) is a private member of Node and
// needs a whole server; the checks covered here are the state machine's
// own validation (storage/kv_ops.h Validate*), which decides INVALID.
//
// Must never: crash, trip a sanitizer or a CHECK; fail ApplyBatch or a
// valid Range with a storage error (the Engine is healthy; a read at a
// compacted or future revision is refused as such); answer a session-less
// command that fails Validate*() with anything but INVALID, or one that
// passes it with INVALID unless the state refuses it (a lease id already
// taken, ignore_value of a missing key, an auth command the auth state
// refuses first); change the store revision on a
// rejected command; store a value that a later read cannot decode.
#include <glog/logging.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "client/kv.pb.h"
#include "fuzz/fuzz_util.h"
#include "storage/auth.h"
#include "storage/kv_ops.h"
#include "storage/kv_state_machine.h"

namespace raftkv::fuzz {
namespace {

constexpr size_t kMaxFrameBytes = 1 << 20;

Status Validate(const kv::Command& command) {
  switch (command.op_case()) {
    case kv::Command::kPut:
      return storage::ValidatePut(command.put());
    case kv::Command::kDeleteRange:
      return storage::ValidateDeleteRange(command.delete_range());
    case kv::Command::kTxn:
      return storage::ValidateTxn(command.txn());
    case kv::Command::kLeaseGrant: {
      const kv::LeaseGrantRequest& g = command.lease_grant();
      if (g.id() < 0 || g.ttl() <= 0 || g.ttl() > 9000000000) {
        return Status::InvalidArgument("lease grant");
      }
      return Status::OK();
    }
    default:
      return Status::OK();
  }
}

// Whether the state may refuse `command` as INVALID although it passed
// Validate(): its outcome depends on what is stored.
bool StateMayRefuse(const kv::Command& command) {
  // An auth command is checked against the auth state first (a user that
  // exists is USER_ALREADY_EXISTS before its hash is looked at).
  if (storage::IsAuthCommand(command)) return true;
  auto ignores = [](const kv::PutRequest& p) {
    return p.ignore_value() || p.ignore_lease();
  };
  if (command.has_lease_grant()) return command.lease_grant().id() != 0;
  if (command.has_put()) return ignores(command.put());
  if (command.has_txn()) {
    for (const auto* ops :
         {&command.txn().success(), &command.txn().failure()}) {
      for (const kv::RequestOp& op : *ops) {
        if (op.has_request_put() && ignores(op.request_put())) return true;
      }
    }
  }
  return false;
}

class Harness {
 public:
  Harness() {
    ScratchEngine& scratch = ScratchEngine::Get();
    scratch.Reset();
    storage::KvStateMachineOptions options;
    options.session_expiry_ms = 1000;
    options.max_sessions = 4;
    options.max_results_per_session = 4;
    auto sm = storage::KvStateMachine::Open(scratch.engine(), options);
    CHECK(sm.ok()) << sm.status().ToString();
    sm_ = std::move(sm).value();
  }

  void Command(const kv::Command& command) {
    raft::Entry entry;
    entry.set_term(1);
    entry.set_index(sm_->applied_index() + pending_.size() + 1);
    entry.set_data(command.SerializeAsString());
    pending_.push_back(std::move(entry));
    commands_.push_back(command);
  }

  void Range(const kv::RangeRequest& request) {
    Flush();
    auto result = sm_->Range(request);
    if (!storage::ValidateRange(request).ok()) {
      CHECK(!result.ok() &&
            result.status().code() == Status::Code::kInvalidArgument)
          << "an invalid range was not refused as such";
      return;
    }
    const int64_t rev = request.revision();
    if (rev != 0 &&
        (rev > sm_->revision() || rev < sm_->compacted_revision())) {
      CHECK(!result.ok() &&
            (result.status().code() == Status::Code::kCompacted ||
             result.status().code() == Status::Code::kFailedPrecondition))
          << "a read at revision " << rev << " (current " << sm_->revision()
          << ", compacted " << sm_->compacted_revision()
          << ") was not refused as such";
      return;
    }
    CHECK(result.ok()) << result.status().ToString();
    CHECK_EQ(result->header().revision(), sm_->revision());
  }

  // Applies the pending commands in one batch and checks every result.
  void Flush() {
    if (pending_.empty()) return;
    const int64_t revision_before = sm_->revision();
    std::vector<kv::CommandResult> results;
    Status s = sm_->ApplyBatch(pending_, &results);
    CHECK(s.ok()) << s.ToString();
    CHECK_EQ(results.size(), pending_.size());
    CHECK_EQ(sm_->applied_index(), pending_.back().index());
    bool any_written = false;
    for (size_t i = 0; i < results.size(); ++i) {
      const kv::Command& c = commands_[i];
      const kv::CommandResult& r = results[i];
      const bool invalid = r.error() == kv::CommandResult::INVALID;
      if (c.client_id() == 0 && !c.has_register_client()) {
        const Status v = Validate(c);
        if (!v.ok() || !StateMayRefuse(c)) {
          CHECK_EQ(invalid, !v.ok()) << "command " << c.ShortDebugString()
                                     << " got " << r.ShortDebugString()
                                     << " but validation says " << v.ToString();
        }
      }  // a session's retry gets the first attempt's result: no check
      if (r.error() == kv::CommandResult::OK) any_written = true;
    }
    CHECK_GE(sm_->revision(), revision_before);
    if (!any_written) {
      CHECK_EQ(sm_->revision(), revision_before)
          << "rejected commands changed the store revision";
    }
    pending_.clear();
    commands_.clear();
  }

  // Reads back every key: all stored values must decode.
  void ReadAll() {
    Flush();
    kv::RangeRequest all;
    all.set_key(std::string(1, '\0'));
    all.set_range_end(std::string(1, '\0'));
    auto result = sm_->Range(all);
    CHECK(result.ok()) << result.status().ToString();
    for (const kv::KeyValue& kv : result->kvs()) {
      CHECK(!kv.key().empty());
      CHECK_GE(kv.version(), 1);
      CHECK_LE(kv.mod_revision(), sm_->revision());
      CHECK_LE(kv.create_revision(), kv.mod_revision());
    }
  }

 private:
  std::unique_ptr<storage::KvStateMachine> sm_;
  std::vector<raft::Entry> pending_;
  std::vector<kv::Command> commands_;
};

}  // namespace
}  // namespace raftkv::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  raftkv::fuzz::InitLogging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftkv;
  fuzz::Harness harness;
  for (const std::string& frame :
       fuzz::SplitFrames(data, size, fuzz::kMaxFrameBytes)) {
    kv::ClientRequest request;
    if (!request.ParseFromString(frame)) break;  // connection closed
    switch (request.request_case()) {
      case kv::ClientRequest::kCommand:
        if (request.command().op_case() == kv::Command::OP_NOT_SET) {
          continue;  // MALFORMED
        }
        harness.Command(request.command());
        break;
      case kv::ClientRequest::kRange:
        harness.Range(request.range());
        break;
      default:
        break;
    }
  }
  harness.ReadAll();
  return 0;
}
