// The fault schedule of raftkv-jepsen: partitions, kills, pauses and clock
// faults, each recorded in the history. Must never leave a fault behind
// after HealAll(), nor act outside its Cluster.
#include "jepsen/nemesis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

namespace raftkv::jepsen {

namespace {

const char* const kPartitionModes[] = {"halves", "leader", "ring"};

// Bounds of the member nemesis's waits.
constexpr auto kMemberListTimeout = std::chrono::seconds(5);
constexpr auto kRemovedExitWait = std::chrono::seconds(10);
constexpr auto kVoterWait = std::chrono::seconds(20);

std::string NodeList(const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) out += (out.empty() ? "n" : " n") + std::to_string(id);
  return out;
}

std::string SideText(const std::set<int>& side) {
  return "{" + NodeList(std::vector<int>(side.begin(), side.end())) + "}";
}

std::string Seconds(double s) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%+.3f s", s);
  return buffer;
}

// "1.2 s": how long something took.
std::string Duration(double s) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f s", s);
  return buffer;
}

}  // namespace

Status ValidateNemesisKinds(const std::set<std::string>& kinds) {
  for (const std::string& k : kinds) {
    if (k != "partition" && k != "kill" && k != "pause" && k != "clock" &&
        k != "partition-halves" && k != "partition-leader" &&
        k != "partition-ring" && k != "pause-leader" && k != "member" &&
        k != "none") {
      return Status::InvalidArgument(
          "unknown nemesis '" + k +
          "' (partition, partition-halves, partition-leader, "
          "partition-ring, kill, pause, pause-leader, clock, member, none)");
    }
  }
  return Status::OK();
}

std::vector<std::set<int>> SplitGrudge(const std::vector<int>& ids,
                                       const std::set<int>& side) {
  const int max_id =
      ids.empty() ? 0 : *std::max_element(ids.begin(), ids.end());
  std::vector<std::set<int>> grudge(max_id + 1);
  for (int a : ids) {
    for (int b : ids) {
      if (side.count(a) != side.count(b)) grudge[b].insert(a);
    }
  }
  return grudge;
}

std::vector<std::set<int>> RingGrudge(const std::vector<int>& ring) {
  const int n = static_cast<int>(ring.size());
  const int m = n / 2 + 1;  // a majority
  const int before = (m - 1) / 2, after = m - 1 - before;
  const int max_id =
      ring.empty() ? 0 : *std::max_element(ring.begin(), ring.end());
  std::vector<std::set<int>> grudge(max_id + 1);
  for (int i = 0; i < n; ++i) {
    std::set<int> hears;
    for (int d = -before; d <= after; ++d) hears.insert(ring[(i + d + n) % n]);
    for (int a : ring) {
      if (hears.count(a) == 0) grudge[ring[i]].insert(a);
    }
  }
  return grudge;
}

std::vector<fault::Cut> CutsOf(const Cluster& cluster,
                               const std::vector<std::set<int>>& grudge) {
  std::vector<fault::Cut> cuts;
  for (int b = 1; b < static_cast<int>(grudge.size()); ++b) {
    for (int a : grudge[b])
      cuts.push_back({cluster.gid(a), cluster.address(b), ""});
  }
  return cuts;
}

Nemesis::Nemesis(Cluster* cluster, fault::Firewall* firewall,
                 Recorder* recorder, NemesisOptions options)
    : cluster_(cluster),
      firewall_(firewall),
      recorder_(recorder),
      options_(std::move(options)),
      rng_(options_.seed * 0x9e3779b97f4a7c15ULL + 17) {
  const auto& k = options_.kinds;
  if (k.count("partition")) {
    partition_modes_.assign(std::begin(kPartitionModes),
                            std::end(kPartitionModes));
  }
  for (const char* mode : kPartitionModes) {
    if (k.count(std::string("partition-") + mode) &&
        std::find(partition_modes_.begin(), partition_modes_.end(), mode) ==
            partition_modes_.end()) {
      partition_modes_.push_back(mode);
    }
  }
  if (!partition_modes_.empty() && firewall_ != nullptr &&
      cluster_->members().size() > 1) {
    kinds_.push_back(Kind::kPartition);
  }
  if (k.count("kill")) kinds_.push_back(Kind::kKill);
  if (k.count("pause") || k.count("pause-leader")) {
    kinds_.push_back(Kind::kPause);
    pause_leader_only_ = k.count("pause") == 0;
  }
  if (k.count("clock") && cluster_->clocks_faked()) {
    kinds_.push_back(Kind::kClock);
  }
  if (k.count("member")) kinds_.push_back(Kind::kMember);
}

std::string Nemesis::current() const {
  return active_ == Kind::kNone ? "none" : description_;
}

void Nemesis::Error(const std::string& what, const Status& status) {
  const std::string line = what + ": " + status.ToString();
  std::cerr << "raftkv-jepsen: nemesis: " << line << std::endl;
  errors_.push_back(line);
}

void Nemesis::Fault(const std::string& f, const std::string& description) {
  recorder_->RecordNemesis(f, description);
  description_ = f + ": " + description;
  ++faults_;
  ++by_kind_[f];
}

int Nemesis::RandomNode() {
  const std::vector<int> ids = cluster_->members();
  return ids[rng_() % ids.size()];
}

int Nemesis::LeaderOrRandom(bool* is_leader) {
  const int leader = cluster_->FindLeader(std::chrono::milliseconds(300));
  *is_leader = leader != 0;
  return leader != 0 ? leader : RandomNode();
}

std::vector<int> Nemesis::PickTargets(std::string* how) {
  std::vector<int> ids = cluster_->members();
  const int n = static_cast<int>(ids.size());
  const int mode = static_cast<int>(rng_() % 4);
  if (mode == 0) {
    *how = "";
    return {RandomNode()};
  }
  if (mode == 1) {
    bool is_leader = false;
    const int id = LeaderOrRandom(&is_leader);
    *how = is_leader ? " (leader)" : " (no leader found: random)";
    return {id};
  }
  // A random minority, or a random majority: no progress until healed.
  std::shuffle(ids.begin(), ids.end(), rng_);
  ids.resize(mode == 2 ? std::max(1, (n - 1) / 2) : n / 2 + 1);
  std::sort(ids.begin(), ids.end());
  *how = mode == 2 ? " (minority)" : " (majority)";
  return ids;
}

void Nemesis::Step(double elapsed_s) {
  if (active_ != Kind::kNone) {
    if (elapsed_s >= fault_end_s_) {
      HealAll();
    } else if (active_ == Kind::kClock) {
      StepClock(elapsed_s);
    }
    return;
  }
  if (kinds_.empty()) return;
  const double start =
      options_.quiet_s + cycle_ * (options_.fault_s + options_.heal_s);
  if (elapsed_s >= start) {
    ++cycle_;
    fault_end_s_ = start + options_.fault_s;
    StartFault(elapsed_s);
  }
}

Nemesis::Kind Nemesis::NextKind() {
  if (round_.empty()) {
    round_ = kinds_;
    std::shuffle(round_.begin(), round_.end(), rng_);
  }
  const Kind kind = round_.back();
  round_.pop_back();
  return kind;
}

void Nemesis::StartFault(double elapsed_s) {
  const Kind kind = NextKind();
  bool started = false;
  switch (kind) {
    case Kind::kPartition:
      started = StartPartition();
      break;
    case Kind::kKill:
      started = StartKill();
      break;
    case Kind::kPause:
      started = StartPause();
      break;
    case Kind::kClock:
      started = StartClock(elapsed_s);
      break;
    case Kind::kMember:
      started = StartMember();
      break;
    case Kind::kNone:
      break;
  }
  if (started) active_ = kind;
}

bool Nemesis::StartPartition() {
  const std::vector<int> members = cluster_->members();
  const int n = static_cast<int>(members.size());
  const std::string mode = partition_modes_[rng_() % partition_modes_.size()];
  std::vector<std::set<int>> grudge;
  std::string description;
  if (mode == "ring" && n >= 3) {
    std::vector<int> ring = members;
    std::shuffle(ring.begin(), ring.end(), rng_);
    grudge = RingGrudge(ring);
    description = "majority ring " + NodeList(ring) +
                  ": each node hears only a majority centred on itself";
  } else {
    std::set<int> side;
    if (mode == "leader") {
      bool is_leader = false;
      side.insert(LeaderOrRandom(&is_leader));
      description = is_leader ? "isolate leader " : "isolate (no leader) ";
    } else {
      std::vector<int> ids = members;
      std::shuffle(ids.begin(), ids.end(), rng_);
      side.insert(ids.begin(), ids.begin() + n / 2);
      description = "halves ";
    }
    std::set<int> rest;
    for (int id : members) {
      if (!side.count(id)) rest.insert(id);
    }
    grudge = SplitGrudge(members, side);
    description += SideText(side) + " | " + SideText(rest);
  }
  Status s = firewall_->Apply(CutsOf(*cluster_, grudge));
  if (!s.ok()) {
    Error("partition " + description, s);
    (void)firewall_->Heal();
    return false;
  }
  Fault("partition", description + " (" +
                         std::to_string(firewall_->rules().size()) +
                         " iptables DROP rules)");
  return true;
}

bool Nemesis::StartKill() {
  std::string how;
  targets_ = PickTargets(&how);
  for (int id : targets_) {
    Status s = cluster_->Kill(id);
    if (!s.ok()) Error("kill n" + std::to_string(id), s);
  }
  Fault("kill", NodeList(targets_) + how + ": SIGKILL");
  return true;
}

bool Nemesis::StartPause() {
  std::string how;
  if (pause_leader_only_) {
    bool is_leader = false;
    targets_ = {LeaderOrRandom(&is_leader)};
    how = is_leader ? " (leader)" : " (no leader found: random)";
  } else {
    targets_ = PickTargets(&how);
  }
  for (int id : targets_) {
    Status s = cluster_->Pause(id);
    if (!s.ok()) Error("pause n" + std::to_string(id), s);
  }
  Fault("pause", NodeList(targets_) + how + ": SIGSTOP");
  return true;
}

bool Nemesis::StartClock(double elapsed_s) {
  bool is_leader = false;
  clock_node_ = rng_() % 2 ? LeaderOrRandom(&is_leader) : RandomNode();
  const std::string who =
      "n" + std::to_string(clock_node_) + (is_leader ? " (leader)" : "");
  std::uniform_real_distribution<double> unit(0, 1);
  const double before = cluster_->clock_offset(clock_node_);
  std::string description;
  switch (rng_() % 3) {
    case 0: {
      const double jump = 0.1 + unit(rng_) * 9.9;
      clock_rate_ = 1;
      Status s = cluster_->SetClockOffset(clock_node_, before + jump);
      if (!s.ok()) {
        Error("clock " + who, s);
        return false;
      }
      description = who + " jumps " + Seconds(jump) + " (offset now " +
                    Seconds(before + jump) + ")";
      break;
    }
    case 1:
      clock_rate_ = 2 + unit(rng_) * 2;
      description = who + " runs fast";
      break;
    default:
      clock_rate_ = 0.25 + unit(rng_) * 0.25;
      description = who + " runs slow";
      break;
  }
  if (clock_rate_ != 1) {
    char rate[32];
    std::snprintf(rate, sizeof(rate), " x%.2f", clock_rate_);
    description += rate + std::string(" (offset ") + Seconds(before) + ")";
  }
  clock_last_s_ = elapsed_s;
  Fault("clock", description);
  return true;
}

void Nemesis::StepClock(double elapsed_s) {
  if (clock_rate_ == 1) return;
  const double advance = (clock_rate_ - 1) * (elapsed_s - clock_last_s_);
  if (std::abs(advance) < 0.005) return;
  clock_last_s_ = elapsed_s;
  Status s = cluster_->SetClockOffset(
      clock_node_, cluster_->clock_offset(clock_node_) + advance);
  if (!s.ok()) Error("clock drift n" + std::to_string(clock_node_), s);
}

std::string Nemesis::MembershipNow() {
  auto list = cluster_->MemberList(kMemberListTimeout);
  if (!list.ok()) return "members unknown (" + list.status().ToString() + ")";
  return "members " + MembersText(*list);
}

int Nemesis::PickMemberToRemove(int except, std::string* how) {
  std::vector<int> ids = cluster_->members();
  ids.erase(std::remove(ids.begin(), ids.end(), except), ids.end());
  if (ids.empty()) return 0;
  const int leader = cluster_->FindLeader(std::chrono::milliseconds(300));
  const bool leader_known =
      leader != 0 && std::find(ids.begin(), ids.end(), leader) != ids.end();
  const int id =
      leader_known && rng_() % 3 == 0 ? leader : ids[rng_() % ids.size()];
  *how = id == leader ? " (leader)" : "";
  return id;
}

bool Nemesis::RemoveMember(int id, const std::string& how, std::string* done) {
  const std::string who = "n" + std::to_string(id) + how;
  std::string exit;
  bool stopped_by_us = false;
  Status s = cluster_->RemoveNode(id, kRemovedExitWait, &exit, &stopped_by_us);
  if (!s.ok()) {
    Error("remove " + who, s);
    return false;
  }
  // A removed node stops by itself, with exit code 0.
  if (stopped_by_us || exit.rfind("exit 0 ", 0) != 0) {
    Error("remove " + who, Status::FailedPrecondition(exit));
  }
  *done = who + ": " + exit;
  return true;
}

int Nemesis::AddMember(std::string* done) {
  auto id = cluster_->AddNode();
  if (!id.ok()) {
    Error("add a fresh node", id.status());
    return 0;
  }
  *done = "n" + std::to_string(*id) + " (empty data dir, --join)";
  return *id;
}

bool Nemesis::StartMember() {
  auto list = cluster_->MemberList(kMemberListTimeout);
  if (!list.ok()) {
    Error("member list", list.status());
    return false;
  }
  int voters = 0;
  for (const MemberInfo& m : *list) voters += !m.learner;
  member_added_ = 0;
  std::string done;
  if (rng_() % 2 == 0 && voters > kMinVoters) {
    member_mode_ = "remove";
    std::string how;
    const int id = PickMemberToRemove(0, &how);
    if (id == 0 || !RemoveMember(id, how, &done)) return false;
    Fault("member", "remove " + done + "; " + MembershipNow());
    return true;
  }
  member_mode_ = "replace";
  member_added_ = AddMember(&done);
  if (member_added_ == 0) return false;
  Fault("member", "replace: add " + done + "; " + MembershipNow() +
                      "; once it is a voter, the heal removes an old member");
  return true;
}

std::string Nemesis::HealMember() {
  std::string done;
  if (member_mode_ == "remove") {
    const int id = AddMember(&done);
    if (id == 0) return "no node added (error); " + MembershipNow();
    auto voter = cluster_->WaitForVoter(id, kVoterWait);
    if (!voter.ok()) {
      Error("add n" + std::to_string(id), voter.status());
      return "add " + done + ": " + voter.status().message() + "; " +
             MembershipNow();
    }
    return "add " + done + ": a voter after " + Duration(*voter) + "; " +
           MembershipNow();
  }
  const std::string added = "n" + std::to_string(member_added_);
  auto voter = cluster_->WaitForVoter(member_added_, kVoterWait);
  if (!voter.ok()) {
    Error("replace: add " + added, voter.status());
    return voter.status().message() + ": no member removed; " + MembershipNow();
  }
  std::string how;
  const int id = PickMemberToRemove(member_added_, &how);
  const std::string voter_text =
      added + " is a voter (waited " + Duration(*voter) + "); ";
  if (id == 0 || !RemoveMember(id, how, &done)) {
    return voter_text + "no member removed (error); " + MembershipNow();
  }
  return voter_text + "remove " + done + "; " + MembershipNow();
}

void Nemesis::HealAll() {
  std::string healed;
  switch (active_) {
    case Kind::kNone:
      return;
    case Kind::kPartition: {
      Status s = firewall_->Heal();
      if (!s.ok()) Error("heal partition", s);
      healed = "partition healed (iptables chain flushed)";
      break;
    }
    case Kind::kKill:
      for (int id : targets_) {
        Status s = cluster_->Restart(id);
        if (!s.ok()) Error("restart n" + std::to_string(id), s);
      }
      healed = "restart " + NodeList(targets_);
      break;
    case Kind::kPause:
      for (int id : targets_) {
        Status s = cluster_->Resume(id);
        if (!s.ok()) Error("resume n" + std::to_string(id), s);
      }
      healed = "SIGCONT " + NodeList(targets_);
      break;
    case Kind::kMember:
      healed = HealMember();
      break;
    case Kind::kClock:
      healed = "n" + std::to_string(clock_node_) +
               " clock back to rate x1 (offset stays " +
               Seconds(cluster_->clock_offset(clock_node_)) + ")";
      clock_rate_ = 1;
      break;
  }
  targets_.clear();
  active_ = Kind::kNone;
  description_.clear();
  recorder_->RecordNemesis("heal", healed);
}

}  // namespace raftkv::jepsen
