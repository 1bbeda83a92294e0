// new/delete and the standard containers across threads, with the override
// in place: producers build strings, vectors, maps and shared objects (some
// over-aligned, which go through aligned new) and hand them over a queue to
// consumers that check and destroy them, so most objects die on a thread
// other than the one that made them.  Every allocation must be litemalloc's.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "check.h"
#include "lm_probe.h"

namespace {

constexpr int kProducers = 3, kConsumers = 3, kItemsPerProducer = 20000;

struct alignas(128) Wide {
  std::uint64_t words[16];
};

struct Item {
  int id;
  std::string name;
  std::vector<int> numbers;
  std::map<int, std::string> table;
  std::shared_ptr<std::vector<char>> shared;
  std::unique_ptr<Wide> wide;
};

std::mutex queue_lock;
std::condition_variable queue_ready;
std::deque<std::unique_ptr<Item>> queue;
int producers_left = kProducers;

std::unique_ptr<Item> make_item(int id, const std::shared_ptr<std::vector<char>> &shared) {
  auto item = std::make_unique<Item>();
  item->id = id;
  item->name = "item number " + std::to_string(id) + std::string(static_cast<size_t>(id % 300), 'z');
  for (int i = 0; i < id % 97; i++) item->numbers.push_back(id + i);
  for (int i = 0; i < id % 13; i++) item->table[i] = std::to_string(id * i);
  item->shared = shared;
  if (id % 5 == 0) {
    item->wide = std::make_unique<Wide>();
    CHECK(reinterpret_cast<std::uintptr_t>(item->wide.get()) % alignof(Wide) == 0);
    CHECK(lm_owns(item->wide.get()));
    item->wide->words[0] = static_cast<std::uint64_t>(id);
  }
  CHECK(lm_owns(item.get()));
  return item;
}

void check_item(const Item &item) {
  CHECK(item.name.rfind("item number " + std::to_string(item.id), 0) == 0);
  CHECK(item.numbers.size() == static_cast<size_t>(item.id % 97));
  for (size_t i = 0; i < item.numbers.size(); i++) CHECK(item.numbers[i] == item.id + static_cast<int>(i));
  CHECK(item.table.size() == static_cast<size_t>(item.id % 13));
  if (item.wide) CHECK(item.wide->words[0] == static_cast<std::uint64_t>(item.id));
}

void produce(int which) {
  auto shared = std::make_shared<std::vector<char>>(1000, 'q');
  for (int i = 0; i < kItemsPerProducer; i++) {
    auto item = make_item(which * kItemsPerProducer + i, shared);
    std::lock_guard<std::mutex> hold(queue_lock);
    queue.push_back(std::move(item));
    queue_ready.notify_one();
  }
  std::lock_guard<std::mutex> hold(queue_lock);
  producers_left--;
  queue_ready.notify_all();
}

void consume(std::unordered_map<int, std::string> *seen) {
  for (;;) {
    std::unique_ptr<Item> item;
    {
      std::unique_lock<std::mutex> hold(queue_lock);
      queue_ready.wait(hold, [] { return !queue.empty() || producers_left == 0; });
      if (queue.empty()) return;
      item = std::move(queue.front());
      queue.pop_front();
    }
    check_item(*item);
    (*seen)[item->id] = item->name.substr(0, 20);
  }  // item destroyed here, on this thread
}

}  // namespace

int main() {
  size_t before = lm_probe_allocs();
  int *one = new int(7);
  CHECK(lm_owns(one));
  delete one;
  auto *many = new std::string[100];
  CHECK(lm_owns(many));
  delete[] many;

  std::vector<std::thread> threads;
  std::vector<std::unordered_map<int, std::string>> seen(kConsumers);
  for (int i = 0; i < kConsumers; i++) threads.emplace_back(consume, &seen[i]);
  for (int i = 0; i < kProducers; i++) threads.emplace_back(produce, i);
  for (auto &t : threads) t.join();

  size_t total = 0;
  for (auto &s : seen) total += s.size();
  CHECK(total == static_cast<size_t>(kProducers * kItemsPerProducer));
  size_t served = lm_probe_allocs() - before;
  CHECK(served >= static_cast<size_t>(kProducers * kItemsPerProducer * 5));
  std::printf("cxx_threads_test: OK (%zu allocations served by litemalloc)\n", served);
  return 0;
}
