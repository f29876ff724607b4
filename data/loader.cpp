// The threaded loader (see loader.h). Work is handed out per sample: task t of the epoch is row
// t % batch_size of batch t / batch_size, so all workers help finish the batch the caller waits
// for. A worker takes a task only when its batch is within `prefetch` batches of the caller's, which
// bounds memory. Decoding happens outside the mutex, into the batch tensors (rows are disjoint); a
// worker keeps its own handles on the tensors, so an epoch abandoned mid-way never frees memory a
// worker is still writing, and a generation counter makes late results of that epoch be dropped.
#include "data/loader.h"

#include <algorithm>
#include <cstring>
#include <iostream>

#include "engine/error.h"
#include "kernels/common/philox.h"

namespace strata::data {

Loader::Loader(const Dataset& dataset, LoaderOptions options) : dataset_(dataset), options_(std::move(options)) {
  const char* op = "Loader";
  check(options_.batch_size >= 1, op, ": batch_size must be >= 1, got ", options_.batch_size);
  check(options_.workers >= 1, op, ": workers must be >= 1, got ", options_.workers);
  check(options_.prefetch >= 1, op, ": prefetch must be >= 1, got ", options_.prefetch);
  check(options_.mode == LoaderMode::eval_full || (options_.crop_size >= 1 && options_.crop_size <= 16384), op,
        ": crop_size must be in 1..16384, got ", options_.crop_size);
  check(options_.mode != LoaderMode::eval_full || options_.batch_size == 1, op,
        ": full-image evaluation has images of different sizes, so batch_size must be 1, got ", options_.batch_size);
  if (options_.subset.empty()) {
    base_order_.resize(static_cast<size_t>(dataset_.size()));
    for (int64_t i = 0; i < dataset_.size(); ++i) base_order_[static_cast<size_t>(i)] = i;
  } else {
    for (int64_t i : options_.subset) {
      check(i >= 0 && i < dataset_.size(), op, ": subset index ", i, " is outside the dataset's ", dataset_.size(),
            " samples");
    }
    base_order_ = options_.subset;
  }
  check(options_.shard.count >= 1 && options_.shard.rank >= 0 && options_.shard.rank < options_.shard.count, op,
        ": shard rank ", options_.shard.rank, " of ", options_.shard.count, " is not a rank (expected 0..count-1)");
  if (options_.replay) {
    check(options_.mode == LoaderMode::train && options_.drop_last, op,
          ": replayed rows need train mode with drop_last (every batch then has batch_size rows of the subset)");
    check(options_.replay->rows >= 1, op, ": replay rows must be >= 1, got ", options_.replay->rows);
    check(options_.replay->dataset.size() >= 1, op, ": the replayed set ", options_.replay->dataset.root(),
          " has no sample");
  }
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  batch_ready_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int64_t Loader::samples_per_epoch() const {
  const int64_t n = shard_size();
  if (options_.mode == LoaderMode::train && options_.drop_last) return n / options_.batch_size * options_.batch_size;
  return n;
}

int64_t Loader::batches_per_epoch() const {
  return (samples_per_epoch() + options_.batch_size - 1) / options_.batch_size;
}

int64_t Loader::batch_rows(int64_t batch_number) const {
  return std::min<int64_t>(rows_per_batch(), tasks_ - batch_number * rows_per_batch());
}

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order = base_order_;
  const bool train = options_.mode == LoaderMode::train;
  if (train && options_.shuffle) {
    const uint64_t stream = random_stream(RandomPurpose::shuffle, static_cast<uint64_t>(epoch));
    for (size_t i = order.size(); i > 1; --i) {
      size_t j =
          static_cast<size_t>(uniform_below(philox::word(options_.seed, i - 1, stream), static_cast<int64_t>(i)));
      std::swap(order[i - 1], order[j]);
    }
  }
  const auto ranks = static_cast<size_t>(options_.shard.count);
  if (ranks == 1) return order;
  // Training pads the order with its own start to a multiple of the ranks (equal shards); evaluation
  // does not (the shards are then exactly a partition of the samples).
  if (train && !order.empty()) {
    const size_t padded = (order.size() + ranks - 1) / ranks * ranks;
    for (size_t i = 0; order.size() < padded; ++i) order.push_back(order[i]);
  }
  std::vector<int64_t> shard;
  for (size_t i = static_cast<size_t>(options_.shard.rank); i < order.size(); i += ranks) shard.push_back(order[i]);
  return shard;
}

int64_t Loader::shard_size() const {
  const auto n = static_cast<int64_t>(base_order_.size());
  const int64_t ranks = options_.shard.count, rank = options_.shard.rank;
  if (ranks == 1) return n;
  if (options_.mode == LoaderMode::train) return (n + ranks - 1) / ranks;
  return n / ranks + (rank < n % ranks ? 1 : 0);
}

std::vector<int64_t> Loader::replay_order(int64_t cycle) const {
  check(options_.replay.has_value(), "Loader::replay_order: this loader replays no set");
  const int64_t size = options_.replay->dataset.size();
  std::vector<int64_t> order(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) order[static_cast<size_t>(i)] = i;
  const uint64_t stream = random_stream(RandomPurpose::replay_shuffle, static_cast<uint64_t>(cycle));
  for (size_t i = order.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(uniform_below(philox::word(options_.seed, i - 1, stream), static_cast<int64_t>(i)));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

std::pair<int64_t, int64_t> Loader::replay_sample(int64_t position) {
  const int64_t size = options_.replay->dataset.size();
  const int64_t cycle = position / size;
  auto it = replay_orders_.find(cycle);
  if (it == replay_orders_.end()) {
    // Batches in flight span at most a few cycles: the older ones go.
    while (replay_orders_.size() >= 4) replay_orders_.erase(replay_orders_.begin());
    it = replay_orders_.emplace(cycle, replay_order(cycle)).first;
  }
  return {it->second[static_cast<size_t>(position % size)], cycle};
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  check(first_batch >= 0 && first_batch <= batches_per_epoch(), "Loader::start_epoch: first_batch ", first_batch,
        " of epoch ", epoch, " is outside the epoch's ", batches_per_epoch(), " batches (expected 0..",
        batches_per_epoch(), ")");
  std::vector<int64_t> order = epoch_order(epoch);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    // Replay keeps drop_last: every batch is full, batch_size rows of the subset then the replayed ones.
    tasks_ = options_.replay ? batches_per_epoch() * rows_per_batch() : samples_per_epoch();
    // Task t is row t % rows of batch t / rows: starting the tasks at the first batch's first row
    // skips the earlier batches entirely (no read, no decode).
    next_task_ = std::min(tasks_, first_batch * rows_per_batch());
    next_batch_ = first_batch;
    slots_.clear();
    started_ = true;
  }
  if (workers_.empty()) {
    for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  work_ready_.notify_all();
}

Loader::Slot& Loader::slot_for(int64_t batch_number) {
  auto it = slots_.find(batch_number);
  if (it != slots_.end()) return it->second;
  Slot& slot = slots_[batch_number];
  slot.expected = batch_rows(batch_number);
  slot.errors.resize(static_cast<size_t>(slot.expected));
  slot.batch.epoch = epoch_;
  slot.batch.number = batch_number;
  slot.batch.replayed = options_.replay ? options_.replay->rows : 0;
  const int64_t own = slot.expected - slot.batch.replayed;
  for (int64_t row = 0; row < own; ++row) {
    int64_t sample = order_[static_cast<size_t>(batch_number * options_.batch_size + row)];
    slot.batch.indices.push_back(sample);
    slot.batch.stems.push_back(dataset_.sample(sample).stem);
    slot.streams.push_back(random_stream(RandomPurpose::augment, static_cast<uint64_t>(epoch_)));
  }
  for (int64_t k = 0; k < slot.batch.replayed; ++k) {
    const int64_t ranks = options_.shard.count;
    const int64_t global_batch = (epoch_ * batches_per_epoch() + batch_number) * ranks + options_.shard.rank;
    const int64_t position = global_batch * slot.batch.replayed + k;
    const auto [sample, cycle] = replay_sample(position);
    slot.batch.indices.push_back(sample);
    slot.batch.stems.push_back(options_.replay->dataset.sample(sample).stem);
    slot.streams.push_back(random_stream(RandomPurpose::replay_augment, static_cast<uint64_t>(cycle)));
  }
  if (options_.mode != LoaderMode::eval_full) {
    const int64_t crop = options_.crop_size;
    slot.batch.images = Tensor::empty({slot.expected, crop, crop, 3}, DType::u8);
    slot.batch.labels = Tensor::empty({slot.expected, crop, crop}, DType::u8);
  }
  return slot;
}

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [&] {
      return stop_ ||
             (started_ && next_task_ < tasks_ && next_task_ / rows_per_batch() < next_batch_ + options_.prefetch);
    });
    if (stop_) return;
    const int64_t task = next_task_++;
    const int64_t generation = generation_;
    const int64_t batch_number = task / rows_per_batch();
    const int64_t row = task % rows_per_batch();
    int64_t sample = 0;
    uint64_t stream = 0;
    bool replayed = false;
    std::exception_ptr error;
    Tensor images, labels;
    try {
      Slot& slot = slot_for(batch_number);
      images = slot.batch.images;
      labels = slot.batch.labels;
      sample = slot.batch.indices[static_cast<size_t>(row)];
      stream = slot.streams[static_cast<size_t>(row)];
      replayed = replayed_row(slot, row);
    } catch (...) {
      error = std::current_exception();
    }
    lock.unlock();
    if (!error) {
      try {
        Dataset::Item item = replayed ? options_.replay->dataset.read(sample) : dataset_.read(sample);
        uint8_t* image_out = nullptr;
        uint8_t* label_out = nullptr;
        int64_t label_pixels = 0;
        if (options_.mode == LoaderMode::eval_full) {
          images = Tensor::empty({1, item.image.height, item.image.width, 3}, DType::u8);
          labels = Tensor::empty({1, item.label.height, item.label.width}, DType::u8);
          std::memcpy(images.data<uint8_t>(), item.image.pixels.data(), item.image.pixels.size());
          std::memcpy(labels.data<uint8_t>(), item.label.pixels.data(), item.label.pixels.size());
          label_out = labels.data<uint8_t>();
          label_pixels = labels.numel();
        } else {
          const int64_t crop = options_.crop_size;
          image_out = images.data<uint8_t>() + row * crop * crop * 3;
          label_out = labels.data<uint8_t>() + row * crop * crop;
          label_pixels = crop * crop;
          if (options_.mode == LoaderMode::train) {
            SampleRandom random(options_.seed, stream, static_cast<uint64_t>(sample));
            train_transform(item.image, item.label, options_.crop_size, options_.crop, random, image_out, label_out);
          } else {
            eval_transform(item.image, item.label, options_.crop_size, image_out, label_out);
          }
        }
        if (replayed) {
          for (int64_t i = 0; i < label_pixels; ++i) label_out[i] = label_out[i] == 255 ? 255 : 0;
        } else if (options_.label_map) {
          const std::array<uint8_t, 256>& map = *options_.label_map;
          for (int64_t i = 0; i < label_pixels; ++i) label_out[i] = map[label_out[i]];
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
    lock.lock();
    if (generation != generation_) continue;  // the epoch was abandoned; drop the result
    auto it = slots_.find(batch_number);
    if (it == slots_.end()) continue;
    Slot& slot = it->second;
    slot.errors[static_cast<size_t>(row)] = error;
    if (options_.mode == LoaderMode::eval_full && !error) {
      slot.batch.images = images;
      slot.batch.labels = labels;
    }
    if (++slot.done == slot.expected) batch_ready_.notify_all();
  }
}

std::optional<Batch> Loader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  check(started_, "Loader::next: call start_epoch(epoch) first");
  for (;;) {
    if (next_batch_ >= batches_per_epoch()) return std::nullopt;
    const int64_t wanted = next_batch_;
    batch_ready_.wait(lock, [&] {
      auto it = slots_.find(wanted);
      return stop_ || (it != slots_.end() && it->second.done == it->second.expected);
    });
    check(!stop_, "Loader::next: the loader is shutting down");
    Slot slot = std::move(slots_.at(wanted));
    slots_.erase(wanted);
    ++next_batch_;
    work_ready_.notify_all();

    std::vector<int64_t> good;
    int64_t good_replayed = 0;
    for (int64_t row = 0; row < slot.expected; ++row) {
      const std::exception_ptr& error = slot.errors[static_cast<size_t>(row)];
      const bool replayed = replayed_row(slot, row);
      if (!error) {
        good.push_back(row);
        good_replayed += replayed ? 1 : 0;
        continue;
      }
      if (!(replayed ? options_.replay->dataset.skip_bad() : dataset_.skip_bad())) {
        lock.unlock();
        std::rethrow_exception(error);
      }
      int64_t sample = slot.batch.indices[static_cast<size_t>(row)];
      if ((replayed ? reported_bad_replayed_ : reported_bad_).insert(sample).second) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          std::cerr << "strata: skipping " << (replayed ? "replayed sample " : "sample ") << sample << " ("
                    << slot.batch.stems[static_cast<size_t>(row)] << "): " << e.what() << "\n";
        }
      }
    }
    if (good.empty()) continue;
    if (static_cast<int64_t>(good.size()) == slot.expected) return std::move(slot.batch);

    // Compact the rows that were read.
    Batch& in = slot.batch;
    Batch out;
    out.epoch = in.epoch;
    out.number = in.number;
    out.replayed = good_replayed;
    const int64_t rows = static_cast<int64_t>(good.size());
    Shape image_shape = in.images.shape(), label_shape = in.labels.shape();
    image_shape[0] = rows;
    label_shape[0] = rows;
    out.images = Tensor::empty(image_shape, DType::u8);
    out.labels = Tensor::empty(label_shape, DType::u8);
    const int64_t image_row = in.images.numel() / in.images.size(0), label_row = in.labels.numel() / in.labels.size(0);
    for (int64_t r = 0; r < rows; ++r) {
      int64_t src = good[static_cast<size_t>(r)];
      std::memcpy(out.images.data<uint8_t>() + r * image_row, in.images.data<uint8_t>() + src * image_row,
                  static_cast<size_t>(image_row));
      std::memcpy(out.labels.data<uint8_t>() + r * label_row, in.labels.data<uint8_t>() + src * label_row,
                  static_cast<size_t>(label_row));
      out.indices.push_back(in.indices[static_cast<size_t>(src)]);
      out.stems.push_back(in.stems[static_cast<size_t>(src)]);
    }
    return out;
  }
}

}  // namespace strata::data
