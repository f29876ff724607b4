#include "incremental/options.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>
#include <limits>
#include <sstream>
#include <string_view>

#include "engine/command_line.h"
#include "engine/distributed/communicator.h"
#include "engine/error.h"
#include "engine/precision.h"

namespace strata::incremental {

namespace {

uint64_t as_seed(const std::string& option, const std::string& text) {
  return static_cast<uint64_t>(integer_at_least(option, text, 0));
}

OptionSpec value(const char* name, const char* argument, const char* help,
                 std::function<void(TrainOptions&, const std::string&)> apply) {
  return OptionSpec{name, argument, help, std::move(apply)};
}

OptionSpec flag(const char* name, const char* help, std::function<void(TrainOptions&)> apply) {
  return OptionSpec{name, nullptr, help, [apply](TrainOptions& o, const std::string&) { apply(o); }};
}

std::vector<OptionSpec> data_and_task_specs() {
  return {
      // data
      value("--dataset", "NAME",
            "voc, ade20k (ade) or coco. A generated dataset (strata make-dataset) is voc, or coco with --layout coco. "
            "Default voc.",
            [](TrainOptions& o, const std::string& v) { o.dataset = v; }),
      value("--data-root", "DIR",
            "the dataset's folder: VOC with splits/train_aug.txt and splits/val.txt (MiB's PascalVOC12 layout) or "
            "ImageSets/Segmentation; ADE20K's ADEChallengeData2016; COCO's folder of train2017/, val2017/ and "
            "annotations/. Required.",
            [](TrainOptions& o, const std::string& v) { o.data_root = v; }),
      value("--train-split", "NAME",
            "training list (default train_aug for VOC, training for ADE20K, train2017 for COCO)",
            [](TrainOptions& o, const std::string& v) { o.train_split = v; }),
      value("--test-split", "NAME", "test list (default val for VOC, validation for ADE20K, val2017 for COCO)",
            [](TrainOptions& o, const std::string& v) { o.test_split = v; }),
      flag("--allow-nonfinite",
           "load a checkpoint (--ckpt, --step-ckpt, the previous step's, eval's) even when a tensor holds NaN or Inf, "
           "to look at a diverged run; refused by default, naming the tensor",
           [](TrainOptions& o) { o.allow_nonfinite = true; }),
      flag("--skip-bad", "log and skip unreadable samples instead of stopping",
           [](TrainOptions& o) { o.skip_bad = true; }),
      // task
      value("--task", "NAME",
            "the class-incremental task: a reference key (VOC 19-1, 15-5, 15-5s, 15-5s_b..w, 10-1, 5-3, ...; ADE "
            "100-50, 100-10, 100-5, 50, ...), a paper name (15-1 = 15-5s), a split 'A-B[-C]' or class lists "
            "'0..10/11,12/13'. Default 15-5.",
            [](TrainOptions& o, const std::string& v) { o.task = v; }),
      value("--step", "N|all",
            "the step to train (each step is usually its own run, as MiB's), or all of them in order. Default 0.",
            [](TrainOptions& o, const std::string& v) {
              o.all_steps = v == "all";
              if (!o.all_steps) {
                const int64_t step = parse_integer("--step", v);
                check(step >= 0 && step <= std::numeric_limits<int>::max(), "--step must be >= 0 or 'all', got ", v);
                o.step = static_cast<int>(step);
              }
            }),
      value("--protocol", "NAME",
            "disjoint (default, MiB's CLI default: no future class in a step's images) or overlapped",
            [](TrainOptions& o, const std::string& v) { o.protocol = parse_protocol(v); }),
      flag("--overlap", "the overlapped protocol (MiB's flag; same as --protocol overlapped)",
           [](TrainOptions& o) { o.protocol = Protocol::overlapped; }),
      value("--convention", "NAME",
            "plop (default: VOC void ignored in training; unseen classes are background at test; ADE raw 0 counted) "
            "or mib (void is background in training; unseen classes ignored at test; ADE raw 0 ignored)",
            [](TrainOptions& o, const std::string& v) { o.convention = parse_convention(v); }),
  };
}

std::vector<OptionSpec> model_and_method_specs() {
  return {
      // model
      value("--backbone", "NAME",
            "resnet101, resnet50, resnet34, resnet18 (basic blocks), or small: strata's CPU configuration, "
            "ResNet-14 (one bottleneck per stage) of width 16 with a 64-channel head (default: the architecture's "
            "reference, resnet101; PSPNet resnet50; BiSeNet resnet18)",
            [](TrainOptions& o, const std::string& v) { o.backbone = v; }),
      value("--head", "NAME", "mib (default: MiB/PLOP's DeepLabV3 head, In-place ABN) or torchvision",
            [](TrainOptions& o, const std::string& v) { o.head = v; }),
      value("--arch", "NAME",
            "deeplabv3 (default), pspnet: PSPNet as hszhao/semseg builds it (deep-stem ResNet, pyramid pooling "
            "with bins 1/2/3/6, an aux head on stage 3 with loss weight 0.4; batch norm, output stride 8), "
            "deeplabv3plus: DeepLabV3+ as jfzhang95/pytorch-deeplab-xception builds it (ASPP, a decoder on stage 1's "
            "features, multi-grid stage 4; batch norm, output stride 16), or bisenet: BiSeNet v1 as "
            "CoinCheung/BiSeNet builds it (spatial path, context path with attention refinement on the backbone at "
            "output stride 32, feature fusion, two aux heads with loss weight 1; batch norm)",
            [](TrainOptions& o, const std::string& v) { o.arch = v; }),
      value("--output-stride", "N",
            "8, 16 or 32 (default: the architecture's, 16 for DeepLabV3(+), 8 for PSPNet, 32 for BiSeNet)",
            [](TrainOptions& o, const std::string& v) { o.output_stride = int_at_least("--output-stride", v, 1); }),
      value("--norm", "NAME", "inplace_abn or batch_norm (default: the head's: inplace_abn for mib)",
            [](TrainOptions& o, const std::string& v) { o.norm = v; }),
      value("--blocks", "A,B,C,D", "blocks per backbone stage, overriding the backbone's",
            [](TrainOptions& o, const std::string& v) {
              o.blocks.clear();
              for (const std::string& b : split_commas(v)) o.blocks.push_back(int_at_least("--blocks", b, 1));
            }),
      value("--width", "N", "backbone width (stem channels; 64 for ResNet-50/101, 16 for small)",
            [](TrainOptions& o, const std::string& v) { o.width = integer_at_least("--width", v, 1); }),
      value("--head-channels", "N", "the head's channels (256 for ResNet-50/101, 64 for small)",
            [](TrainOptions& o, const std::string& v) { o.head_channels = integer_at_least("--head-channels", v, 1); }),
      value("--pooling", "N", "mib head: eval-time image pooling window (MiB's --pooling, default 32; 0 = global)",
            [](TrainOptions& o, const std::string& v) { o.pooling = integer_at_least("--pooling", v, 0); }),
      value("--weights", "FILE",
            "step 0 only: ImageNet backbone weights (safetensors, tools/convert_weights.py); default: seeded "
            "random initialisation",
            [](TrainOptions& o, const std::string& v) { o.weights = v; }),
      // method
      value("--method", "NAME",
            "FT (default), LwF (KD x100; Li & Hoiem 2016), LwF-MC (one-hot BCE from step 0 + sigmoid distillation "
            "x10; iCaRL's loss, Rebuffi et al. 2017), ILT (KD x100 + backbone MSE x100; Michieli & Zanuttigh 2019), "
            "EWC (Fisher-weighted penalty towards the previous step's weights; Kirkpatrick et al. 2017), PI (path "
            "integral importance, SI; Zenke et al. 2017), RW (Fisher + path score; Riemannian Walk, Chaudhry et al. "
            "2018), MiB (unbiased CE, unbiased KD x10 - x100 on VOC 15-1 and 10-1 - and balanced classifier init; "
            "Cermelli et al. 2020), each as MiB's code (fcdl94/MiB) implements it, or PLOP (entropy pseudo-labels "
            "of background, Local POD, adaptive factor and MiB's init; Douillard et al. 2021) as PLOP's code "
            "(arthurdouillard/CVPR2021_PLOP) does; case-insensitive. The flags below change a preset term by term.",
            [](TrainOptions& o, const std::string& v) { o.method = v; }),
      value("--loss-kd", "W", "weight of the output distillation (lambda_kd; 0 = off)",
            [](TrainOptions& o, const std::string& v) { o.method_overrides.loss_kd = parse_real("--loss-kd", v); }),
      value("--loss-de", "W", "weight of the MSE between student and teacher backbone outputs (ILT; 0 = off)",
            [](TrainOptions& o, const std::string& v) { o.method_overrides.loss_de = parse_real("--loss-de", v); }),
      flag("--unce", "unbiased cross-entropy at steps >= 1 (MiB)",
           [](TrainOptions& o) { o.method_overrides.unce = true; }),
      flag("--unkd", "the distillation term is MiB's unbiased KD (needs --loss-kd > 0)",
           [](TrainOptions& o) { o.method_overrides.unkd = true; }),
      flag("--init-balanced", "MiB's classifier initialisation of the new classes at steps >= 1",
           [](TrainOptions& o) { o.method_overrides.init_balanced = true; }),
      value("--alpha", "A", "multiplies the teacher logits before their softmax in KD (default 1)",
            [](TrainOptions& o, const std::string& v) { o.method_overrides.alpha = parse_real("--alpha", v); }),
      value("--kd-temperature", "T",
            "the output distillation (kd or unkd) at temperature T: student and teacher logits divided by T in "
            "their softmaxes and the loss times T^2, as Hinton's KD (default 1, the references'; the LwF ablation "
            "log's tN)",
            [](TrainOptions& o, const std::string& v) {
              o.method_overrides.kd_temperature = parse_real("--kd-temperature", v);
            }),
      value("--kd-loss", "ce|kl|l2",
            "the output distillation's loss: ce, the references' soft cross-entropy -sum q log p (default); kl, the "
            "KL divergence (the same gradient, a value lower by the teacher's entropy; the log's distill_real_kl); "
            "l2, the mean squared difference of the probabilities (the log's distill_kl runs; not with --unkd)",
            [](TrainOptions& o, const std::string& v) {
              check(v == "ce" || v == "kl" || v == "l2", "--kd-loss expects ce, kl or l2, got '", v, "'");
              o.method_overrides.kd_loss = v == "ce"   ? DistillationLoss::cross_entropy
                                           : v == "kl" ? DistillationLoss::kl_divergence
                                                       : DistillationLoss::l2;
            }),
      flag("--kd-exclude-background",
           "the output distillation leaves channel 0 out of both softmaxes and distils the old classes only. The "
           "references distil background (the log's include_bg runs); its runs without include_bg are this flag "
           "(not with --unkd)",
           [](TrainOptions& o) { o.method_overrides.kd_exclude_background = true; }),
      flag("--icarl",
           "LwF-MC (iCaRL's loss, as MiB's --icarl): the one-hot BCE replaces CE at every step, step 0 included, "
           "and at steps >= 1 the old channels are distilled with a BCE against the teacher's sigmoids",
           [](TrainOptions& o) { o.method_overrides.icarl = true; }),
      value("--icarl-importance", "W",
            "LwF-MC: weight of the sigmoid distillation, summed over the old channels (MiB's --icarl_importance; "
            "default 1, 10 under --method LwF-MC; 0 = off)",
            [](TrainOptions& o, const std::string& v) {
              o.method_overrides.icarl_importance = parse_real("--icarl-importance", v);
            }),
      flag("--icarl-disjoint",
           "LwF-MC: at steps >= 1 one BCE whose old channels' targets are the teacher's sigmoids, in place of "
           "the BCE + distillation (MiB's --icarl_disjoint; no weight, and ignored pixels are not masked, as there)",
           [](TrainOptions& o) { o.method_overrides.icarl_disjoint = true; }),
      flag("--icarl-bkg",
           "LwF-MC with --icarl-disjoint: the background channel's target stays the labels' (MiB's --icarl_bkg)",
           [](TrainOptions& o) { o.method_overrides.icarl_bkg = true; }),
      value("--reg-importance", "W",
            "EWC, PI, RW: weight of the penalty towards the previous step's weights (MiB's --reg_importance; "
            "presets: EWC and PI 500 under --convention mib, 100 under plop as the PLOP repository; RW 100)",
            [](TrainOptions& o, const std::string& v) {
              o.method_overrides.reg_importance = parse_real("--reg-importance", v);
            }),
      value("--reg-alpha", "A",
            "EWC, RW: the Fisher estimate's moving average F = A*g^2 + (1-A)*F, every iteration (MiB's --reg_alpha; "
            "default 0.9)",
            [](TrainOptions& o, const std::string& v) { o.method_overrides.reg_alpha = parse_real("--reg-alpha", v); }),
      value("--reg-iterations", "N",
            "RW: iterations between updates of the path score (MiB's --reg_iterations; default 10)",
            [](TrainOptions& o, const std::string& v) {
              o.method_overrides.reg_iterations = integer_at_least("--reg-iterations", v, 1);
            }),
      flag("--reg-no-normalize",
           "EWC, PI, RW: penalise with the previous step's importance as accumulated, not min-max normalised per "
           "tensor (MiB's --reg_no_normalize)",
           [](TrainOptions& o) { o.method_overrides.reg_no_normalize = true; }),
      value("--pod", "local",
            "PLOP: Local POD distillation of the stage pre-activations and the head output at steps >= 1 (PLOP's "
            "--pod; 'local' is the only kind)",
            [](TrainOptions& o, const std::string& v) {
              check(v == "local", "--pod expects 'local' (PLOP's Local POD), got '", v, "'");
              o.method_overrides.pod = true;
            }),
      value(
          "--pod-factor", "W",
          "PLOP: Local POD's weight on each feature map (PLOP's --pod_factor; 0.01 under --method PLOP on VOC, "
          "0.001 on ADE20K as PLOP's ADE scripts)",
          [](TrainOptions& o, const std::string& v) { o.method_overrides.pod_factor = parse_real("--pod-factor", v); }),
      flag("--pod-logits",
           "PLOP: Local POD on the low-resolution logits too, the new classes' channels summed into background "
           "(PLOP's --pod_logits)",
           [](TrainOptions& o) { o.method_overrides.pod_logits = true; }),
      value("--pod-logits-factor", "W",
            "PLOP: Local POD's weight on the logits (PLOP's pod_options factor: 0.0005 under --method PLOP, 0.00001 "
            "on ADE20K as PLOP's ADE scripts)",
            [](TrainOptions& o, const std::string& v) {
              o.method_overrides.pod_logits_factor = parse_real("--pod-logits-factor", v);
            }),
      value("--pseudo", "entropy",
            "PLOP: background pixels take the teacher's class where its entropy is below that class's threshold, "
            "computed over the step's data before it trains; 255 elsewhere (PLOP's --pseudo entropy)",
            [](TrainOptions& o, const std::string& v) {
              check(v == "entropy", "--pseudo expects 'entropy' (PLOP's entropy pseudo-labels), got '", v, "'");
              o.method_overrides.pseudo = true;
            }),
      value("--pseudo-median", "reference|fixed",
            "PLOP: how the thresholds are read from the entropy histogram. reference (default under --convention "
            "plop) reproduces PLOP's code, whose 'median' adds bin indices instead of counts and whose entropy is "
            "normalised twice, so published numbers can be reproduced; it is right only when a class's first bin "
            "holds half its pixels. fixed (default under mib) is the true median of the entropy normalised once",
            [](TrainOptions& o, const std::string& v) {
              check(v == "reference" || v == "fixed", "--pseudo-median expects reference or fixed, got '", v, "'");
              o.method_overrides.pseudo_median = v == "reference" ? PseudoMedian::reference : PseudoMedian::fixed;
            }),
      value("--threshold", "T", "PLOP: the floor of every pseudo-label threshold (PLOP's --threshold; 0.001)",
            [](TrainOptions& o, const std::string& v) {
              o.method_overrides.pseudo_threshold = parse_real("--threshold", v);
            }),
      flag("--classif-adaptive-factor",
           "PLOP: each image's cross-entropy times the share of its background pixels that got a pseudo-label "
           "(PLOP's --classif_adaptive_factor)",
           [](TrainOptions& o) { o.method_overrides.classif_adaptive_factor = true; }),
      value("--share-stages", "K",
            "the stem and the first K ResNet stages (1-4) frozen and shared by the teacher and the student at steps "
            ">= 1: computed once per batch, by the teacher, not twice (the LwF ablation log's share_res1..."
            "share_res1234; needs a method with a teacher)",
            [](TrainOptions& o, const std::string& v) {
              const int64_t k = parse_integer("--share-stages", v);
              check(k >= 1 && k <= 4, "--share-stages must be 1 to 4 (ResNet stages), got ", k);
              o.method_overrides.share_stages = static_cast<int>(k);
            }),
      flag("--freeze-backbone",
           "steps >= 1: the backbone's weights are not trained (MiB's --freeze, ILT's 'encoder fixed'; MiB's code "
           "also freezes it at step 0, strata never does). No gradient is computed for it, so the backward stops "
           "at the head; its batch-norm statistics still update in training mode, as in MiB",
           [](TrainOptions& o) { o.method_overrides.freeze_backbone = true; }),
      flag("--freeze-old-classifier",
           "steps >= 1: the classifier rows of the previous steps' classes are not trained, only the new ones "
           "(the LwF ablation log's fix_branch)",
           [](TrainOptions& o) { o.method_overrides.freeze_old_classifier = true; }),
      flag("--unfused-losses",
           "compute the logit losses as the references do, from small ops on logits upsampled to the crop, instead "
           "of the default fused op on the low-resolution logits (same values within float rounding; slower, and "
           "it stores full-resolution logits: for comparison and debugging); EWC/PI/RW's penalty then runs as an "
           "autograd "
           "op with its own backward, as MiB's code, instead of fused into the importance update",
           [](TrainOptions& o) { o.unfused_losses = true; }),
  };
}

std::vector<OptionSpec> recipe_and_run_specs() {
  return {
      // recipe
      value("--lr", "LR[,LR...]",
            "base learning rate, one value or one per step (the last repeats); default 0.01 at step 0, 0.001 later",
            [](TrainOptions& o, const std::string& v) {
              o.lr.clear();
              for (const std::string& x : split_commas(v)) o.lr.push_back(parse_real("--lr", x));
            }),
      value("--epochs", "N[,N...]",
            "epochs, one value or one per step (the last repeats); default VOC 30 (10-1: 10 after step 0), ADE 60",
            [](TrainOptions& o, const std::string& v) {
              o.epochs.clear();
              for (const std::string& x : split_commas(v)) o.epochs.push_back(int_at_least("--epochs", x, 1));
            }),
      value("--batch-size", "N", "images per iteration (default 24, the references' total batch)",
            [](TrainOptions& o, const std::string& v) { o.batch_size = int_at_least("--batch-size", v, 1); }),
      value("--crop-size", "N", "training crop and test resize/crop size, >= 16 (default 512)",
            [](TrainOptions& o, const std::string& v) { o.crop_size = int_at_least("--crop-size", v, 16); }),
      // replay
      value("--replay-images", "DIR",
            "steps >= 1: replay an image set of the old classes in every batch, e.g. DeepInversion images "
            "written by strata invert from the step t-1 checkpoint. DIR is in the VOC layout (splits/train.txt "
            "listing /JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png, optional class_names.txt). The replayed "
            "images take the same crop and flip as the step's own, and their labels are the teacher's (the step "
            "t-1 model, loaded for it whatever the method): its argmax over the old classes at each pixel, which "
            "keep their meaning; pixels the set's label marks 255 stay void, and the labels are used for nothing "
            "else. An epoch is still one pass over the step's own images (B - r per batch); the set cycles. "
            "Not at step 0",
            [](TrainOptions& o, const std::string& v) {
              check(!v.empty(), "--replay-images: expected a folder");
              o.replay_images = v;
            }),
      value("--deepinversion-images", "DIR", "the same as --replay-images",
            [](TrainOptions& o, const std::string& v) {
              check(!v.empty(), "--deepinversion-images: expected a folder");
              o.replay_images = v;
            }),
      value("--deepinversion_images", "DIR",
            "the same as --replay-images (the spelling of MiB-protocol studies' scripts)",
            [](TrainOptions& o, const std::string& v) {
              check(!v.empty(), "--deepinversion_images: expected a folder");
              o.replay_images = v;
            }),
      value("--replay-ratio", "R",
            "with --replay-images: the share of each batch replayed, in (0, 1): r = round(R x B) of the B images "
            "of a batch (--batch-size), at least 1 and at most B - 1 (default 0.5)",
            [](TrainOptions& o, const std::string& v) {
              const double ratio = parse_real("--replay-ratio", v);
              check(ratio > 0 && ratio < 1, "--replay-ratio must be in (0, 1) (the share of each batch replayed), got ",
                    v);
              o.replay_ratio = ratio;
            }),
      // run
      value("--seed", "N", "random seed of the model initialisation and the loader (default 42, MiB's)",
            [](TrainOptions& o, const std::string& v) { o.seed = as_seed("--seed", v); }),
      value("--workers", "N", "loader threads decoding and augmenting (default 2)",
            [](TrainOptions& o, const std::string& v) { o.workers = int_at_least("--workers", v, 1); }),
      value("--output", "DIR",
            "output folder (default runs): checkpoints/<task>-<dataset>_<name>_<step>.safetensors, "
            "logs/<task>-<dataset>_<name>.jsonl, results/<task>-<dataset>_<name>.csv",
            [](TrainOptions& o, const std::string& v) { o.output = v; }),
      value("--name", "NAME", "experiment name in the file names (default Experiment)",
            [](TrainOptions& o, const std::string& v) { o.name = v; }),
      value("--device", "DEV",
            "cpu, cuda or cuda:<i> (default: cuda when this build has the CUDA backend and a GPU is visible, "
            "else cpu)",
            [](TrainOptions& o, const std::string& v) { o.device = v; }),
      value("--precision", "P",
            "tf32 (TF32 tensor-core convolutions and GEMMs, f32 storage; the CUDA default) or f32 (strict; the "
            "CPU's only precision); bf16 mixed precision is refused until the model forward casts to bf16",
            [](TrainOptions& o, const std::string& v) {
              check_model_precision(parse_precision(v));
              o.precision = v;
            }),
      value("--log-interval", "N", "iterations between log records and progress lines (default 10)",
            [](TrainOptions& o, const std::string& v) { o.log_interval = int_at_least("--log-interval", v, 1); }),
      value("--val-interval", "N",
            "also evaluate the step's test set every N epochs (logged only; default 0: at the end of the step)",
            [](TrainOptions& o, const std::string& v) { o.val_interval = int_at_least("--val-interval", v, 0); }),
      value("--ckpt-interval", "N",
            "also write the step checkpoint every N iterations (default 0: at every epoch end and at the end)",
            [](TrainOptions& o, const std::string& v) { o.ckpt_interval = integer_at_least("--ckpt-interval", v, 0); }),
      value("--step-ckpt", "FILE",
            "the previous step's checkpoint (default: this run's, from --output and --name); its classes must "
            "match this task's previous steps",
            [](TrainOptions& o, const std::string& v) { o.step_ckpt = v; }),
      value("--ckpt", "FILE",
            "resume this step from its checkpoint (model, optimizer, schedule, epoch and iteration); with --test, "
            "the checkpoint to evaluate",
            [](TrainOptions& o, const std::string& v) { o.ckpt = v; }),
      flag("--test", "evaluate the step's checkpoint (--ckpt, else this run's) without training",
           [](TrainOptions& o) { o.test = true; }),
      value("--stop-after", "N",
            "stop the step after N >= 1 of its iterations, writing its checkpoint (resume with --ckpt)",
            [](TrainOptions& o, const std::string& v) { o.stop_after = integer_at_least("--stop-after", v, 1); }),
      flag("--no-cuda-graphs",
           "launch every kernel of the training step from the host instead of replaying the step as a CUDA graph "
           "(captured once per input shape after warm-up; incremental/step_graph.h); no effect on the CPU",
           [](TrainOptions& o) { o.cuda_graphs = false; }),
      value("--nproc", "N",
            "run as N data-parallel processes on this machine (strata train starts itself under mpirun -np N; "
            "across machines, start it with mpirun yourself); --batch-size is per process, as MiB's",
            [](TrainOptions& o, const std::string& v) { o.nproc = int_at_least("--nproc", v, 1); }),
      flag("--sync-bn",
           "with several processes, batch-norm statistics over every process's images (InPlaceABNSync; the "
           "default)",
           [](TrainOptions& o) { o.sync_bn = true; }),
      flag("--no-sync-bn", "with several processes, each process's batch-norm statistics from its own images",
           [](TrainOptions& o) { o.sync_bn = false; }),
      value("--dist-backend", "B",
            "the collectives' backend: mpi (host tensors; CUDA ones through the host) or nccl (not built yet)",
            [](TrainOptions& o, const std::string& v) {
              distributed::parse_backend(v);
              o.dist_backend = v;
            }),
      value("--dist-timeout", "S",
            "seconds a process waits in a collective for the others before stopping the run with an error "
            "(default 600)",
            [](TrainOptions& o, const std::string& v) {
              const double seconds = parse_real("--dist-timeout", v);
              check(seconds > 0 && std::isfinite(seconds), "--dist-timeout must be > 0 seconds, got ", v);
              o.dist_timeout = seconds;
            }),
      flag("--detect-anomaly",
           "check every op's output and gradient for NaN and Inf (PyTorch's detect_anomaly) and stop at the first one, "
           "naming the op; one host wait per op, so for debugging a diverging run, not for training",
           [](TrainOptions& o) { o.detect_anomaly = true; }),
      flag("--unfolded-teacher",
           "run the teacher's unfolded forward (batch norms as separate ops) instead of the folded one, for "
           "comparison",
           [](TrainOptions& o) { o.unfolded_teacher = true; }),
      flag("--eval-full-image", "evaluate on whole images (batch 1) instead of the centre crop (MiB's default)",
           [](TrainOptions& o) { o.eval_full_image = true; }),
      value("--eval-batch-size", "N", "images per evaluation batch (default: --batch-size)",
            [](TrainOptions& o, const std::string& v) { o.eval_batch_size = int_at_least("--eval-batch-size", v, 1); }),
      value("--sample-num", "N",
            "test images drawn in TensorBoard as image | labels | prediction at each validation and the step's "
            "test (MiB's --sample_num; default 0)",
            [](TrainOptions& o, const std::string& v) { o.sample_num = int_at_least("--sample-num", v, 0); }),
      value("--save-predictions", "DIR",
            "write every test image of each step's final evaluation (and of --test, strata eval) as a PNG strip "
            "image | ground truth | prediction | the previous step's prediction, with a legend: "
            "DIR/step<k>/<image>.png",
            [](TrainOptions& o, const std::string& v) {
              check(!v.empty(), "--save-predictions: expected a folder");
              o.save_predictions = v;
            }),
      flag("--overlay", "with --save-predictions and --sample-num: blend the predictions over the image",
           [](TrainOptions& o) { o.overlay = true; }),
      flag("--no-progress", "no progress bar or progress lines", [](TrainOptions& o) { o.progress = false; }),
      flag("--no-tables", "print only the summary line of each step, not the per-class table",
           [](TrainOptions& o) { o.print_tables = false; }),
  };
}

// Every option, in the order --help lists them.
std::vector<OptionSpec> make_specs() {
  std::vector<OptionSpec> specs = data_and_task_specs();
  for (auto part : {model_and_method_specs, recipe_and_run_specs}) {
    std::vector<OptionSpec> more = part();
    specs.insert(specs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return specs;
}

bool allowed_option(const std::vector<std::string>& allowed, const std::string& name) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), name) != allowed.end();
}

// Wraps `text` to `width` columns, every line after the first indented by `indent`.
std::string wrap(const std::string& text, size_t width, size_t indent) {
  std::istringstream words(text);
  std::string word, out, line;
  while (words >> word) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n" + std::string(indent, ' ');
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  return out + line;
}

// `text` as one word of a POSIX shell command: as is when it holds only safe characters, else in
// single quotes.
std::string shell_word(const std::string& text) {
  const bool safe = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("@%+=:,./_-").find(c) != std::string_view::npos;
  });
  if (safe) return text;
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

const std::vector<OptionSpec>& train_option_specs() {
  static const std::vector<OptionSpec> specs = make_specs();
  return specs;
}

void add_train_options(CommandLine& command_line, TrainOptions& options, const std::vector<std::string>& names) {
  for (const OptionSpec& spec : train_option_specs()) {
    if (!allowed_option(names, spec.name)) continue;
    if (spec.argument == nullptr) {
      command_line.flag(spec.name, [&spec, &options] { spec.apply(options, ""); });
    } else {
      command_line.value(spec.name, spec.argument, [&spec, &options](const std::string& v) { spec.apply(options, v); });
    }
  }
}

void refuse_train_options(CommandLine& command_line, const std::vector<std::string>& accepted, const std::string& why) {
  for (const OptionSpec& spec : train_option_specs()) {
    if (allowed_option(accepted, spec.name)) continue;
    const std::string message =
        cat("option ", spec.name, " is not accepted here", why.empty() ? " (see --help)" : ": " + why);
    auto refuse = [message] { throw Error(message); };
    if (spec.argument == nullptr) {
      command_line.flag(spec.name, refuse);
    } else {
      command_line.value(spec.name, spec.argument, [refuse](const std::string&) { refuse(); });
    }
  }
}

bool parse_train_options(const std::vector<std::string>& args, TrainOptions& options,
                         const std::vector<std::string>& allowed) {
  CommandLine command_line;
  add_train_options(command_line, options, allowed);
  if (!allowed.empty()) refuse_train_options(command_line, allowed, "");
  return command_line.parse(args);
}

const std::vector<OptionGroup>& train_option_groups() {
  static const std::vector<OptionGroup> groups = {
      {"data", {"--dataset", "--data-root", "--train-split", "--test-split", "--skip-bad", "--allow-nonfinite"}},
      {"task and protocol (SPEC-continual.md sections 1 and 2; MiB's and PLOP's tasks.py)",
       {"--task", "--step", "--protocol", "--overlap", "--convention"}},
      {"model (MiB's and PLOP's DeepLabV3, torchvision's, semseg's PSPNet, DeepLabV3+ or BiSeNet)",
       {"--arch", "--backbone", "--head", "--output-stride", "--norm", "--blocks", "--width", "--head-channels",
        "--pooling", "--weights"}},
      {"method: a preset, then flags that change it term by term", {"--method"}},
      {"LwF (Li & Hoiem 2016), ILT (Michieli & Zanuttigh 2019), MiB (Cermelli et al. 2020): MiB's flags",
       {"--loss-kd", "--loss-de", "--unce", "--unkd", "--init-balanced", "--alpha"},
       true},
      {"LwF-MC: iCaRL's loss (Rebuffi et al. 2017) as MiB's --icarl flags implement it",
       {"--icarl", "--icarl-importance", "--icarl-disjoint", "--icarl-bkg"},
       true},
      {"PLOP (Douillard et al. 2021): its argparser's flags (arthurdouillard/CVPR2021_PLOP)",
       {"--pod", "--pod-factor", "--pod-logits", "--pod-logits-factor", "--pseudo", "--pseudo-median", "--threshold",
        "--classif-adaptive-factor"},
       true},
      {"knobs composable with every method (MiB's --freeze; the LwF ablation log's fix_branch, share_resK)",
       {"--freeze-backbone", "--freeze-old-classifier", "--share-stages"},
       true},
      {"the output distillation's knobs, with every method that has kd or unkd (the LwF ablation log's)",
       {"--kd-temperature", "--kd-loss", "--kd-exclude-background"},
       true},
      {"EWC (Kirkpatrick et al. 2017), PI (Zenke et al. 2017), RW (Chaudhry et al. 2018): MiB's --reg flags",
       {"--reg-importance", "--reg-alpha", "--reg-iterations", "--reg-no-normalize"},
       true},
      {"training recipe (unset: the references' values for the dataset and step)",
       {"--lr", "--epochs", "--batch-size", "--crop-size", "--seed", "--workers"}},
      {"replay of a generated image set at steps >= 1 (DeepInversion sets from strata invert)",
       {"--replay-images", "--deepinversion-images", "--deepinversion_images", "--replay-ratio"}},
      {"evaluation",
       {"--test", "--eval-full-image", "--eval-batch-size", "--sample-num", "--save-predictions", "--overlay"}},
      {"run, checkpoints and output",
       {"--output", "--name", "--device", "--precision", "--no-cuda-graphs", "--log-interval", "--val-interval",
        "--ckpt-interval", "--step-ckpt", "--ckpt", "--stop-after", "--no-progress", "--no-tables"}},
      {"data parallelism over MPI processes (MiB's and PLOP's torch.distributed training)",
       {"--nproc", "--sync-bn", "--no-sync-bn", "--dist-backend", "--dist-timeout"}},
      {"debugging: checks and the reference computation paths",
       {"--detect-anomaly", "--unfused-losses", "--unfolded-teacher"}},
  };
  return groups;
}

std::vector<std::string> method_option_names() {
  std::vector<std::string> out;
  for (const OptionGroup& group : train_option_groups()) {
    if (group.changes_method) out.insert(out.end(), group.names.begin(), group.names.end());
  }
  return out;
}

std::string train_options_help(const std::vector<std::string>& allowed) {
  const std::vector<OptionSpec>& specs = train_option_specs();
  const std::vector<OptionGroup>& groups = train_option_groups();
  for (const OptionSpec& spec : specs) {
    const bool grouped = std::any_of(groups.begin(), groups.end(), [&](const OptionGroup& group) {
      return std::find(group.names.begin(), group.names.end(), spec.name) != group.names.end();
    });
    check(grouped, "train_options_help: ", spec.name, " is in no group of train_option_groups()");
  }
  constexpr size_t kColumn = 28;
  std::string out;
  for (const OptionGroup& group : groups) {
    std::string lines;
    for (const std::string& name : group.names) {
      if (!allowed_option(allowed, name)) continue;
      const auto spec = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return name == s.name; });
      check(spec != specs.end(), "train_options_help: group '", group.title, "' names ", name,
            ", which is not an option");
      std::string head = "  " + name + (spec->argument ? std::string(" ") + spec->argument : "");
      if (head.size() + 2 > kColumn) {
        lines += head + "\n" + std::string(kColumn, ' ');
      } else {
        lines += head + std::string(kColumn - head.size(), ' ');
      }
      lines += wrap(spec->help, 100 - kColumn, kColumn) + "\n";
    }
    if (lines.empty()) continue;
    // A restricted list (a per-setting binary's few overrides, eval's) is short: no titles.
    if (allowed.empty()) out += (out.empty() ? "" : "\n") + wrap(std::string(group.title) + ":", 100, 2) + "\n";
    out += lines;
  }
  return out;
}

std::string resume_hint(const std::string& program, const std::vector<std::string>& args, const TrainOptions& options,
                        const Interrupted& interrupted, int last_step) {
  const int step = interrupted.step();
  const std::string& checkpoint = interrupted.checkpoint();
  // Nothing written, and nothing trained before it in this run: the same command starts it again.
  if (step < 0 || (checkpoint.empty() && (!options.all_steps || step == 0))) {
    return cat("nothing to resume: run ", program, " again with the same options\n");
  }
  const std::vector<OptionSpec>& specs = train_option_specs();
  std::string command = program;
  for (size_t i = 0; i < args.size(); ++i) {
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) { return args[i] == s.name; });
    const bool takes_value = spec != specs.end() && spec->argument != nullptr && i + 1 < args.size();
    if (args[i].rfind("--step=", 0) == 0 || args[i].rfind("--ckpt=", 0) == 0) continue;
    if (args[i] == "--step" || args[i] == "--ckpt") {
      i += takes_value ? 1 : 0;
      continue;
    }
    command += cat(" ", shell_word(args[i]));
    if (takes_value) command += cat(" ", shell_word(args[++i]));
  }
  command += cat(" --step ", step);
  if (!checkpoint.empty()) command += cat(" --ckpt ", shell_word(checkpoint));
  std::string hint = cat(checkpoint.empty() ? "start the step again with: " : "resume with: ", command, "\n");
  if (options.all_steps && step < last_step) {
    hint += cat("then train the later steps one at a time: the same command with --step N for N = ", step + 1,
                step + 1 < last_step ? cat("..", last_step) : std::string(), ", without --ckpt\n");
  }
  return hint;
}

}  // namespace strata::incremental
