// Mailbox: the stages' lock-free hand-off. Checks that nothing is lost,
// duplicated or reordered per producer under concurrent pushes, that a
// pushed item is always either taken or signalled (a consumer never sleeps
// through a push), that the eventfd is
// readable exactly while something may be waiting, and that items left
// behind are destroyed with the mailbox. Must never depend on timing.
#include "server/mailbox.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>

namespace raftkv::server {
namespace {

bool Readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST(MailboxTest, TakeReturnsItemsInPushOrderAndClearsTheSignal) {
  Mailbox<int> box;
  EXPECT_FALSE(Readable(box.fd()));
  EXPECT_TRUE(box.Take().empty());
  for (int i = 0; i < 5; ++i) box.Push(i);
  EXPECT_TRUE(Readable(box.fd()));
  EXPECT_EQ(box.Take(), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_FALSE(Readable(box.fd()));
  box.Push(5);
  EXPECT_TRUE(Readable(box.fd()));
  EXPECT_EQ(box.Take(), (std::vector<int>{5}));
}

TEST(MailboxTest, WakeSignalsWithoutAnItem) {
  Mailbox<int> box;
  box.Wake();
  EXPECT_TRUE(Readable(box.fd()));
  box.Wait();  // returns at once
  EXPECT_TRUE(box.Take().empty());
  EXPECT_FALSE(Readable(box.fd()));
}

TEST(MailboxTest, ConcurrentProducersLoseNothingAndKeepEachOnesOrder) {
  constexpr int kProducers = 4;
  constexpr int kItems = 50000;
  Mailbox<std::pair<int, int>> box;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&box, p] {
      for (int i = 0; i < kItems; ++i) box.Push({p, i});
    });
  }
  std::vector<int> next(kProducers, 0);
  int received = 0;
  while (received < kProducers * kItems) {
    std::vector<std::pair<int, int>> items = box.Take();
    if (items.empty()) {
      box.Wait();
      continue;
    }
    for (const auto& [p, i] : items) {
      ASSERT_EQ(i, next[p]) << "producer " << p;
      ++next[p];
      ++received;
    }
  }
  for (std::thread& t : producers) t.join();
  EXPECT_TRUE(box.Take().empty());
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], kItems);
}

// The invariant that keeps a consumer from sleeping through a push: once a
// Push has returned, its item is taken or the eventfd is readable. The
// consumer checks it whenever its wait times out, against a producer that
// pushes at uneven intervals so that pushes land at every point of Take().
TEST(MailboxTest, APushedItemIsAlwaysTakenOrSignalled) {
  constexpr int kItems = 200000;
  Mailbox<int> box;
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    std::minstd_rand rng(1);
    std::atomic<int> spin{0};
    for (int i = 0; i < kItems; ++i) {
      box.Push(i);
      pushed.store(i + 1, std::memory_order_release);
      for (int n = rng() % 3000; n > 0; --n) spin.fetch_add(1);
    }
  });
  int received = 0;
  while (received < kItems) {
    const std::vector<int> items = box.Take();
    for (int v : items) ASSERT_EQ(v, received++);
    if (!items.empty()) continue;
    pollfd p{box.fd(), POLLIN, 0};
    if (::poll(&p, 1, 20) == 0) {
      ASSERT_EQ(pushed.load(std::memory_order_acquire), received)
          << "an item was pushed, not taken, and not signalled";
    }
  }
  producer.join();
}

TEST(MailboxTest, ItemsLeftBehindAreDestroyedWithTheMailbox) {
  auto item = std::make_shared<int>(7);
  {
    Mailbox<std::shared_ptr<int>> box;
    box.Push(item);
    box.Push(item);
    EXPECT_EQ(item.use_count(), 3);
  }
  EXPECT_EQ(item.use_count(), 1);
}

}  // namespace
}  // namespace raftkv::server
