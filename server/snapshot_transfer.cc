// Snapshot transfers on their own connections and threads (see
// snapshot_transfer.h). Never blocks the raft loop: all socket and disk
// work happens on the transfer threads.
#include "server/snapshot_transfer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "client/blocking_frames.h"
#include "client/tls.h"
#include "server/cluster_identity.h"
#include "server/server_tls.h"
#include "server/stage_thread.h"
#include "storage/coding.h"
#include "storage/snapshot.h"
#include "storage/snapshot_install.h"
#include "storage/snapshot_stager.h"

namespace raftkv::server {
namespace {

constexpr char kMagic[] = "RKVSNAP2";
constexpr size_t kMagicSize = 8;
constexpr size_t kPreambleHeader = 1 + kMagicSize + 8;  // then the message
constexpr char kAccepted[] = "ok";

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

bool IsSnapshotPreamble(const char* payload, size_t size) {
  return size > kPreambleHeader && payload[0] == '\0' &&
         std::memcmp(payload + 1, kMagic, kMagicSize) == 0;
}

SnapshotTransfers::SnapshotTransfers(std::string data_dir, std::string self_ip,
                                     SnapshotTransferOptions options, Done done,
                                     Staged staged)
    : data_dir_(std::move(data_dir)),
      self_ip_(std::move(self_ip)),
      options_(options),
      cluster_id_(options.cluster_id),
      done_(std::move(done)),
      staged_(std::move(staged)) {}

SnapshotTransfers::~SnapshotTransfers() { Stop(); }

size_t SnapshotTransfers::active() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [peer, t] : sending_) n += t->finished ? 0 : 1;
  for (const auto& [serial, t] : receiving_) n += t->finished ? 0 : 1;
  for (const auto& [serial, t] : backups_) n += t->finished ? 0 : 1;
  return n;
}

void SnapshotTransfers::Reap() {
  std::vector<std::unique_ptr<Transfer>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto* map : {&sending_, &receiving_, &backups_}) {
      for (auto it = map->begin(); it != map->end();) {
        if (it->second->finished) {
          done.push_back(std::move(it->second));
          it = map->erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  for (auto& t : done) t->thread.join();
}

bool SnapshotTransfers::Send(
    const raft::Message& message,
    std::shared_ptr<const storage::SnapshotSource> source,
    const std::string& address) {
  Reap();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || sending_.count(message.to()) > 0) return false;
  StartThread(&sending_, message.to(), /*fd=*/-1,
              [this, peer = message.to(), message, source, address](
                  Transfer* t) { RunSend(t, peer, message, source, address); });
  return true;
}

void SnapshotTransfers::Receive(int fd, std::string preamble,
                                std::string buffered, std::string remote) {
  Reap();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) {
    wire::TakeTlsSession(fd);
    ::close(fd);
    return;
  }
  const uint64_t serial = next_serial_++;
  StartThread(&receiving_, serial, fd,
              [this, serial, preamble = std::move(preamble),
               buffered = std::move(buffered),
               remote = std::move(remote)](Transfer* t) mutable {
                RunReceive(t, serial, std::move(preamble), std::move(buffered),
                           std::move(remote));
              });
}

void SnapshotTransfers::StartThread(
    std::map<uint64_t, std::unique_ptr<Transfer>>* transfers, uint64_t key,
    int fd, std::function<void(Transfer*)> run) {
  auto t = std::make_unique<Transfer>();
  Transfer* raw = t.get();
  raw->fd = fd;
  if (fd >= 0) raw->tls = wire::TakeTlsSession(fd);
  raw->thread =
      std::thread([raw, run = std::move(run)]() mutable { run(raw); });
  transfers->emplace(key, std::move(t));
}

void SnapshotTransfers::SendBackup(
    int fd, std::string first_frame,
    std::shared_ptr<const storage::SnapshotSource> source) {
  Reap();
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) {
    wire::TakeTlsSession(fd);
    ::close(fd);
    return;
  }
  StartThread(&backups_, next_serial_++, fd,
              [this, first_frame = std::move(first_frame),
               source = std::move(source)](Transfer* t) mutable {
                RunBackup(t, std::move(first_frame), std::move(source));
              });
}

void SnapshotTransfers::RunBackup(
    Transfer* t, std::string first_frame,
    std::shared_ptr<const storage::SnapshotSource> source) {
  SetUpStageThread("rkv-backup", kSnapshotTransferNice);
  const auto start = std::chrono::steady_clock::now();
  const int fd = t->fd;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  wire::SetTimeouts(fd, options_.io_timeout);
  const std::string what = source ? "backup " + std::to_string(source->term()) +
                                        "/" + std::to_string(source->index())
                                  : std::string("backup");
  uint64_t bytes = 0;
  const wire::Channel channel(fd, t->tls.get());
  Status s = wire::WriteFrame(channel, first_frame, what);
  if (s.ok() && source) {
    LOG(INFO) << "streaming " << what << " to a client";
    s = source->Stream(options_.chunk_bytes, [&](std::string_view chunk) {
      bytes += chunk.size();
      return wire::WriteFrame(channel, chunk, what);
    });
  }
  if (source) {
    LOG(INFO) << what << (s.ok() ? " sent: " : " failed: ") << bytes / 1024
              << " KiB in " << Seconds(start) << " s"
              << (s.ok() ? "" : " (" + s.ToString() + ")");
  }
  if (t->tls) t->tls->Shutdown();
  ::shutdown(fd, SHUT_WR);
  t->fd = -1;
  ::close(fd);
  t->finished = true;
}

void SnapshotTransfers::Stop() {
  std::map<uint64_t, std::unique_ptr<Transfer>> sending, receiving, backups;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    sending.swap(sending_);
    receiving.swap(receiving_);
    backups.swap(backups_);
  }
  for (auto* map : {&sending, &receiving, &backups}) {
    for (auto& [key, t] : *map) {
      const int fd = t->fd.load();
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);  // unblocks the thread
    }
  }
  for (auto* map : {&sending, &receiving, &backups}) {
    for (auto& [key, t] : *map) {
      if (t->thread.joinable()) t->thread.join();
    }
  }
}

Status SnapshotTransfers::StreamTo(Transfer* t, const raft::Message& message,
                                   const storage::SnapshotSource& source,
                                   const std::string& address, bool faulty,
                                   const std::string& what, int* fd_out,
                                   std::unique_ptr<wire::TlsSession>* tls_out,
                                   uint64_t* bytes, uint64_t* chunks) {
  const auto start = std::chrono::steady_clock::now();
  auto context = DialContext();
  if (!context.ok()) return context.status();
  auto fd = wire::Dial(address, self_ip_, options_.io_timeout);
  if (!fd.ok()) return fd.status();
  *fd_out = *fd;
  t->fd = *fd;
  if (*context) {
    auto session = wire::TlsSession::Create(
        **context, *fd, address.substr(0, address.rfind(':')));
    if (!session.ok()) return session.status();
    *tls_out = std::move(session).value();
    RAFTKV_RETURN_IF_ERROR((*tls_out)->HandshakeBlocking(what));
  }
  const wire::Channel channel(*fd, tls_out->get());
  std::string preamble(1, '\0');
  preamble.append(kMagic, kMagicSize);
  storage::PutBigEndian64(&preamble, cluster_id_.load());
  preamble.append(message.SerializeAsString());
  RAFTKV_RETURN_IF_ERROR(wire::WriteFrame(channel, preamble, what));
  LOG(INFO) << "sending " << what << " to " << address;
  return source.Stream(options_.chunk_bytes, [&](std::string_view chunk) {
    *bytes += chunk.size();
    const int64_t n = static_cast<int64_t>((*chunks)++);
    if (*chunks % 256 == 0) {
      LOG(INFO) << what << ": " << *bytes / (1 << 20) << " MB sent in "
                << Seconds(start) << " s";
    }
    if (options_.chunk_delay.count() > 0) {
      std::this_thread::sleep_for(options_.chunk_delay);
    }
    if (faulty && n == options_.corrupt_chunk) {
      LOG(WARNING) << what << ": TEST FAULT: corrupting chunk " << n;
      std::string bad(chunk);
      bad[bad.size() / 2] ^= 0x40;
      return wire::WriteFrame(channel, bad, what);
    }
    if (faulty && options_.cut_after_chunk >= 0 &&
        n == options_.cut_after_chunk + 1) {
      LOG(WARNING) << what << ": TEST FAULT: cutting the connection after " << n
                   << " chunks";
      ::shutdown(*fd, SHUT_RDWR);
      return Status::Aborted(what + ": cut by a test fault");
    }
    return wire::WriteFrame(channel, chunk, what);
  });
}

StatusOr<std::shared_ptr<const wire::TlsContext>>
SnapshotTransfers::DialContext() {
  if (!options_.tls.enabled()) return std::shared_ptr<const wire::TlsContext>();
  std::lock_guard<std::mutex> lock(tls_mu_);
  if (!tls_dial_) {
    auto created = wire::ReloadingTlsContext::Create(
        DialerTlsConfig(options_.tls), "snapshot sender");
    if (!created.ok()) return created.status();
    tls_dial_ = *created;
  }
  return tls_dial_->Current();
}

Status SnapshotTransfers::ReadVerdict(int fd, wire::TlsSession* tls,
                                      const std::string& what) {
  std::string verdict, none;
  RAFTKV_RETURN_IF_ERROR(
      wire::ReadFrame(wire::Channel(fd, tls), &none, 1 << 16, &verdict, what));
  if (verdict != kAccepted)
    return Status::Aborted(what + ": refused: " + verdict);
  return Status::OK();
}

void SnapshotTransfers::RunSend(
    Transfer* t, uint64_t peer, raft::Message message,
    std::shared_ptr<const storage::SnapshotSource> source,
    std::string address) {
  SetUpStageThread("rkv-snap-send", kSnapshotTransferNice);
  const auto start = std::chrono::steady_clock::now();
  const std::string what = "snapshot " + std::to_string(source->term()) + "/" +
                           std::to_string(source->index()) + " to node " +
                           std::to_string(peer);
  const bool faulty = (options_.corrupt_chunk >= 0 ||
                       options_.cut_after_chunk >= 0 || options_.send_twice) &&
                      !fault_used_.exchange(true);
  uint64_t bytes = 0, chunks = 0;
  int fd = -1;
  std::unique_ptr<wire::TlsSession> tls;
  Status s = StreamTo(t, message, *source, address, faulty, what, &fd, &tls,
                      &bytes, &chunks);
  if (s.ok() && faulty && options_.send_twice) {
    // The same snapshot again on a second connection before the first is
    // acknowledged, as a leader does when an append raced the first one's
    // install: the receiver must stage both apart and install one.
    LOG(WARNING) << what << ": TEST FAULT: sending it again";
    int second = -1;
    std::unique_ptr<wire::TlsSession> second_tls;
    uint64_t again_bytes = 0, again_chunks = 0;
    Status again = StreamTo(t, message, *source, address, /*faulty=*/false,
                            what + " (again)", &second, &second_tls,
                            &again_bytes, &again_chunks);
    if (again.ok()) {
      again = ReadVerdict(second, second_tls.get(), what + " (again)");
    }
    LOG(INFO) << what << " (again): " << again.ToString();
    second_tls.reset();
    if (second >= 0) ::close(second);
  }
  if (s.ok()) s = ReadVerdict(fd, tls.get(), what);
  t->fd = -1;
  tls.reset();
  if (fd >= 0) ::close(fd);
  if (s.ok()) {
    LOG(INFO) << what << " delivered: " << bytes / (1 << 20) << " MB in "
              << chunks << " chunks, " << Seconds(start) << " s";
  } else {
    LOG(WARNING) << what << " failed after " << Seconds(start)
                 << " s: " << s.ToString();
  }
  done_(peer, s.ok());
  t->finished = true;
}

void SnapshotTransfers::RunReceive(Transfer* t, uint64_t serial,
                                   std::string preamble, std::string pending,
                                   std::string remote) {
  SetUpStageThread("rkv-snap-recv", kSnapshotTransferNice);
  const int fd = t->fd;
  // Asio left the socket non-blocking: this thread blocks, with timeouts.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  wire::SetTimeouts(fd, options_.io_timeout);
  const auto start = std::chrono::steady_clock::now();
  raft::Message message;
  std::string what = "snapshot from " + remote;
  Status s;
  const uint64_t cluster_id =
      storage::GetBigEndian64(preamble.data() + 1 + kMagicSize);
  if (cluster_id != cluster_id_.load()) {
    s = Status::FailedPrecondition(
        what + ": refused, the sender belongs to cluster " +
        ClusterIdText(cluster_id) + ", this node to cluster " +
        ClusterIdText(cluster_id_.load()));
  } else if (!message.ParseFromArray(
                 preamble.data() + kPreambleHeader,
                 static_cast<int>(preamble.size() - kPreambleHeader)) ||
             message.type() != raft::MSG_SNAP ||
             message.snapshot().metadata().index() == 0) {
    s = Status::Corruption(what + ": the preamble is not a snapshot message");
  }
  std::unique_ptr<storage::SnapshotStager> stager;
  if (s.ok()) {
    const raft::SnapshotMetadata& meta = message.snapshot().metadata();
    what = "snapshot " + std::to_string(meta.term()) + "/" +
           std::to_string(meta.index()) + " from node " +
           std::to_string(message.from());
    LOG(INFO) << "receiving " << what;
    // A directory of its own, even for the same snapshot: a leader sends
    // one again if its append raced the install of the first, and the
    // second transfer must not touch the directory being installed.
    auto created = storage::SnapshotStager::Create(
        storage::StagingDir(data_dir_, meta.term(), meta.index(), serial),
        what);
    if (created.ok()) {
      stager = std::move(created).value();
    } else {
      s = created.status();
    }
  }
  std::string chunk;
  while (s.ok() && !stager->complete()) {
    s = wire::ReadFrame(wire::Channel(fd, t->tls.get()), &pending,
                        options_.max_frame_bytes, &chunk, what);
    if (s.ok()) s = stager->Add(chunk);
  }
  if (s.ok() && (stager->index() != message.snapshot().metadata().index() ||
                 stager->term() != message.snapshot().metadata().term())) {
    s = Status::Corruption(what + ": the image is at " +
                           std::to_string(stager->term()) + "/" +
                           std::to_string(stager->index()));
  }
  if (s.ok()) s = stager->Finish();
  if (s.ok()) {
    LOG(INFO) << what << " staged: " << stager->records() << " records, "
              << stager->bytes() / (1 << 20) << " MB in " << Seconds(start)
              << " s";
    // To the loop before the sender hears of it: the leader's next append
    // then finds the snapshot in this node's core, rather than an empty
    // log whose rejection would make it send the snapshot again.
    staged_(std::move(message), stager->dir());
  }
  // The verdict, best effort: the sender learns why, or sees the close.
  wire::WriteFrame(wire::Channel(fd, t->tls.get()),
                   s.ok() ? std::string(kAccepted) : s.ToString(), what);
  t->fd = -1;
  ::close(fd);
  if (!s.ok()) {
    LOG(WARNING) << what << " abandoned after " << Seconds(start)
                 << " s: " << s.ToString();
    if (stager) {
      std::error_code ec;
      std::filesystem::remove_all(stager->dir(), ec);
    }
  }
  t->finished = true;
}

}  // namespace raftkv::server
