// DiskModel: replaying the crash child's event log and rewriting the disk
// as a power loss could leave it (see power_loss.h). Must never follow a
// path out of the disk, the attic and the disk's next state.
#include "tests/storage/power_loss.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <tuple>

namespace raftkv::storage::crash {
namespace {

namespace fs = std::filesystem;

// An entry of a directory tree: (directory inode, name, inode).
using Entry = std::tuple<uint64_t, std::string, uint64_t>;

Status Errno(const std::string& what, const std::string& path) {
  return Status::IOError(what + " " + path + ": " + std::strerror(errno));
}

// Every entry below the directory `dir` (inode `dir_ino`); *files gets one
// path of each regular file's inode.
Status ScanTree(const std::string& dir, uint64_t dir_ino,
                std::set<Entry>* entries,
                std::map<uint64_t, std::string>* files) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string path = e.path().string();
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return Errno("lstat", path);
    entries->emplace(dir_ino, e.path().filename().string(), st.st_ino);
    if (S_ISDIR(st.st_mode)) {
      RAFTKV_RETURN_IF_ERROR(ScanTree(path, st.st_ino, entries, files));
    } else if (S_ISREG(st.st_mode)) {
      files->emplace(st.st_ino, path);
    } else {
      return Status::Corruption(path + " is neither a file nor a directory");
    }
  }
  if (ec) return Status::IOError("list " + dir + ": " + ec.message());
  return Status::OK();
}

}  // namespace

int DiskModel::AddNode(bool dir, uint64_t ino, uint64_t synced) {
  Node node;
  node.dir = dir;
  node.ino = ino;
  node.synced = synced;
  nodes_.push_back(std::move(node));
  live_[ino] = static_cast<int>(nodes_.size() - 1);
  return static_cast<int>(nodes_.size() - 1);
}

StatusOr<DiskModel> DiskModel::Scan(const std::string& root) {
  struct stat st;
  if (::lstat(root.c_str(), &st) != 0) return Errno("lstat", root);
  std::set<Entry> entries;
  std::map<uint64_t, std::string> files;
  RAFTKV_RETURN_IF_ERROR(ScanTree(root, st.st_ino, &entries, &files));
  // The nodes first (the root, the files, the directories), then the
  // entries between them.
  DiskModel model(root);
  model.AddNode(/*dir=*/true, st.st_ino, 0);
  for (const auto& [ino, path] : files) {
    struct stat f;
    if (::lstat(path.c_str(), &f) != 0) return Errno("lstat", path);
    model.AddNode(/*dir=*/false, ino, static_cast<uint64_t>(f.st_size));
  }
  for (const auto& [dir_ino, name, ino] : entries) {
    if (model.live_.count(ino) == 0) model.AddNode(/*dir=*/true, ino, 0);
  }
  for (const auto& [dir_ino, name, ino] : entries) {
    Node& dir = model.nodes_[model.live_.at(dir_ino)];
    dir.now[name] = dir.durable[name] = model.live_.at(ino);
  }
  return model;
}

Status DiskModel::Live(uint64_t ino, int* id) const {
  auto it = live_.find(ino);
  if (it == live_.end()) {
    return Status::Corruption("inode " + std::to_string(ino) +
                              " was never seen: an event is missing");
  }
  *id = it->second;
  return Status::OK();
}

Status DiskModel::Record(int dir, Change change) {
  Node& node = nodes_[dir];
  if (!node.dir) {
    return Status::Corruption("inode " + std::to_string(node.ino) +
                              " holds entries but is a file");
  }
  for (const auto& [name, id] : change.names) {
    if (id < 0) {
      node.now.erase(name);
    } else {
      node.now[name] = id;
    }
  }
  node.unsynced.push_back(std::move(change));
  return Status::OK();
}

Status DiskModel::Apply(const std::string& line) {
  std::istringstream in(line);
  char op = 0;
  in >> op;
  uint64_t dir_ino = 0, ino = 0, size = 0;
  std::string name, to;
  char kind = 0;
  int dir = 0, id = 0;
  switch (op) {
    case '+':
      if (!(in >> dir_ino >> name >> ino >> kind)) break;
      RAFTKV_RETURN_IF_ERROR(Live(dir_ino, &dir));
      if (kind == 'l') {
        RAFTKV_RETURN_IF_ERROR(Live(ino, &id));
        if (nodes_[id].dir) return Status::Corruption("a directory linked");
      } else {
        // A removed file stays in the attic, a removed directory is no
        // longer live: a live inode is never new.
        if (live_.count(ino) > 0) {
          return Status::Corruption("inode " + std::to_string(ino) +
                                    " made again while still in use: a "
                                    "removal was not tracked");
        }
        id = AddNode(kind == 'd', ino, 0);
      }
      return Record(dir, {'+', {{name, id}}});
    case '-': {
      if (!(in >> dir_ino >> name)) break;
      RAFTKV_RETURN_IF_ERROR(Live(dir_ino, &dir));
      auto it = nodes_[dir].now.find(name);
      if (it == nodes_[dir].now.end()) {
        return Status::Corruption("removal of " + name + ", never added");
      }
      if (nodes_[it->second].dir) live_.erase(nodes_[it->second].ino);
      return Record(dir, {'-', {{name, -1}}});
    }
    case 'r': {
      if (!(in >> dir_ino >> name >> to >> ino)) break;
      RAFTKV_RETURN_IF_ERROR(Live(dir_ino, &dir));
      RAFTKV_RETURN_IF_ERROR(Live(ino, &id));
      auto from = nodes_[dir].now.find(name);
      if (from == nodes_[dir].now.end() || from->second != id) {
        return Status::Corruption("rename of " + name + ", not inode " +
                                  std::to_string(ino));
      }
      auto replaced = nodes_[dir].now.find(to);
      if (replaced != nodes_[dir].now.end() && nodes_[replaced->second].dir) {
        live_.erase(nodes_[replaced->second].ino);
      }
      return Record(dir, {'r', {{name, -1}, {to, id}}});
    }
    case 't':
      if (!(in >> ino)) break;
      RAFTKV_RETURN_IF_ERROR(Live(ino, &id));
      nodes_[id].synced = 0;
      return Status::OK();
    case 's':
      if (!(in >> ino >> size)) break;
      RAFTKV_RETURN_IF_ERROR(Live(ino, &id));
      nodes_[id].synced = size;
      return Status::OK();
    case 'F':
      if (!(in >> dir_ino)) break;
      RAFTKV_RETURN_IF_ERROR(Live(dir_ino, &dir));
      nodes_[dir].durable = nodes_[dir].now;
      nodes_[dir].unsynced.clear();
      return Status::OK();
  }
  return Status::Corruption("bad event '" + line + "'");
}

Status DiskModel::Replay(const std::string& events_path) {
  std::ifstream in(events_path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string events = buf.str();
  size_t pos = 0;
  for (size_t nl; (nl = events.find('\n', pos)) != std::string::npos;
       pos = nl + 1) {
    const std::string line = events.substr(pos, nl - pos);
    Status s = Apply(line);
    if (!s.ok()) {
      return Status::Corruption(events_path + ": " + s.ToString());
    }
  }
  return Status::OK();
}

Status DiskModel::PowerLoss(const std::string& attic, std::mt19937_64& rng,
                            PowerLossStats* stats) {
  // The disk as the kill left it, against the tree the log describes.
  struct stat st;
  if (::lstat(root_.c_str(), &st) != 0) return Errno("lstat", root_);
  std::set<Entry> on_disk;
  std::map<uint64_t, std::string> where;  // inode -> a path to its bytes
  RAFTKV_RETURN_IF_ERROR(ScanTree(root_, st.st_ino, &on_disk, &where));
  std::set<Entry> logged;
  std::vector<int> todo = {0};
  while (!todo.empty()) {
    const Node& dir = nodes_[todo.back()];
    todo.pop_back();
    for (const auto& [name, id] : dir.now) {
      logged.emplace(dir.ino, name, nodes_[id].ino);
      if (nodes_[id].dir) todo.push_back(id);
    }
  }
  std::vector<Entry> differ;
  std::set_symmetric_difference(on_disk.begin(), on_disk.end(), logged.begin(),
                                logged.end(), std::back_inserter(differ));
  stats->untracked_changes += differ.size();
  if (differ.size() > 2) {  // one interrupted change: a rename touches two
    std::string list;
    for (const auto& [dir_ino, name, ino] : differ) {
      list += " " + std::to_string(dir_ino) + "/" + name + "=" +
              std::to_string(ino) +
              (on_disk.count({dir_ino, name, ino}) > 0 ? " (on disk only)"
                                                       : " (logged only)");
    }
    return Status::Corruption(root_ + " differs from its event log:" + list);
  }

  // What survives: each directory's synced entries, then a prefix of its
  // later changes. The new tree is built beside the disk from hard links.
  const std::string next = root_ + ".after-power-loss";
  std::error_code ec;
  fs::remove_all(next, ec);
  // inode -> (a path to it in the new tree, its durable bytes)
  std::map<uint64_t, std::pair<std::string, uint64_t>> files;
  std::vector<std::pair<int, std::string>> dirs = {{0, next}};
  while (!dirs.empty()) {
    const auto [id, path] = dirs.back();
    dirs.pop_back();
    if (::mkdir(path.c_str(), 0755) != 0) return Errno("mkdir", path);
    const Node& dir = nodes_[id];
    const size_t n = dir.unsynced.size();
    const uint64_t pick = rng() % 4;
    const size_t kept = pick == 0 ? 0 : pick == 1 ? n : rng() % (n + 1);
    std::map<std::string, int> entries = dir.durable;
    for (size_t i = 0; i < n; ++i) {
      const Change& change = dir.unsynced[i];
      if (i >= kept) {
        stats->creates_lost += change.kind == '+';
        stats->removes_undone += change.kind == '-';
        stats->renames_undone += change.kind == 'r';
        continue;
      }
      ++stats->changes_kept;
      for (const auto& [name, child] : change.names) {
        if (child < 0) {
          entries.erase(name);
        } else {
          entries[name] = child;
        }
      }
    }
    for (const auto& [name, child] : entries) {
      const Node& node = nodes_[child];
      const std::string to = path + "/" + name;
      if (node.dir) {
        dirs.emplace_back(child, to);
        continue;
      }
      auto it = where.find(node.ino);
      const std::string from = it != where.end()
                                   ? it->second
                                   : attic + "/" + std::to_string(node.ino);
      if (::link(from.c_str(), to.c_str()) != 0) {
        return Errno(
            "link the bytes of inode " + std::to_string(node.ino) + " to", to);
      }
      files.emplace(node.ino, std::make_pair(to, node.synced));
    }
  }
  // Each file's bytes beyond its last sync are gone (once per inode: hard
  // links share them).
  for (const auto& [ino, file] : files) {
    const auto& [path, synced] = file;
    if (::lstat(path.c_str(), &st) != 0) return Errno("lstat", path);
    if (static_cast<uint64_t>(st.st_size) <= synced) continue;
    if (::truncate(path.c_str(), static_cast<off_t>(synced)) != 0) {
      return Errno("truncate", path);
    }
    ++stats->files_cut;
    stats->files_emptied += synced == 0;
  }
  fs::remove_all(root_, ec);
  if (ec) return Status::IOError("remove " + root_ + ": " + ec.message());
  fs::rename(next, root_, ec);
  if (ec) return Status::IOError("rename " + next + ": " + ec.message());
  return Status::OK();
}

}  // namespace raftkv::storage::crash
