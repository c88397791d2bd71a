// Single-server membership changes applied to a configuration. No state.
#include "raft/conf_change.h"

#include <algorithm>

namespace raftkv::raft {
namespace {

void SetSorted(const std::set<uint64_t>& ids,
               google::protobuf::RepeatedField<uint64_t>* out) {
  out->Clear();
  for (uint64_t id : ids) out->Add(id);
}

std::string Join(const std::set<uint64_t>& ids) {
  std::string out;
  for (uint64_t id : ids) {
    if (!out.empty()) out += ",";
    out += std::to_string(id);
  }
  return "{" + out + "}";
}

}  // namespace

std::set<uint64_t> Voters(const ConfState& conf) {
  return {conf.voters().begin(), conf.voters().end()};
}

std::set<uint64_t> Learners(const ConfState& conf) {
  return {conf.learners().begin(), conf.learners().end()};
}

bool IsVoter(const ConfState& conf, uint64_t id) {
  return std::find(conf.voters().begin(), conf.voters().end(), id) !=
         conf.voters().end();
}

bool IsLearner(const ConfState& conf, uint64_t id) {
  return std::find(conf.learners().begin(), conf.learners().end(), id) !=
         conf.learners().end();
}

bool SameConfState(const ConfState& a, const ConfState& b) {
  return Voters(a) == Voters(b) && Learners(a) == Learners(b);
}

ConfState MakeConfState(const std::set<uint64_t>& voters) {
  ConfState conf;
  SetSorted(voters, conf.mutable_voters());
  return conf;
}

StatusOr<ConfState> ApplyConfChange(const ConfState& conf,
                                    const ConfChange& change) {
  const uint64_t node = change.node();
  if (node == 0) return Status::InvalidArgument("node id 0 is reserved");
  std::set<uint64_t> voters = Voters(conf);
  std::set<uint64_t> learners = Learners(conf);
  const std::string who = "node " + std::to_string(node);
  switch (change.type()) {
    case CONF_ADD_LEARNER:
      if (voters.count(node) || learners.count(node)) {
        return Status::InvalidArgument(who + " is a member already");
      }
      learners.insert(node);
      break;
    case CONF_PROMOTE_LEARNER:
      if (!learners.count(node)) {
        return Status::InvalidArgument(who + (voters.count(node)
                                                  ? " is a voter already"
                                                  : " is not a learner"));
      }
      learners.erase(node);
      voters.insert(node);
      break;
    case CONF_REMOVE_NODE:
      if (!voters.count(node) && !learners.count(node)) {
        return Status::InvalidArgument(who + " is not a member");
      }
      if (voters.size() == 1 && voters.count(node)) {
        return Status::InvalidArgument(who +
                                       " is the last voter and cannot leave");
      }
      voters.erase(node);
      learners.erase(node);
      break;
    default:
      return Status::InvalidArgument("unknown membership change type " +
                                     std::to_string(change.type()));
  }
  ConfState out;
  SetSorted(voters, out.mutable_voters());
  SetSorted(learners, out.mutable_learners());
  return out;
}

std::string DescribeConfState(const ConfState& conf) {
  std::string out = "voters " + Join(Voters(conf));
  if (conf.learners_size() > 0) out += " learners " + Join(Learners(conf));
  return out;
}

std::string DescribeConfChange(const ConfChange& change) {
  const std::string node = std::to_string(change.node());
  switch (change.type()) {
    case CONF_ADD_LEARNER:
      return "add learner " + node;
    case CONF_PROMOTE_LEARNER:
      return "promote " + node;
    case CONF_REMOVE_NODE:
      return "remove " + node;
    default:
      return "unknown change of " + node;
  }
}

StatusOr<ConfChange> DecodeConfChange(const Entry& entry) {
  ConfChange change;
  if (entry.type() != ENTRY_CONF_CHANGE ||
      !change.ParseFromString(entry.data())) {
    return Status::InvalidArgument("entry " + std::to_string(entry.index()) +
                                   " holds no membership change");
  }
  return change;
}

StatusOr<ConfState> ApplyConfChangeEntry(const ConfState& conf,
                                         const Entry& entry) {
  auto change = DecodeConfChange(entry);
  StatusOr<ConfState> next =
      change.ok() ? ApplyConfChange(conf, *change) : change.status();
  if (!next.ok()) {
    return Status::InvalidArgument(
        "membership change at index " + std::to_string(entry.index()) +
        (change.ok() ? " (" + DescribeConfChange(*change) + ")" : "") + ": " +
        next.status().message());
  }
  return next;
}

}  // namespace raftkv::raft
