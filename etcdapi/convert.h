// Translation between etcd's v3 API messages (etcdserverpb, mvccpb) and
// raftkv's native ones (client/kv.proto), which were built to mean the
// same: each etcd request has one native request of the same meaning, and
// each native answer one etcd answer. Pure functions: no I/O, no state.
//
// What etcd offers and the native protocol does not (nested transactions,
// lease and range compares) is refused here with a clear message, never
// approximated. Range's sort and revision filters are applied here, to the
// native answer, as etcd applies them to its index's answer.
#pragma once

#include <string>

#include "client/kv.pb.h"
#include "etcdserverpb/rpc.pb.h"
#include "util/status.h"

namespace raftkv::etcdapi {

void ToEtcd(const kv::KeyValue& in, mvccpb::KeyValue* out);
void ToEtcd(const kv::Event& in, mvccpb::Event* out);
void ToEtcd(const kv::ResponseHeader& in, etcdserverpb::ResponseHeader* out);

// Range: the native request to send. When the etcd request sorts or
// filters, the native one reads every key of the range (the limit applies
// after sorting and filtering); FinishRange then does what etcd does.
kv::RangeRequest ToNative(const etcdserverpb::RangeRequest& in);
void FinishRange(const etcdserverpb::RangeRequest& request,
                 const kv::RangeResponse& in, etcdserverpb::RangeResponse* out);

kv::PutRequest ToNative(const etcdserverpb::PutRequest& in);
void ToEtcd(const kv::PutResponse& in, etcdserverpb::PutResponse* out);
kv::DeleteRangeRequest ToNative(const etcdserverpb::DeleteRangeRequest& in);
void ToEtcd(const kv::DeleteRangeResponse& in,
            etcdserverpb::DeleteRangeResponse* out);
// InvalidArgument for what the native transaction cannot express.
Status ToNative(const etcdserverpb::TxnRequest& in, kv::TxnRequest* out);
void FinishTxn(const etcdserverpb::TxnRequest& request,
               const kv::TxnResponse& in, etcdserverpb::TxnResponse* out);

}  // namespace raftkv::etcdapi
