#include "kernels/cuda/conv_algorithms.h"

namespace strata::kernels::cuda {

std::optional<ConvAlgorithm> ConvAlgorithmCache::lookup(const ConvAlgorithmKey& key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  return it->second;
}

void ConvAlgorithmCache::insert(const ConvAlgorithmKey& key, const ConvAlgorithm& algorithm) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_[key] = algorithm;
}

std::optional<ConvAlgorithm> ConvAlgorithmCache::peek(const ConvAlgorithmKey& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

ConvAlgorithmCache::Stats ConvAlgorithmCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return Stats{hits_, misses_, static_cast<int64_t>(entries_.size())};
}

void ConvAlgorithmCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
}

}  // namespace strata::kernels::cuda
