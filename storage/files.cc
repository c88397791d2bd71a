// File-system helpers (see files.h). Never leaves a file half-written under
// its final name.
#include "storage/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace raftkv::storage {
namespace {

Status Errno(const std::string& path, const char* what) {
  return Status::IOError(path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

Status SyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(path, "open for fsync");
  const int rc = ::fsync(fd);
  Status s = rc == 0 ? Status::OK() : Errno(path, "fsync");
  ::close(fd);
  return s;
}

Status CreateDirectories(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Status::OK();
  std::string parent = std::filesystem::path(path).parent_path().string();
  if (parent.empty()) parent = ".";
  if (parent != path) RAFTKV_RETURN_IF_ERROR(CreateDirectories(parent));
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    return Errno(path, "create directory");
  }
  return SyncPath(parent);
}

Status WriteFileDurably(const std::string& path, std::string_view contents) {
  const std::string tmp = path + ".tmp";
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(tmp, "create");
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n =
        ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Errno(tmp, "write");
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status s = Errno(tmp, "fsync");
    ::close(fd);
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno(path, "rename");
  return SyncPath(std::filesystem::path(path).parent_path().string());
}

Status ReadSmallFile(const std::string& path, std::string* contents) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return errno == ENOENT ? Status::NotFound(path + ": no such file")
                           : Errno(path, "open");
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  *contents = buf.str();
  return Status::OK();
}

}  // namespace raftkv::storage
