// WriteView: a WriteBatch being built whose own writes are visible to the
// reads made through it (RocksDB WriteBatchWithIndex over the DB), so a Txn
// sees its earlier puts and the entries of one apply batch see each other.
// Over a RocksDB snapshot it is the read-only view of a ReadSnapshot.
// Internal to storage/ (pulls in RocksDB headers). Must never be written
// to the DB by anyone but the KvStateMachine that built it.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include <memory>
#include <string>
#include <string_view>

#include "storage/engine_rep.h"

namespace raftkv::storage {

class WriteView {
 public:
  // Over the DB as it is, or as it was at `snapshot` (a read-only view's).
  explicit WriteView(Engine::Rep* rep,
                     const rocksdb::Snapshot* snapshot = nullptr)
      : rep_(rep),
        batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true, 0,
               kBatchProtectionBytes) {
    read_options_.snapshot = snapshot;
  }

  // Reads `key` as the batch would leave it; *found = false if absent.
  Status Get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
             std::string* value, bool* found) {
    rocksdb::PinnableSlice slice;
    rocksdb::Status s = batch_.GetFromBatchAndDB(
        rep_->db.get(), read_options_, cf, rocksdb::Slice(key), &slice);
    *found = s.ok();
    if (s.IsNotFound()) return Status::OK();
    if (!s.ok()) return rep_->Error(s, "read");
    value->assign(slice.data(), slice.size());
    return Status::OK();
  }

  // An iterator over the DB merged with the batch's writes.
  std::unique_ptr<rocksdb::Iterator> NewIterator(
      rocksdb::ColumnFamilyHandle* cf) {
    rocksdb::Iterator* base = rep_->db->NewIterator(read_options_, cf);
    return std::unique_ptr<rocksdb::Iterator>(
        batch_.NewIteratorWithBase(cf, base));
  }

  void Put(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
           std::string_view value) {
    CHECK(batch_.Put(cf, rocksdb::Slice(key), rocksdb::Slice(value)).ok());
  }
  void Delete(rocksdb::ColumnFamilyHandle* cf, std::string_view key) {
    CHECK(batch_.Delete(cf, rocksdb::Slice(key)).ok());
  }

  rocksdb::WriteBatch* batch() { return batch_.GetWriteBatch(); }
  Engine::Rep* rep() const { return rep_; }

 private:
  Engine::Rep* rep_;
  rocksdb::ReadOptions read_options_;
  rocksdb::WriteBatchWithIndex batch_;
};

}  // namespace raftkv::storage
