// Step checkpoints (SPEC-continual.md §8.2 and strata's choices table): one safetensors file per
// run and step, <output>/checkpoints/<task>-<dataset>_<name>_<step>.safetensors (MiB's naming),
// written atomically (temporary file + rename, engine/safetensors.h), so a crash never leaves a
// half-written checkpoint under the real name.
//
// Tensors (PyTorch layouts on disk):
//   <model key>                      the model's state dict under its own names (body.*, head.*,
//                                    cls.{k}.*): models::load_weights and PyTorch read them directly
//   optimizer.momentum_buffer.<key>  the SGD momentum buffers (engine/optim/sgd.h)
//   method.<name>                    method state (weight importances), when the method has any
// Metadata (strings): "strata.checkpoint" = format version (1); dataset kind and label count; task
// (reference key) and step; the channel order (raw label of every channel) and classes per step;
// the architecture (flavour, depth, blocks, width, head channels, output stride, norm, pooling,
// model seed); the method (its description and each weight); protocol and convention; the schedule
// (epochs, iterations per epoch, batch size, crop size, base lr, seed); with replay
// (incremental/replay.h) the replayed set's folder, the ratio and the replayed rows per batch
// ("replay.*", absent without replay); the position (epochs and iterations completed); whether the
// step finished ("complete"); the SGD step count.
//
// A step writes its checkpoint at the end of every epoch, every --ckpt-interval iterations when
// asked, and when stopped (--stop-after); the file is "complete" only once the step's last
// iteration ran (the last epoch, as the references keep). The next step accepts only a complete
// checkpoint; --ckpt resumes an incomplete one where it stopped.
//
// Checks (check_checkpoint), each naming the file, the field, the checkpoint's value and the run's:
//   every use       format version; dataset kind and label count; step; the channel order of that
//                   step (the classes and their order); the architecture
//   previous_step   complete. A different task name is accepted when the channel order up to that
//                   step is identical (MiB's 15-5 and 15-1 share one step-0 model, §1.3)
//   resume          the task name, method, protocol, convention, replay (folder and ratio; "none"
//                   without) and schedule (epochs, iterations per epoch, batch size, crop size, lr,
//                   seed) too: resuming changes none of them
//   evaluate        nothing more
// A file that is not a strata step checkpoint (no "strata.checkpoint") or of another format version
// is an error naming it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/optim/sgd.h"
#include "engine/safetensors.h"
#include "models/segmentation_model.h"

namespace strata::incremental {

inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointInfo {
  std::string dataset;                  // label space kind: "voc", "ade20k", "coco"
  int labels = 0;                       // labels in the label space, 0 included (21 VOC, 151 ADE20K)
  std::string task;                     // the task's reference key (or its split string)
  int step = 0;
  std::vector<int> channel_order;       // raw label of every channel at `step`
  models::ModelConfig model;            // architecture and model seed; classes = classes per step
  std::string method;                   // MethodConfig::describe()
  double loss_kd = 0, loss_de = 0, alpha = 1;
  bool unce = false, unkd = false, init_balanced = false;
  std::string protocol, convention;
  int epochs = 0;
  int64_t iterations_per_epoch = 0;
  int batch_size = 0, crop_size = 0;
  double lr = 0;
  uint64_t seed = 0;
  std::string replay_images;  // the replayed set's folder ("": no replay)
  double replay_ratio = 0;
  int replay_rows = 0;    // replayed images per batch
  int ranks = 1;          // data-parallel processes that trained it (batch_size images each)
  int64_t epoch = 0;      // epochs completed
  int64_t iteration = 0;  // iterations completed in the step
  bool complete = false;

  int64_t max_iterations() const { return static_cast<int64_t>(epochs) * iterations_per_epoch; }
  Metadata to_metadata() const;
  // Throws naming `source` and the missing or malformed key.
  static CheckpointInfo from_metadata(const Metadata& metadata, const std::string& source);
};

struct Checkpoint {
  std::string path;
  CheckpointInfo info;
  TensorMap model;                // the model's state dict
  TensorMap optimizer;            // "momentum_buffer.<key>"
  Metadata optimizer_metadata;    // "sgd.steps"
  TensorMap method_state;
};

// "<task>-<dataset>_<name>_<step>.safetensors", with characters other than [A-Za-z0-9._-] of the
// task and name replaced by '_' (split strings such as "0..10/11" contain '/').
std::string checkpoint_file_name(const std::string& task, const std::string& dataset, const std::string& name,
                                 int step);

// Thrown by save_checkpoint when a tensor to be written holds a NaN or an Inf (a diverged model):
// nothing is written, so a file already at the path keeps its previous contents. `tensor` is the
// first such tensor by key (a model key, "optimizer.momentum_buffer.<key>" or "method.<name>").
class NonFiniteCheckpoint : public Error {
 public:
  NonFiniteCheckpoint(const std::string& path, std::string tensor);
  const std::string& tensor() const { return tensor_; }

 private:
  std::string tensor_;
};

// Writes the checkpoint atomically (creating the folder), after checking on the model's device that
// every tensor is finite (engine/finite.h; NonFiniteCheckpoint otherwise). `optimizer` may be null
// (no buffers).
void save_checkpoint(const std::string& path, const CheckpointInfo& info, const models::SegmentationModel& model,
                     const optim::SGD* optimizer, const TensorMap& method_state);
// Whether a checkpoint holding NaN or Inf may be loaded: refused by default (a diverged run's
// weights give meaningless scores and training from them stays NaN); allowed with
// --allow-nonfinite, to look at what diverged.
enum class NonFiniteTensors { refuse, allow };

// Throws naming the path when the file is missing, unreadable or not a strata step checkpoint, and,
// unless `nonfinite` allows it, naming the first tensor holding a NaN or an Inf (engine/finite.h).
Checkpoint load_checkpoint(const std::string& path, NonFiniteTensors nonfinite = NonFiniteTensors::refuse);

enum class CheckpointUse { previous_step, resume, evaluate };
// `expected`: what this run would write at the checkpoint's step (see the file comment).
void check_checkpoint(const Checkpoint& found, const CheckpointInfo& expected, CheckpointUse use);

// "0..15" / "0..15 | 16,17" style text of a channel order split by classes per step, for messages.
std::string describe_channels(const std::vector<int>& channel_order, const std::vector<int64_t>& classes_per_step);

}  // namespace strata::incremental
