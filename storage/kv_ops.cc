// Key-value operations with etcd v3 semantics over a WriteView. Must never
// write before the whole request has been validated.
#include "storage/kv_ops.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "storage/history.h"
#include "storage/leases.h"

namespace raftkv::storage {
namespace {

// A key for error messages: printable bytes as is, others as \xNN, at most
// 64 bytes shown.
std::string Printable(std::string_view key) {
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

Status DecodeKv(const Engine::Rep* rep, std::string_view key,
                std::string_view value, kv::KeyValue* kv) {
  if (!kv->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Status::Corruption(rep->dir + ": value of key '" + Printable(key) +
                              "' does not parse");
  }
  kv->set_key(std::string(key));
  return Status::OK();
}

// Calls visit(KeyValue&&) for every key of the etcd range [key, range_end)
// in key order until it returns false. range_end empty: just `key`;
// range_end "\0": every key >= `key`.
template <typename Visit>
Status ScanRange(WriteView* view, const std::string& key,
                 const std::string& range_end, Visit visit) {
  Engine::Rep* rep = view->rep();
  if (range_end.empty()) {
    std::string value;
    bool found = false;
    RAFTKV_RETURN_IF_ERROR(view->Get(rep->kv, key, &value, &found));
    if (!found) return Status::OK();
    kv::KeyValue kv;
    RAFTKV_RETURN_IF_ERROR(DecodeKv(rep, key, value, &kv));
    visit(std::move(kv));
    return Status::OK();
  }
  const bool to_end = range_end == std::string(1, '\0');
  if (!to_end && range_end <= key) return Status::OK();
  std::unique_ptr<rocksdb::Iterator> it = view->NewIterator(rep->kv);
  for (it->Seek(key); it->Valid(); it->Next()) {
    if (!to_end && it->key().compare(range_end) >= 0) break;
    kv::KeyValue kv;
    RAFTKV_RETURN_IF_ERROR(DecodeKv(rep, it->key().ToStringView(),
                                    it->value().ToStringView(), &kv));
    if (!visit(std::move(kv))) break;
  }
  if (!it->status().ok()) return rep->Error(it->status(), "scan kv");
  return Status::OK();
}

Status GetKv(WriteView* view, const std::string& key, kv::KeyValue* kv,
             bool* found) {
  std::string value;
  RAFTKV_RETURN_IF_ERROR(view->Get(view->rep()->kv, key, &value, found));
  if (!*found) return Status::OK();
  return DecodeKv(view->rep(), key, value, kv);
}

void StoreKv(WriteView* view, kv::KeyValue kv) {
  const std::string key = kv.key();
  kv.clear_key();  // the key is the RocksDB key; not stored twice
  std::string value;
  CHECK(kv.SerializeToString(&value));
  view->Put(view->rep()->kv, key, value);
}

template <typename T>
bool Holds(kv::Compare::Result result, const T& actual, const T& target) {
  switch (result) {
    case kv::Compare::EQUAL:
      return actual == target;
    case kv::Compare::GREATER:
      return actual > target;
    case kv::Compare::LESS:
      return actual < target;
    case kv::Compare::NOT_EQUAL:
      return actual != target;
    default:
      return false;  // rejected by ValidateTxn
  }
}

// etcd: a missing key has version and revisions 0 and no value (a VALUE
// comparison against it fails).
Status CompareHolds(WriteView* view, const kv::Compare& c, bool* holds) {
  kv::KeyValue kv;
  bool found = false;
  RAFTKV_RETURN_IF_ERROR(GetKv(view, c.key(), &kv, &found));
  switch (c.target()) {
    case kv::Compare::VERSION:
      *holds = Holds(c.result(), kv.version(), c.version());
      break;
    case kv::Compare::CREATE:
      *holds = Holds(c.result(), kv.create_revision(), c.create_revision());
      break;
    case kv::Compare::MOD:
      *holds = Holds(c.result(), kv.mod_revision(), c.mod_revision());
      break;
    case kv::Compare::VALUE:
      *holds = found && Holds(c.result(), kv.value(), c.value());
      break;
    default:
      *holds = false;  // rejected by ValidateTxn
  }
  return Status::OK();
}

Status RequireKey(const std::string& key, const char* what) {
  if (key.empty()) {
    return Status::InvalidArgument(std::string(what) + ": key is empty");
  }
  return Status::OK();
}

}  // namespace

Status ValidateRange(const kv::RangeRequest& request) {
  RAFTKV_RETURN_IF_ERROR(RequireKey(request.key(), "range"));
  if (request.limit() < 0) {
    return Status::InvalidArgument("range: negative limit");
  }
  if (request.revision() < 0) {
    return Status::InvalidArgument("range: negative revision");
  }
  return Status::OK();
}

Status ValidatePut(const kv::PutRequest& request) {
  RAFTKV_RETURN_IF_ERROR(RequireKey(request.key(), "put"));
  if (request.lease() < 0) {
    return Status::InvalidArgument("put: negative lease id");
  }
  if (request.ignore_lease() && request.lease() != 0) {
    return Status::InvalidArgument(
        "etcdserver: lease id should be 0 when ignore_lease is set");
  }
  return Status::OK();
}

Status ValidateDeleteRange(const kv::DeleteRangeRequest& request) {
  return RequireKey(request.key(), "delete_range");
}

Status ValidateTxn(const kv::TxnRequest& request) {
  for (const kv::Compare& c : request.compare()) {
    RAFTKV_RETURN_IF_ERROR(RequireKey(c.key(), "txn compare"));
    if (!kv::Compare::Result_IsValid(c.result()) ||
        !kv::Compare::Target_IsValid(c.target())) {
      return Status::InvalidArgument("txn compare: unknown result or target");
    }
  }
  for (const auto* ops : {&request.success(), &request.failure()}) {
    // As etcd: a branch writes each key once (one event per key and
    // revision); deletions may overlap each other.
    std::set<std::string> puts;
    for (const kv::RequestOp& op : *ops) {
      if (op.has_request_put() && !puts.insert(op.request_put().key()).second) {
        return Status::InvalidArgument(
            "etcdserver: duplicate key given in txn request");
      }
    }
    for (const kv::RequestOp& op : *ops) {
      if (!op.has_request_delete_range()) continue;
      const kv::DeleteRangeRequest& d = op.request_delete_range();
      for (const std::string& key : puts) {
        if (InRange(key, d.key(), d.range_end())) {
          return Status::InvalidArgument(
              "etcdserver: duplicate key given in txn request");
        }
      }
    }
    for (const kv::RequestOp& op : *ops) {
      switch (op.request_case()) {
        case kv::RequestOp::kRequestRange:
          RAFTKV_RETURN_IF_ERROR(ValidateRange(op.request_range()));
          break;
        case kv::RequestOp::kRequestPut:
          RAFTKV_RETURN_IF_ERROR(ValidatePut(op.request_put()));
          break;
        case kv::RequestOp::kRequestDeleteRange:
          RAFTKV_RETURN_IF_ERROR(
              ValidateDeleteRange(op.request_delete_range()));
          break;
        default:
          return Status::InvalidArgument("txn: empty request op");
      }
    }
  }
  return Status::OK();
}

Status CheckReadRevision(int64_t revision, const Revisions& revisions) {
  if (revision == 0 || revision == revisions.current) return Status::OK();
  if (revision > revisions.current) {
    return Status::FailedPrecondition(
        FutureRevisionMessage(revision, revisions.current));
  }
  if (revision < revisions.compacted) {
    return Status::Compacted(CompactedMessage(revision, revisions.compacted));
  }
  return Status::OK();
}

Status ExecRange(WriteView* view, const Revisions& revisions,
                 const kv::RangeRequest& request, kv::RangeResponse* response,
                 const std::vector<kv::Event>* uncommitted) {
  const int64_t limit = request.limit();
  int64_t count = 0;
  auto take = [&](kv::KeyValue&& kv) {
    ++count;
    if (!request.count_only() && (limit == 0 || response->kvs_size() < limit)) {
      if (request.keys_only()) kv.clear_value();
      *response->add_kvs() = std::move(kv);
    }
    return true;  // count every match, as etcd does
  };
  const bool now = request.revision() == 0 ||
                   (request.revision() >= revisions.current &&
                    (uncommitted == nullptr || uncommitted->empty()));
  if (now) {
    RAFTKV_RETURN_IF_ERROR(
        ScanRange(view, request.key(), request.range_end(), take));
  } else {
    // The range now, then every later change undone.
    std::map<std::string, kv::KeyValue> state;
    RAFTKV_RETURN_IF_ERROR(ScanRange(
        view, request.key(), request.range_end(), [&](kv::KeyValue&& kv) {
          std::string key = kv.key();
          state.emplace(std::move(key), std::move(kv));
          return true;
        }));
    // A transaction's own writes so far first, newest first.
    if (uncommitted != nullptr) {
      for (auto it = uncommitted->rbegin(); it != uncommitted->rend(); ++it) {
        const std::string& key = it->kv().key();
        if (!InRange(key, request.key(), request.range_end())) continue;
        if (it->has_prev_kv()) {
          state[key] = it->prev_kv();
        } else {
          state.erase(key);
        }
      }
    }
    RAFTKV_RETURN_IF_ERROR(UndoHistory(view, revisions.current,
                                       request.revision(), request.key(),
                                       request.range_end(), &state));
    for (auto& [key, kv] : state) take(std::move(kv));
  }
  response->set_count(count);
  response->set_more(!request.count_only() && limit > 0 && count > limit);
  return Status::OK();
}

Status CheckCommand(WriteView* view, const Revisions& revisions,
                    const kv::Command& command) {
  auto check_lease = [view](int64_t id) -> Status {
    if (id == 0) return Status::OK();
    Lease lease;
    bool found = false;
    RAFTKV_RETURN_IF_ERROR(FindLease(view, id, &lease, &found));
    if (!found) {
      return Status::NotFound("etcdserver: requested lease not found (lease " +
                              std::to_string(id) + ")");
    }
    return Status::OK();
  };
  auto check_put = [&](const kv::PutRequest& put) -> Status {
    RAFTKV_RETURN_IF_ERROR(check_lease(put.lease()));
    if (put.ignore_value() || put.ignore_lease()) {
      std::string value;
      bool found = false;
      RAFTKV_RETURN_IF_ERROR(
          view->Get(view->rep()->kv, put.key(), &value, &found));
      if (!found) return Status::InvalidArgument("etcdserver: key not found");
    }
    return Status::OK();
  };
  switch (command.op_case()) {
    case kv::Command::kPut:
      return check_put(command.put());
    case kv::Command::kLeaseRevoke:
      return check_lease(command.lease_revoke().id());
    case kv::Command::kLeaseGrant: {
      const int64_t id = command.lease_grant().id();
      if (id == 0) return Status::OK();
      Lease lease;
      bool found = false;
      RAFTKV_RETURN_IF_ERROR(FindLease(view, id, &lease, &found));
      if (found) {
        return Status::InvalidArgument("etcdserver: lease already exists");
      }
      return Status::OK();
    }
    case kv::Command::kTxn:
      // Both branches, as etcd does: which one runs is not known yet.
      for (const auto* ops :
           {&command.txn().success(), &command.txn().failure()}) {
        for (const kv::RequestOp& op : *ops) {
          if (op.has_request_put()) {
            RAFTKV_RETURN_IF_ERROR(check_put(op.request_put()));
          } else if (op.has_request_range()) {
            RAFTKV_RETURN_IF_ERROR(
                CheckReadRevision(op.request_range().revision(), revisions));
          }
        }
      }
      return Status::OK();
    default:
      return Status::OK();
  }
}

namespace {

// Records the deletion of `kv` (the key's last state) at the command's
// revision: the key, its lease marker, and the event.
void DeleteKey(OpContext* ctx, kv::KeyValue kv) {
  ctx->view->Delete(ctx->view->rep()->kv, kv.key());
  if (kv.lease() != 0) DetachKey(ctx->view, kv.lease(), kv.key());
  kv::Event event;
  event.set_type(kv::Event::DELETE);
  event.mutable_kv()->set_key(kv.key());
  event.mutable_kv()->set_mod_revision(ctx->write_revision);
  *event.mutable_prev_kv() = std::move(kv);
  ctx->events.push_back(std::move(event));
  ctx->wrote = true;
}

}  // namespace

Status ExecPut(OpContext* ctx, const kv::PutRequest& request,
               kv::PutResponse* response) {
  kv::KeyValue prev;
  bool found = false;
  RAFTKV_RETURN_IF_ERROR(GetKv(ctx->view, request.key(), &prev, &found));
  kv::KeyValue next;
  next.set_key(request.key());
  next.set_value(request.ignore_value() && found ? prev.value()
                                                 : request.value());
  next.set_lease(request.ignore_lease() && found ? prev.lease()
                                                 : request.lease());
  next.set_mod_revision(ctx->write_revision);
  next.set_create_revision(found ? prev.create_revision()
                                 : ctx->write_revision);
  next.set_version(found ? prev.version() + 1 : 1);
  if (found && request.prev_kv()) *response->mutable_prev_kv() = prev;
  const int64_t prev_lease = found ? prev.lease() : 0;
  if (prev_lease != next.lease()) {
    if (prev_lease != 0) DetachKey(ctx->view, prev_lease, request.key());
    if (next.lease() != 0) AttachKey(ctx->view, next.lease(), request.key());
  }
  kv::Event event;
  event.set_type(kv::Event::PUT);
  *event.mutable_kv() = next;
  if (found) *event.mutable_prev_kv() = std::move(prev);
  ctx->events.push_back(std::move(event));
  StoreKv(ctx->view, std::move(next));
  ctx->wrote = true;
  return Status::OK();
}

Status ExecDeleteRange(OpContext* ctx, const kv::DeleteRangeRequest& request,
                       kv::DeleteRangeResponse* response) {
  // Collect first: the batch must not change under its own iterator.
  std::vector<kv::KeyValue> doomed;
  RAFTKV_RETURN_IF_ERROR(ScanRange(ctx->view, request.key(),
                                   request.range_end(), [&](kv::KeyValue&& kv) {
                                     doomed.push_back(std::move(kv));
                                     return true;
                                   }));
  for (kv::KeyValue& kv : doomed) {
    if (request.prev_kv()) *response->add_prev_kvs() = kv;
    DeleteKey(ctx, std::move(kv));
  }
  response->set_deleted(static_cast<int64_t>(doomed.size()));
  return Status::OK();
}

Status ExecLeaseRevoke(OpContext* ctx, int64_t id) {
  std::vector<std::string> keys;
  RAFTKV_RETURN_IF_ERROR(LeaseKeys(ctx->view, id, &keys));
  for (const std::string& key : keys) {
    kv::KeyValue kv;
    bool found = false;
    RAFTKV_RETURN_IF_ERROR(GetKv(ctx->view, key, &kv, &found));
    if (!found || kv.lease() != id) {
      return Status::Corruption(ctx->view->rep()->dir + ": lease " +
                                std::to_string(id) + " marks key '" +
                                Printable(key) + "', which it does not hold");
    }
    DeleteKey(ctx, std::move(kv));
  }
  DeleteLease(ctx->view, id);
  return Status::OK();
}

Status ExecTxn(OpContext* ctx, const kv::TxnRequest& request,
               kv::TxnResponse* response) {
  bool succeeded = true;
  for (const kv::Compare& c : request.compare()) {
    bool holds = false;
    RAFTKV_RETURN_IF_ERROR(CompareHolds(ctx->view, c, &holds));
    if (!holds) {
      succeeded = false;
      break;
    }
  }
  response->set_succeeded(succeeded);
  const auto& ops = succeeded ? request.success() : request.failure();
  for (const kv::RequestOp& op : ops) {
    kv::ResponseOp* out = response->add_responses();
    switch (op.request_case()) {
      case kv::RequestOp::kRequestRange:
        RAFTKV_RETURN_IF_ERROR(
            ExecRange(ctx->view, ctx->revisions, op.request_range(),
                      out->mutable_response_range(), &ctx->events));
        break;
      case kv::RequestOp::kRequestPut:
        RAFTKV_RETURN_IF_ERROR(
            ExecPut(ctx, op.request_put(), out->mutable_response_put()));
        break;
      case kv::RequestOp::kRequestDeleteRange:
        RAFTKV_RETURN_IF_ERROR(
            ExecDeleteRange(ctx, op.request_delete_range(),
                            out->mutable_response_delete_range()));
        break;
      default:
        LOG(FATAL) << "txn op not validated";
    }
  }
  return Status::OK();
}

}  // namespace raftkv::storage
