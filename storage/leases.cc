// Lease records and key markers (see leases.h).
#include "storage/leases.h"

#include <memory>

#include "storage/coding.h"

namespace raftkv::storage {
namespace {

std::string RecordKey(char kind, int64_t id) {
  std::string key(1, kind);
  PutBigEndian64(&key, static_cast<uint64_t>(id));
  return key;
}

Status Corrupt(WriteView* view, const std::string& what) {
  return Status::Corruption(view->rep()->dir + ": kv_leases: " + what);
}

}  // namespace

Status FindLease(WriteView* view, int64_t id, Lease* lease, bool* found) {
  std::string value;
  RAFTKV_RETURN_IF_ERROR(
      view->Get(view->rep()->kv_leases, RecordKey('L', id), &value, found));
  if (*found && !lease->ParseFromString(value)) {
    return Corrupt(view, "lease " + std::to_string(id) + " does not parse");
  }
  return Status::OK();
}

void StoreLease(WriteView* view, const Lease& lease) {
  view->Put(view->rep()->kv_leases, RecordKey('L', lease.id()),
            lease.SerializeAsString());
}

void DeleteLease(WriteView* view, int64_t id) {
  view->Delete(view->rep()->kv_leases, RecordKey('L', id));
}

void AttachKey(WriteView* view, int64_t id, const std::string& key) {
  view->Put(view->rep()->kv_leases, RecordKey('K', id) + key, "");
}

void DetachKey(WriteView* view, int64_t id, const std::string& key) {
  view->Delete(view->rep()->kv_leases, RecordKey('K', id) + key);
}

Status LeaseKeys(WriteView* view, int64_t id, std::vector<std::string>* keys) {
  const std::string prefix = RecordKey('K', id);
  std::unique_ptr<rocksdb::Iterator> it =
      view->NewIterator(view->rep()->kv_leases);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    keys->emplace_back(it->key().data() + prefix.size(),
                       it->key().size() - prefix.size());
  }
  if (!it->status().ok()) {
    return view->rep()->Error(it->status(), "read lease keys");
  }
  return Status::OK();
}

Status ListLeases(WriteView* view, std::vector<Lease>* leases) {
  std::unique_ptr<rocksdb::Iterator> it =
      view->NewIterator(view->rep()->kv_leases);
  for (it->Seek("L"); it->Valid() && it->key().starts_with("L"); it->Next()) {
    Lease lease;
    if (!lease.ParseFromArray(it->value().data(),
                              static_cast<int>(it->value().size()))) {
      return Corrupt(view, "a lease record does not parse");
    }
    leases->push_back(lease);
  }
  if (!it->status().ok()) {
    return view->rep()->Error(it->status(), "list leases");
  }
  return Status::OK();
}

}  // namespace raftkv::storage
