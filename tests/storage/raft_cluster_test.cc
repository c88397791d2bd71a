// A seeded simulation of a three-node Raft cluster running on this storage
// (RocksDB on tmpfs when /dev/shm exists): the real core (RawNode), one
// Engine + RaftLog + KvStateMachine per node, handled by the Ready
// contract. Messages are dropped, delayed and reordered; nodes crash (their
// objects are destroyed) and restart from their data dirs
// (RecoverSnapshotState, Config::applied); logs are compacted behind
// snapshot points, so restarted nodes catch up by a snapshot streamed from
// the leader's state machine into SST files and installed
// (storage/snapshot*.h), as raftkvd does. Clients write with and without
// sessions and retry. After a healing phase every node must hold the same
// state machine image, byte for byte, with every acknowledged write in it,
// and no session write applied twice. Same seed, same run. Must never use
// the wall clock or touch anything outside its temp dir.
#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "raft/raw_node.h"
#include "storage/kv_state_machine.h"
#include "storage/raft_log.h"
#include "storage/snapshot.h"
#include "storage/snapshot_install.h"
#include "storage/snapshot_stager.h"
#include "tests/storage/test_util.h"

namespace raftkv::storage {
namespace {

constexpr uint64_t kNodes = 3;

class Cluster {
 public:
  Cluster(uint64_t seed, std::string base)
      : seed_(seed), rng_(seed), base_(std::move(base)) {
    for (uint64_t id = 1; id <= kNodes; ++id) Start(id);
  }

  struct Node {
    std::unique_ptr<Engine> engine;
    std::unique_ptr<RaftLog> log;
    std::unique_ptr<KvStateMachine> sm;
    std::unique_ptr<raft::RawNode> raw;
    // The image its snapshot metadata promises (a view of the state
    // machine at that index), as raftkvd's snapshot points.
    std::shared_ptr<const SnapshotSource> point;
    uint64_t restarts = 0;
  };

  std::string Dir(uint64_t id) const {
    return base_ + "/n" + std::to_string(id);
  }

  void Start(uint64_t id) {
    Node& n = nodes_[id];
    EngineOptions o;
    o.memory_budget_bytes = 8 << 20;
    o.write_buffer_bytes = 256 << 10;
    n.engine = Must(Engine::Open(Dir(id), o));
    n.log = Must(RaftLog::Open(n.engine.get()));
    n.sm = Must(KvStateMachine::Open(n.engine.get()));
    Check(RecoverSnapshotState(Dir(id), n.log.get(), n.sm.get()));
    if (n.sm->applied_index() > 0) MakePoint(id);
    raft::HardState hs;
    raft::ConfState cs;
    Check(n.log->InitialState(&hs, &cs));
    if (cs.voters_size() == 0) {
      for (uint64_t p = 1; p <= kNodes; ++p) cs.add_voters(p);
      Check(n.log->SetConfState(cs));
    }
    raft::Config c;
    c.id = id;
    for (uint64_t p = 1; p <= kNodes; ++p) c.peers.push_back(p);
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    c.seed = seed_ * 100 + id * 10 + n.restarts;
    c.applied = n.sm->applied_index();
    c.max_size_per_msg = 4 << 10;
    n.raw = Must(raft::RawNode::Create(c, n.log.get()));
  }

  void Crash(uint64_t id) {
    Node& n = nodes_[id];
    n.raw.reset();
    n.point.reset();
    n.sm.reset();
    n.log.reset();
    n.engine.reset();
    ++n.restarts;
  }

  bool Up(uint64_t id) const { return nodes_.at(id).raw != nullptr; }

  // One Ready cycle per the RawNode contract.
  void HandleReadys(uint64_t id) {
    Node& n = nodes_[id];
    while (n.raw->HasReady()) {
      raft::Ready rd = n.raw->GetReady();
      if (rd.snapshot) {
        const raft::SnapshotMetadata& meta = rd.snapshot->metadata();
        Check(InstallStagedSnapshot(
            StagingDir(Dir(id), meta.term(), meta.index()), meta, n.log.get(),
            n.sm.get()));
        ++snapshots_installed_;
      }
      Check(n.log->Save(rd.hard_state ? &*rd.hard_state : nullptr, nullptr,
                        rd.entries, rd.must_sync));
      for (raft::Message& m : rd.messages) queue_.push_back(std::move(m));
      std::vector<raft::Message> own;
      for (raft::Message& m : rd.messages_after_persist) {
        if (m.to() == id) {
          own.push_back(std::move(m));
        } else {
          queue_.push_back(std::move(m));
        }
      }
      if (!rd.committed_entries.empty()) {
        std::vector<kv::CommandResult> results;
        Check(n.sm->ApplyBatch(rd.committed_entries, &results));
        for (size_t i = 0; i < results.size(); ++i) {
          OnApplied(id, rd.committed_entries[i], results[i]);
        }
      }
      n.raw->Advance(rd);
      for (const raft::Message& m : own) Check(n.raw->Step(m));
    }
  }

  void Deliver(bool faulty) {
    std::deque<raft::Message> now;
    now.swap(queue_);
    for (raft::Message& m : now) {
      const uint64_t roll = rng_() % 100;
      bool drop = !Up(m.to()) || (faulty && roll < 5);
      if (faulty && !drop && roll < 15) {  // delayed: later, out of order
        queue_.push_back(std::move(m));
        continue;
      }
      if (m.type() == raft::MSG_SNAP && !drop) drop = !Transfer(m);
      if (m.type() == raft::MSG_SNAP && Up(m.from())) {
        nodes_[m.from()].raw->ReportSnapshot(m.to(), drop);
      }
      if (drop) continue;
      Status s = nodes_[m.to()].raw->Step(m);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }

  uint64_t Leader() const {
    for (const auto& [id, n] : nodes_) {
      if (n.raw && n.raw->role() == raft::Role::kLeader) return id;
    }
    return 0;
  }

  void Propose(uint64_t leader) {
    kv::Command c;
    c.set_proposed_at_ms(now_ms_);
    Pending p;
    const uint64_t kind = rng_() % 10;
    if (client_id_ == 0) {
      if (registering_ && now_ms_ < register_deadline_ms_) return;
      c.mutable_register_client();
      registering_ = true;
      register_deadline_ms_ = now_ms_ + 5000;  // then try again
      p.kind = Pending::kRegister;
    } else if (kind < 6 && !outstanding_.empty() && rng_() % 2 == 0) {
      // Retry a sequence the client has no answer for (lost proposal or
      // lost response).
      auto it = outstanding_.begin();
      std::advance(it, rng_() % outstanding_.size());
      p.kind = Pending::kSession;
      p.seq = *it;
    } else if (kind < 6) {
      p.kind = Pending::kSession;
      p.seq = next_seq_++;
    } else {
      p.kind = Pending::kPlain;
      p.key = "p" + std::to_string(next_plain_++);
    }
    if (p.kind == Pending::kSession) {
      p.key = "s" + std::to_string(p.seq);
      outstanding_.insert(p.seq);
      c.set_client_id(client_id_);
      c.set_sequence(p.seq);
      c.set_first_outstanding(FirstOutstanding());
      c.mutable_put()->set_key(p.key);
      c.mutable_put()->set_value("v" + std::to_string(p.seq));
    } else if (p.kind == Pending::kPlain) {
      c.mutable_put()->set_key(p.key);
      c.mutable_put()->set_value("plain");
    }
    auto index = nodes_[leader].raw->Propose(c.SerializeAsString());
    if (!index.ok()) {
      if (p.kind == Pending::kRegister) registering_ = false;
      return;
    }
    p.term = nodes_[leader].raw->term();
    pending_[{leader, *index}] = p;
  }

  // A snapshot point at the applied index; the log records its metadata.
  void MakePoint(uint64_t id) {
    Node& n = nodes_[id];
    n.point = Must(SnapshotSource::Create(*n.sm));
    if (n.point->index() > n.log->snapshot_index()) {
      raft::ConfState cs;
      for (uint64_t p = 1; p <= kNodes; ++p) cs.add_voters(p);
      Check(n.log->CreateSnapshot(n.point->index(), cs, ""));
    }
  }

  void MaybeSnapshot(uint64_t id) {
    Node& n = nodes_[id];
    const uint64_t applied = n.sm->applied_index();
    if (applied < n.log->snapshot_index() + 40) return;
    MakePoint(id);
    if (applied > 5) Check(n.log->Compact(applied - 5));
  }

  // Streams the sender's image for `m` into the receiver's staging dir, in
  // small chunks; false if the sender has no image at that index.
  bool Transfer(const raft::Message& m) {
    if (!Up(m.from())) return false;
    const auto& point = nodes_[m.from()].point;
    const raft::SnapshotMetadata& meta = m.snapshot().metadata();
    if (point == nullptr || point->index() != meta.index()) return false;
    auto stager = Must(SnapshotStager::Create(
        StagingDir(Dir(m.to()), meta.term(), meta.index()), "test transfer"));
    Check(point->Stream(
        256, [&](std::string_view chunk) { return stager->Add(chunk); }));
    Check(stager->Finish());
    return true;
  }

  // The state machine's image as a stream, for comparing nodes.
  std::string Image(uint64_t id) {
    std::string image;
    auto point = Must(SnapshotSource::Create(*nodes_[id].sm));
    Check(point->Stream(1 << 20, [&](std::string_view chunk) {
      image.append(chunk);
      return Status::OK();
    }));
    return image;
  }

  // Runs `steps` steps; faults on or off.
  void Run(int steps, bool faulty) {
    for (int step = 0; step < steps; ++step) {
      now_ms_ += 10;
      for (uint64_t id = 1; id <= kNodes; ++id) {
        if (Up(id)) nodes_[id].raw->Tick();
      }
      Deliver(faulty);
      if (::testing::Test::HasFatalFailure()) return;
      for (uint64_t id = 1; id <= kNodes; ++id) {
        if (Up(id)) HandleReadys(id);
        if (::testing::Test::HasFatalFailure()) return;
      }
      const uint64_t leader = Leader();
      if (faulty && leader != 0 && rng_() % 3 == 0) Propose(leader);
      if (step % 25 == 0) {
        for (uint64_t id = 1; id <= kNodes; ++id) {
          if (Up(id)) MaybeSnapshot(id);
        }
      }
      if (faulty && rng_() % 200 == 0) {  // crash one node (keep a quorum)
        const uint64_t id = 1 + rng_() % kNodes;
        if (Up(id) && UpCount() == kNodes) {
          Crash(id);
          ++crashes_;
        }
      }
      for (uint64_t id = 1; id <= kNodes; ++id) {
        if (!Up(id) && (!faulty || rng_() % 60 == 0)) Start(id);
      }
    }
  }

  void CheckConverged() {
    const uint64_t leader = Leader();
    ASSERT_NE(leader, 0u) << "no leader after healing";
    const uint64_t last = nodes_[leader].log->LastIndex();
    std::string image;
    for (uint64_t id = 1; id <= kNodes; ++id) {
      KvStateMachine& sm = *nodes_[id].sm;
      ASSERT_EQ(sm.applied_index(), last) << "node " << id;
      const std::string data = Image(id);
      if (id == 1) {
        image = data;
      } else {
        ASSERT_EQ(data, image) << "node " << id << " diverged";
      }
    }
    KvStateMachine& sm = *nodes_[leader].sm;
    for (const std::string& key : acked_keys_) {
      kv::RangeRequest r;
      r.set_key(key);
      auto got = sm.Range(r);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(got->kvs_size(), 1)
          << "acknowledged write of " << key << " lost";
      if (key[0] == 's') {
        EXPECT_EQ(got->kvs(0).version(), 1) << key << " applied twice";
      }
    }
  }

  std::string Summary() const {
    return "seed " + std::to_string(seed_) + ": " +
           std::to_string(acked_keys_.size()) + " acknowledged writes, " +
           std::to_string(retries_answered_) +
           " retries answered from the "
           "session table, " +
           std::to_string(crashes_) + " crashes, " +
           std::to_string(snapshots_installed_) + " snapshots installed";
  }

 private:
  struct Pending {
    enum Kind { kRegister, kSession, kPlain } kind = kPlain;
    uint64_t term = 0;
    uint64_t seq = 0;
    std::string key;
  };

  template <typename T>
  T Must(StatusOr<T> v) {
    CHECK(v.ok()) << v.status().ToString();
    return std::move(v).value();
  }
  void Check(const Status& s) { CHECK(s.ok()) << s.ToString(); }

  size_t UpCount() const {
    size_t n = 0;
    for (const auto& [id, node] : nodes_) n += node.raw != nullptr;
    return n;
  }

  uint64_t FirstOutstanding() const {
    return outstanding_.empty() ? next_seq_ : *outstanding_.begin();
  }

  void OnApplied(uint64_t id, const raft::Entry& e,
                 const kv::CommandResult& result) {
    auto it = pending_.find({id, e.index()});
    if (it == pending_.end()) return;
    const Pending p = it->second;
    pending_.erase(it);
    if (p.kind == Pending::kRegister) registering_ = false;
    if (p.term != e.term()) return;  // another leader's entry: not ours
    ASSERT_EQ(result.error(), kv::CommandResult::OK) << result.error_message();
    switch (p.kind) {
      case Pending::kRegister:
        client_id_ = result.register_client().client_id();
        break;
      case Pending::kSession: {
        const int64_t revision = result.put().header().revision();
        auto [first, inserted] = applied_revision_.emplace(p.seq, revision);
        if (!inserted) {
          ASSERT_EQ(revision, first->second)
              << "sequence " << p.seq << " applied twice";
          ++retries_answered_;
        }
        if (rng_() % 4 == 0) break;  // the response is lost: retry later
        outstanding_.erase(p.seq);
        acked_keys_.insert(p.key);
        break;
      }
      case Pending::kPlain:
        acked_keys_.insert(p.key);
        break;
    }
  }

  const uint64_t seed_;
  std::mt19937_64 rng_;
  const std::string base_;
  std::map<uint64_t, Node> nodes_;
  std::deque<raft::Message> queue_;
  uint64_t now_ms_ = 1'000'000;
  std::map<std::pair<uint64_t, uint64_t>, Pending> pending_;
  uint64_t client_id_ = 0;
  bool registering_ = false;
  uint64_t next_seq_ = 1;
  uint64_t next_plain_ = 1;
  std::set<uint64_t> outstanding_;
  std::map<uint64_t, int64_t> applied_revision_;  // seq -> revision
  uint64_t register_deadline_ms_ = 0;
  std::set<std::string> acked_keys_;
  uint64_t retries_answered_ = 0;
  uint64_t crashes_ = 0;
  uint64_t snapshots_installed_ = 0;
};

std::string TmpfsOrTmp() {
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec) &&
      access("/dev/shm", W_OK) == 0) {
    return "/dev/shm";
  }
  const char* t = getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

class StorageRaftClusterTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(StorageRaftClusterTest, ConvergesWithEveryAcknowledgedWrite) {
  testing::TempDir tmp(TmpfsOrTmp());
  Cluster cluster(GetParam(), tmp.path());
  cluster.Run(4000, /*faulty=*/true);
  ASSERT_FALSE(HasFatalFailure());
  cluster.Run(400, /*faulty=*/false);
  ASSERT_FALSE(HasFatalFailure());
  cluster.CheckConverged();
  std::printf("%s\n", cluster.Summary().c_str());
}

INSTANTIATE_TEST_SUITE_P(Seeds, StorageRaftClusterTest,
                         ::testing::Values(1, 2, 3, 4, 5));

}  // namespace
}  // namespace raftkv::storage
