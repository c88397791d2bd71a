// etcdapi/convert: etcd's Range options applied to native answers as etcd
// applies them (sort, revision filters, limit after both, count), and what
// the native transaction cannot express refused rather than approximated.
#include "etcdapi/convert.h"

#include <gtest/gtest.h>

namespace raftkv::etcdapi {
namespace {

namespace pb = etcdserverpb;

kv::RangeResponse ThreeKeys() {
  kv::RangeResponse r;
  r.mutable_header()->set_revision(9);
  // key, create, mod, version, value
  const struct {
    const char* key;
    int64_t create, mod, version;
    const char* value;
  } rows[] = {{"a", 5, 8, 3, "zz"}, {"b", 2, 2, 1, "aa"}, {"c", 7, 9, 2, "mm"}};
  for (const auto& row : rows) {
    kv::KeyValue* kv = r.add_kvs();
    kv->set_key(row.key);
    kv->set_create_revision(row.create);
    kv->set_mod_revision(row.mod);
    kv->set_version(row.version);
    kv->set_value(row.value);
  }
  r.set_count(3);
  return r;
}

std::string Keys(const pb::RangeResponse& r) {
  std::string keys;
  for (const auto& kv : r.kvs()) keys += kv.key();
  return keys;
}

TEST(EtcdConvertTest, PlainRangePassesLimitAndCountToTheServer) {
  pb::RangeRequest request;
  request.set_key("a");
  request.set_range_end("z");
  request.set_limit(2);
  request.set_count_only(true);
  request.set_revision(4);
  const kv::RangeRequest native = ToNative(request);
  EXPECT_EQ(native.limit(), 2);
  EXPECT_TRUE(native.count_only());
  EXPECT_EQ(native.revision(), 4);
}

TEST(EtcdConvertTest, SortedRangeReadsEverythingThenSortsAndLimits) {
  pb::RangeRequest request;
  request.set_key("a");
  request.set_range_end("z");
  request.set_limit(2);
  request.set_sort_order(pb::RangeRequest::DESCEND);
  request.set_sort_target(pb::RangeRequest::MOD);
  const kv::RangeRequest native = ToNative(request);
  EXPECT_EQ(native.limit(), 0) << "the limit applies after sorting";
  pb::RangeResponse out;
  FinishRange(request, ThreeKeys(), &out);
  EXPECT_EQ(Keys(out), "ca");
  EXPECT_TRUE(out.more());
  EXPECT_EQ(out.count(), 3);
  EXPECT_EQ(out.header().revision(), 9);
}

TEST(EtcdConvertTest, SortByValueAscending) {
  pb::RangeRequest request;
  request.set_key("a");
  request.set_range_end("z");
  request.set_sort_order(pb::RangeRequest::ASCEND);
  request.set_sort_target(pb::RangeRequest::VALUE);
  request.set_keys_only(true);
  EXPECT_FALSE(ToNative(request).keys_only()) << "values are needed to sort";
  pb::RangeResponse out;
  FinishRange(request, ThreeKeys(), &out);
  EXPECT_EQ(Keys(out), "bca");
  EXPECT_EQ(out.kvs(0).value(), "") << "keys_only still holds in the answer";
}

TEST(EtcdConvertTest, RevisionFiltersCountOnlyWhatIsKept) {
  pb::RangeRequest request;
  request.set_key("a");
  request.set_range_end("z");
  request.set_min_create_revision(3);
  request.set_max_mod_revision(8);
  pb::RangeResponse out;
  FinishRange(request, ThreeKeys(), &out);
  EXPECT_EQ(Keys(out), "a");
  EXPECT_EQ(out.count(), 1);
  EXPECT_FALSE(out.more());

  request.set_count_only(true);
  pb::RangeResponse counted;
  FinishRange(request, ThreeKeys(), &counted);
  EXPECT_EQ(counted.kvs_size(), 0);
  EXPECT_EQ(counted.count(), 1);
}

TEST(EtcdConvertTest, AscendingByKeyIsTheNativeOrderUntouched) {
  pb::RangeRequest request;
  request.set_key("a");
  request.set_range_end("z");
  request.set_limit(1);
  request.set_sort_order(pb::RangeRequest::ASCEND);
  EXPECT_EQ(ToNative(request).limit(), 1);
}

TEST(EtcdConvertTest, TxnTranslatesComparesAndOps) {
  pb::TxnRequest txn;
  pb::Compare* c = txn.add_compare();
  c->set_key("k");
  c->set_target(pb::Compare::MOD);
  c->set_result(pb::Compare::LESS);
  c->set_mod_revision(7);
  txn.add_success()->mutable_request_put()->set_key("k");
  txn.add_failure()->mutable_request_range()->set_key("k");
  kv::TxnRequest native;
  ASSERT_TRUE(ToNative(txn, &native).ok());
  ASSERT_EQ(native.compare_size(), 1);
  EXPECT_EQ(native.compare(0).target(), kv::Compare::MOD);
  EXPECT_EQ(native.compare(0).result(), kv::Compare::LESS);
  EXPECT_EQ(native.compare(0).mod_revision(), 7);
  EXPECT_TRUE(native.success(0).has_request_put());
  EXPECT_TRUE(native.failure(0).has_request_range());
}

TEST(EtcdConvertTest, TxnRefusesWhatTheNativeOneCannotExpress) {
  pb::TxnRequest nested;
  nested.add_success()->mutable_request_txn();
  kv::TxnRequest native;
  EXPECT_EQ(ToNative(nested, &native).code(), Status::Code::kInvalidArgument);

  pb::TxnRequest range_compare;
  range_compare.add_compare()->set_range_end("z");
  kv::TxnRequest native2;
  EXPECT_EQ(ToNative(range_compare, &native2).code(),
            Status::Code::kInvalidArgument);

  pb::TxnRequest lease_compare;
  lease_compare.add_compare()->set_target(pb::Compare::LEASE);
  kv::TxnRequest native3;
  EXPECT_EQ(ToNative(lease_compare, &native3).code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace raftkv::etcdapi
