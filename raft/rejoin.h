// Rejoining after a lost disk: how a node that starts with blank storage
// finds out whether it is bootstrapping a new cluster or replacing a lost
// disk, and the rule that keeps a node which lost its disk from breaking
// safety (after Alagappan et al., "Protocol-Aware Recovery for
// Consensus-Based Storage", FAST 2018, and the recovery protocol of
// Viewstamped Replication Revisited).
//
// The danger. A node that lost its storage has forgotten the votes it cast
// and the entries it acknowledged. If it voted at once it could vote twice
// in one term, or elect a leader that lacks an entry committed with its
// help; if the leader kept counting its old acknowledgements, an entry could
// "commit" on a minority.
//
// The protocol, in three steps:
//  1. Poll. A node whose storage is blank (never initialized: no term, vote,
//     entries or snapshot) sends MSG_POLL to every peer and does nothing
//     else until the poll decides (and persists HardState.initialized):
//       - new cluster: no peer has any state, and the blank peers plus this
//         node are a majority. (If the cluster had history, a majority had
//         state; blank replies from a majority mean a majority lost its
//         disks, which no protocol survives.)
//       - rejoin: `RejoinPollQuorum(n)` peers that are neither blank nor
//         rejoining themselves answered. Every majority that elected a
//         leader before the poll shares a node with them, so the highest
//         term T0 they report is at least the term of every election this
//         node may have voted in and that completed. The node adopts T0 and
//         a random non-zero incarnation, both persisted (HardState).
//  2. Catch up. While rejoining the node never votes, never campaigns and
//     tags its append and heartbeat responses with its incarnation. A
//     leader that sees a new incarnation forgets everything it knew of the
//     node (match 0, probe), leaves it out of every quorum that vouches for
//     data or leadership (commit, read index, leader transfer; check quorum
//     still counts its contact) and appends an ENTRY_REJOIN
//     record naming (node, incarnation). The record is created after the
//     poll, so no log written before the disk was lost holds it, and it
//     commits on a majority that excludes the rejoining node.
//  3. Rejoin. When the node's commit index covers that record it holds every
//     committed entry, clears its rejoining mark (persisted) and votes again
//     (it keeps its incarnation: a later leader whose first answer from it says
//     it has rejoined tracks that incarnation as is); the leader counts it
//     again once it has acknowledged the record.
//
// Why the old votes cannot hurt. Say the old incarnation voted for X in term
// t and the new one votes for Z in t. The new node votes only in terms at or
// above the term T of the leader whose record it saw (T >= T0). If t == T,
// that leader won t with a majority that excludes this node, so neither X
// nor Z can also win t. If t > T, X's log was fixed before the disk was lost
// (its candidacy predates the poll), so its last entry is older than the
// record: its term is at most T (an election of a higher term before the
// poll would have raised T0 above T), and if it is T, X received it from the
// same leader before the record was appended. Every node of the majority M
// that committed the record (this node excluded) therefore holds a more
// up-to-date log than X and refuses it (§5.4.1), and a node that voted for X
// first can no longer accept the record's term, so it is not in M. X can
// collect votes only outside M: fewer than a majority.
//
// Assumptions: fewer than a majority of nodes lose their disks at once (a
// node counts as lost until it rejoined), and a node's peers are the same
// ids it had. Documented with the server in docs/server.md.
//
// Pure values and functions; no I/O, not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raft/raft.pb.h"
#include "raft/storage.h"

namespace raftkv::raft {

// Answers from peers that are neither blank nor rejoining needed before a
// blank node of an `voters`-node cluster may rejoin: enough to meet every
// majority in at least one node other than itself.
size_t RejoinPollQuorum(size_t voters);

// Whether `hard_state` and `storage` hold nothing at all: a node that has
// never taken part in any cluster, or one that lost its disk.
bool IsBlank(const HardState& hard_state, const Storage& storage);

// Encodes and decodes the payload of an ENTRY_REJOIN entry.
Entry MakeRejoinEntry(uint64_t node, uint64_t incarnation);
bool IsRejoinEntryFor(const Entry& entry, uint64_t node, uint64_t incarnation);

// The tally of one node's start-up poll (step 1 above).
class StartupPoll {
 public:
  enum class Outcome { kPending, kNewCluster, kRejoin };

  StartupPoll(std::set<uint64_t> voters, uint64_t self, std::string nonce);

  // Records `from`'s answer (a later answer replaces an earlier one: a blank
  // peer may have joined a new cluster since) and returns the outcome so
  // far. A blank peer reports term 0 and index 0. Once decided, the outcome
  // no longer changes.
  Outcome Record(uint64_t from, uint64_t term, uint64_t last_index,
                 bool rejoining);
  Outcome outcome() const { return outcome_; }
  // The highest term reported by any peer.
  uint64_t max_term() const { return max_term_; }
  const std::string& nonce() const { return nonce_; }
  // Peers to ask (again): those that have not answered, or whose last
  // answer was blank or rejoining.
  std::vector<uint64_t> PeersToAsk() const;
  std::string Describe() const;

 private:
  enum class PeerState { kBlank, kRejoining, kNormal };
  Outcome Decide() const;

  const std::set<uint64_t> voters_;
  const uint64_t self_;
  const std::string nonce_;
  std::map<uint64_t, PeerState> answers_;
  uint64_t max_term_ = 0;
  Outcome outcome_ = Outcome::kPending;
};

}  // namespace raftkv::raft
