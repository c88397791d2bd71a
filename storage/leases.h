// Lease records in the "kv_leases" column family: the lease itself ('L' +
// id -> storage.Lease) and one marker per attached key ('K' + id + key), so
// a revoke finds its keys without a scan of the store. Written through a
// WriteView in the batch of the command that changes them. Internal to
// storage/.
//
// Must never: leave a marker for a key that is not attached to the lease
// (a revoke would delete a key it does not own).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/storage.pb.h"
#include "storage/write_view.h"

namespace raftkv::storage {

Status FindLease(WriteView* view, int64_t id, Lease* lease, bool* found);
void StoreLease(WriteView* view, const Lease& lease);
// Deletes the lease record (its keys, and their markers, go first).
void DeleteLease(WriteView* view, int64_t id);

void AttachKey(WriteView* view, int64_t id, const std::string& key);
void DetachKey(WriteView* view, int64_t id, const std::string& key);
// The keys attached to lease `id`, in key order.
Status LeaseKeys(WriteView* view, int64_t id, std::vector<std::string>* keys);
// Every lease, by id.
Status ListLeases(WriteView* view, std::vector<Lease>* leases);

}  // namespace raftkv::storage
