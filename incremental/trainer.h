// The continual trainer (SPEC-continual.md §4, §8.2): runs the steps of one setting — dataset,
// task, protocol, convention, method — as MiB's run.py runs one step per process, and writes what
// the references write: a step checkpoint, a log and a results CSV.
//
// One step t:
//   1. the model with the classes of steps 0..t (models::ModelConfig.classes = classes per step);
//      step 0 starts from the seeded initialisation or, with `weights`, an ImageNet backbone
//      (models::load_weights, backbone mode); step t >= 1 loads step t-1's checkpoint (the run's own,
//      <output>/checkpoints/<task>-<dataset>_<name>_<t-1>.safetensors, or `step_ckpt`), which must be
//      complete and match the run (incremental/checkpoint.h), into every key but the new classifier;
//   2. the method's step-start hook (MiB: balanced classifier init) and, when a loss uses it, the
//      teacher: the step t-1 model from the same checkpoint, frozen (incremental/teacher.h);
//   3. SGD, Nesterov momentum 0.9, weight decay 1e-4 on every parameter, in MiB's three groups
//      (body, head, classifier; same lr); poly 0.9 per iteration over epochs x iterations per epoch
//      (drop_last); lr / epochs / batch / crop from the recipe (incremental/recipe.h) unless set;
//   4. each iteration: the loader's u8 batch (training images of the step's protocol, labels through
//      the step's training table, RandomResizedCrop + flip) moves to the device, is normalised,
//      the student (train mode) and the teacher run on it, Method::loss gives the weighted total,
//      one backward, one optimizer step, one schedule step;
//   4'. with replay (--replay-images DIR, --replay-ratio R; steps >= 1 only): r = round(R x B) of
//      each batch's B images (at least 1, at most B - 1) come from the image set in DIR (VOC layout,
//      as `strata invert` writes it from the step t-1 checkpoint), through the same crop and flip, and
//      the teacher (loaded for it whatever the method) labels them on the device at each iteration:
//      its argmax over the old classes, void kept (incremental/replay.h). An epoch is still one pass
//      over the step's own images, B - r per batch: iterations per epoch = training images / (B - r);
//      the replayed set cycles through its own shuffled orders (data/loader.h). The checkpoints record
//      the set's folder and R, and a resume under another folder or ratio is refused naming both;
//   5. checkpoints: at the end of every epoch, every `ckpt_interval` iterations when > 0, at
//      `stop_after`, and the complete one after the last iteration;
//   6. evaluation on the step's test set (§2.5: test images of the step, the test label table of
//      the convention; 512-style centre crop after a shorter-side resize at the crop size, or the
//      whole image with eval_full_image), at the end and every `val_interval` epochs when > 0
//      (logged, never used to select a model: the step checkpoint is the last epoch);
//   7. the per-class table, old/new/all with and without background, accuracies (metrics.h), the
//      results CSV row and the average over the steps in the CSV.
// `test` skips 1-5 and evaluates the step's checkpoint (`ckpt`, else the run's own) after
// reloading it (PLOP's fix of MiB's test mode, §7). `ckpt` without `test` resumes the step from a
// checkpoint of the same step: model, momentum buffers, schedule position and loader position.
//
// Determinism: with a fixed seed a step is reproducible: the model's initialisation comes from the
// seed; the loader's order, crops and flips from (seed, epoch, sample index) whatever the number
// of workers; the CPU kernels give the same bits for the same inputs; the mib flavour draws no
// dropout. A resumed step replays the rest of the interrupted epoch's order from the saved
// position (the loader starts that epoch at the next batch, data::Loader::start_epoch), so
// stopping at any saved iteration and resuming gives the same final weights, bit for bit, as an
// uninterrupted run, with replay too (the replayed rows come from (seed, epoch, position)). (The
// torchvision flavour's dropout generator position is not saved: its resumed runs are not
// bit-identical.)
//
// For per-setting binaries and benchmarks: TrainOptions holds everything `strata train` takes
// (incremental/options.h parses it), Trainer::setup() resolves one step's configuration, and
// StepSession (incremental/step_session.h) is one step's training state with train_iteration()
// running exactly one iteration.
//
// The pieces a step is made of live in their own files: the step session (step_session.h),
// evaluation (evaluate.h), when to save, what to write and how to resume (step_checkpoints.h), and
// what is printed and logged (report.h). The loop reads the loss back to the host once per
// --log-interval (report.h's TrainingInterval), never inside an iteration.
//
// Bad data: the test split's labels are checked when the Trainer is built, before any step trains
// (its label index, data/label_index.h): a bad one throws naming the file, or under skip_bad is
// logged and left out of every evaluation (the scores count the images evaluated).
//
// Errors (strata::Error naming the option, task, step or file): an unknown dataset, task or method;
// a step outside the task; a missing or incomplete previous-step checkpoint; a checkpoint of another
// task, dataset, step or architecture; a step with fewer training images than one batch; replay at
// step 0 (or --step all), with a ratio outside (0, 1), a batch below 2, or from a missing, unreadable
// or empty folder, or --replay-ratio without --replay-images; a diverged
// step: a loss term read as NaN or Inf at a logging interval (naming the iterations, the term and the
// last good checkpoint), or a non-finite tensor at a checkpoint save (step_checkpoints.h: nothing is
// written). --device cuda on an emulated CUDA build prints a warning, not an error.
//
// Stopping (stop_when, engine/interrupt.h: main's StopOnSignals on SIGINT/SIGTERM): the flag is read
// on the host once per iteration, after it. When raised, the step writes the checkpoint a periodic
// save would write at that iteration (unless it just did), logs an "interrupted" record and throws
// strata::Interrupted naming the signal, the step and that checkpoint, from which --ckpt resumes the
// step bit-identically. Raised before the step's first iteration (while the label index is scanned,
// the previous checkpoint or the teacher loaded), nothing is written and Interrupted names the step
// to run again (and the --ckpt it resumed from, if any); during an evaluation, the evaluation stops at
// its next batch and Interrupted names the checkpoint already written (the complete one at the
// step's end, the epoch's during --val-interval evaluations), none under --test.
//
// Data parallelism (a `world` of W > 1 ranks, one process each, started by mpirun; MiB's
// torch.distributed training with InPlaceABNSync): every rank builds the same Trainer; each trains on its
// shard of the step's images (data/loader.h's sharding: DistributedSampler's, by seed and epoch), with
// --batch-size images per rank as MiB's, so an epoch is ceil(N / W) / B iterations; the student's norms
// are synchronised (--sync-bn, default on; --no-sync-bn keeps each rank's statistics), gradients are
// averaged over the ranks each iteration and rank 0's parameters are broadcast at each step's start
// (StepSetup::world). The evaluation shards the test images and sums the confusion matrices, so every
// rank's scores equal one process's. Rank 0 alone prints, writes checkpoints (the ranks wait for it
// before going on, so the next step finds it), logs, TensorBoard events and results; with
// --save-predictions each rank writes its own shard's images. PLOP's pseudo-label thresholds are taken
// by every rank over all the step's images (no communication, the same thresholds as one process); the
// EWC/PI/RW importances see the averaged gradients. The stop flag is agreed each iteration (the maximum
// over the ranks), so a signal stops every rank at the same iteration with one checkpoint. A rank that
// fails ends the run (main aborts the world; a rank left waiting in a collective gives up after
// --dist-timeout seconds).
//
// At the start of run(), temporary files of killed runs ("<file>.tmp.<pid>" of a process that no
// longer runs, engine/atomic_file.h) are removed from the run's checkpoint and results folders and
// the dataset's folder (where the label index cache is written), one printed line per file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/label_index.h"
#include "data/loader.h"
#include "engine/device.h"
#include "engine/distributed/communicator.h"
#include "engine/event_file.h"
#include "engine/interrupt.h"
#include "incremental/checkpoint.h"
#include "incremental/evaluate.h"
#include "incremental/method.h"
#include "incremental/metrics.h"
#include "incremental/prediction_images.h"
#include "incremental/protocol.h"
#include "incremental/recipe.h"
#include "incremental/report.h"
#include "incremental/step_session.h"
#include "incremental/task.h"

namespace strata::data {
class DevicePrefetcher;
}

namespace strata::incremental {

struct TrainOptions {
  // data
  std::string dataset = "voc";  // voc | ade20k (also "ade") | coco
  std::string data_root;
  std::string train_split;      // empty: train_aug (VOC), training (ADE20K), train2017 (COCO)
  std::string test_split;       // empty: val (VOC), validation (ADE20K)
  bool skip_bad = false;
  // task
  std::string task = "15-5";
  int step = 0;                 // the step run() trains (run_step() takes any)
  bool all_steps = false;       // run() trains every step in order instead
  Protocol protocol = Protocol::disjoint;
  Convention convention = Convention::plop;
  // model
  std::string arch = "deeplabv3";      // deeplabv3 | pspnet
  std::string backbone;                // models::kBackboneNames; empty: the architecture's (resnet101, PSPNet
                                       // resnet50, BiSeNet resnet18)
  std::string head = "mib";            // mib | torchvision (DeepLabV3's flavour)
  int output_stride = 0;               // 0: the architecture's (DeepLabV3 16, PSPNet 8)
  std::string norm;                    // empty: the head flavour's (inplace_abn for mib)
  std::vector<int> blocks;             // empty: the backbone's
  int64_t width = 0;                   // 0: the backbone's
  int64_t head_channels = 0;           // 0: the backbone's (256; 64 for small)
  int64_t pooling = 32;                // mib head eval-time pooling window
  std::string weights;                 // step 0: ImageNet backbone weights (safetensors)
  // method
  std::string method = "FT";
  MethodOverrides method_overrides;
  bool allow_nonfinite = false;  // --allow-nonfinite: load checkpoints holding NaN or Inf
  bool unfused_losses = false;  // --unfused-losses: MethodConfig::fused_losses off (incremental/method.h)
  // recipe (empty / 0: the recipe's for the step)
  std::vector<double> lr;   // per step; the last value repeats
  std::vector<int> epochs;  // per step; the last value repeats
  int batch_size = 0;
  int crop_size = 0;
  // run
  uint64_t seed = 42;
  int workers = 2;
  std::string output = "runs";
  std::string name = "Experiment";
  std::string device;              // cpu | cuda | cuda:<i>; "": engine/device.h's default_device_text()
  std::string precision;           // f32 | tf32; "": the device's (engine/precision.h)
  int log_interval = 10;           // iterations between training log records
  int val_interval = 0;            // epochs between evaluations during a step (0: at the end only)
  int64_t ckpt_interval = 0;       // iterations between mid-step checkpoints (0: epoch ends only)
  std::string step_ckpt;           // the previous step's checkpoint (default: the run's own)
  std::string ckpt;                // resume this step from it, or with `test` evaluate it
  bool test = false;
  int64_t stop_after = 0;          // stop the step after this many of its iterations (0: never)
  bool eval_full_image = false;
  bool unfolded_teacher = false;   // the teacher's unfolded forward (the reference), not the folded one
  bool detect_anomaly = false;     // every op's output and gradient checked for NaN and Inf
  bool cuda_graphs = true;         // the step replayed as a CUDA graph on CUDA (--no-cuda-graphs: false)
  int eval_batch_size = 0;         // 0: the training batch size
  int sample_num = 0;              // test images drawn as image | labels | prediction in TensorBoard (MiB's)
  std::string save_predictions;    // a folder for every final evaluation's prediction strips ("": none)
  bool overlay = false;            // the strips' predictions blended over the image
  bool progress = true;            // progress bar (redrawn on a terminal, lines otherwise)
  bool print_tables = true;        // the per-class table after each step
  // replay (incremental/replay.h): the image set's folder ("": none) and the share of each batch
  // replayed (unset: kDefaultReplayRatio)
  std::string replay_images;
  std::optional<double> replay_ratio;
  // data parallelism (the Trainer's `world`; main makes it under mpirun): synchronised norms, the
  // collectives' backend and timeout, and --nproc N (strata train runs itself under mpirun -np N)
  bool sync_bn = true;
  std::string dist_backend = "mpi";
  double dist_timeout = 600;
  int nproc = 0;
};

inline constexpr double kDefaultReplayRatio = 0.5;

class Trainer {
 public:
  // Validates the options, opens the training dataset, builds the task and checks the test split's
  // labels (its label index, data/label_index.h). Output goes to `out` (null: silent). With a `world`
  // of more than one rank the run is data parallel (see the file comment); `world` must outlive the
  // Trainer.
  explicit Trainer(TrainOptions options, std::FILE* out = stdout, distributed::Communicator* world = nullptr);

  const TrainOptions& options() const { return options_; }
  const Task& task() const { return *task_; }
  std::vector<int> steps() const;  // the steps run() trains: `step`, or all of them
  StepSetup setup(int step) const;

  // Makes the training loop and the evaluations stop at their next safe point when `flag` is raised
  // (above); `flag` must outlive the runs.
  void stop_when(const StopFlag& flag) { stop_ = &flag; }

  std::vector<StepResult> run();  // every selected step, in order
  StepResult run_step(int step);

  std::string checkpoint_path(int step) const;
  std::string log_path() const;
  std::string results_path() const;
  std::string dataset_name() const;  // "voc" / "ade" / "coco" in file names, as MiB's

  // The metadata this run writes for `step` (schedule and position fields left at defaults).
  CheckpointInfo checkpoint_info(int step) const;
  NonFiniteTensors nonfinite_tensors() const {
    return options_.allow_nonfinite ? NonFiniteTensors::allow : NonFiniteTensors::refuse;
  }

 private:
  struct StepRun;  // one step's state while it trains (trainer.cpp)

  void open_replay_set_if_asked();
  StepRun prepare_step(int step);
  std::optional<Checkpoint> previous_step_checkpoint(StepRun& run);
  void print_step_start(const StepRun& run, const std::optional<Checkpoint>& previous);
  void log_run_configuration();
  void log_step_start(const StepRun& run);
  // The step's own images, B - r per batch, and with `replay` its r replayed ones.
  data::LoaderOptions training_loader_options(const StepRun& run, bool replay) const;
  void compute_pseudo_label_thresholds(StepRun& run);  // PLOP's pass over the step's data
  bool train_epochs(StepRun& run);  // false when stopped by --stop-after
  bool train_epoch(StepRun& run, data::DevicePrefetcher& batches, TrainingInterval& interval, ProgressBar& bar);
  void log_interval(StepRun& run, int64_t epoch, TrainingInterval& interval, double lr);
  void check_finite(const StepRun& run, const IntervalMeans& means, const ModelHealth& health) const;
  void evaluate_mid_step(StepRun& run, ProgressBar& bar);
  StepResult stop_step(StepRun& run);
  void stop_if_requested(StepRun& run, ProgressBar* bar);
  [[noreturn]] void rethrow_evaluation_interrupted(const StepRun& run, const Interrupted& stopped,
                                                   const std::string& checkpoint);
  void remove_stale_temp_files_of_run();
  bool main_rank() const { return world_ == nullptr || world_->rank() == 0; }
  int ranks() const { return world_ == nullptr ? 1 : world_->world_size(); }
  // Rank 0 writes the checkpoint; with several ranks every rank then waits until it is on disk.
  void save_checkpoint(StepRun& run, int64_t iteration, bool complete);
  StepResult finish_step(StepRun& run);

  StepResult evaluate_checkpoint(int step);
  const data::Dataset& test_dataset();
  const data::LabelIndex& test_index();
  // Scores of `model` on step `step`'s test images; with --sample-num, their TensorBoard strips
  // "Sample_<k>/<step>" at `x` (the epoch) when x >= 0.
  // With `final` (a step's last evaluation, or --test's) and --save-predictions, every image's strip
  // goes to its folder, with the previous step's prediction from `previous_checkpoint` when it exists.
  SegmentationScores evaluate_step(models::SegmentationModel& model, int step, int64_t x = -1, bool final = false,
                                   const std::string& previous_checkpoint = "");
  // How this run draws step `step`'s predictions (incremental/prediction_images.h).
  PredictionPicture prediction_picture(int step) const;
  void report_scores(StepResult& result, const std::string& what);
  void print(const std::string& text) const;

  TrainOptions options_;
  std::FILE* out_;
  Device device_;
  Precision precision_ = Precision::f32;
  std::optional<data::Dataset> train_dataset_;
  std::optional<data::LabelIndex> train_index_;
  std::optional<data::Dataset> test_dataset_;
  std::optional<data::LabelIndex> test_index_;
  std::optional<Task> task_;
  std::optional<data::Dataset> replay_set_;  // --replay-images, opened
  std::string replay_folder_;                // its folder, canonical (what checkpoints record)
  void add_sample_images(const std::vector<EvalSample>& samples, const std::vector<int64_t>& order, int step,
                         int64_t x);
  void add_score_scalars(const std::string& prefix, const SegmentationScores& scores, const StepMeans& means, int step,
                         int64_t x);

  JsonlLog log_;
  bool run_logged_ = false;  // the "run" configuration record is in log_
  // TensorBoard's view of the same values, under <output>/logs/<task>-<dataset>/<name>/ (MiB's
  // logdir layout), with MiB's tags suffixed by the step as its Logger does ("Loss/1").
  std::unique_ptr<EventFileWriter> events_;
  const StopFlag* stop_ = nullptr;
  distributed::Communicator* world_ = nullptr;  // null, or a world of more than one rank
};

}  // namespace strata::incremental
