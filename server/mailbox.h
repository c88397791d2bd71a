// Mailbox<T>: the hand-off queue between raftkvd's stages: any number of
// threads push, one consumer thread takes. Neither side ever waits on a
// lock the other holds: the stages run at different CPU priorities
// (stage_thread.h), and a lock held by a descheduled low-priority thread
// would stall the event loop behind it (priority inversion; measured as
// futex waits of the loop inside asio's scheduler lock before this).
//
// Push is lock-free (a Treiber stack of nodes; the consumer takes it whole
// and restores the order). Waking the consumer goes through an eventfd,
// written only when a push finds the mailbox empty: a worker thread blocks
// on it in Wait(); the raft loop watches it in its epoll (fd()).
//
// Must never: lose an item, deliver one twice or out of push order, or
// sleep through a push (the eventfd is cleared before the stack is taken,
// so a push after the take always signals again).
#pragma once

#include <glog/logging.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <utility>
#include <vector>

namespace raftkv::server {

template <typename T>
class Mailbox {
 public:
  Mailbox() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    PCHECK(fd_ >= 0) << "eventfd";
  }
  ~Mailbox() {
    Node* n = head_.exchange(nullptr, std::memory_order_acquire);
    while (n != nullptr) delete std::exchange(n, n->next);
    ::close(fd_);
  }
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Any thread.
  void Push(T item) {
    Node* node = new Node{std::move(item), nullptr};
    // `node` may be taken and freed by the consumer as soon as it is in:
    // only `prev` is looked at afterwards.
    Node* prev = head_.load(std::memory_order_relaxed);
    do {
      node->next = prev;
    } while (!head_.compare_exchange_weak(prev, node, std::memory_order_release,
                                          std::memory_order_relaxed));
    if (prev == nullptr) Wake();
  }

  // Any thread: makes the consumer's Wait() return (or its fd readable)
  // even if nothing was pushed, e.g. to have it look at a stop flag.
  void Wake() {
    const uint64_t one = 1;
    ssize_t n;
    do {
      n = ::write(fd_, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
  }

  // Consumer: everything pushed so far, oldest first; empty if nothing.
  std::vector<T> Take() {
    // Nothing pushed: no system call. The eventfd may still be signalled
    // (by a push whose item an earlier Take() got): at worst one spurious
    // wake-up later, never a missed one.
    if (head_.load(std::memory_order_acquire) == nullptr) return {};
    Clear();
    Node* n = head_.exchange(nullptr, std::memory_order_acquire);
    std::vector<T> items;
    for (; n != nullptr; delete std::exchange(n, n->next)) {
      items.push_back(std::move(n->item));
    }
    std::reverse(items.begin(), items.end());
    return items;
  }

  // Consumer thread: blocks until a push or Wake() since the last Take(),
  // or for at most `timeout_ms` (-1: no limit).
  void Wait(int timeout_ms = -1) {
    pollfd p{fd_, POLLIN, 0};
    while (::poll(&p, 1, timeout_ms) < 0 && errno == EINTR) {
    }
    // Woken without an item (Wake(), or a signal whose item an earlier
    // Take() got): clear it, or every later Wait() would return at once.
    // A push racing with this read is still found: Take() looks at the
    // stack, not at the eventfd.
    if (head_.load(std::memory_order_acquire) == nullptr) Clear();
  }

  // The eventfd, readable after a push or Wake() (for an event loop).
  int fd() const { return fd_; }

 private:
  struct Node {
    T item;
    Node* next;
  };

  void Clear() {
    uint64_t count;
    while (::read(fd_, &count, sizeof(count)) < 0 && errno == EINTR) {
    }
  }

  const int fd_;
  std::atomic<Node*> head_{nullptr};
};

}  // namespace raftkv::server
