// Randomized safety test of the Raft core on the TestNetwork: from a seed,
// a random mix of ticks, reordered / dropped / duplicated messages,
// partitions, crashes with restart from storage, log compaction, proposals,
// reads and leader transfers, with the Raft paper's safety properties
// (Figure 3) checked after every step, then a liveness phase (heal, and
// require a new proposal to be applied everywhere). Small and fast: the
// deterministic simulator in tests/sim/ is the large-scale version.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "raft/describe.h"
#include "raft/raw_node.h"
#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::TestNetwork;

class Chaos {
 public:
  Chaos(uint64_t seed, size_t n, bool pre_vote, bool check_quorum)
      : seed_(seed), rng_(seed), net_(n, [=](Config* c) {
          c->pre_vote = pre_vote;
          c->check_quorum = check_quorum;
          c->seed = seed * 1000 + c->id;
          c->max_inflight_msgs = 4;
          c->max_size_per_msg = 200;
          if (seed % 5 == 1) {
            c->max_inflight_bytes = 64;
            c->max_committed_size_per_ready = 100;
            c->max_uncommitted_entries_size = 80;
          }
        }) {}

  TestNetwork& net() { return net_; }

  uint64_t RandomNode() { return 1 + rng_() % net_.ids().size(); }

  void Step(int step) {
    const int action = rng_() % 100;
    auto& q = net_.queue();
    if (action < 35) {
      net_.Tick(RandomNode());
    } else if (action < 65) {
      if (!q.empty()) net_.DeliverAt(rng_() % q.size());
    } else if (action < 70) {
      // Several messages stepped before the receivers' next Ready.
      net_.set_defer_readys(true);
      for (int i = 0; i < 5 && !q.empty(); ++i) {
        net_.DeliverAt(rng_() % q.size());
      }
      net_.set_defer_readys(false);
    } else if (action < 76) {
      if (!q.empty()) net_.DropAt(rng_() % q.size());
    } else if (action < 79) {
      if (!q.empty()) q.push_back(q[rng_() % q.size()]);
    } else if (action < 85) {
      for (uint64_t id : net_.ids()) {
        if (net_.node(id).role() == Role::kLeader) {
          (void)net_.node(id).Propose("s" + std::to_string(seed_) + "-" +
                                      std::to_string(step));
        }
      }
    } else if (action < 89) {
      // Linearizability of reads: the read point must cover every entry
      // committed anywhere before the request was made.
      const std::string ctx = "r" + std::to_string(step);
      if (net_.node(RandomNode()).ReadIndex(ctx).ok()) {
        read_floor_[ctx] = MaxCommit();
      }
    } else if (action < 92) {
      const int kind = rng_() % 4;
      if (kind == 0) {
        net_.Heal();
      } else if (kind == 1) {
        net_.Isolate(RandomNode());
      } else if (kind == 2) {
        net_.Cut(RandomNode(), RandomNode());
      } else {
        net_.CutOneWay(RandomNode(), RandomNode());
      }
    } else if (action < 94) {
      // The state machine survives the crash, or is rebuilt from scratch.
      const uint64_t id = RandomNode();
      net_.Restart(id, rng_() % 2 == 0 ? net_.applied_index(id) : 0);
    } else if (action < 95) {
      for (uint64_t id : net_.ids()) {
        if (net_.node(id).role() == Role::kLeader) {
          (void)net_.node(id).TransferLeader(RandomNode());
        }
      }
    } else if (action < 97) {
      Compact(RandomNode());
    } else if (action < 98) {
      net_.node(RandomNode()).ReportUnreachable(RandomNode());
    } else if (action < 99) {
      net_.node(RandomNode()).ForgetLeader();
    }
    net_.HandleAllReadys();
  }

  uint64_t MaxCommit() {
    uint64_t commit = 0;
    for (uint64_t id : net_.ids()) {
      commit = std::max(commit, net_.node(id).GetStatus().commit);
    }
    return commit;
  }

  void Compact(uint64_t id) {
    MemoryStorage& s = net_.storage(id);
    const uint64_t applied = net_.applied_index(id);
    if (applied < s.FirstIndex() || applied > s.LastIndex()) return;
    ConfState cs;
    for (uint64_t v : net_.ids()) cs.add_voters(v);
    ASSERT_TRUE(s.CreateSnapshot(applied, cs, "").ok());
    ASSERT_TRUE(s.Compact(applied).ok());
  }

  // Raft paper Figure 3: Election Safety, Leader Completeness; plus
  // commit <= last index. (State Machine Safety and durable votes are
  // checked by the TestNetwork itself.)
  void CheckInvariants(int step) {
    // An entry is committed in some term no later than the highest term any
    // node has reached when it is first applied; leaders of later terms
    // must hold it (Leader Completeness).
    uint64_t max_term = 0;
    for (uint64_t id : net_.ids()) {
      max_term = std::max(max_term, net_.node(id).term());
    }
    for (const auto& [index, entry] : net_.committed()) {
      commit_term_bound_.emplace(index, max_term);
    }
    for (uint64_t id : net_.ids()) {
      for (const ReadState& rs : net_.read_states(id)) {
        auto it = read_floor_.find(rs.request_ctx);
        ASSERT_NE(it, read_floor_.end()) << "unknown read " << rs.request_ctx;
        ASSERT_GE(rs.index, it->second)
            << "stale read " << rs.request_ctx << " on node " << id
            << " at step " << step;
      }
      net_.ClearReadStates(id);
    }
    for (uint64_t id : net_.ids()) {
      const NodeStatus st = net_.node(id).GetStatus();
      ASSERT_LE(st.commit, st.last_index) << "node " << id << " step " << step;
      if (st.role != Role::kLeader) continue;
      auto [it, inserted] = leaders_.emplace(st.term, id);
      ASSERT_EQ(it->second, id)
          << "two leaders in term " << st.term << " at step " << step;
      // Everything any node applied is in this leader's log.
      const MemoryStorage& s = net_.storage(id);
      for (const auto& [index, entry] : net_.committed()) {
        if (index < s.FirstIndex()) continue;
        if (st.term <= commit_term_bound_.at(index)) continue;
        uint64_t term = 0;
        ASSERT_TRUE(s.Term(index, &term).ok())
            << "leader " << id << " (term " << st.term << ") lacks committed "
            << DescribeEntry(entry) << " at step " << step;
        ASSERT_EQ(term, entry.term())
            << "leader " << id << " has a different entry at " << index
            << " at step " << step;
      }
    }
  }

  // After the chaos: heal everything and require progress: within a bounded
  // number of ticks some proposal (a proposal may be lost when its leader
  // is deposed, so retry) is applied on every node.
  void CheckLiveness() {
    net_.Heal();
    int lost = 0;
    for (int attempt = 0; attempt < 40; ++attempt) {
      uint64_t leader = kNone;
      for (int t = 0; t < 100 && leader == kNone; ++t) {
        net_.TickAllAndStabilize();
        leader = net_.Leader();
      }
      ASSERT_NE(leader, kNone) << "no leader after healing";
      const std::string data = "final" + std::to_string(attempt);
      StatusOr<uint64_t> index = net_.node(leader).Propose(data);
      if (!index.ok()) continue;  // e.g. a transfer is under way
      for (int t = 0; t < 50; ++t) {
        net_.TickAllAndStabilize();
        bool everywhere = true;
        for (uint64_t id : net_.ids()) {
          auto it = net_.applied(id).find(*index);
          everywhere = everywhere && it != net_.applied(id).end() &&
                       it->second.data() == data;
        }
        if (everywhere) {
          EXPECT_LE(lost, 2) << "accepted proposals lost after healing";
          return;
        }
      }
      ++lost;
    }
    ADD_FAILURE() << "no proposal was applied everywhere after healing";
  }

 private:
  uint64_t seed_;
  std::mt19937_64 rng_;
  TestNetwork net_;
  std::map<uint64_t, uint64_t> leaders_;  // term -> leader
  // ReadIndex ctx -> highest commit index anywhere when it was requested
  std::map<std::string, uint64_t> read_floor_;
  // index -> a term at or after the one the entry was committed in
  std::map<uint64_t, uint64_t> commit_term_bound_;
};

class ChaosTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ChaosTest, SafetyUnderFaultsAndLivenessAfterHealing) {
  // CHAOS_SEED_BASE shifts the seeds and CHAOS_STEPS lengthens the runs,
  // for hunting bugs by hand beyond what the suite runs every time.
  const char* base = std::getenv("CHAOS_SEED_BASE");
  const char* steps_env = std::getenv("CHAOS_STEPS");
  const uint64_t seed = GetParam() + (base ? std::atoll(base) : 0);
  const int steps = steps_env ? std::atoi(steps_env) : 3000;
  Chaos chaos(seed, seed % 3 == 0 ? 3 : 5, /*pre_vote=*/seed % 2 == 0,
              /*check_quorum=*/(seed / 2) % 2 == 0);
  for (int step = 0; step < steps; ++step) {
    chaos.Step(step);
    ASSERT_NO_FATAL_FAILURE(chaos.CheckInvariants(step)) << "seed " << seed;
    if (::testing::Test::HasFailure()) {
      FAIL() << "seed " << seed << " failed at step " << step;
    }
  }
  chaos.CheckLiveness();
}

INSTANTIATE_TEST_SUITE_P(Seeds, ChaosTest, ::testing::Range<uint64_t>(1, 41));

}  // namespace
}  // namespace raftkv::raft
