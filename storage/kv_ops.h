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
#include <vector>

#include "client/kv.pb.h"
#include "storage/write_view.h"

namespace raftkv::storage {

// The store's revisions as a command sees them.
struct Revisions {
  int64_t current = 0;    // before the command
  int64_t compacted = 0;  // history at and below it is forgotten
};

struct OpContext {
  WriteView* view = nullptr;
  Revisions revisions;
  int64_t write_revision = 0;     // the revision this command's writes get
  bool wrote = false;             // set once anything was written
  std::vector<kv::Event> events;  // every change, in order
};

Status ValidateRange(const kv::RangeRequest& request);
Status ValidatePut(const kv::PutRequest& request);
Status ValidateDeleteRange(const kv::DeleteRangeRequest& request);
Status ValidateTxn(const kv::TxnRequest& request);
// What the state must allow before `command` (validated) runs: its puts'
// leases exist, ignore_value puts' keys exist, its reads' revisions are
// retained and reached, a revoked lease exists.
Status CheckCommand(WriteView* view, const Revisions& revisions,
                    const kv::Command& command);
// Compacted or FailedPrecondition (a future revision) unless a read at
// `revision` (0: current) can be served.
Status CheckReadRevision(int64_t revision, const Revisions& revisions);

// Each Exec*() requires its request to have passed Validate*().
// A read at an old revision undoes the history after it (and, in a
// transaction, the transaction's `uncommitted` changes so far).
Status ExecRange(WriteView* view, const Revisions& revisions,
                 const kv::RangeRequest& request, kv::RangeResponse* response,
                 const std::vector<kv::Event>* uncommitted = nullptr);
Status ExecPut(OpContext* ctx, const kv::PutRequest& request,
               kv::PutResponse* response);
Status ExecDeleteRange(OpContext* ctx, const kv::DeleteRangeRequest& request,
                       kv::DeleteRangeResponse* response);
Status ExecTxn(OpContext* ctx, const kv::TxnRequest& request,
               kv::TxnResponse* response);
// Deletes lease `id` and every key attached to it (CheckCommand found it).
Status ExecLeaseRevoke(OpContext* ctx, int64_t id);

}  // namespace raftkv::storage
