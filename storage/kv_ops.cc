// Key-value operations with etcd v3 semantics over a WriteView. Must never
// write before the whole request has been validated.
#include "storage/kv_ops.h"

#include <string>
#include <utility>
#include <vector>

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
  return Status::OK();
}

Status ValidatePut(const kv::PutRequest& request) {
  RAFTKV_RETURN_IF_ERROR(RequireKey(request.key(), "put"));
  if (request.lease() != 0) {
    return Status::InvalidArgument("put: leases are not supported");
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

Status ExecRange(WriteView* view, const kv::RangeRequest& request,
                 kv::RangeResponse* response) {
  const int64_t limit = request.limit();
  int64_t count = 0;
  RAFTKV_RETURN_IF_ERROR(ScanRange(
      view, request.key(), request.range_end(), [&](kv::KeyValue&& kv) {
        ++count;
        if (!request.count_only() &&
            (limit == 0 || response->kvs_size() < limit)) {
          if (request.keys_only()) kv.clear_value();
          *response->add_kvs() = std::move(kv);
        }
        return true;  // count every match, as etcd does
      }));
  response->set_count(count);
  response->set_more(!request.count_only() && limit > 0 && count > limit);
  return Status::OK();
}

Status ExecPut(OpContext* ctx, const kv::PutRequest& request,
               kv::PutResponse* response) {
  kv::KeyValue prev;
  bool found = false;
  RAFTKV_RETURN_IF_ERROR(GetKv(ctx->view, request.key(), &prev, &found));
  kv::KeyValue next;
  next.set_key(request.key());
  next.set_value(request.value());
  next.set_mod_revision(ctx->write_revision);
  next.set_create_revision(found ? prev.create_revision()
                                 : ctx->write_revision);
  next.set_version(found ? prev.version() + 1 : 1);
  if (found && request.prev_kv()) *response->mutable_prev_kv() = prev;
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
    ctx->view->Delete(ctx->view->rep()->kv, kv.key());
    if (request.prev_kv()) *response->add_prev_kvs() = std::move(kv);
  }
  response->set_deleted(static_cast<int64_t>(doomed.size()));
  if (!doomed.empty()) ctx->wrote = true;
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
        RAFTKV_RETURN_IF_ERROR(ExecRange(ctx->view, op.request_range(),
                                         out->mutable_response_range()));
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
