// Integration test with real raftkvd processes: a node whose disk fills up.
// One follower's data dir is a small tmpfs of its own (mounted by the test,
// so it needs root, as CI has). Writes go on until that file system is
// full: the node must log a STORAGE FAILURE and exit with code 75
// (server/storage_failure.h), never on an assertion or a signal, while the
// other two keep the cluster available without a client error; once space
// is freed and the node restarted, it catches up and holds every
// acknowledged write. Must never signal a process that LocalCluster did not
// start, and unmounts what it mounted.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "tests/integration/log_text.h"
#include "tools/local_cluster.h"

namespace raftkv {
namespace {

using ::raftkv::integration::ReadFile;

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A tmpfs mounted at `dir` for the life of the object.
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, const std::string& size) : dir_(dir) {
    std::filesystem::create_directories(dir);
    const std::string options = "size=" + size;
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  bool Resize(const std::string& size) {
    const std::string options = "size=" + size;
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT,
                   options.c_str()) == 0;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
};

TEST(FullDiskTest, AFullDiskStopsOneNodeCleanlyAndLosesNothing) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "mounting a small tmpfs needs root (CI runs as root)";
  }
  LocalCluster cluster(3, {"--snapshot_entries=200", "--log_entries_kept=20"});
  const int leader = cluster.WaitForLeader();
  ASSERT_NE(leader, 0);
  const int full = leader == 3 ? 2 : 3;
  // The follower's data moves onto a 24 MB disk: it starts blank there and
  // rejoins.
  cluster.Kill(full);
  std::filesystem::remove_all(cluster.data_dir(full));
  SmallDisk disk(cluster.data_dir(full), "24m");
  ASSERT_TRUE(disk.mounted()) << "cannot mount a tmpfs";
  cluster.Start(full);
  auto client = cluster.NewClient(std::chrono::seconds(10));
  ASSERT_TRUE(client->Put("early", "before the disk filled").ok());
  auto direct = cluster.NewClientOf(full, std::chrono::seconds(3));
  const auto rejoin_until = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < rejoin_until &&
         !direct->Get("early", ReadOptions{true}).ok()) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(direct->Get("early", ReadOptions{true}).ok())
      << "the node never caught up on its new disk";

  // 64 KB values until the small disk is full (about 24 MB), then some more.
  const std::string value(64 << 10, 'x');
  std::vector<std::string> acked;
  int exit_code = -1;
  const auto until = Clock::now() + std::chrono::seconds(120);
  int after_exit = 0;
  for (int i = 0; i < 5000 && Clock::now() < until && after_exit < 50; ++i) {
    const std::string key = "big" + std::to_string(i);
    auto r = client->Put(key, value);
    ASSERT_TRUE(r.ok()) << "the cluster must stay available: "
                        << r.status().ToString();
    acked.push_back(key);
    if (exit_code < 0) exit_code = cluster.ExitedWith(full);
    if (exit_code >= 0) ++after_exit;
  }
  const std::string log = ReadFile(cluster.log_path(full));
  ASSERT_GE(exit_code, 0) << "the node never stopped; its log ends with:\n"
                          << log.substr(log.size() > 3000 ? log.size() - 3000
                                                          : 0);
  EXPECT_EQ(exit_code, 75) << log;
  EXPECT_NE(log.find("STORAGE FAILURE"), std::string::npos);
  EXPECT_NE(log.find("No space left on device"), std::string::npos);
  EXPECT_EQ(log.find("Assertion"), std::string::npos) << log;
  EXPECT_EQ(log.find("Check failed"), std::string::npos) << log;

  // Space is freed; the node restarts and catches up.
  ASSERT_TRUE(disk.Resize("512m"));
  cluster.Start(full);
  auto last = cluster.NewClientOf(full, std::chrono::seconds(3));
  bool caught_up = false;
  const auto catch_up_until = Clock::now() + std::chrono::seconds(60);
  while (!caught_up && Clock::now() < catch_up_until) {
    caught_up = last->Get(acked.back(), ReadOptions{true}).ok();
    if (!caught_up) std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_TRUE(caught_up) << "the node did not catch up after space was freed";
  for (const std::string& key : acked) {
    auto r = last->Get(key, ReadOptions{true});
    ASSERT_TRUE(r.ok()) << key << ": " << r.status().ToString();
    ASSERT_EQ(r->value.size(), value.size()) << key;
  }
  // Stop it before the disk goes away.
  cluster.Stop(full);
}

}  // namespace
}  // namespace raftkv
