// Renders messages and entries compactly for traces. No side effects.
#include "raft/describe.h"

#include <sstream>

namespace raftkv::raft {

std::string DescribeEntry(const Entry& e) {
  std::ostringstream os;
  os << e.term() << "/" << e.index();
  if (e.type() == ENTRY_REJOIN) os << ":rejoin";
  if (!e.data().empty()) os << ":" << e.data().size() << "B";
  return os.str();
}

std::string DescribeMessage(const Message& m) {
  std::string type = MessageType_Name(m.type());
  if (type.rfind("MSG_", 0) == 0) type = type.substr(4);
  std::ostringstream os;
  os << m.from() << "->" << m.to() << " " << type << " term=" << m.term();
  if (m.log_term() != 0) os << " log_term=" << m.log_term();
  if (m.index() != 0) os << " index=" << m.index();
  if (m.commit() != 0) os << " commit=" << m.commit();
  if (m.reject()) os << " reject hint=" << m.reject_hint();
  if (!m.context().empty()) os << " ctx=" << m.context();
  if (m.incarnation() != 0) {
    os << " incarnation=" << m.incarnation()
       << (m.rejoining() ? "(rejoining)" : "");
  }
  if (m.has_snapshot() && m.snapshot().metadata().index() != 0) {
    os << " snap=" << m.snapshot().metadata().term() << "/"
       << m.snapshot().metadata().index();
  }
  if (m.entries_size() > 0) {
    os << " entries=[";
    for (int i = 0; i < m.entries_size(); ++i) {
      if (i > 0) os << ",";
      if (i == 3 && m.entries_size() > 4) {
        os << "...+" << (m.entries_size() - 4) << ",";
        i = m.entries_size() - 1;
      }
      os << DescribeEntry(m.entries(i));
    }
    os << "]";
  }
  return os.str();
}

}  // namespace raftkv::raft
