// etcd <-> native message translation (see convert.h).
#include "etcdapi/convert.h"

#include <algorithm>
#include <tuple>

namespace raftkv::etcdapi {
namespace {

using etcdserverpb::RangeRequest;

bool Filters(const RangeRequest& r) {
  return r.min_mod_revision() > 0 || r.max_mod_revision() > 0 ||
         r.min_create_revision() > 0 || r.max_create_revision() > 0;
}

// etcd sorts unless the order is by key ascending, which is the native
// order already (etcd treats NONE with a KEY target as ascending).
bool Sorts(const RangeRequest& r) {
  if (r.sort_order() == RangeRequest::NONE) return false;
  return !(r.sort_order() == RangeRequest::ASCEND &&
           r.sort_target() == RangeRequest::KEY);
}

bool Kept(const RangeRequest& r, const kv::KeyValue& kv) {
  if (r.min_mod_revision() > 0 && kv.mod_revision() < r.min_mod_revision())
    return false;
  if (r.max_mod_revision() > 0 && kv.mod_revision() > r.max_mod_revision())
    return false;
  if (r.min_create_revision() > 0 &&
      kv.create_revision() < r.min_create_revision())
    return false;
  if (r.max_create_revision() > 0 &&
      kv.create_revision() > r.max_create_revision())
    return false;
  return true;
}

}  // namespace

static void ToEtcd(const kv::RangeResponse& in,
                   etcdserverpb::RangeResponse* out) {
  ToEtcd(in.header(), out->mutable_header());
  for (const kv::KeyValue& kv : in.kvs()) ToEtcd(kv, out->add_kvs());
  out->set_more(in.more());
  out->set_count(in.count());
}

static Status ToNative(const etcdserverpb::RequestOp& in, kv::RequestOp* out) {
  switch (in.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange:
      *out->mutable_request_range() = ToNative(in.request_range());
      return Status::OK();
    case etcdserverpb::RequestOp::kRequestPut:
      *out->mutable_request_put() = ToNative(in.request_put());
      return Status::OK();
    case etcdserverpb::RequestOp::kRequestDeleteRange:
      *out->mutable_request_delete_range() =
          ToNative(in.request_delete_range());
      return Status::OK();
    case etcdserverpb::RequestOp::kRequestTxn:
      return Status::InvalidArgument(
          "raftkv: nested transactions are not supported");
    default:
      return Status::InvalidArgument("etcdserver: empty request op");
  }
}

static Status ToNative(const etcdserverpb::Compare& in, kv::Compare* out) {
  if (!in.range_end().empty()) {
    return Status::InvalidArgument(
        "raftkv: compares over a key range are not supported");
  }
  out->set_key(in.key());
  out->set_result(static_cast<kv::Compare::Result>(in.result()));
  switch (in.target()) {
    case etcdserverpb::Compare::VERSION:
      out->set_target(kv::Compare::VERSION);
      out->set_version(in.version());
      break;
    case etcdserverpb::Compare::CREATE:
      out->set_target(kv::Compare::CREATE);
      out->set_create_revision(in.create_revision());
      break;
    case etcdserverpb::Compare::MOD:
      out->set_target(kv::Compare::MOD);
      out->set_mod_revision(in.mod_revision());
      break;
    case etcdserverpb::Compare::VALUE:
      out->set_target(kv::Compare::VALUE);
      out->set_value(in.value());
      break;
    default:
      return Status::InvalidArgument(
          "raftkv: compares on a key's lease are not supported");
  }
  return Status::OK();
}

void ToEtcd(const kv::KeyValue& in, mvccpb::KeyValue* out) {
  out->set_key(in.key());
  out->set_create_revision(in.create_revision());
  out->set_mod_revision(in.mod_revision());
  out->set_version(in.version());
  out->set_value(in.value());
  out->set_lease(in.lease());
}

void ToEtcd(const kv::Event& in, mvccpb::Event* out) {
  out->set_type(in.type() == kv::Event::DELETE ? mvccpb::Event::DELETE
                                               : mvccpb::Event::PUT);
  ToEtcd(in.kv(), out->mutable_kv());
  if (in.has_prev_kv()) ToEtcd(in.prev_kv(), out->mutable_prev_kv());
}

void ToEtcd(const kv::ResponseHeader& in, etcdserverpb::ResponseHeader* out) {
  out->set_cluster_id(in.cluster_id());
  out->set_member_id(in.member_id());
  out->set_revision(in.revision());
  out->set_raft_term(in.raft_term());
}

kv::RangeRequest ToNative(const RangeRequest& in) {
  kv::RangeRequest out;
  out.set_key(in.key());
  out.set_range_end(in.range_end());
  out.set_serializable(in.serializable());
  out.set_revision(in.revision() > 0 ? in.revision() : 0);
  const bool post = Sorts(in) || Filters(in);
  // Sorting by value needs the values even for keys_only.
  out.set_keys_only(in.keys_only() &&
                    !(post && in.sort_target() == RangeRequest::VALUE));
  if (!post) {
    out.set_limit(in.limit());
    out.set_count_only(in.count_only());
  }
  return out;
}

void FinishRange(const RangeRequest& request, const kv::RangeResponse& in,
                 etcdserverpb::RangeResponse* out) {
  if (!Sorts(request) && !Filters(request)) {
    ToEtcd(in, out);
    return;
  }
  ToEtcd(in.header(), out->mutable_header());
  std::vector<const kv::KeyValue*> kept;
  for (const kv::KeyValue& kv : in.kvs()) {
    if (Kept(request, kv)) kept.push_back(&kv);
  }
  if (Sorts(request)) {
    auto key = [&](const kv::KeyValue* kv) {
      switch (request.sort_target()) {
        case RangeRequest::VERSION:
          return std::make_tuple(kv->version(), std::string());
        case RangeRequest::CREATE:
          return std::make_tuple(kv->create_revision(), std::string());
        case RangeRequest::MOD:
          return std::make_tuple(kv->mod_revision(), std::string());
        case RangeRequest::VALUE:
          return std::make_tuple(int64_t{0}, kv->value());
        default:
          return std::make_tuple(int64_t{0}, kv->key());
      }
    };
    // Stable: equal targets stay in key order, as etcd's are.
    const bool descend = request.sort_order() == RangeRequest::DESCEND;
    std::stable_sort(kept.begin(), kept.end(), [&](auto* a, auto* b) {
      return descend ? key(b) < key(a) : key(a) < key(b);
    });
  }
  out->set_count(static_cast<int64_t>(kept.size()));
  if (request.count_only()) return;
  size_t n = kept.size();
  if (request.limit() > 0 && static_cast<size_t>(request.limit()) < n) {
    n = static_cast<size_t>(request.limit());
    out->set_more(true);
  }
  for (size_t i = 0; i < n; ++i) {
    mvccpb::KeyValue* kv = out->add_kvs();
    ToEtcd(*kept[i], kv);
    if (request.keys_only()) kv->clear_value();
  }
}

kv::PutRequest ToNative(const etcdserverpb::PutRequest& in) {
  kv::PutRequest out;
  out.set_key(in.key());
  out.set_value(in.value());
  out.set_prev_kv(in.prev_kv());
  out.set_lease(in.lease());
  out.set_ignore_value(in.ignore_value());
  out.set_ignore_lease(in.ignore_lease());
  return out;
}

void ToEtcd(const kv::PutResponse& in, etcdserverpb::PutResponse* out) {
  ToEtcd(in.header(), out->mutable_header());
  if (in.has_prev_kv()) ToEtcd(in.prev_kv(), out->mutable_prev_kv());
}

kv::DeleteRangeRequest ToNative(const etcdserverpb::DeleteRangeRequest& in) {
  kv::DeleteRangeRequest out;
  out.set_key(in.key());
  out.set_range_end(in.range_end());
  out.set_prev_kv(in.prev_kv());
  return out;
}

void ToEtcd(const kv::DeleteRangeResponse& in,
            etcdserverpb::DeleteRangeResponse* out) {
  ToEtcd(in.header(), out->mutable_header());
  out->set_deleted(in.deleted());
  for (const kv::KeyValue& kv : in.prev_kvs()) ToEtcd(kv, out->add_prev_kvs());
}

Status ToNative(const etcdserverpb::TxnRequest& in, kv::TxnRequest* out) {
  for (const etcdserverpb::Compare& c : in.compare()) {
    RAFTKV_RETURN_IF_ERROR(ToNative(c, out->add_compare()));
  }
  for (const etcdserverpb::RequestOp& op : in.success()) {
    RAFTKV_RETURN_IF_ERROR(ToNative(op, out->add_success()));
  }
  for (const etcdserverpb::RequestOp& op : in.failure()) {
    RAFTKV_RETURN_IF_ERROR(ToNative(op, out->add_failure()));
  }
  return Status::OK();
}

void FinishTxn(const etcdserverpb::TxnRequest& request,
               const kv::TxnResponse& in, etcdserverpb::TxnResponse* out) {
  ToEtcd(in.header(), out->mutable_header());
  out->set_succeeded(in.succeeded());
  const auto& ops = in.succeeded() ? request.success() : request.failure();
  for (int i = 0; i < in.responses_size(); ++i) {
    const kv::ResponseOp& r = in.responses(i);
    etcdserverpb::ResponseOp* o = out->add_responses();
    switch (r.response_case()) {
      case kv::ResponseOp::kResponseRange:
        if (i < ops.size() && ops[i].has_request_range()) {
          FinishRange(ops[i].request_range(), r.response_range(),
                      o->mutable_response_range());
        } else {
          ToEtcd(r.response_range(), o->mutable_response_range());
        }
        break;
      case kv::ResponseOp::kResponsePut:
        ToEtcd(r.response_put(), o->mutable_response_put());
        break;
      case kv::ResponseOp::kResponseDeleteRange:
        ToEtcd(r.response_delete_range(), o->mutable_response_delete_range());
        break;
      default:
        break;
    }
  }
}

}  // namespace raftkv::etcdapi
