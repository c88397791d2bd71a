#include "tools/raftkvctl_lease.h"

#include <algorithm>
#include <chrono>
#include <iostream>

#include "tools/raftkvctl_wait.h"
#include "util/json_bytes.h"

namespace raftkv::ctl {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kLeaseUsage[] =
    "usage: lease grant TTL | lease revoke ID | lease keep-alive ID | "
    "lease timetolive ID [--keys] | lease list (ID in hex)";

// After a failed keep-alive, the next try comes this much later (while the
// lease may still be alive).
constexpr std::chrono::milliseconds kKeepAliveRetry{500};

int Grant(Client& client, const std::string& ttl_text, const Options& options) {
  int64_t ttl = 0;
  if (!ParseInt64(ttl_text, &ttl) || ttl <= 0) return UsageError(kLeaseUsage);
  auto r = client.LeaseGrant(ttl);
  if (!r.ok()) return Fail(r.status());
  if (options.json) {
    PrintJson({{"id", r->id}, {"ttl", r->ttl}});
  } else {
    std::cout << "lease " << LeaseIdHex(r->id) << " granted with TTL(" << r->ttl
              << "s)\n";
  }
  return kOk;
}

int Revoke(Client& client, int64_t id, const Options& options) {
  Status s = client.LeaseRevoke(id);
  if (!s.ok()) return Fail(s);
  if (options.json) {
    PrintJson({{"id", id}});
  } else {
    std::cout << "lease " << LeaseIdHex(id) << " revoked\n";
  }
  return kOk;
}

// Renews the lease every third of its TTL, as etcdctl lease keep-alive
// does, printing each renewal.
int KeepAlive(Client& client, int64_t id, const Options& options) {
  const std::chrono::milliseconds default_deadline = options.deadline;
  Clock::time_point expires = Clock::now() + default_deadline;
  for (;;) {
    // A call may take no longer than the lease has left.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        expires - Clock::now());
    client.set_deadline(std::max(std::chrono::milliseconds(200),
                                 std::min(left, default_deadline)));
    const Clock::time_point sent = Clock::now();
    auto r = client.LeaseKeepAliveOnce(id);
    std::chrono::milliseconds wait = kKeepAliveRetry;
    if (r.ok() && *r > 0) {
      expires = sent + std::chrono::seconds(*r);
      wait = std::chrono::milliseconds(*r * 1000 / 3);
      if (options.json) {
        PrintJson({{"id", id}, {"ttl", *r}});
      } else {
        std::cout << "lease " << LeaseIdHex(id) << " keepalived with TTL(" << *r
                  << ")" << std::endl;
      }
    } else if (r.ok() || r.status().IsNotFound()) {
      if (!options.json) {
        std::cout << "lease " << LeaseIdHex(id) << " expired or revoked."
                  << std::endl;
      }
      std::cerr << "raftkvctl: lease " << LeaseIdHex(id)
                << " expired or revoked\n";
      return kNotFound;
    } else if (Clock::now() + kKeepAliveRetry >= expires) {
      std::cerr << "raftkvctl: lease " << LeaseIdHex(id)
                << " could not be kept alive before it would expire\n";
      return Fail(r.status());
    }
    if (StopSignalWithin(wait) != 0) return kOk;
  }
}

// etcdctl's "[a b]" (Go's %v of a []string).
std::string GoList(const std::vector<std::string>& keys) {
  std::string out = "[";
  for (size_t i = 0; i < keys.size(); ++i) {
    out += (i == 0 ? "" : " ") + keys[i];
  }
  return out + "]";
}

int TimeToLive(Client& client, int64_t id, const Options& options) {
  auto r = client.LeaseTimeToLive(id, options.keys);
  if (!r.ok()) return Fail(r.status());
  if (options.json) {
    Json j = {{"id", r->id}, {"ttl", r->ttl}, {"granted_ttl", r->granted_ttl}};
    // One rule for the whole list, as PutBytes has for one field.
    const bool utf8 =
        std::all_of(r->keys.begin(), r->keys.end(),
                    [](const std::string& k) { return IsValidUtf8(k); });
    Json keys = Json::array();
    for (const std::string& k : r->keys) {
      keys.push_back(utf8 ? k : Base64Encode(k));
    }
    j[utf8 ? "keys" : "keys_base64"] = std::move(keys);
    PrintJson(j);
    return kOk;
  }
  std::cout << "lease " << LeaseIdHex(r->id) << " granted with TTL("
            << r->granted_ttl << "s), remaining(" << r->ttl << "s)";
  if (options.keys) std::cout << ", attached keys(" << GoList(r->keys) << ")";
  std::cout << "\n";
  return kOk;
}

int List(Client& client, const Options& options) {
  auto r = client.LeaseList();
  if (!r.ok()) return Fail(r.status());
  if (options.json) {
    PrintJson(Json(*r));
  } else {
    for (int64_t id : *r) std::cout << LeaseIdHex(id) << "\n";
  }
  return kOk;
}

}  // namespace

int RunLease(Client& client, const std::vector<std::string>& args,
             const Options& options) {
  const std::string sub = args.size() >= 2 ? args[1] : "";
  if (sub == "list" && args.size() == 2) return List(client, options);
  if (args.size() != 3) return UsageError(kLeaseUsage);
  if (sub == "grant") return Grant(client, args[2], options);
  int64_t id = 0;
  if (!ParseLeaseId(args[2], &id)) {
    return UsageError("not a lease id (hex): " + args[2]);
  }
  if (sub == "revoke") return Revoke(client, id, options);
  if (sub == "keep-alive") return KeepAlive(client, id, options);
  if (sub == "timetolive") return TimeToLive(client, id, options);
  return UsageError(kLeaseUsage);
}

}  // namespace raftkv::ctl
