// iptables rules of the partition nemesis, inside the private namespace
// only. Must never touch a chain other than RAFTKV_JEPSEN and its jump.
#include "fault/firewall.h"

#include <glog/logging.h>

#include <cstdio>
#include <sstream>

#include "fault/subprocess.h"

namespace raftkv::fault {

namespace {

constexpr const char* kRestore = "iptables-restore";

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

int CountRules(const std::string& listing) {
  int n = 0;
  std::istringstream in(listing);
  std::string line;
  while (std::getline(in, line)) n += line.rfind("-A ", 0) == 0;
  return n;
}

}  // namespace

std::string Firewall::RestoreInput(const std::vector<std::string>& rules) {
  std::string input = "*filter\n:" + std::string(kChain) + " - [0:0]\n";
  for (const std::string& rule : rules) input += rule + "\n";
  return input + "COMMIT\n";
}

StatusOr<std::unique_ptr<Firewall>> Firewall::Install(
    const PrivateNetwork& network) {
  if (!network.IsCurrent()) {
    return Status::FailedPrecondition(
        "refusing to install firewall rules outside raftkv-jepsen's private "
        "network namespace (now in " +
        CurrentNetworkNamespace() + ")");
  }
  const std::string jump = "-A OUTPUT -o lo -j " + std::string(kChain);
  auto done =
      RunCommand({kRestore, "-w", "5", "--noflush"}, RestoreInput({jump}));
  if (!done.ok()) return done.status();
  return std::unique_ptr<Firewall>(new Firewall());
}

Firewall::~Firewall() {
  // The namespace disappears with raftkv-jepsen anyway; this keeps a
  // long-lived namespace clean too.
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"iptables", "-w", "5", "-D", "OUTPUT", "-o",
                                 "lo", "-j", kChain},
        std::vector<std::string>{"iptables", "-w", "5", "-F", kChain},
        std::vector<std::string>{"iptables", "-w", "5", "-X", kChain}}) {
    auto done = RunCommand(argv);
    if (!done.ok()) LOG(WARNING) << done.status().ToString();
  }
}

Status Firewall::Apply(const std::vector<Cut>& cuts) {
  std::vector<std::string> rules;
  for (const Cut& cut : cuts) {
    if (!IsLoopbackAddress(cut.to_address) || cut.from_gid == 0) {
      return Status::InvalidArgument("bad cut: group " +
                                     std::to_string(cut.from_gid) + " to '" +
                                     cut.to_address + "'");
    }
    rules.push_back("-A " + std::string(kChain) + " -d " + cut.to_address +
                    "/32 -o lo -m owner --gid-owner " +
                    std::to_string(cut.from_gid) + " -j DROP");
  }
  auto done =
      RunCommand({kRestore, "-w", "5", "--noflush"}, RestoreInput(rules));
  if (!done.ok()) return done.status();
  auto listing = RunCommand({"iptables", "-w", "5", "-S", kChain});
  if (!listing.ok()) return listing.status();
  const int installed = CountRules(*listing);
  if (installed != static_cast<int>(rules.size())) {
    return Status::IOError("expected " + std::to_string(rules.size()) +
                           " rules in " + kChain + ", the kernel has " +
                           std::to_string(installed) + ":\n" + *listing);
  }
  rules_ = std::move(rules);
  return Status::OK();
}

}  // namespace raftkv::fault
