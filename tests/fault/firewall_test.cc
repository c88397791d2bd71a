// The rules fault::Firewall writes: one iptables line per cut, only for
// addresses in 127.0.0.0/8 and the program's own chain, and the three cuts
// that isolate a node. Rendering only: installing rules needs root and a
// private namespace, which tests/jepsen/smoke_test.cc and
// tests/integration/bench_failover_test.cc exercise.
#include "fault/firewall.h"

#include <gtest/gtest.h>

namespace raftkv::fault {
namespace {

std::string RuleOf(const Cut& cut, const std::string& chain = "RAFTKV_TEST") {
  auto rule = Firewall::Rule(chain, cut);
  return rule.ok() ? *rule : "error: " + rule.status().message();
}

TEST(FirewallTest, ACutBetweenNodesMatchesTheSendersGroup) {
  EXPECT_EQ(RuleOf({61001, "127.0.0.12", ""}, "RAFTKV_JEPSEN"),
            "-A RAFTKV_JEPSEN -d 127.0.0.12/32 -o lo -m owner --gid-owner "
            "61001 -j DROP");
}

TEST(FirewallTest, IsolationDropsEverythingToFromAndSentByTheNode) {
  const std::vector<Cut> cuts = Isolation("127.0.0.12", 61002);
  ASSERT_EQ(cuts.size(), 3u);
  EXPECT_EQ(RuleOf(cuts[0]), "-A RAFTKV_TEST -d 127.0.0.12/32 -o lo -j DROP");
  EXPECT_EQ(RuleOf(cuts[1]), "-A RAFTKV_TEST -s 127.0.0.12/32 -o lo -j DROP");
  EXPECT_EQ(RuleOf(cuts[2]),
            "-A RAFTKV_TEST -o lo -m owner --gid-owner 61002 -j DROP");
  // Without a group of its own, the node is cut by its address only.
  EXPECT_EQ(Isolation("127.0.0.12", 0).size(), 2u);
}

TEST(FirewallTest, RefusesCutsThatCouldReachBeyondLoopback) {
  for (const Cut& bad : std::vector<Cut>{
           {},                        // would drop everything on lo
           {61001, "10.0.0.1", ""},   // not loopback
           {0, "", "192.168.1.1"},    // not loopback
           {0, "127.0.0.1/8", ""},    // a mask, not an address
           {0, "127.0.0.256", ""},    // not an address
           {0, "127.0.0.1; -F", ""},  // not an address
       }) {
    EXPECT_FALSE(Firewall::Rule("RAFTKV_TEST", bad).ok())
        << bad.from_gid << " '" << bad.from_address << "' -> '"
        << bad.to_address << "'";
  }
}

TEST(FirewallTest, RefusesChainsThatAreNotItsOwnKindOfName) {
  const Cut cut{0, "127.0.0.12", ""};
  for (const std::string chain :
       {"", "OUTPUT", "INPUT", "RAFTKV_X Y", "raftkv_x",
        "RAFTKV_A_NAME_LONGER_THAN_28_"}) {
    EXPECT_FALSE(Firewall::Rule(chain, cut).ok()) << chain;
  }
}

TEST(FirewallTest, RestoreInputReplacesTheWholeChain) {
  EXPECT_EQ(
      Firewall::RestoreInput("RAFTKV_TEST",
                             {"-A RAFTKV_TEST -d 127.0.0.12/32 -o lo -j DROP"}),
      "*filter\n:RAFTKV_TEST - [0:0]\n"
      "-A RAFTKV_TEST -d 127.0.0.12/32 -o lo -j DROP\nCOMMIT\n");
}

}  // namespace
}  // namespace raftkv::fault
