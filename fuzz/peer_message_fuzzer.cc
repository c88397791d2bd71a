// Fuzz target: what a peer connection can deliver to the Raft core.
//
// Feeds: the bytes of one inbound peer connection -> wire::FrameReader
// (client/frame.h) -> each frame parsed as a raft::Message, with the sender
// pinning of PeerTransport::OnInboundFrame (the first message names the
// sender; a frame that does not parse, or a later message from another
// sender, closes the connection: the rest of the input is ignored) ->
// RawNode::Step on node 1 of a 3-node cluster {1, 2, 3} over a
// raft::MemoryStorage (a new cluster: blank_storage_is_new_cluster, so the
// node takes part at once instead of polling), handling every Ready as the
// server does (persist, drop the messages to peers, Advance, step back the
// acknowledgements addressed to itself) and ticking once after each frame.
//
// What reaches the core, and why not everything: the core trusts its peers
// (Raft assumes non-Byzantine nodes) and CHECKs its invariants, so a
// message that no correct peer could send may legitimately stop the node:
// a heartbeat committing past the follower's log, entries conflicting with
// committed ones (a second leader in one term), a sender claiming to be this
// node, a snapshot with another membership, an append acknowledged beyond
// what was sent. Fuzzing those finds "crashes" that are by design, so this
// target is restricted to the decoding layer: frame, parse, sender pinning
// and the checks in RawNode::Step that refuse bad messages (every input
// reaches them). Past those checks, only the election messages (pre-vote,
// vote, their responses, timeout-now, and the start-up poll and its answer)
// from another node are stepped into the core: every combination of their
// fields is something a correct peer in some state could send, so no CHECK
// may fire on them. The other types
// are parsed and checked but not stepped; their handling is tested by the
// seeded simulator (raftkv-sim), whose peers are correct by construction.
//
// Must never: crash, trip a sanitizer or a CHECK on any input; let
// RawNode::Step accept a local message type, a message addressed to another
// node or one from a node outside the cluster (InvalidArgument, and the
// node's state and Ready are unchanged).
#include <glog/logging.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "raft/memory_storage.h"
#include "raft/raw_node.h"

namespace raftkv::fuzz {
namespace {

constexpr size_t kMaxFrameBytes = 1 << 20;
constexpr uint64_t kSelf = 1;

// The types RawNode::Step must refuse. A value the enum does not know (a
// newer peer's) is not local: the core ignores it after the term check.
bool IsLocal(raft::MessageType type) {
  return type >= raft::MSG_UNKNOWN && type <= raft::MSG_TRANSFER_LEADER;
}

// Whether this target hands a message that passed RawNode::Step's checks
// on to the core (see the file comment).
bool StepsIntoCore(const raft::Message& m) {
  if (m.from() == kSelf) return false;
  switch (m.type()) {
    case raft::MSG_PRE_VOTE:
    case raft::MSG_PRE_VOTE_RESP:
    case raft::MSG_VOTE:
    case raft::MSG_VOTE_RESP:
    case raft::MSG_TIMEOUT_NOW:
    case raft::MSG_POLL:
    case raft::MSG_POLL_RESP:
      return true;
    default:
      return false;
  }
}

class Harness {
 public:
  Harness() {
    raft::Config config;
    config.id = kSelf;
    config.peers = {1, 2, 3};
    config.seed = 1;
    config.max_uncommitted_entries_size = 1 << 20;
    config.blank_storage_is_new_cluster = true;
    auto node = raft::RawNode::Create(config, &storage_);
    CHECK(node.ok()) << node.status().ToString();
    node_ = std::move(node).value();
  }

  void Deliver(const raft::Message& m) {
    // Membership is {1, 2, 3} until a snapshot or a change says otherwise.
    // A sender outside it is heard when it leads (appends, heartbeats,
    // snapshots, a TimeoutNow of our term) or campaigns (RawNode::Step).
    const raft::NodeStatus status = node_->GetStatus();
    const bool member = m.from() == kSelf || status.voters.count(m.from()) ||
                        status.learners.count(m.from());
    const raft::MessageType t = m.type();
    const bool heard_from_anyone =
        t == raft::MSG_APP || t == raft::MSG_HEARTBEAT || t == raft::MSG_SNAP ||
        t == raft::MSG_VOTE || t == raft::MSG_PRE_VOTE ||
        (t == raft::MSG_TIMEOUT_NOW && m.term() == status.term);
    const bool must_reject = IsLocal(t) || m.to() != kSelf ||
                             m.from() == raft::kNone ||
                             (!member && !heard_from_anyone);
    if (must_reject) {
      const raft::NodeStatus before = node_->GetStatus();
      const bool had_ready = node_->HasReady();
      Status s = node_->Step(m);
      CHECK(s.code() == Status::Code::kInvalidArgument)
          << "accepted " << m.ShortDebugString() << ": " << s.ToString();
      const raft::NodeStatus after = node_->GetStatus();
      CHECK_EQ(before.term, after.term);
      CHECK_EQ(before.vote, after.vote);
      CHECK_EQ(before.commit, after.commit);
      CHECK_EQ(before.last_index, after.last_index);
      CHECK(before.role == after.role);
      CHECK_EQ(had_ready, node_->HasReady());
      return;
    }
    if (!StepsIntoCore(m)) return;
    Status s = node_->Step(m);
    CHECK(s.ok()) << s.ToString();
    HandleReady();
  }

  // Time passes; a leader proposes now and then, so that replication has
  // something to do.
  void Tick() {
    node_->Tick();
    if (node_->role() == raft::Role::kLeader && ++ticks_as_leader_ % 3 == 0) {
      (void)node_->Propose("x");
    }
    HandleReady();
  }

 private:
  // The synchronous Ready contract (raft/raw_node.h).
  void HandleReady() {
    while (node_->HasReady()) {
      raft::Ready rd = node_->GetReady();
      if (rd.snapshot) storage_.ApplySnapshot(*rd.snapshot);
      storage_.Append(rd.entries);
      if (rd.hard_state) storage_.SetHardState(*rd.hard_state);
      std::vector<raft::Message> to_self;
      for (const auto* msgs : {&rd.messages, &rd.messages_after_persist}) {
        for (const raft::Message& out : *msgs) {
          CHECK_EQ(out.from(), kSelf);
          if (out.to() == kSelf) to_self.push_back(out);
        }
      }
      for (const raft::Message& out : rd.messages) {
        CHECK_NE(out.to(), kSelf) << "only acknowledgements wait for the disk";
      }
      node_->Advance(rd);
      for (const raft::Message& m : to_self) {
        Status s = node_->Step(m);
        CHECK(s.ok()) << s.ToString();
      }
    }
  }

  raft::MemoryStorage storage_;
  std::unique_ptr<raft::RawNode> node_;
  uint64_t ticks_as_leader_ = 0;
};

}  // namespace
}  // namespace raftkv::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  raftkv::fuzz::InitLogging();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace raftkv;
  fuzz::Harness harness;
  uint64_t sender = raft::kNone;
  for (const std::string& frame :
       fuzz::SplitFrames(data, size, fuzz::kMaxFrameBytes)) {
    raft::Message message;
    if (!message.ParseFromString(frame)) break;  // connection closed
    if (sender == raft::kNone) {
      sender = message.from();
    } else if (message.from() != sender) {
      break;  // "sender id changed": connection closed
    }
    harness.Deliver(message);
    harness.Tick();
  }
  return 0;
}
