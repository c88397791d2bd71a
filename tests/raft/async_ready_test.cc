// Asynchronous Ready handling (raw_node.h): what may leave before the disk
// write and what must wait for it, the leader counting its own entries only
// once durable, committed entries handed out only once durable locally, and
// hand-off tracking (nothing handed out twice; replaced in-flight entries
// handed out again).
#include <gtest/gtest.h>

#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "tests/raft/test_network.h"

namespace raftkv::raft {
namespace {

using rafttest::CountMessages;
using rafttest::MakeEntries;
using rafttest::Msg;
using rafttest::TestConfig;

// One RawNode over a MemoryStorage, driven by hand.
struct Lone {
  explicit Lone(std::vector<uint64_t> peers, uint64_t id = 1) {
    Config c = TestConfig(id, std::move(peers));
    c.pre_vote = false;
    node = std::move(RawNode::Create(c, &storage)).value();
  }
  // Persists `rd` as the application's writer would.
  void Persist(const Ready& rd) {
    if (rd.snapshot) storage.ApplySnapshot(*rd.snapshot);
    storage.Append(rd.entries);
    if (rd.hard_state) storage.SetHardState(*rd.hard_state);
    node->OnPersisted(rd.persist_mark());
  }
  // Steps the acknowledgements addressed to the node itself.
  void StepOwn(const Ready& rd) {
    for (const Message& m : rd.messages_after_persist) {
      if (m.to() == node->id()) {
        ASSERT_TRUE(node->Step(m).ok());
      }
    }
  }
  MemoryStorage storage;
  std::unique_ptr<RawNode> node;
};

TEST(AsyncReadyTest, ALeaderCountsItsOwnEntriesOnlyOnceDurable) {
  Lone n({1});
  n.node->Campaign();
  // The self-vote comes back after the term and vote are durable.
  Ready rd = n.node->GetReady();
  n.node->Accept(rd);
  EXPECT_EQ(n.node->role(), Role::kCandidate);
  n.Persist(rd);
  n.StepOwn(rd);
  ASSERT_EQ(n.node->role(), Role::kLeader);
  rd = n.node->GetReady();  // the leader's no-op
  ASSERT_EQ(rd.entries.size(), 1u);
  n.node->Accept(rd);
  ASSERT_TRUE(n.node->Propose("a").ok());
  // Written but not durable: nothing commits, even in a one-node cluster.
  Ready rd2 = n.node->GetReady();
  n.node->Accept(rd2);
  EXPECT_EQ(n.node->GetStatus().commit, 0u);
  n.Persist(rd);
  n.StepOwn(rd);
  EXPECT_EQ(n.node->GetStatus().commit, 1u);
  n.Persist(rd2);
  n.StepOwn(rd2);
  EXPECT_EQ(n.node->GetStatus().commit, 2u);
}

TEST(AsyncReadyTest, AcknowledgementsWaitForTheDiskAndRequestsDoNot) {
  Lone n({1, 2, 3}, 2);
  Message app = Msg(MSG_APP, 1, 2, 1);
  for (Entry& e : MakeEntries(1, {1, 1})) *app.add_entries() = e;
  ASSERT_TRUE(n.node->Step(app).ok());
  Ready rd = n.node->GetReady();
  EXPECT_EQ(CountMessages(rd.messages, MSG_APP_RESP), 0u);
  EXPECT_EQ(CountMessages(rd.messages_after_persist, MSG_APP_RESP), 1u);
  n.node->Accept(rd);
  // A granted vote waits too (and is synced).
  Lone v({1, 2, 3}, 2);
  Message vote = Msg(MSG_VOTE, 3, 2, 2);
  ASSERT_TRUE(v.node->Step(vote).ok());
  rd = v.node->GetReady();
  EXPECT_EQ(CountMessages(rd.messages, MSG_VOTE_RESP), 0u);
  ASSERT_EQ(CountMessages(rd.messages_after_persist, MSG_VOTE_RESP, 3), 1u);
  EXPECT_FALSE(rd.messages_after_persist[0].reject());
  EXPECT_TRUE(rd.must_sync);
  EXPECT_EQ(rd.hard_state->vote(), 3u);
  // A candidate's own vote requests go out at once; its self-vote waits.
  Lone c({1, 2, 3});
  c.node->Campaign();
  rd = c.node->GetReady();
  EXPECT_EQ(CountMessages(rd.messages, MSG_VOTE), 2u);
  EXPECT_EQ(CountMessages(rd.messages_after_persist, MSG_VOTE_RESP, 1), 1u);
}

TEST(AsyncReadyTest, CommittedEntriesWaitUntilTheyAreDurableLocally) {
  Lone n({1, 2, 3}, 2);
  Message app = Msg(MSG_APP, 1, 2, 1);
  for (Entry& e : MakeEntries(1, {1, 1, 1})) *app.add_entries() = e;
  app.set_commit(3);  // the leader already has them committed
  ASSERT_TRUE(n.node->Step(app).ok());
  Ready rd = n.node->GetReady();
  EXPECT_EQ(rd.entries.size(), 3u);
  EXPECT_TRUE(rd.committed_entries.empty());
  EXPECT_EQ(rd.hard_state->commit(), 3u);
  n.node->Accept(rd);
  EXPECT_FALSE(n.node->HasReady());
  n.Persist(rd);
  ASSERT_TRUE(n.node->HasReady());
  Ready next = n.node->GetReady();
  EXPECT_EQ(next.committed_entries.size(), 3u);
  EXPECT_TRUE(next.entries.empty());
  n.node->Accept(next);
  n.node->OnApplied(3);
  EXPECT_EQ(n.node->GetStatus().applied, 3u);
  // A late report of an older applied index changes nothing.
  n.node->OnApplied(1);
  EXPECT_EQ(n.node->GetStatus().applied, 3u);
}

TEST(AsyncReadyTest, AcceptedEntriesAreNotHandedOutAgain) {
  Lone n({1, 2, 3}, 2);
  Message app = Msg(MSG_APP, 1, 2, 1);
  for (Entry& e : MakeEntries(1, {1, 1})) *app.add_entries() = e;
  ASSERT_TRUE(n.node->Step(app).ok());
  Ready rd = n.node->GetReady();
  ASSERT_EQ(rd.entries.size(), 2u);
  n.node->Accept(rd);
  Message more = Msg(MSG_APP, 1, 2, 1);
  more.set_index(2);
  more.set_log_term(1);
  *more.add_entries() = MakeEntries(3, {1})[0];
  ASSERT_TRUE(n.node->Step(more).ok());
  Ready rd2 = n.node->GetReady();
  ASSERT_EQ(rd2.entries.size(), 1u);
  EXPECT_EQ(rd2.entries[0].index(), 3u);
  n.node->Accept(rd2);
  n.Persist(rd);
  n.Persist(rd2);
  EXPECT_EQ(n.node->GetStatus().last_index, 3u);
}

TEST(AsyncReadyTest, ReplacedInFlightEntriesAreHandedOutAgain) {
  Lone n({1, 2, 3}, 2);
  Message app = Msg(MSG_APP, 1, 2, 1);
  for (Entry& e : MakeEntries(1, {1, 1, 1})) *app.add_entries() = e;
  ASSERT_TRUE(n.node->Step(app).ok());
  Ready rd = n.node->GetReady();
  n.node->Accept(rd);  // entries 1..3 of term 1 in flight
  // A new leader of term 2 overwrites entries 2 and 3 before they landed.
  Message app2 = Msg(MSG_APP, 3, 2, 2);
  app2.set_index(1);
  app2.set_log_term(1);
  for (Entry& e : MakeEntries(2, {2, 2})) *app2.add_entries() = e;
  ASSERT_TRUE(n.node->Step(app2).ok());
  Ready rd2 = n.node->GetReady();
  ASSERT_EQ(rd2.entries.size(), 2u);
  EXPECT_EQ(rd2.entries[0].index(), 2u);
  EXPECT_EQ(rd2.entries[0].term(), 2u);
  n.node->Accept(rd2);
  // The old write lands first (in order): it must not mark the new entries
  // durable.
  n.Persist(rd);
  uint64_t term = 0;
  ASSERT_TRUE(n.storage.Term(3, &term).ok());
  EXPECT_EQ(term, 1u);
  n.Persist(rd2);
  ASSERT_TRUE(n.storage.Term(3, &term).ok());
  EXPECT_EQ(term, 2u);
  EXPECT_FALSE(n.node->HasReady());
}

}  // namespace
}  // namespace raftkv::raft
