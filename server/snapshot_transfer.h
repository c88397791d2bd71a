// SnapshotTransfers: moving snapshot images between raftkvd nodes on their
// own TCP connections, apart from the Raft messages (so heartbeats and
// appends never wait behind a snapshot), each on its own thread at a lower
// CPU priority than the raft loop.
//
// Sender (leader): for a MSG_SNAP the core emitted, it dials the follower's
// peer address, sends a preamble frame (a zero byte, "RKVSNAP2", the
// cluster id in 8 bytes, then the MSG_SNAP itself, which carries only
// metadata; a receiver of another cluster refuses it), then the image as chunk
// frames streamed from a SnapshotSource (storage/snapshot.h), and waits for
// the follower's one-byte verdict. TCP's flow control paces it; memory stays
// at one chunk. `done(peer, ok)` reports the outcome to the loop.
//
// Receiver (follower): PeerTransport hands over a connection whose first
// frame is a preamble. Chunks are checked and staged into SST files in a
// staging directory (storage/snapshot_stager.h); once the trailer checks
// out and the files are durable, `staged(message, dir)` hands the MSG_SNAP
// and the directory to the loop, which steps the message into the core and,
// when the core takes the snapshot, has the log writer install it.
//
// An interrupted or damaged transfer is abandoned cleanly on both sides:
// the staging directory is removed, the sender reports failure and the core
// tries again later, from scratch. A transfer that makes no progress for
// `io_timeout` is abandoned.
//
// Backups (raftkvctl snapshot save) stream the same image over a client's
// connection that the node took over, on a thread of their own.
//
// TLS: with options.tls a sender dials with the peer certificate and checks
// the receiver's (mutual TLS, as PeerTransport); a connection taken over
// from the loop (Receive, SendBackup) keeps its TLS session (tls.h,
// TakeTlsSession).
//
// Thread-safety: Send/Receive/SendBackup/Stop are called on the loop's thread;
// the callbacks run on transfer threads and must only post to the loop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "raft/raft.pb.h"
#include "server/server_config.h"
#include "util/status.h"

namespace raftkv::storage {
class SnapshotSource;
}  // namespace raftkv::storage

namespace raftkv::wire {
class ReloadingTlsContext;
class TlsContext;
class TlsSession;
}  // namespace raftkv::wire

namespace raftkv::server {

struct SnapshotTransferOptions {
  // This node's cluster (cluster_identity.h): a preamble naming another is
  // refused.
  uint64_t cluster_id = 0;
  std::chrono::milliseconds io_timeout{10000};
  size_t chunk_bytes = 1 << 20;
  // Frames larger than this end the transfer (a chunk is about
  // chunk_bytes, or one record over it).
  size_t max_frame_bytes = 64 << 20;
  // TLS between peers (files.enabled(): on), as PeerTransportOptions::tls.
  TlsFiles tls;
  // TEST ONLY (raftkvd --testonly_snapshot_fault): the first transfer this
  // node sends flips a byte of chunk `corrupt_chunk`, or closes its
  // connection after chunk `cut_after_chunk` (-1: no fault).
  int corrupt_chunk = -1;
  int cut_after_chunk = -1;
  // TEST ONLY: every transfer sleeps this long before each chunk.
  std::chrono::milliseconds chunk_delay{0};
  // TEST ONLY: the first transfer this node sends is streamed a second time
  // on another connection before the first is acknowledged.
  bool send_twice = false;
};

// True if a peer connection's first frame payload begins a snapshot
// transfer (a Raft message never starts with a zero byte).
bool IsSnapshotPreamble(const char* payload, size_t size);

class SnapshotTransfers {
 public:
  using Done = std::function<void(uint64_t peer, bool ok)>;
  using Staged =
      std::function<void(raft::Message message, std::string staging_dir)>;

  // `data_dir`: where staging directories go; `self_ip`: the local address
  // to dial from ("" for any).
  SnapshotTransfers(std::string data_dir, std::string self_ip,
                    SnapshotTransferOptions options, Done done, Staged staged);
  ~SnapshotTransfers();
  SnapshotTransfers(const SnapshotTransfers&) = delete;
  SnapshotTransfers& operator=(const SnapshotTransfers&) = delete;

  // Streams `source` to the peer at host:port `address`; `message` is the
  // MSG_SNAP to deliver with it. False (and no callback) if a transfer to
  // that peer is already under way.
  bool Send(const raft::Message& message,
            std::shared_ptr<const storage::SnapshotSource> source,
            const std::string& address);
  // Takes over a connected socket whose first frame (already read) is
  // `preamble` and from which `buffered` bytes were read beyond it; `fd` is
  // closed when the transfer ends.
  void Receive(int fd, std::string preamble, std::string buffered,
               std::string remote);
  // Takes over a client connection asking for a backup: writes
  // `first_frame` (the response), then the image of `source` as chunk
  // frames, and closes `fd`. With a null source, only the response (an
  // error) is written.
  void SendBackup(int fd, std::string first_frame,
                  std::shared_ptr<const storage::SnapshotSource> source);
  // Ends every transfer (closing its connection) and joins the threads.
  void Stop();
  // A node that joined with no cluster id learned it (cluster_identity.h).
  void set_cluster_id(uint64_t cluster_id) { cluster_id_ = cluster_id; }

  size_t active() const;

 private:
  struct Transfer {
    std::thread thread;
    std::atomic<int> fd{-1};
    std::atomic<bool> finished{false};
    // The TLS session of a connection taken over from the loop (null:
    // plain, or a sender's own connection).
    std::unique_ptr<wire::TlsSession> tls;
  };
  // The context to dial peers with (null: plain TCP).
  StatusOr<std::shared_ptr<const wire::TlsContext>> DialContext();
  void RunSend(Transfer* t, uint64_t peer, raft::Message message,
               std::shared_ptr<const storage::SnapshotSource> source,
               std::string address);
  // Dials `address` and streams the preamble and every chunk (the verdict
  // is left unread); *fd_out is the connection, or -1 if none was made.
  Status StreamTo(Transfer* t, const raft::Message& message,
                  const storage::SnapshotSource& source,
                  const std::string& address, bool faulty,
                  const std::string& what, int* fd_out,
                  std::unique_ptr<wire::TlsSession>* tls_out, uint64_t* bytes,
                  uint64_t* chunks);
  Status ReadVerdict(int fd, wire::TlsSession* tls, const std::string& what);
  void RunReceive(Transfer* t, uint64_t serial, std::string preamble,
                  std::string pending, std::string remote);
  void RunBackup(Transfer* t, std::string first_frame,
                 std::shared_ptr<const storage::SnapshotSource> source);
  // Starts `run` on a thread of its own for a transfer on `fd` (-1: none
  // yet), recorded in `transfers` under `key`. Under mu_.
  void StartThread(std::map<uint64_t, std::unique_ptr<Transfer>>* transfers,
                   uint64_t key, int fd, std::function<void(Transfer*)> run);
  void Reap();  // joins finished transfers

  const std::string data_dir_;
  const std::string self_ip_;
  const SnapshotTransferOptions options_;
  // options_.cluster_id until a joining node learns its cluster's.
  std::atomic<uint64_t> cluster_id_;
  const Done done_;
  const Staged staged_;

  mutable std::mutex mu_;
  std::map<uint64_t, std::unique_ptr<Transfer>> sending_;    // by peer
  std::map<uint64_t, std::unique_ptr<Transfer>> receiving_;  // by serial
  std::map<uint64_t, std::unique_ptr<Transfer>> backups_;    // by serial
  uint64_t next_serial_ = 1;
  bool stopped_ = false;
  std::atomic<bool> fault_used_{false};
  std::mutex tls_mu_;
  std::shared_ptr<wire::ReloadingTlsContext> tls_dial_;  // made at first use
};

}  // namespace raftkv::server
