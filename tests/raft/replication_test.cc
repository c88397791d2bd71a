// Log replication tests (Raft paper §5.3, §5.4.2 and Figure 8, §7;
// dissertation §3.5 flow control, §10.2 batching and pipelining): the
// consistency check and repair of divergent logs, fast back-off, pipelined
// AppendEntries with in-flight limits, probe state, batching of proposals,
// the size limits of Config, commitment by counting only current-term
// entries, the leader's no-op, and catching up through a snapshot.
#include <gtest/gtest.h>

#include <string>

#include "raft/raw_node.h"
#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::CountMessages;
using rafttest::MakeEntries;
using rafttest::MakeEntry;
using rafttest::Msg;
using rafttest::TestNetwork;

auto kPlainRaft = [](Config* c) {
  c->pre_vote = false;
  c->check_quorum = false;
};

// Gives node `id` a log with `terms` at indexes 1.., a hard state, and
// restarts it from that storage.
void SetLog(TestNetwork& net, uint64_t id, const std::vector<uint64_t>& terms,
            uint64_t term, uint64_t commit) {
  net.storage(id).Append(MakeEntries(1, terms));
  HardState hs;
  hs.set_term(term);
  hs.set_commit(commit);
  net.storage(id).SetHardState(hs);
  net.Restart(id);
}

std::vector<uint64_t> Repeat(uint64_t term, size_t n) {
  return std::vector<uint64_t>(n, term);
}

std::vector<uint64_t> Concat(std::vector<uint64_t> a,
                             const std::vector<uint64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

size_t CountRejections(const TestNetwork& net, uint64_t from) {
  size_t n = 0;
  for (const Message& m : net.sent()) {
    if (m.type() == MSG_APP_RESP && m.from() == from && m.reject()) ++n;
  }
  return n;
}

uint64_t StorageTerm(TestNetwork& net, uint64_t id, uint64_t index) {
  uint64_t term = 0;
  EXPECT_TRUE(net.storage(id).Term(index, &term).ok());
  return term;
}

std::vector<Message> MessagesTo(const std::vector<Message>& msgs,
                                MessageType type, uint64_t to) {
  std::vector<Message> out;
  for (const Message& m : msgs) {
    if (m.type() == type && m.to() == to) out.push_back(m);
  }
  return out;
}

// Raft paper §5.4.2 / dissertation §6.4: a new leader appends an empty entry
// of its term, which commits (with everything before it) once replicated.
TEST(ReplicationTest, NewLeaderAppendsAndCommitsNoOpEntry) {
  TestNetwork net(3);
  net.Elect(1);
  for (uint64_t id : net.ids()) {
    ASSERT_EQ(net.storage(id).LastIndex(), 1u) << "node " << id;
    EXPECT_EQ(StorageTerm(net, id, 1), 1u);
    ASSERT_EQ(net.applied(id).count(1), 1u) << "node " << id;
    EXPECT_TRUE(net.applied(id).at(1).data().empty());
    EXPECT_EQ(net.node(id).GetStatus().commit, 1u);
  }
}

// Raft paper §5.3: a proposal is appended by the leader, replicated, and
// applied everywhere once stored on a majority.
TEST(ReplicationTest, ProposalIsReplicatedCommittedAndApplied) {
  TestNetwork net(3);
  net.Elect(1);
  auto index = net.node(1).Propose("hello");
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(*index, 2u);
  net.Stabilize();
  for (uint64_t id : net.ids()) {
    ASSERT_EQ(net.applied(id).count(2), 1u) << "node " << id;
    EXPECT_EQ(net.applied(id).at(2).data(), "hello");
    EXPECT_EQ(net.applied(id).at(2).term(), 1u);
  }
}

TEST(ReplicationTest, EntryCommitsOnlyOnceStoredOnAMajority) {
  TestNetwork net(5);
  net.Elect(1);
  for (uint64_t other : {3, 4, 5}) net.Cut(1, other);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
  EXPECT_EQ(net.storage(2).LastIndex(), 2u);  // replicated to one follower
  EXPECT_EQ(net.node(1).GetStatus().commit, 1u);
  EXPECT_EQ(net.applied(1).count(2), 0u);
  net.Heal();
  net.Tick(1);  // a heartbeat round finds the missing followers
  net.Stabilize();
  EXPECT_EQ(net.node(1).GetStatus().commit, 2u);
  for (uint64_t id : net.ids()) {
    EXPECT_EQ(net.applied(id).count(2), 1u) << "node " << id;
  }
}

// Raft paper §5.3 (AppendEntries receiver rule 2): a follower rejects an
// append whose previous entry does not match, leaves its log alone, and
// hints where the logs may match (the last index <= the probe whose term is
// <= the leader's term there).
TEST(ReplicationTest, FollowerRejectsAppendFailingConsistencyCheck) {
  TestNetwork net(3);
  SetLog(net, 2, {1, 1, 2}, 3, 1);
  net.Stabilize();
  struct Case {
    uint64_t index, log_term, hint, hint_term;
  };
  const Case cases[] = {
      {3, 3, 3, 2},  // term mismatch at the last entry
      {3, 1, 2, 1},  // our entry 3 is term 2 > 1: skip back to index 2
      {7, 3, 3, 2},  // beyond our log: hint our last entry
  };
  for (const Case& c : cases) {
    Message app = Msg(MSG_APP, 1, 2, 3);
    app.set_index(c.index);
    app.set_log_term(c.log_term);
    *app.add_entries() = MakeEntry(3, c.index + 1, "new");
    ASSERT_TRUE(net.node(2).Step(app).ok());
    Ready rd = net.HandleReady(2);
    auto resps = MessagesTo(rd.messages_after_persist, MSG_APP_RESP, 1);
    ASSERT_EQ(resps.size(), 1u);
    EXPECT_TRUE(resps[0].reject());
    EXPECT_EQ(resps[0].index(), c.index);
    EXPECT_EQ(resps[0].reject_hint(), c.hint);
    EXPECT_EQ(resps[0].log_term(), c.hint_term);
    EXPECT_TRUE(rd.entries.empty());
    EXPECT_EQ(net.storage(2).LastIndex(), 3u);
  }
}

// Raft paper §5.3: a follower's conflicting entries are deleted and
// replaced by the leader's (Log Matching).
TEST(ReplicationTest, LeaderOverwritesConflictingFollowerEntries) {
  TestNetwork net(3, kPlainRaft);
  SetLog(net, 1, {1, 1}, 3, 1);
  SetLog(net, 2, {1, 2, 2, 2}, 3, 1);
  SetLog(net, 3, {1, 1}, 3, 1);
  net.Stabilize();
  net.node(1).Campaign();
  net.Stabilize();
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  EXPECT_EQ(net.node(1).term(), 4u);
  ASSERT_EQ(net.storage(2).LastIndex(), 3u);
  EXPECT_EQ(StorageTerm(net, 2, 2), 1u);
  EXPECT_EQ(StorageTerm(net, 2, 3), 4u);
  EXPECT_EQ(net.node(2).GetStatus().commit, 3u);
}

// Raft paper §5.3 ("the follower can include the term of the conflicting
// entry..."): a follower with 100 divergent entries from term 2 is repaired
// by a leader whose last 50 entries are from term 3 in one rejection, not
// one per entry.
TEST(ReplicationTest, FastBackOffRepairsLongDivergentLog) {
  TestNetwork net(3);
  const auto prefix = Repeat(1, 5);
  SetLog(net, 1, Concat(prefix, Repeat(3, 50)), 3, 5);
  SetLog(net, 2, Concat(prefix, Repeat(2, 100)), 3, 5);
  SetLog(net, 3, Concat(prefix, Repeat(3, 50)), 3, 5);
  net.Stabilize();
  net.ClearSent();
  net.Elect(1);
  EXPECT_LE(CountRejections(net, 2), 2u);
  EXPECT_GE(CountRejections(net, 2), 1u);
  ASSERT_EQ(net.storage(2).LastIndex(), 56u);
  EXPECT_EQ(StorageTerm(net, 2, 6), 3u);
  EXPECT_EQ(StorageTerm(net, 2, 55), 3u);
  EXPECT_EQ(StorageTerm(net, 2, 56), 4u);
  EXPECT_EQ(net.node(2).GetStatus().commit, 56u);
}

TEST(ReplicationTest, FastBackOffCatchesUpFollowerMissingManyEntries) {
  TestNetwork net(3);
  SetLog(net, 1, Repeat(1, 100), 1, 5);
  SetLog(net, 2, Repeat(1, 5), 1, 5);
  SetLog(net, 3, Repeat(1, 100), 1, 5);
  net.Stabilize();
  net.ClearSent();
  net.Elect(1);
  EXPECT_EQ(CountRejections(net, 2), 1u);
  EXPECT_EQ(net.storage(2).LastIndex(), 101u);
  EXPECT_EQ(net.node(2).GetStatus().commit, 101u);
}

// Dissertation §10.2.1 (pipelining): in replicate state the leader sends
// new entries without waiting for earlier MSG_APPs to be acknowledged.
TEST(ReplicationTest, AppendsArePipelinedInReplicateState) {
  TestNetwork net(3);
  net.Elect(1);
  ASSERT_EQ(net.node(1).GetStatus().progress.at(2).state, "replicate");
  for (std::string data : {"a", "b", "c"}) {
    ASSERT_TRUE(net.node(1).Propose(data).ok());
    net.HandleReady(1);  // nothing is delivered in between
  }
  auto apps = MessagesTo({net.queue().begin(), net.queue().end()}, MSG_APP, 2);
  ASSERT_EQ(apps.size(), 3u);
  for (size_t i = 0; i < apps.size(); ++i) {
    EXPECT_EQ(apps[i].index(), 1 + i);  // each continues the previous one
    ASSERT_EQ(apps[i].entries_size(), 1);
    EXPECT_EQ(apps[i].entries(0).index(), 2 + i);
  }
  net.Stabilize();
  EXPECT_EQ(net.applied(2).size(), 4u);
}

// Config::max_inflight_msgs: the pipeline stops when that many MSG_APPs are
// unacknowledged, and resumes as acknowledgements arrive.
TEST(ReplicationTest, FlowControlStopsAtMaxInflightMsgs) {
  TestNetwork net(3, [](Config* c) {
    c->max_inflight_msgs = 3;
    c->max_size_per_msg = 1;  // one entry per MSG_APP
  });
  net.Elect(1);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(net.node(1).Propose("p").ok());
  net.HandleReady(1);
  EXPECT_EQ(CountMessages({net.queue().begin(), net.queue().end()}, MSG_APP, 2),
            3u);
  // More Readys without acknowledgements send nothing more.
  ASSERT_TRUE(net.node(1).Propose("q").ok());
  net.HandleReady(1);
  EXPECT_EQ(CountMessages({net.queue().begin(), net.queue().end()}, MSG_APP, 2),
            3u);
  // One round trip: three acks free three slots.
  net.DeliverQueued();  // MSG_APPs to the followers
  net.ClearSent();
  net.DeliverQueued();  // their MSG_APP_RESPs to the leader
  EXPECT_EQ(net.CountSent(MSG_APP, 1, 2), 3u);
  net.Stabilize();
  EXPECT_EQ(net.node(2).GetStatus().commit, 12u);
  EXPECT_EQ(net.applied(2).size(), 12u);
}

// Config::max_inflight_bytes: the pipeline also stops once the unacknowledged
// payload reaches the byte limit (the message that crosses it is sent).
TEST(ReplicationTest, FlowControlStopsAtMaxInflightBytes) {
  TestNetwork net(3, [](Config* c) {
    c->max_inflight_bytes = 100;
    c->max_size_per_msg = 1;
  });
  net.Elect(1);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(net.node(1).Propose(std::string(40, 'x')).ok());
  }
  net.ClearSent();
  net.HandleReady(1);
  // 40 + 40 = 80 < 100 allows a third; 120 >= 100 stops.
  EXPECT_EQ(net.CountSent(MSG_APP, 1, 2), 3u);
  net.DeliverQueued();
  net.ClearSent();
  net.DeliverQueued();
  EXPECT_EQ(net.CountSent(MSG_APP, 1, 2), 3u);  // resumed on acks
  net.Stabilize();
  EXPECT_EQ(net.applied(2).size(), 11u);
}

// Dissertation §3.5 / etcd probe state: while the leader does not know
// where a follower's log matches, it sends one MSG_APP and waits (for the
// answer or a heartbeat response) before sending another.
TEST(ReplicationTest, ProbeStateSendsOneAppendAtATime) {
  TestNetwork net(3);
  net.Cut(1, 3);
  net.Elect(1);
  EXPECT_EQ(net.node(1).GetStatus().progress.at(3).state, "probe");
  EXPECT_EQ(net.CountSent(MSG_APP, 1, 3), 1u);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(net.node(1).Propose("p").ok());
    net.Stabilize();
  }
  EXPECT_EQ(net.CountSent(MSG_APP, 1, 3), 1u);
  EXPECT_GE(net.CountSent(MSG_APP, 1, 2), 5u);
  net.Heal();
  net.ClearSent();
  net.Tick(1);
  net.HandleReady(1);   // heartbeats
  net.DeliverQueued();  // to the followers
  net.DeliverQueued();  // their responses: each lets one probe out
  EXPECT_EQ(net.CountSent(MSG_APP, 1, 3), 1u);
  net.Stabilize();
  EXPECT_EQ(net.storage(3).LastIndex(), 6u);
  EXPECT_EQ(net.node(1).GetStatus().progress.at(3).state, "replicate");
}

// Batching (etcd's Ready model): proposals between two Readys leave in one
// MSG_APP per follower.
TEST(ReplicationTest, ProposalsBetweenReadysShareOneAppendPerFollower) {
  TestNetwork net(3);
  net.Elect(1);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(net.node(1).Propose("v" + std::to_string(i)).ok());
  }
  Ready rd = net.HandleReady(1);
  EXPECT_EQ(rd.entries.size(), 100u);
  for (uint64_t to : {2, 3}) {
    auto apps = MessagesTo(rd.messages, MSG_APP, to);
    ASSERT_EQ(apps.size(), 1u) << "to " << to;
    EXPECT_EQ(apps[0].entries_size(), 100);
  }
  net.Stabilize();
  EXPECT_EQ(net.applied(3).size(), 101u);
}

// Config::max_size_per_msg splits a batch into several MSG_APPs, each within
// the limit.
TEST(ReplicationTest, MaxSizePerMsgSplitsBatches) {
  const uint64_t kLimit = 1000;
  TestNetwork net(3, [&](Config* c) { c->max_size_per_msg = kLimit; });
  net.Elect(1);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(net.node(1).Propose(std::string(100, 'a')).ok());
  }
  Ready rd = net.HandleReady(1);
  auto apps = MessagesTo(rd.messages, MSG_APP, 2);
  EXPECT_GE(apps.size(), 10u);
  int total = 0;
  uint64_t next = 2;
  for (const Message& m : apps) {
    uint64_t bytes = 0;
    for (const Entry& e : m.entries()) {
      bytes += e.ByteSizeLong();
      EXPECT_EQ(e.index(), next++);
    }
    EXPECT_LE(bytes, kLimit);
    total += m.entries_size();
  }
  EXPECT_EQ(total, 100);
  net.Stabilize();
  EXPECT_EQ(net.applied(2).size(), 101u);
}

// Config::max_uncommitted_entries_size: once that much payload is
// uncommitted the leader drops proposals, and accepts them again after
// commitment.
TEST(ReplicationTest, MaxUncommittedEntriesSizeDropsProposals) {
  TestNetwork net(3, [](Config* c) { c->max_uncommitted_entries_size = 100; });
  net.Elect(1);
  EXPECT_TRUE(net.node(1).Propose(std::string(60, 'a')).ok());
  auto dropped = net.node(1).Propose(std::string(60, 'b'));
  ASSERT_FALSE(dropped.ok());
  EXPECT_EQ(dropped.status().code(), Status::Code::kProposalDropped);
  EXPECT_TRUE(net.node(1).Propose(std::string(40, 'c')).ok());  // == 100
  EXPECT_FALSE(net.node(1).Propose("d").ok());
  EXPECT_TRUE(net.node(1).Propose("").ok());  // empty entries always pass
  net.Stabilize();
  EXPECT_EQ(net.applied(2).size(), 4u);
  EXPECT_TRUE(net.node(1).Propose(std::string(60, 'e')).ok());
}

// Config::max_uncommitted_entries_size counts the leader's own uncommitted
// proposals. Committing entries inherited from an earlier term must not
// free quota that those entries never took.
TEST(ReplicationTest, MaxUncommittedEntriesSizeHoldsAcrossLeaderChange) {
  TestNetwork net(3, [](Config* c) {
    c->pre_vote = false;
    c->check_quorum = false;
    c->max_uncommitted_entries_size = 100;
    c->max_size_per_msg = 1;  // one entry per MSG_APP
  });
  net.Elect(1);
  // Leader 1 gets a 100-byte entry onto node 2 only; it stays uncommitted.
  net.SetDropFilter([](const Message& m) {
    return (m.type() == MSG_APP && m.to() == 3) ||
           (m.type() == MSG_APP_RESP && m.to() == 1);
  });
  ASSERT_TRUE(net.node(1).Propose(std::string(100, 'o')).ok());
  net.Stabilize();
  ASSERT_EQ(net.storage(2).LastIndex(), 2u);
  // Node 2 takes over; its appends are held back for now.
  net.Heal();
  net.Isolate(1);
  net.SetDropFilter(
      [](const Message& m) { return m.type() == MSG_APP && m.from() == 2; });
  net.Elect(2);
  ASSERT_TRUE(net.node(2).Propose(std::string(100, 'A')).ok());
  ASSERT_FALSE(net.node(2).Propose("x").ok());  // the quota is used up
  // The inherited entry and the no-op commit; the 'A' entry does not.
  net.SetDropFilter([](const Message& m) {
    return m.type() == MSG_APP && m.from() == 2 && m.entries_size() > 0 &&
           m.entries(0).data()[0] == 'A';
  });
  for (int i = 0; i < 3; ++i) {
    net.Tick(2);
    net.Stabilize();
  }
  ASSERT_EQ(net.node(2).GetStatus().commit, 3u);
  ASSERT_EQ(net.node(2).GetStatus().last_index, 4u);
  auto r = net.node(2).Propose(std::string(100, 'D'));
  EXPECT_FALSE(r.ok()) << "accepted at index " << (r.ok() ? *r : 0)
                       << " with 100 uncommitted bytes already";
}

// Config::max_committed_size_per_ready bounds the committed entries handed
// out in one Ready; the rest follow in later Readys, in order.
TEST(ReplicationTest, MaxCommittedSizePerReadyLimitsCommittedEntries) {
  const Entry sample = MakeEntry(1, 5, std::string(100, 'x'));
  const uint64_t size = sample.ByteSizeLong();
  TestNetwork net(
      1, [&](Config* c) { c->max_committed_size_per_ready = 3 * size; });
  net.Elect(1);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(net.node(1).Propose(std::string(100, 'x')).ok());
  }
  std::vector<size_t> batches;
  while (net.node(1).HasReady()) {
    Ready rd = net.HandleReady(1);
    if (!rd.committed_entries.empty()) {
      batches.push_back(rd.committed_entries.size());
    }
  }
  EXPECT_EQ(batches, (std::vector<size_t>{3, 3, 3, 1}));
  EXPECT_EQ(net.applied_index(1), 11u);
}

// Config::heartbeat_tick: an idle leader sends one heartbeat to each
// follower every heartbeat_tick ticks (Raft paper §5.2).
TEST(ReplicationTest, LeaderHeartbeatsEveryHeartbeatTick) {
  TestNetwork net(3, [](Config* c) { c->heartbeat_tick = 3; });
  net.Elect(1);
  net.ClearSent();
  for (int i = 0; i < 9; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.CountSent(MSG_HEARTBEAT, 1, 2), 3u);
  EXPECT_EQ(net.CountSent(MSG_HEARTBEAT, 1, 3), 3u);
  EXPECT_EQ(net.CountSent(MSG_APP), 0u);  // nothing to replicate
}

TEST(ReplicationTest, HeartbeatNeverCommitsBeyondFollowersMatch) {
  TestNetwork net(3);
  net.Elect(1);
  net.SetDropFilter(
      [](const Message& m) { return m.type() == MSG_APP && m.to() == 3; });
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
  ASSERT_EQ(net.node(1).GetStatus().commit, 2u);
  net.ClearSent();
  net.Tick(1);
  net.HandleReady(1);
  auto hb = MessagesTo(net.sent(), MSG_HEARTBEAT, 3);
  ASSERT_EQ(hb.size(), 1u);
  EXPECT_EQ(hb[0].commit(), 1u);  // node 3 only has entry 1
  net.Stabilize();
  EXPECT_EQ(net.node(3).GetStatus().commit, 1u);
}

// RawNode::SetAppendsPaused: a follower that pauses its appends answers
// heartbeats with reject set, and the leader then sends it nothing, not
// even the one append a heartbeat answer frees a full pipeline for; the
// other follower keeps committing; a plain answer resumes the pipeline.
TEST(ReplicationTest, AFollowerPausesItsAppendsThroughHeartbeatAnswers) {
  TestNetwork net(3, [](Config* c) {
    c->max_inflight_msgs = 2;
    c->max_size_per_msg = 1;  // one entry per MSG_APP
  });
  net.Elect(1);
  net.node(3).SetAppendsPaused(true);
  // Node 3 takes nothing from now on (its appends are lost), as a server
  // deferring them would.
  net.SetDropFilter(
      [](const Message& m) { return m.type() == MSG_APP && m.to() == 3; });
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(net.node(1).Propose("p").ok());
  net.Stabilize();
  EXPECT_EQ(net.node(1).GetStatus().commit, 6u);  // with node 2
  net.ClearSent();
  for (int i = 0; i < 5; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  auto answers = MessagesTo(net.sent(), MSG_HEARTBEAT_RESP, 1);
  ASSERT_FALSE(answers.empty());
  for (const Message& m : answers) {
    if (m.from() == 3) {
      EXPECT_TRUE(m.reject());
    } else {
      EXPECT_FALSE(m.reject());
    }
  }
  EXPECT_EQ(net.CountSent(MSG_APP, 1, 3), 0u)
      << "the leader sent appends to a follower that paused them";

  // Resumed: the next heartbeat answer frees the pipeline, node 3 catches up.
  net.SetDropFilter(nullptr);
  net.node(3).SetAppendsPaused(false);
  for (int i = 0; i < 10; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.node(3).GetStatus().commit, 6u);
  EXPECT_EQ(net.applied(3).size(), 6u);
}

TEST(ReplicationTest, ReorderedAndDuplicatedAppendsAreHarmless) {
  TestNetwork net(3);
  net.Elect(1);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(net.node(1).Propose("v" + std::to_string(i)).ok());
    net.HandleReady(1);
  }
  std::deque<Message>& q = net.queue();
  std::deque<Message> mixed(q.rbegin(), q.rend());  // reversed
  mixed.insert(mixed.end(), q.begin(), q.end());    // and duplicated
  q = mixed;
  net.Stabilize();
  net.TickAllAndStabilize(3);
  for (uint64_t id : net.ids()) {
    EXPECT_EQ(net.storage(id).LastIndex(), 5u) << "node " << id;
    EXPECT_EQ(net.applied(id).size(), 5u) << "node " << id;
  }
}

// Raft paper §5.4.2: a leader never commits an entry of an earlier term by
// counting replicas, only through an entry of its own term.
TEST(CommitTest, LeaderCommitsOnlyCurrentTermEntriesByCounting) {
  TestNetwork net(3);
  SetLog(net, 1, {1, 2}, 2, 0);
  SetLog(net, 2, {1}, 2, 0);
  SetLog(net, 3, {1}, 2, 0);
  net.SetDropFilter([](const Message& m) { return m.type() == MSG_APP; });
  net.Elect(1);
  ASSERT_EQ(net.node(1).term(), 3u);
  ASSERT_EQ(net.node(1).GetStatus().last_index, 3u);  // the no-op
  Message ack = Msg(MSG_APP_RESP, 2, 1, 3);
  ack.set_index(2);  // node 2 stores entry 2 (term 2): a majority holds it
  ASSERT_TRUE(net.node(1).Step(ack).ok());
  EXPECT_EQ(net.node(1).GetStatus().commit, 0u);
  ack.set_index(3);  // now the term-3 entry is on a majority
  ASSERT_TRUE(net.node(1).Step(ack).ok());
  EXPECT_EQ(net.node(1).GetStatus().commit, 3u);
}

// Raft paper Figure 8, played out with five nodes. An entry of an old term
// stored on a majority (c) is not committed, and indeed a later leader
// overwrites it (d). Plain Raft (no PreVote/CheckQuorum), as in the paper.
TEST(CommitTest, Figure8OldTermEntryOnMajorityIsNotCommitted) {
  TestNetwork net(5, kPlainRaft);
  net.Elect(1);  // term 1, no-op at index 1 everywhere
  // (a) S1 replicates entry 2 only to S2.
  for (uint64_t b : {3, 4, 5}) net.Cut(1, b);
  ASSERT_TRUE(net.node(1).Propose("x").ok());
  net.Stabilize();
  ASSERT_EQ(StorageTerm(net, 2, 2), 1u);
  // (b) S1 crashes; S5 wins term 2 with S3 and S4, and stores its own entry
  // at index 2, which reaches nobody.
  net.Isolate(1);
  net.Restart(1);
  net.SetDropFilter(
      [](const Message& m) { return m.type() == MSG_APP && m.from() == 5; });
  net.Elect(5);
  ASSERT_EQ(net.node(5).term(), 2u);
  ASSERT_EQ(StorageTerm(net, 5, 2), 2u);
  // (c) S5 crashes; S1 comes back, wins term 3 with S2, S3, S4, and gets
  // entry 2 (term 1) onto S3: S1, S2 and S3 now hold it.
  net.Heal();
  net.Isolate(5);
  net.Restart(5);
  net.SetDropFilter([](const Message& m) {
    return m.type() == MSG_APP && m.from() == 1 && m.context() != "fig8";
  });
  for (int i = 0; i < 3 && net.node(1).role() != Role::kLeader; ++i) {
    net.node(1).Campaign();
    net.Stabilize();
  }
  ASSERT_EQ(net.node(1).role(), Role::kLeader);
  ASSERT_EQ(net.node(1).term(), 3u);
  for (uint64_t to : {2, 3}) {
    Message app = Msg(MSG_APP, 1, to, 3);
    app.set_index(1);
    app.set_log_term(1);
    app.set_commit(1);
    *app.add_entries() = MakeEntry(1, 2, "x");
    app.set_context("fig8");
    net.queue().push_back(app);
  }
  net.Stabilize();
  ASSERT_EQ(StorageTerm(net, 3, 2), 1u);
  EXPECT_EQ(net.node(1).GetStatus().progress.at(3).match, 2u);
  EXPECT_EQ(net.node(1).GetStatus().commit, 1u)
      << "entry 2 of term 1 committed by counting replicas";
  // (d) S1 crashes; S5 returns and wins with S2, S3, S4 (its last term 2
  // beats their 1), overwriting entry 2 everywhere.
  net.Heal();
  net.Isolate(1);
  for (int i = 0; i < 3 && net.node(5).role() != Role::kLeader; ++i) {
    net.node(5).Campaign();
    net.Stabilize();
  }
  ASSERT_EQ(net.node(5).role(), Role::kLeader);
  for (uint64_t id : {2, 3, 4, 5}) {
    EXPECT_EQ(StorageTerm(net, id, 2), 2u) << "node " << id;
    ASSERT_EQ(net.applied(id).count(2), 1u) << "node " << id;
    EXPECT_EQ(net.applied(id).at(2).term(), 2u);
  }
  EXPECT_EQ(net.applied(1).count(2), 0u);  // S1 never applied "x"
}

// Raft paper §7: a follower whose next entry the leader has compacted away
// is sent the leader's snapshot, installs it, and then follows normally.
TEST(SnapshotTest, FollowerBehindCompactionCatchesUpBySnapshot) {
  TestNetwork net(3);
  net.Elect(1);
  net.Isolate(3);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(net.node(1).Propose("v" + std::to_string(i)).ok());
  }
  net.Stabilize();
  const uint64_t applied = net.applied_index(1);
  ASSERT_EQ(applied, 11u);
  ConfState cs;
  for (uint64_t id : net.ids()) cs.add_voters(id);
  ASSERT_TRUE(net.storage(1).CreateSnapshot(applied, cs, "state@11").ok());
  ASSERT_TRUE(net.storage(1).Compact(applied).ok());
  ASSERT_TRUE(net.node(1).Propose("after").ok());
  net.Stabilize();
  net.Heal();
  net.ClearSent();
  for (int i = 0; i < 3; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.CountSent(MSG_SNAP, 1, 3), 1u);
  Snapshot snap;
  ASSERT_TRUE(net.storage(3).GetSnapshot(&snap).ok());
  EXPECT_EQ(snap.metadata().index(), 11u);
  EXPECT_EQ(snap.data(), "state@11");
  EXPECT_EQ(net.storage(3).LastIndex(), 12u);
  EXPECT_EQ(net.applied_index(3), 12u);
  EXPECT_EQ(net.applied(3).at(12).data(), "after");
  EXPECT_EQ(net.node(1).GetStatus().progress.at(3).state, "replicate");
  // Replication carries on normally.
  ASSERT_TRUE(net.node(1).Propose("later").ok());
  net.Stabilize();
  EXPECT_EQ(net.applied(3).at(13).data(), "later");
}

// Raft paper §7 with a lossy transport: a lost snapshot is reported to the
// leader (ReportSnapshot(failed)), which probes again after the next
// heartbeat response and sends a new snapshot.
TEST(SnapshotTest, LostSnapshotIsResent) {
  TestNetwork net(3);
  net.Elect(1);
  net.Isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(net.node(1).Propose("v").ok());
  net.Stabilize();
  ConfState cs;
  for (uint64_t id : net.ids()) cs.add_voters(id);
  const uint64_t applied = net.applied_index(1);
  ASSERT_TRUE(net.storage(1).CreateSnapshot(applied, cs, "s").ok());
  ASSERT_TRUE(net.storage(1).Compact(applied).ok());
  net.Heal();
  int dropped = 0;
  net.SetDropFilter([&](const Message& m) {
    return m.type() == MSG_SNAP && dropped++ == 0;  // lose the first one
  });
  net.ClearSent();
  for (int i = 0; i < 4; ++i) {
    net.Tick(1);
    net.Stabilize();
  }
  EXPECT_EQ(net.CountSent(MSG_SNAP, 1, 3), 2u);
  EXPECT_EQ(net.applied_index(3), applied);
  EXPECT_EQ(net.node(1).GetStatus().progress.at(3).state, "replicate");
}

}  // namespace
}  // namespace raftkv::raft
