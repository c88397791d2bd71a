#include "tools/raftkvctl_kv.h"

#include <cstdio>
#include <iostream>

#include "client/kv.pb.h"
#include "util/json_bytes.h"

namespace raftkv::ctl {
namespace {

// The value of `put KEY` without VALUE: stdin's bytes, as they are (a
// config file, binary or not). Refused beyond the client's value limit,
// which is all that is read of it.
StatusOr<std::string> ReadValueFromStdin() {
  const size_t limit = ClientOptions().max_value_bytes;
  std::string value;
  char buf[65536];
  size_t n;
  while (value.size() <= limit &&
         (n = std::fread(buf, 1, sizeof(buf), stdin)) > 0) {
    value.append(buf, n);
  }
  if (std::ferror(stdin)) return Status::IOError("cannot read stdin");
  if (value.size() > limit) {
    return Status::TooLarge("the value on stdin exceeds the limit of " +
                            std::to_string(limit) + " bytes");
  }
  return value;
}

void PrintKeyValue(const KeyValue& kv, const Options& options) {
  if (options.json) {
    PrintJson(KeyValueJson(kv, !options.keys_only));
  } else {
    std::cout << (options.keys_only ? kv.key : kv.value) << "\n";
  }
}

// get with any of --prefix, --rev, --limit, --keys-only: a Range.
int RunRangeGet(Client& client, const std::string& key,
                const Options& options) {
  kv::RangeRequest request;
  if (options.prefix) {
    request.set_key(key.empty() ? std::string(1, '\0') : key);
    request.set_range_end(PrefixRangeEnd(key));
  } else {
    request.set_key(key);
  }
  request.set_revision(options.rev);
  request.set_limit(options.limit);
  request.set_keys_only(options.keys_only);
  request.set_serializable(options.serializable);
  auto r = client.Range(request);
  if (!r.ok()) return Fail(r.status());
  if (!options.prefix) {
    if (r->kvs_size() == 0) {
      return Fail(Status::NotFound(
          "key not found" + (options.rev > 0
                                 ? " at revision " + std::to_string(options.rev)
                                 : std::string())));
    }
    PrintKeyValue(FromProto(r->kvs(0)), options);
    return kOk;
  }
  // As `range` prints them: KEY<TAB>VALUE lines, or one JSON array (of
  // get's objects).
  Json all = Json::array();
  for (const kv::KeyValue& proto : r->kvs()) {
    const KeyValue kv = FromProto(proto);
    if (options.json) {
      all.push_back(KeyValueJson(kv, !options.keys_only));
    } else if (options.keys_only) {
      std::cout << kv.key << "\n";
    } else {
      std::cout << kv.key << "\t" << kv.value << "\n";
    }
  }
  if (options.json) PrintJson(all);
  return kOk;
}

}  // namespace

int RunPut(Client& client, const std::vector<std::string>& args,
           const Options& options) {
  if (args.size() != 2 && args.size() != 3) {
    return UsageError("usage: put KEY [VALUE] [--lease=ID]");
  }
  PutOptions put;
  if (!options.lease.empty() && !ParseLeaseId(options.lease, &put.lease)) {
    return UsageError("--lease: not a lease id in hex: " + options.lease);
  }
  std::string value;
  if (args.size() == 3) {
    value = args[2];
  } else {
    auto read = ReadValueFromStdin();
    if (!read.ok()) return Fail(read.status());
    value = std::move(read).value();
  }
  auto r = client.Put(args[1], value, put);
  if (!r.ok()) return Fail(r.status());
  if (options.json) {
    PrintJson({{"revision", *r}});
  } else {
    std::cout << "OK revision " << *r << "\n";
  }
  return kOk;
}

int RunGet(Client& client, const std::vector<std::string>& args,
           const Options& options) {
  if (args.size() != 2 || options.rev < 0 || options.limit < 0) {
    return UsageError(
        "usage: get KEY [--prefix] [--rev=N] [--limit=N] [--keys-only]");
  }
  if (options.prefix || options.rev != 0 || options.limit != 0 ||
      options.keys_only) {
    return RunRangeGet(client, args[1], options);
  }
  auto r = client.Get(args[1], ReadOptions{options.serializable});
  if (!r.ok()) return Fail(r.status());
  PrintKeyValue(*r, options);
  return kOk;
}

int RunDel(Client& client, const std::vector<std::string>& args,
           const Options& options) {
  if (args.size() != 2) return UsageError("usage: del KEY");
  auto r = client.Delete(args[1]);
  if (!r.ok()) return Fail(r.status());
  if (options.json) {
    PrintJson({{"deleted", *r}});
  } else {
    std::cout << *r << "\n";
  }
  return kOk;
}

int RunCas(Client& client, const std::vector<std::string>& args,
           const Options& options) {
  if (args.size() != 4) return UsageError("usage: cas KEY EXPECTED NEW");
  auto r = client.CompareAndSwap(args[1], args[2], args[3]);
  if (!r.ok()) return Fail(r.status());
  if (options.json) {
    PrintJson({{"swapped", *r}});
  } else {
    std::cout << (*r ? "OK" : "compare failed") << "\n";
  }
  if (!*r) {
    std::cerr << "raftkvctl: value of '" << args[1]
              << "' is not the expected one; nothing written\n";
  }
  return *r ? kOk : kNotFound;
}

int RunRange(Client& client, const std::vector<std::string>& args,
             const Options& options) {
  if (args.size() != 2) return UsageError("usage: range PREFIX");
  auto r = client.GetPrefix(args[1], 0, ReadOptions{options.serializable});
  if (!r.ok()) return Fail(r.status());
  Json all = Json::array();
  for (const auto& kv : r->kvs) {
    if (options.json) {
      Json j = Json::object();
      PutBytes(j, "key", kv.key);
      PutBytes(j, "value", kv.value);
      all.push_back(std::move(j));
    } else {
      std::cout << kv.key << "\t" << kv.value << "\n";
    }
  }
  if (options.json) PrintJson(all);
  return kOk;
}

int RunCompact(Client& client, const std::vector<std::string>& args,
               const Options& options) {
  int64_t revision = 0;
  if (args.size() != 2 || !ParseInt64(args[1], &revision) || revision <= 0) {
    return UsageError("usage: compact REV (a revision > 0)");
  }
  Status s = client.Compact(revision);
  if (!s.ok()) return Fail(s);
  if (options.json) {
    PrintJson({{"revision", revision}});
  } else {
    std::cout << "compacted revision " << revision << "\n";
  }
  return kOk;
}

}  // namespace raftkv::ctl
