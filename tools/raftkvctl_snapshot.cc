// raftkvctl snapshot save: streams a backup from the first member that
// answers (see raftkvctl_snapshot.h). Blocking I/O: a command-line tool.
#include "tools/raftkvctl_snapshot.h"

#include <unistd.h>

#include "client/blocking_frames.h"
#include "client/kv.pb.h"
#include "storage/backup_file.h"
#include "storage/storage.pb.h"

namespace raftkv {
namespace {

// A chunk is about 1 MB; one record can make it larger.
constexpr size_t kMaxFrameBytes = 256 << 20;

StatusOr<BackupResult> SaveFrom(const std::string& endpoint,
                                const std::string& path,
                                std::chrono::milliseconds io_timeout) {
  const auto start = std::chrono::steady_clock::now();
  auto fd = wire::Dial(endpoint, "", io_timeout);
  if (!fd.ok()) return fd.status();
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{*fd};
  const std::string what = "backup from " + endpoint;
  kv::ClientRequest request;
  request.set_request_id(1);
  request.mutable_snapshot_save();
  RAFTKV_RETURN_IF_ERROR(
      wire::WriteFrame(*fd, request.SerializeAsString(), what));
  std::string pending, frame;
  RAFTKV_RETURN_IF_ERROR(
      wire::ReadFrame(*fd, &pending, kMaxFrameBytes, &frame, what));
  kv::ClientResponse response;
  if (!response.ParseFromString(frame) || !response.has_snapshot_save()) {
    return Status::Unavailable(what + ": " +
                               (response.error_message().empty()
                                    ? "not a backup response"
                                    : response.error_message()));
  }
  auto writer = storage::BackupWriter::Create(path);
  if (!writer.ok()) return writer.status();
  while (!(*writer)->complete()) {
    RAFTKV_RETURN_IF_ERROR(
        wire::ReadFrame(*fd, &pending, kMaxFrameBytes, &frame, what));
    RAFTKV_RETURN_IF_ERROR((*writer)->Add(frame));
  }
  RAFTKV_RETURN_IF_ERROR((*writer)->Finish());
  BackupResult result;
  result.endpoint = endpoint;
  result.member_id = response.snapshot_save().header().member_id();
  result.cluster_id = response.snapshot_save().header().cluster_id();
  result.index = (*writer)->header()->index();
  result.term = (*writer)->header()->term();
  result.records = (*writer)->records();
  result.bytes = (*writer)->bytes();
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return result;
}

}  // namespace

StatusOr<BackupResult> SaveBackup(const std::vector<std::string>& endpoints,
                                  const std::string& path,
                                  std::chrono::milliseconds io_timeout) {
  Status last = Status::InvalidArgument("no endpoints given");
  for (const std::string& endpoint : endpoints) {
    auto result = SaveFrom(endpoint, path, io_timeout);
    if (result.ok()) return result;
    last = result.status();
    // A damaged stream or a file problem is not the member's being down.
    if (last.code() == Status::Code::kInvalidArgument) return last;
  }
  return last;
}

}  // namespace raftkv
