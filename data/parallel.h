// run_parallel: calls f(i) for every i in [0, n) on `threads` std::threads (0 = one per hardware
// thread), handing out indices from a shared counter. Data-layer work items (decoding a file,
// rendering a scene) are coarse and uneven, so dynamic hand-out beats static chunks; results must
// not depend on which thread ran an item. The first exception thrown by f stops further hand-out
// and is rethrown by the caller once every thread has finished.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace strata::data {

inline int default_threads() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

template <class F>
void run_parallel(int64_t n, int threads, F&& f) {
  if (threads <= 0) threads = default_threads();
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(n, 1)));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    for (int64_t i; !failed.load() && (i = next.fetch_add(1)) < n;) {
      try {
        f(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  if (threads == 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work);
    for (std::thread& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace strata::data
