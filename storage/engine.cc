// Engine: opening, creating and checking a data dir, and the RocksDB
// options (their reasons are in docs/storage.md). Must never create column
// families in an existing data dir or accept one of another format version.
#include "storage/engine.h"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include "storage/engine_rep.h"
#include "storage/storage.pb.h"
#include "util/current_thread.h"

namespace raftkv::storage {
namespace {

namespace fs = std::filesystem;

constexpr char kFormatKey[] = "raftkv_format_version";
// The column families of kFormatVersion, in handle order (see Rep).
constexpr const char* kColumnFamilies[] = {
    "default",     "raft_log", "raft_meta",  "kv",
    "kv_sessions", "kv_meta",  "kv_history", "kv_leases"};
// Format 1 had the first six; Open() upgrades it by creating the others.
constexpr size_t kFormat1ColumnFamilies = 6;
constexpr size_t kNumColumnFamilies =
    sizeof(kColumnFamilies) / sizeof(kColumnFamilies[0]);

// Lowers the CPU priority of RocksDB's compaction threads: RocksDB calls
// OnCompactionBegin on the thread that runs the compaction. Each thread is
// lowered once; a pool thread that compacts never flushes (flushes have
// their own pool).
class LowerCompactionPriority : public rocksdb::EventListener {
 public:
  explicit LowerCompactionPriority(int nice) : nice_(nice) {}
  const char* Name() const override { return "LowerCompactionPriority"; }
  void OnCompactionBegin(rocksdb::DB*,
                         const rocksdb::CompactionJobInfo&) override {
    thread_local bool lowered = false;
    if (lowered) return;
    lowered = true;
    LowerCurrentThreadPriority(nice_);
  }

 private:
  const int nice_;
};

rocksdb::DBOptions MakeDbOptions(const EngineOptions& options,
                                 const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::DBOptions db;
  if (options.env != nullptr) db.env = options.env;
  db.create_if_missing = false;  // creation is Engine's job (atomic rename)
  db.create_missing_column_families = false;
  db.paranoid_checks = true;
  // A torn tail of the last WAL (a write that was never acknowledged) is
  // dropped; anything inconsistent before it fails the open.
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db.track_and_verify_wals_in_manifest = true;
  // Replay the WAL into memtables at open instead of flushing them to tiny
  // SST files: faster restarts; the WAL files stay until a normal flush.
  db.avoid_flush_during_recovery = true;
  db.max_total_wal_size = options.max_total_wal_bytes;
  // After a failed write the database is left alone: no automatic resume
  // (which would flush and sync a log writer in an undefined state). The
  // server stops on a storage failure (server/storage_failure.h).
  db.max_bgerror_resume_count = 0;
  db.max_background_jobs = options.max_background_jobs;
  db.bytes_per_sync = 1 << 20;  // smooth SST write-back; WAL syncs are ours
  db.keep_log_file_num = 4;     // RocksDB's own info LOG files
  db.max_log_file_size = 8 << 20;
  db.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(
      options.memory_budget_bytes / 2, cache);
  if (options.compaction_nice > 0) {
    db.listeners.push_back(
        std::make_shared<LowerCompactionPriority>(options.compaction_nice));
  }
  return db;
}

rocksdb::ColumnFamilyOptions MakeCfOptions(
    const std::string& name, const EngineOptions& options,
    const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions cf;
  cf.write_buffer_size = options.write_buffer_bytes;
  cf.max_write_buffer_number = 2;
  cf.level_compaction_dynamic_level_bytes = true;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  // Index and filter blocks live in the block cache (bounded memory), in
  // partitions of 4 KB with only their top level pinned: a single index or
  // filter block of a large file would be bigger than a cache shard and be
  // read and decompressed again on every lookup.
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.pin_top_level_index_and_filter = true;
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.enable_index_compression = false;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.checksum = rocksdb::kXXH3;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Raft entries are short-lived and already compact protobufs; user data
  // lives long and compresses well.
  cf.compression = rocksdb::kNoCompression;
  if (name == "kv") {
    // Every put reads its key first (its version and create revision),
    // mostly keys the memtable does not hold: a whole-key bloom filter
    // answers those without a search of the skip list.
    cf.memtable_whole_key_filtering = true;
    cf.memtable_prefix_bloom_size_ratio = 0.02;
    const auto supported = rocksdb::GetSupportedCompressions();
    if (std::find(supported.begin(), supported.end(),
                  rocksdb::kLZ4Compression) != supported.end()) {
      cf.compression = rocksdb::kLZ4Compression;
    }
  }
  return cf;
}

std::vector<rocksdb::ColumnFamilyDescriptor> Descriptors(
    const EngineOptions& options,
    const std::shared_ptr<rocksdb::Cache>& cache) {
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const char* name : kColumnFamilies) {
    cfs.emplace_back(name, MakeCfOptions(name, options, cache));
  }
  return cfs;
}

Status FsError(const std::string& path, std::string_view what,
               const std::error_code& ec) {
  return Status::IOError(path + ": " + std::string(what) + ": " + ec.message());
}

Status SyncDirectory(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    return Status::IOError(path + ": open for fsync: " + std::strerror(errno));
  }
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) {
    return Status::IOError(path + ": fsync: " + std::strerror(saved));
  }
  return Status::OK();
}

// Creates a fresh database under `dir`: built in "<dir>.creating", format
// record written with sync, then renamed into place, so a crash during
// creation never leaves a half-made data dir behind.
// Creates the database in the existing directory `path`, format record
// last (written with sync).
Status CreateDatabase(const std::string& path, const EngineOptions& options) {
  auto cache = rocksdb::NewLRUCache(1 << 20);
  rocksdb::DBOptions db_options = MakeDbOptions(options, cache);
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.error_if_exists = true;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(
      db_options, path, Descriptors(options, cache), &handles, &raw);
  if (!s.ok()) return FromRocks(s, path, "create database");
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  s = db->Put(wo, handles[0], kFormatKey, std::to_string(kFormatVersion));
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  if (s.ok()) s = db->Close();
  if (!s.ok()) return FromRocks(s, path, "write format record");
  return Status::OK();
}

bool IsEmptyDirectory(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec) && !ec;
}

Status CreateDataDir(const std::string& dir, const EngineOptions& options) {
  std::error_code ec;
  if (IsEmptyDirectory(dir)) {
    // An empty directory the operator made, maybe a fresh disk's mount
    // point, which rename(2) cannot replace: create in place. A creation
    // interrupted before its format record is recognised at the next open
    // (no record and no data) and finished then.
    RAFTKV_RETURN_IF_ERROR(CreateDatabase(dir, options));
    return SyncDirectory(dir);
  }
  const std::string tmp = dir + ".creating";
  fs::remove_all(tmp, ec);  // a previous attempt that crashed
  if (ec) return FsError(tmp, "remove unfinished data dir", ec);
  fs::create_directories(tmp, ec);
  if (ec) return FsError(tmp, "create directory", ec);
  RAFTKV_RETURN_IF_ERROR(CreateDatabase(tmp, options));
  fs::rename(tmp, dir, ec);
  if (ec) return FsError(dir, "rename " + tmp + " into place", ec);
  fs::path parent = fs::absolute(fs::path(dir)).parent_path();
  return SyncDirectory(parent.string());
}

// Sets *format1 when the data dir has exactly format 1's families.
Status CheckColumnFamilies(const std::string& dir,
                           const rocksdb::DBOptions& db_options,
                           bool* format1) {
  std::vector<std::string> found;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, dir, &found);
  if (!s.ok()) return FromRocks(s, dir, "list column families");
  const std::set<std::string> have(found.begin(), found.end());
  std::set<std::string> want;
  for (const char* name : kColumnFamilies) want.insert(name);
  const std::set<std::string> v1(kColumnFamilies,
                                 kColumnFamilies + kFormat1ColumnFamilies);
  *format1 = have == v1;
  if (*format1) return Status::OK();
  for (const std::string& name : want) {
    if (have.count(name) == 0) {
      return Status::Corruption(dir + ": missing column family '" + name +
                                "'; the data dir is damaged or was not "
                                "written by raftkv");
    }
  }
  for (const std::string& name : have) {
    if (want.count(name) == 0) {
      return Status::FailedPrecondition(
          dir + ": unknown column family '" + name +
          "': written by an incompatible raftkv version (this build reads "
          "format version " +
          std::to_string(kFormatVersion) + ")");
    }
  }
  return Status::OK();
}

// Whether any column family holds a key.
bool HoldsData(Engine::Rep* rep) {
  for (auto* cf : rep->handles) {
    std::unique_ptr<rocksdb::Iterator> it(
        rep->db->NewIterator(rocksdb::ReadOptions(), cf));
    it->SeekToFirst();
    if (it->Valid() || !it->status().ok()) return true;
  }
  return false;
}

// Format 1 kept no history: in format 2 the history starts at the
// revision the data dir was upgraded at (reads and watches below it get
// Compacted instead of the current values). Adds the changed "applied"
// record (kv_meta, as kv_state_machine.cc) to `batch`.
rocksdb::Status StartHistoryHere(rocksdb::DB* db,
                                 rocksdb::ColumnFamilyHandle* kv_meta,
                                 rocksdb::WriteBatch* batch) {
  std::string value;
  rocksdb::Status s =
      db->Get(rocksdb::ReadOptions(), kv_meta, "applied", &value);
  if (s.IsNotFound()) return rocksdb::Status::OK();  // nothing applied yet
  if (!s.ok()) return s;
  AppliedState applied;
  if (!applied.ParseFromString(value)) {
    return rocksdb::Status::Corruption("kv_meta/applied does not parse");
  }
  applied.set_compacted_revision(applied.revision());
  return batch->Put(kv_meta, "applied", applied.SerializeAsString());
}

Status CheckFormatRecord(Engine::Rep* rep) {
  std::string value;
  rocksdb::Status s =
      rep->db->Get(rocksdb::ReadOptions(), rep->default_cf, kFormatKey, &value);
  if (s.IsNotFound() && !HoldsData(rep)) {
    // A creation in place that was interrupted: finish it.
    rocksdb::WriteBatch batch = NewWriteBatch();
    CHECK(batch.Put(rep->default_cf, kFormatKey, std::to_string(kFormatVersion))
              .ok());
    return rep->Write(&batch, /*sync=*/true, "write format record");
  }
  if (s.IsNotFound()) {
    return Status::FailedPrecondition(
        rep->dir + ": no raftkv format record: not a raftkv data dir");
  }
  if (!s.ok()) return rep->Error(s, "read format record");
  if (value == "1") {
    // Every family of format 2 is there (the open needs them): an upgrade
    // interrupted before its record was rewritten. Finish it.
    rocksdb::WriteBatch batch = NewWriteBatch();
    s = StartHistoryHere(rep->db.get(), rep->kv_meta, &batch);
    if (!s.ok()) return rep->Error(s, "upgrade to format 2");
    CHECK(batch.Put(rep->default_cf, kFormatKey, std::to_string(kFormatVersion))
              .ok());
    LOG(WARNING) << rep->dir << ": finishing the upgrade from format 1 to "
                 << kFormatVersion;
    return rep->Write(&batch, /*sync=*/true, "write format record");
  }
  if (value != std::to_string(kFormatVersion)) {
    return Status::FailedPrecondition(
        rep->dir + ": data dir has format version '" + value +
        "', this build reads only version " + std::to_string(kFormatVersion));
  }
  return Status::OK();
}

// Upgrades a format-1 data dir in place: checks its record, creates the
// families format 2 added (history and leases, empty: nothing was retained
// before), then records format 2 (synced). Interrupted after the families
// were created, CheckFormatRecord finishes it at the next open.
Status UpgradeFormat1(const std::string& dir, const EngineOptions& options) {
  auto cache = rocksdb::NewLRUCache(1 << 20);
  const rocksdb::DBOptions db_options = MakeDbOptions(options, cache);
  std::vector<rocksdb::ColumnFamilyDescriptor> all =
      Descriptors(options, cache);
  std::vector<rocksdb::ColumnFamilyDescriptor> old(
      all.begin(), all.begin() + kFormat1ColumnFamilies);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir, old, &handles, &raw);
  if (!s.ok()) return FromRocks(s, dir, "open for upgrade to format 2");
  std::unique_ptr<rocksdb::DB> db(raw);
  // The record first: a data dir of another version is left untouched.
  std::string value;
  s = db->Get(rocksdb::ReadOptions(), handles[0], kFormatKey, &value);
  Status refused;
  if (s.ok() && value != "1") {
    refused = Status::FailedPrecondition(
        dir + ": data dir has format version '" + value +
        "', this build reads only version " + std::to_string(kFormatVersion));
  } else if (s.ok() || s.IsNotFound()) {
    // NotFound: a format-1 creation interrupted before its record; the
    // open that follows finishes it (CheckFormatRecord).
    for (size_t i = kFormat1ColumnFamilies; i < all.size() && s.ok(); ++i) {
      rocksdb::ColumnFamilyHandle* h = nullptr;
      s = db->CreateColumnFamily(all[i].options, all[i].name, &h);
      if (s.ok()) handles.push_back(h);
    }
    if (s.ok() && !value.empty()) {
      rocksdb::WriteBatch batch = NewWriteBatch();
      s = StartHistoryHere(db.get(), handles[5], &batch);  // kv_meta
      if (s.ok()) {
        s = batch.Put(handles[0], kFormatKey, std::to_string(kFormatVersion));
      }
      rocksdb::WriteOptions wo;
      wo.sync = true;
      if (s.ok()) s = db->Write(wo, &batch);
    }
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  rocksdb::Status closed = db->Close();
  if (!refused.ok()) return refused;
  if (s.ok()) s = closed;
  if (!s.ok()) return FromRocks(s, dir, "upgrade to format 2");
  LOG(WARNING) << dir << ": upgraded the data dir from format 1 to "
               << kFormatVersion << " (retained history and leases)";
  return Status::OK();
}

}  // namespace

Status FromRocks(const rocksdb::Status& status, const std::string& dir,
                 std::string_view what) {
  std::string msg = dir + ": " + std::string(what) + ": ";
  if (status.IsNoSpace()) {
    return Status::IOError(msg + "disk full: " + status.ToString());
  }
  msg += status.ToString();
  if (status.IsCorruption()) return Status::Corruption(msg);
  if (status.IsNotFound()) return Status::NotFound(msg);
  if (status.IsInvalidArgument()) return Status::InvalidArgument(msg);
  return Status::IOError(msg);
}

Engine::Rep::~Rep() {
  if (!db) return;
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  rocksdb::Status s = db->Close();
  if (!s.ok()) LOG(WARNING) << dir << ": close: " << s.ToString();
}

Status Engine::Rep::Write(rocksdb::WriteBatch* batch, bool sync,
                          std::string_view what) {
  {
    std::lock_guard<std::mutex> lock(write_error_mu);
    if (!write_error.ok()) return write_error;
  }
  // A synced write is written first and its WAL synced after: RocksDB's
  // writers queue behind one another, and a write with sync=true holds the
  // queue through its fsync, so the applier's unsynced batches waited a
  // whole fsync behind each log write (apply batches took as long as log
  // writes: 2.4 ms mean at 16 clients). SyncWAL() syncs every live WAL file
  // through every write made before it while others go on writing, so a
  // batch is durable when this returns, just as with sync=true.
  rocksdb::WriteOptions wo;
  rocksdb::Status s = db->Write(wo, batch);
  if (s.ok() && sync) s = db->SyncWAL();
  if (s.ok()) return Status::OK();
  std::lock_guard<std::mutex> lock(write_error_mu);
  if (write_error.ok()) {
    write_error = Error(s, what);
    LOG(ERROR) << write_error.ToString()
               << "; this storage accepts no further writes";
  }
  return write_error;
}

StatusOr<std::unique_ptr<Engine>> Engine::Open(const std::string& dir,
                                               const EngineOptions& options) {
  std::error_code ec;
  const bool has_db = fs::exists(fs::path(dir) / "CURRENT", ec);
  if (ec) return FsError(dir, "stat", ec);
  if (!has_db) {
    if (fs::exists(dir, ec) && !IsEmptyDirectory(dir)) {
      return Status::FailedPrecondition(
          dir +
          ": exists but is not a raftkv data dir (no RocksDB CURRENT "
          "file); refusing to use it");
    }
    if (!options.create_if_missing) {
      return Status::NotFound(dir + ": no data dir");
    }
    RAFTKV_RETURN_IF_ERROR(CreateDataDir(dir, options));
  }

  auto rep = std::make_unique<Rep>();
  rep->dir = dir;
  rep->options = options;
  // Few shards: each must hold the largest blocks; a tenth kept for index
  // and filter partitions.
  auto cache = rocksdb::NewLRUCache(options.memory_budget_bytes,
                                    /*num_shard_bits=*/4,
                                    /*strict_capacity_limit=*/false,
                                    /*high_pri_pool_ratio=*/0.1);
  rep->cache = cache;
  const rocksdb::DBOptions db_options = MakeDbOptions(options, cache);
  bool format1 = false;
  RAFTKV_RETURN_IF_ERROR(CheckColumnFamilies(dir, db_options, &format1));
  if (format1) RAFTKV_RETURN_IF_ERROR(UpgradeFormat1(dir, options));

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(
      db_options, dir, Descriptors(options, cache), &rep->handles, &raw);
  if (!s.ok()) return FromRocks(s, dir, "open database");
  rep->db.reset(raw);
  CHECK_EQ(rep->handles.size(), kNumColumnFamilies);
  rep->default_cf = rep->handles[0];
  rep->raft_log = rep->handles[1];
  rep->raft_meta = rep->handles[2];
  rep->kv = rep->handles[3];
  rep->kv_sessions = rep->handles[4];
  rep->kv_meta = rep->handles[5];
  rep->kv_history = rep->handles[6];
  rep->kv_leases = rep->handles[7];
  RAFTKV_RETURN_IF_ERROR(CheckFormatRecord(rep.get()));
  return std::unique_ptr<Engine>(new Engine(std::move(rep)));
}

Engine::Engine(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}

Engine::~Engine() = default;

uint64_t Engine::MemoryBytes() const { return rep_->cache->GetUsage(); }

const std::string& Engine::dir() const { return rep_->dir; }

Status Engine::SyncWal() {
  Status failed = write_error();
  if (!failed.ok()) return failed;
  rocksdb::Status s = rep_->db->SyncWAL();
  if (!s.ok()) return rep_->Error(s, "sync WAL");
  return Status::OK();
}

Status Engine::write_error() const {
  std::lock_guard<std::mutex> lock(rep_->write_error_mu);
  return rep_->write_error;
}

rocksdb::Options SstFileOptions(const std::string& name) {
  // The block cache is for reading; a writer has none.
  return rocksdb::Options(rocksdb::DBOptions(),
                          MakeCfOptions(name, EngineOptions(), nullptr));
}

}  // namespace raftkv::storage
