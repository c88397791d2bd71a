// Human-readable one-line renderings of Raft messages and entries, for
// logs and simulator traces. Pure functions.
#pragma once

#include <string>

#include "raft/raft.pb.h"

namespace raftkv::raft {

// e.g. "1->2 APP term=3 log_term=2 index=5 commit=4 entries=[3/6,3/7]"
std::string DescribeMessage(const Message& m);
std::string DescribeEntry(const Entry& e);

}  // namespace raftkv::raft
