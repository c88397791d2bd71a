// Nemesis: the faults of a raftkv-jepsen run, on a fixed schedule. After a
// quiet start, a fault of one of the enabled kinds lasts fault_s seconds,
// then everything is healed for heal_s seconds, and so on. The kinds come
// in rounds: each round of k faults (k enabled kinds) has every kind once,
// in an order shuffled from the seed, so a run of at least k faults has
// every kind it was given. Kinds:
//
//   partition  iptables drops between nodes (fault/firewall.h), in one of
//              the modes: "halves" (a random minority | the rest),
//              "leader" (the current leader | the rest), "ring" (a random
//              ring where every node hears from a majority centred on
//              itself, and no two nodes from the same majority);
//              healed by flushing the rules.
//   kill       SIGKILL of one random node, the leader, a random minority or
//              a random majority (the cluster cannot make progress until
//              healed, so operations end with unknown outcomes); healed by
//              restarting them.
//   pause      SIGSTOP of the same kinds of targets; healed by SIGCONT.
//              "pause-leader": SIGSTOP of the current leader only (a
//              random node if none is found).
//   clock      one node's clock (libfaketime, jepsen/cluster.h): jumps
//              forward by 0.1-10 s, or runs 2-4x fast or 0.25-0.5x slow for
//              the fault's duration. Healed by returning to rate x1; the
//              offset reached is kept, because a monotonic clock stepped
//              back would stall the node's timers for that long.
//   member     membership changes (docs/membership.md), one of:
//              "remove": a random member (the leader in a third of the
//              faults) is removed for good and stops by itself; healed by
//              adding a fresh node under a new id (ids are never reused),
//              empty data dir, --join, waiting until the leader promoted it
//              to a voter. Only while the cluster keeps at least
//              kMinVoters voters without it.
//              "replace": a fresh node is added the same way; healed by
//              waiting until it is a voter, then removing a random old
//              member (the leader in a third of the faults), only if the
//              new node did become a voter: the voters never drop below
//              their number before the fault.
//              Every wait is bounded; each event's description ends with
//              the membership afterwards ("members n1 n2(leader) ...").
//
// The other kinds act on the current members only (Cluster::members()).
// Every fault and heal is recorded in the history (process "nemesis",
// type info; a fault lasts until the next "heal").
//
// Must never act on a process or address outside its Cluster, and never
// leave a fault in place after HealAll(). Not thread-safe: the main thread
// calls Step() every few tens of milliseconds.
#pragma once

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fault/firewall.h"
#include "jepsen/cluster.h"
#include "jepsen/recorder.h"

namespace raftkv::jepsen {

struct NemesisOptions {
  // Kinds: "partition", "kill", "pause", "clock", "member";
  // "partition-halves", "partition-leader", "partition-ring" for one
  // partition mode only; and "pause-leader" for pauses of the leader only.
  std::set<std::string> kinds;
  double quiet_s = 3;  // no fault before this
  double fault_s = 10;
  double heal_s = 10;
  uint64_t seed = 1;
};

// The member nemesis removes a voter only if at least this many remain.
constexpr int kMinVoters = 3;

// Checks the kinds: InvalidArgument on an unknown one.
Status ValidateNemesisKinds(const std::set<std::string>& kinds);

class Nemesis {
 public:
  // `firewall` may be null when no kind needs it.
  Nemesis(Cluster* cluster, fault::Firewall* firewall, Recorder* recorder,
          NemesisOptions options);

  // Starts or ends a fault when the schedule says so at `elapsed_s`, and
  // advances a running clock-rate fault.
  void Step(double elapsed_s);
  // Ends the current fault, if any.
  void HealAll();

  // "none", or the current fault's description.
  std::string current() const;
  int faults_injected() const { return faults_; }
  // Per kind, e.g. {"kill": 2, "partition": 3}.
  const std::map<std::string, int>& faults_by_kind() const { return by_kind_; }
  // Commands that failed (each also went to stderr).
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  enum class Kind { kNone, kPartition, kKill, kPause, kClock, kMember };

  // The next kind of the current round (a new shuffled round when empty).
  Kind NextKind();
  void StartFault(double elapsed_s);
  bool StartPartition();
  bool StartKill();
  bool StartPause();
  bool StartClock(double elapsed_s);
  void StepClock(double elapsed_s);
  bool StartMember();
  std::string HealMember();
  // Removes member `id` (how: " (leader)" or ""): true with *done saying
  // what happened, false on an error (reported).
  bool RemoveMember(int id, const std::string& how, std::string* done);
  // Adds a fresh node; its id, or 0 on an error (reported).
  int AddMember(std::string* done);
  // The membership now, as the cluster reports it ("members n1 n2 ...").
  std::string MembershipNow();
  // A random member other than `except`, the leader in a third of the calls
  // (how: " (leader)").
  int PickMemberToRemove(int except, std::string* how);
  // One random node, the leader, a random minority (at least one) or a
  // random majority.
  std::vector<int> PickTargets(std::string* how);
  int RandomNode();  // a random member
  int LeaderOrRandom(bool* is_leader);
  void Error(const std::string& what, const Status& status);
  void Fault(const std::string& f, const std::string& description);

  Cluster* cluster_;
  fault::Firewall* firewall_;
  Recorder* recorder_;
  NemesisOptions options_;
  std::mt19937_64 rng_;
  std::vector<Kind> kinds_;
  std::vector<Kind> round_;  // kinds of the current round not used yet
  std::vector<std::string> partition_modes_;
  bool pause_leader_only_ = false;

  Kind active_ = Kind::kNone;
  std::string description_;
  int cycle_ = 0;  // index of the next fault
  double fault_end_s_ = 0;
  std::vector<int> targets_;  // killed / paused nodes
  // Clock fault: node, rate, and when the offset was last advanced.
  int clock_node_ = 0;
  double clock_rate_ = 1;
  double clock_last_s_ = 0;

  // Member fault: "remove" or "replace", and the node it added.
  std::string member_mode_;
  int member_added_ = 0;

  int faults_ = 0;
  std::map<std::string, int> by_kind_;
  std::vector<std::string> errors_;
};

// The cuts of a partition: node b drops what node a sends iff
// grudge[b] contains a (ids 1-based; grudge[0] unused).
std::vector<fault::Cut> CutsOf(const Cluster& cluster,
                               const std::vector<std::set<int>>& grudge);
// Grudges of the partition modes among the nodes `ids` (exposed for tests);
// the result is indexed by id, up to the largest.
std::vector<std::set<int>> SplitGrudge(const std::vector<int>& ids,
                                       const std::set<int>& side);
std::vector<std::set<int>> RingGrudge(const std::vector<int>& ring);

}  // namespace raftkv::jepsen
