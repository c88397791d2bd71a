// The key-value operations of the state machine (etcd v3 semantics):
// Range, Put, DeleteRange and Txn with Compare, executed against a
// WriteView. Internal to storage/.
//
// Errors: InvalidArgument is the client's fault and is checked by
// Validate*() before anything is written, so a rejected command leaves no
// trace; any other Status is a storage failure.
// Must never: write outside the "kv" column family, or change the store
// revision itself (the caller commits `OpContext::write_revision` iff
// `wrote`).
#pragma once

#include <cstdint>

#include "client/kv.pb.h"
#include "storage/write_view.h"

namespace raftkv::storage {

struct OpContext {
  WriteView* view = nullptr;
  int64_t write_revision = 0;  // the revision this command's writes get
  bool wrote = false;          // set once anything was written
};

Status ValidateRange(const kv::RangeRequest& request);
Status ValidatePut(const kv::PutRequest& request);
Status ValidateDeleteRange(const kv::DeleteRangeRequest& request);
Status ValidateTxn(const kv::TxnRequest& request);

// Each Exec*() requires its request to have passed Validate*().
Status ExecRange(WriteView* view, const kv::RangeRequest& request,
                 kv::RangeResponse* response);
Status ExecPut(OpContext* ctx, const kv::PutRequest& request,
               kv::PutResponse* response);
Status ExecDeleteRange(OpContext* ctx, const kv::DeleteRangeRequest& request,
                       kv::DeleteRangeResponse* response);
Status ExecTxn(OpContext* ctx, const kv::TxnRequest& request,
               kv::TxnResponse* response);

}  // namespace raftkv::storage
