// raftkvd: one replica of a raftkv cluster. Parses flags, opens the node,
// and runs its event loop until SIGINT/SIGTERM.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <asio/signal_set.hpp>
#include <csignal>
#include <cstdio>

#include "server/flags.h"
#include "server/node.h"
#include "util/flags_help.h"

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "raftkvd --id=1 --cluster=1=127.0.0.1:7001,2=127.0.0.1:7002,"
      "3=127.0.0.1:7003 --cluster_clients=1=127.0.0.1:8001,... "
      "--listen_client=127.0.0.1:8001 --data_dir=data/1");
  gflags::SetVersionString("0.1");
  FLAGS_logtostderr = true;
  FLAGS_logbuflevel = -1;  // no buffering: logs tell the story as it happens
  static char help_on[] = "--helpon=flags";  // flags.cc
  raftkv::RestrictHelpToOwnFlags(argc, argv, help_on);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);

  auto config = raftkv::server::ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "raftkvd: %s\n(see raftkvd --help)\n",
                 config.status().ToString().c_str());
    return 2;
  }
  raftkv::server::Node node(*config);
  raftkv::Status s = node.Open();
  if (!s.ok()) {
    LOG(ERROR) << "raftkvd " << config->id << " cannot start: " << s.ToString();
    return 1;
  }
  asio::signal_set signals(node.io(), SIGINT, SIGTERM);
  signals.async_wait([&node](const std::error_code& ec, int) {
    if (!ec) node.Stop();
  });
  std::signal(SIGPIPE, SIG_IGN);
  node.Run();
  return 0;
}
