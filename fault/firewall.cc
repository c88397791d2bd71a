// iptables rules inside a private network namespace only (fault/firewall.h).
// Must never touch a chain other than the Firewall's own and its jump.
#include "fault/firewall.h"

#include <glog/logging.h>

#include <cctype>
#include <cstdio>
#include <sstream>

#include "fault/subprocess.h"

namespace raftkv::fault {

namespace {

constexpr const char* kRestore = "iptables-restore";
constexpr size_t kMaxChainName = 28;  // iptables' limit

// Rejects anything outside 127.0.0.0/8 (dotted quad, no mask).
bool IsLoopbackAddress(const std::string& address) {
  int a = -1, b = -1, c = -1, d = -1;
  char tail = 0;
  if (std::sscanf(address.c_str(), "%d.%d.%d.%d%c", &a, &b, &c, &d, &tail) !=
      4) {
    return false;
  }
  return a == 127 && b >= 0 && b <= 255 && c >= 0 && c <= 255 && d >= 0 &&
         d <= 255;
}

// RAFTKV_ and capital letters, digits or '_': never a built-in chain
// (OUTPUT) nor one of another program.
bool IsChainName(const std::string& chain) {
  if (chain.rfind("RAFTKV_", 0) != 0 || chain.size() > kMaxChainName) {
    return false;
  }
  for (char c : chain) {
    if (!std::isupper(static_cast<unsigned char>(c)) &&
        !std::isdigit(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

int CountRules(const std::string& listing) {
  int n = 0;
  std::istringstream in(listing);
  std::string line;
  while (std::getline(in, line)) n += line.rfind("-A ", 0) == 0;
  return n;
}

}  // namespace

std::vector<Cut> Isolation(const std::string& address, gid_t gid) {
  std::vector<Cut> cuts = {{0, address, ""}, {0, "", address}};
  if (gid != 0) cuts.push_back({gid, "", ""});
  return cuts;
}

StatusOr<std::string> Firewall::Rule(const std::string& chain, const Cut& cut) {
  const bool any =
      cut.from_gid != 0 || !cut.to_address.empty() || !cut.from_address.empty();
  const bool addresses_ok =
      (cut.to_address.empty() || IsLoopbackAddress(cut.to_address)) &&
      (cut.from_address.empty() || IsLoopbackAddress(cut.from_address));
  if (!IsChainName(chain) || !any || !addresses_ok) {
    return Status::InvalidArgument("bad cut in chain '" + chain + "': group " +
                                   std::to_string(cut.from_gid) + " from '" +
                                   cut.from_address + "' to '" +
                                   cut.to_address + "'");
  }
  std::string rule = "-A " + chain;
  if (!cut.from_address.empty()) rule += " -s " + cut.from_address + "/32";
  if (!cut.to_address.empty()) rule += " -d " + cut.to_address + "/32";
  rule += " -o lo";
  if (cut.from_gid != 0) {
    rule += " -m owner --gid-owner " + std::to_string(cut.from_gid);
  }
  return rule + " -j DROP";
}

std::string Firewall::RestoreInput(const std::string& chain,
                                   const std::vector<std::string>& rules) {
  std::string input = "*filter\n:" + chain + " - [0:0]\n";
  for (const std::string& rule : rules) input += rule + "\n";
  return input + "COMMIT\n";
}

StatusOr<std::unique_ptr<Firewall>> Firewall::Install(
    const PrivateNetwork& network, const std::string& chain) {
  if (!IsChainName(chain)) {
    return Status::InvalidArgument("bad chain name '" + chain + "'");
  }
  if (!network.IsCurrent()) {
    return Status::FailedPrecondition(
        "refusing to install firewall rules outside the program's private "
        "network namespace (now in " +
        CurrentNetworkNamespace() + ")");
  }
  const std::string jump = "-A OUTPUT -o lo -j " + chain;
  auto done = RunCommand({kRestore, "-w", "5", "--noflush"},
                         RestoreInput(chain, {jump}));
  if (!done.ok()) return done.status();
  return std::unique_ptr<Firewall>(new Firewall(chain));
}

Firewall::~Firewall() {
  // The namespace disappears with the program anyway; this keeps a
  // long-lived namespace clean too.
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"iptables", "-w", "5", "-D", "OUTPUT", "-o",
                                 "lo", "-j", chain_},
        std::vector<std::string>{"iptables", "-w", "5", "-F", chain_},
        std::vector<std::string>{"iptables", "-w", "5", "-X", chain_}}) {
    auto done = RunCommand(argv);
    if (!done.ok()) LOG(WARNING) << done.status().ToString();
  }
}

Status Firewall::Apply(const std::vector<Cut>& cuts) {
  std::vector<std::string> rules;
  for (const Cut& cut : cuts) {
    auto rule = Rule(chain_, cut);
    if (!rule.ok()) return rule.status();
    rules.push_back(std::move(rule).value());
  }
  auto done = RunCommand({kRestore, "-w", "5", "--noflush"},
                         RestoreInput(chain_, rules));
  if (!done.ok()) return done.status();
  const auto applied_at = std::chrono::steady_clock::now();
  auto listing = RunCommand({"iptables", "-w", "5", "-S", chain_});
  if (!listing.ok()) return listing.status();
  const int installed = CountRules(*listing);
  if (installed != static_cast<int>(rules.size())) {
    return Status::IOError("expected " + std::to_string(rules.size()) +
                           " rules in " + chain_ + ", the kernel has " +
                           std::to_string(installed) + ":\n" + *listing);
  }
  rules_ = std::move(rules);
  applied_at_ = applied_at;
  return Status::OK();
}

}  // namespace raftkv::fault
