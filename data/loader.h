// The threaded loader: worker threads read, decode and transform samples straight into batch
// buffers; the caller takes finished batches in order from a bounded prefetch window.
//
//   Loader loader(dataset, options);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);  // or start_epoch(epoch, first_batch) to resume mid-epoch
//     while (std::optional<Batch> batch = loader.next()) { ... batch->images, batch->labels ... }
//   }
//
// Output: images u8 (N,H,W,3) NHWC RGB, labels u8 (N,H,W). Normalisation (x/255 - mean)/std is the
// engine's normalize_image op, the first op of the model, so the same batches feed the CPU and
// CUDA paths with 4x fewer bytes than f32.
//
// Modes: train (RandomResizedCrop + flip to crop x crop, data/transforms.h), eval (shorter side to
// crop, centre crop), eval_full (the whole image; batch size 1, sizes vary).
// Order: the subset (default: every sample) in its given order, shuffled per epoch when `shuffle`
// (Fisher-Yates on Philox draws keyed by the seed in the epoch's shuffle stream). Each sample's
// crop and flip come from (seed, epoch, sample index), so batches are identical whatever the
// number of workers. drop_last drops the final partial batch.
// Sharding (LoaderOptions::shard, data-parallel training; PyTorch's DistributedSampler): rank r of W
// takes every W-th sample of the epoch's order from position r. Every rank computes the same order
// (same seed and epoch), so the shards are disjoint. In train mode the order is first padded with its
// own beginning to a multiple of W (DistributedSampler's equal shards; drop_last then applies to the
// shard); eval modes do not pad, so the ranks' shards partition the subset exactly and summed
// confusion matrices equal one process's. A sample's crop and flip depend on (seed, epoch, sample), not
// on the rank, so W ranks x batch B see what one process with batch W x B sees, row for row (rank r
// holds rows r, r + W, ... of it). Replayed rows count batches globally: batch b of rank r is global
// batch b W + r in the replay position below.
// Labels go through `label_map` (256 entries, applied to every label pixel after the transform),
// the hook the incremental layer uses to remap classes per step.
//
// Replay (LoaderOptions::replay, the trainer's --replay-images): every batch gets `rows` more rows
// at its end, images of another dataset (a generated image set) through the same train transform.
// The epoch is still one pass over the subset: batch_size rows of it per batch, so batches_per_epoch()
// is unchanged by replay. The replayed set is read as one endless stream cycled in shuffled orders:
// row k of batch b of epoch e is replay position q = ((e * batches_per_epoch() + b) * W + r) * rows + k, the
// sample at q % M of cycle q / M's order (M the set's size; Fisher-Yates on Philox draws keyed by the
// seed in the cycle's replay_shuffle stream), cropped and flipped from (seed, cycle, sample index) in
// the replay_augment stream. A batch's replayed rows are thus a function of (seed, epoch, batch), as
// its own rows are, and start_epoch(epoch, first_batch) resumes them bit for bit. Replayed labels
// carry only the void mark: 255 where the set's label is 255 after the transform, 0 elsewhere, and
// not through label_map (their classes are the teacher's, given at training time).
//
// Errors: a sample that fails to read (missing or corrupt file, size mismatch, label out of range)
// makes next() throw the worker's strata::Error, which names the file, when the caller reaches the
// failing batch. With the dataset's skip_bad (the replayed set's own, for its rows) the sample is
// logged once to stderr and left out: its batch comes out smaller (a batch whose samples all failed
// is skipped). Replay outside train mode with drop_last, with rows < 1 or from an empty set throws
// at construction. Destroying the loader,
// or starting another epoch, while workers run stops them cleanly: samples being decoded finish,
// nothing else starts.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"
#include "engine/tensor.h"

namespace strata::data {

enum class LoaderMode { train, eval, eval_full };

struct LoaderOptions {
  LoaderMode mode = LoaderMode::train;
  int batch_size = 8;
  int crop_size = 512;
  int workers = 2;
  int prefetch = 4;             // batches decoded ahead of the caller (at least 1)
  uint64_t seed = 42;
  bool shuffle = true;          // ignored outside train mode
  bool drop_last = true;        // ignored outside train mode
  ResizedCropOptions crop;      // train mode: scale, ratio, attempts, flip probability
  std::vector<int64_t> subset;  // sample indices to iterate (empty: all, in dataset order)
  std::optional<std::array<uint8_t, 256>> label_map;
  struct Replay {
    Dataset dataset;  // the replayed image set (its sample order is the one `indices` refer to)
    int rows = 0;     // appended to every batch, >= 1
  };
  std::optional<Replay> replay;  // train mode with drop_last only (see the file comment)
  // Data-parallel sharding (see the file comment): this process is rank `rank` of `count`.
  struct Shard {
    int rank = 0;
    int count = 1;
  };
  Shard shard;
};

struct Batch {
  Tensor images;  // u8 (N,H,W,3)
  Tensor labels;  // u8 (N,H,W)
  std::vector<int64_t> indices;    // dataset sample index of each row (the replayed set's for replayed rows)
  std::vector<std::string> stems;  // file stem (VOC id) of each row
  int64_t replayed = 0;            // the last `replayed` rows are replayed images (LoaderOptions::replay)
  int64_t epoch = 0;
  int64_t number = 0;  // batch number within the epoch (counted from its start, also after first_batch)
};

class Loader {
 public:
  // The loader keeps its own copy of the dataset's sample list. Throws on invalid options.
  Loader(const Dataset& dataset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t samples_per_epoch() const;
  int64_t batches_per_epoch() const;
  // Begins epoch `epoch` (abandoning whatever is left of the previous one) at its batch
  // `first_batch`: the batches before it are skipped without being read, and the ones that follow
  // are those of the whole epoch from that batch on, bit for bit (a resumed step replays the rest
  // of an interrupted epoch this way). Throws unless 0 <= first_batch <= batches_per_epoch() (at
  // batches_per_epoch() the epoch is empty).
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch, or nullopt at its end. Throws a worker's error (see above).
  std::optional<Batch> next();
  // The sample order of an epoch (what start_epoch iterates), for inspection and tests.
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // The replayed set's order in cycle `cycle` (see the file comment); throws without replay.
  std::vector<int64_t> replay_order(int64_t cycle) const;

 private:
  struct Slot {
    Batch batch;
    int64_t expected = 0;  // samples in this batch
    int64_t done = 0;
    std::vector<std::exception_ptr> errors;  // per row
    std::vector<uint64_t> streams;           // per row: the Philox stream of its crop and flip
  };

  void worker_loop();
  void process(int64_t generation, int64_t task);
  Slot& slot_for(int64_t batch_number);  // requires mutex_
  int64_t batch_rows(int64_t batch_number) const;
  int64_t rows_per_batch() const { return options_.batch_size + (options_.replay ? options_.replay->rows : 0); }
  // The replayed sample at replay position `position` and its cycle; requires mutex_ (the cached orders).
  std::pair<int64_t, int64_t> replay_sample(int64_t position);
  int64_t shard_size() const;  // samples of this rank's shard of the subset, before drop_last
  bool replayed_row(const Slot& slot, int64_t row) const { return row >= slot.expected - slot.batch.replayed; }

  const Dataset dataset_;
  const LoaderOptions options_;
  std::vector<int64_t> base_order_;

  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable batch_ready_;
  bool stop_ = false;
  bool started_ = false;
  int64_t generation_ = 0;
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t tasks_ = 0;
  int64_t next_task_ = 0;
  int64_t next_batch_ = 0;  // the batch the caller takes next
  std::map<int64_t, Slot> slots_;
  std::set<int64_t> reported_bad_, reported_bad_replayed_;
  std::map<int64_t, std::vector<int64_t>> replay_orders_;  // by cycle: the ones batches in flight use
  std::vector<std::thread> workers_;
};

}  // namespace strata::data
