// Segmentation models: a ResNet backbone (models/resnet.h), a head, and the incremental classifier
// (models/classifier.h). The architecture (ModelConfig::arch, --arch) picks the head:
//   deeplabv3      DeepLabV3 (models/deeplab.h) in two flavours that mirror the references' modules
//                  and state-dict names exactly:
//     torchvision  torchvision.models.segmentation.deeplabv3_resnet{50,101}: keys backbone.*,
//                  classifier.{0,1,2}.* (the head), aux_classifier.* (optional FCN head on stage 3),
//                  and cls.0.* for what torchvision calls classifier.4 (models/weights.h maps it).
//                  Norm batch_norm by default. torchvision builds output stride 8.
//     mib          MiB/PLOP (segmentation_module.py): keys body.*, head.*, cls.{i}.*. Norm
//                  inplace_abn by default; output stride 16 in the published results.
//   pspnet         PSPNet as semseg builds it (models/pspnet.h): backbone.* (deep stem), head.*, cls.*,
//                  aux.* (its aux head, with its own per-step classifier aux.cls.{i})
//   deeplabv3plus  DeepLabV3+ (models/deeplabv3plus.h): backbone.*, head.aspp.*, head.decoder.*, cls.*
//   bisenet        BiSeNet v1 (models/bisenet.h): backbone.*, head.{sp,cp,ffm,out}.*, cls.*, aux16.*,
//                  aux32.*
// tools/convert_weights.py documents how each reference's checkpoint names map to these.
//
// Images enter as (N,H,W,3) f32, already normalised (engine/ops/normalize.h). The forward returns
// the logits bilinearly upsampled to H x W (align_corners false as both DeepLabV3 references, true as
// the PSPNet, DeepLabV3+ and BiSeNet references), and, only when
// asked for through ForwardOptions, the intermediate maps the continual-learning methods use. A map
// that is not asked for is not kept: after the call nothing references it (the autograd graph keeps
// only what backward needs).
//
// FoldedSegmentationModel is a model in eval mode folded for inference (models/blocks.h: every norm in
// its convolution, the activation in the convolution's epilogue, the classifier's steps in one
// convolution): the same forward and ForwardOptions, computed without recording a graph, each
// intermediate map freed as soon as the op that reads it has run. It owns its folded weights, so the
// model it came from can be dropped. The frozen continual-learning teacher runs it
// (incremental/teacher.h).
//
// Size: the reference configurations are ResNet-18/34/50/101 (width 64) with 256-channel heads (PSPNet
// 512), the defaults of ModelConfig. small_model_config() is strata's small configuration for CPU demos and
// tests: ResNet-14 (one bottleneck per stage, width 16: 64/128/256/512 channels per stage) with a
// 64-channel head, otherwise the same modules, names and options (flavour, output stride, norm).
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/bisenet.h"
#include "models/classifier.h"
#include "models/deeplab.h"
#include "models/deeplabv3plus.h"
#include "models/pspnet.h"
#include "models/resnet.h"

namespace strata::models {

enum class Flavour { torchvision, mib };

const char* flavour_name(Flavour flavour);        // "torchvision" / "mib"
Flavour parse_flavour(const std::string& s);      // throws naming the accepted values

// deeplabv3: the flavour's DeepLabV3 (above); pspnet: PSPNet in semseg's layout (models/pspnet.h),
// whose backbone is the semseg ResNet, norm batch_norm by default, logits upsampled with
// align_corners true, and its aux head always present; deeplabv3plus: DeepLabV3+ as its reference
// builds it (models/deeplabv3plus.h) on the deeplabv3plus ResNet layout, batch_norm by default, the
// torchvision flavour's rates, align_corners true; bisenet: BiSeNet v1 (models/bisenet.h) with the
// backbone as its context path (torchvision layout, output stride 32), batch_norm by default,
// align_corners true, its two aux heads always present. The flavour applies to deeplabv3 only.
enum class Architecture { deeplabv3, pspnet, deeplabv3plus, bisenet };
const char* architecture_name(Architecture arch);       // "deeplabv3" / "pspnet" / "deeplabv3plus" / "bisenet"
Architecture parse_architecture(const std::string& s);  // throws naming the accepted values

struct ModelConfig {
  Architecture arch = Architecture::deeplabv3;
  Flavour flavour = Flavour::mib;
  int depth = 101;                   // 18, 34, 50 or 101
  int output_stride = 16;            // 8, 16 or 32
  std::optional<Norm> norm;          // default: batch_norm for torchvision, inplace_abn for mib
  std::vector<int64_t> classes = {21};  // classes per step, background included in step 0
  bool aux = false;                  // torchvision only: the FCN head on stage 3
  // Atrous rates of the three 3x3 branches; zeros pick the flavour's: torchvision 12/24/36 at output
  // stride 8 (torchvision's) and 6/12/18 at 16; mib 12/24/32 at 8 and 6/12/18 at 16; both halve
  // again to 3/6/9 at 32.
  std::array<int64_t, 3> atrous_rates = {0, 0, 0};
  int64_t pooling_size = 32;         // mib: eval-time image pooling window (0: global pooling)
  double aspp_dropout = 0.5;         // torchvision: dropout after the ASPP projection
  double aux_dropout = 0.1;          // torchvision: dropout in the FCN head
  uint64_t seed = 0;                 // initialisation and dropout masks
  // false skips the references' initialisation (kaiming / xavier) where it replaces the layers'
  // PyTorch-default one: faster when weights are loaded next. Parameter values are then not the
  // reference's initial distribution.
  bool initialize = true;
  // Backbone and head size (see the file comment); the defaults are the references'.
  std::vector<int> blocks = {};      // bottlenecks per stage (4 values); empty: the depth's
  int64_t width = 64;                // stem channels and stage 1's bottleneck width
  int64_t head_channels = 0;         // the head's output channels; 0: the architecture's (256, PSPNet 512)
  std::vector<int64_t> bins = {1, 2, 3, 6};  // pspnet: the pyramid's bin sizes
  double psp_dropout = 0.1;                  // pspnet: channel dropout in the head and the aux head

  Norm resolved_norm() const;
  int64_t resolved_head_channels() const;
  int64_t reference_head_channels() const { return arch == Architecture::pspnet ? 512 : 256; }
  bool has_aux() const { return aux || arch == Architecture::pspnet || arch == Architecture::bisenet; }
  bool align_corners() const { return arch != Architecture::deeplabv3; }  // of the logits' upsampling
  ResNetConfig backbone_config() const;
  bool reference_size() const;       // default blocks, width and head channels
  std::string backbone_name() const; // "ResNet-101", or "ResNet-14 (blocks 1,1,1,1, width 16)"
  std::array<int64_t, 3> resolved_rates() const;
  std::string describe() const;      // one line: flavour, backbone, norm, output stride, classes
};

struct ForwardOptions {
  bool upsample = true;               // false: no full-resolution logits at all (low_res_logits instead)
  bool low_res_logits = false;        // the logits before upsampling (PLOP POD, fused losses)
  bool body = false;                  // the backbone output (ILT)
  bool head = false;                  // the head output (PLOP POD)
  bool stage_pre_activations = false; // the residual sum of each stage's last block before its activation
  bool aux_logits = false;            // the aux heads' logits (torchvision's FCN, PSPNet's, BiSeNet's two), computed
                                      // only when asked
  // K in 1..4: the stem and backbone stages 1..K are shared by two networks (--share-stages, the LwF
  // ablation log's share_resK). A forward from the images returns stage K's output
  // (ForwardResult::stage_output); a forward given that result (the `shared` argument) starts after
  // stage K from it and takes the stage pre-activations of stages <= K from it.
  int shared_stages = 0;
};

struct ForwardResult {
  Tensor logits;                      // (N,H,W,C); undefined when !upsample
  Tensor low_res_logits;              // (N,h,w,C) when asked for or when !upsample
  Tensor body;                        // (N,h,w,2048) (the backbone's output channels)
  Tensor head;                        // (N,h,w,256) (the head's channels)
  std::array<Tensor, 4> stage_pre_activations;  // (N,h_i,w_i,256*2^i), i = 0..3
  std::vector<Tensor> aux_logits;               // one per aux head, each (N,H,W,C), or its own (N,h,w,C) when !upsample
  Tensor stage_output;                // stage K's output, K = ForwardOptions::shared_stages
};

class SegmentationModel : public nn::Module {
  friend class FoldedSegmentationModel;

 public:
  explicit SegmentationModel(const ModelConfig& config);

  // images: (N,H,W,3) f32 -> see ForwardResult. Throws for other shapes and for aux_logits on a
  // model without the aux head. `shared`: another network's result of the same images with
  // options.shared_stages >= 1 (its stage_output), to start after those stages; the images then
  // give the output size only. Throws when it lacks the stage output or, for asked pre-activations,
  // those of the shared stages.
  ForwardResult forward(const Tensor& images, const ForwardOptions& options = {},
                        const ForwardResult* shared = nullptr);

  // Adds a step's classifier (PyTorch-default initialised from the model's generator), e.g. the new
  // classes of step t before loading step t-1's weights; MiB then calls
  // classifier().init_balanced_new_step().
  void add_step(int64_t classes);

  // Analytic shapes, parameters and multiply-adds for an H x W input (models/summary.h).
  ModelSummary summary(int64_t height, int64_t width) const;

  const ModelConfig& config() const { return config_; }
  ResNet& backbone() { return *backbone_; }
  nn::Module& head();                 // TorchvisionHead or MiBHead
  IncrementalClassifier& classifier() { return *classifier_; }
  FCNHead& aux();         // throws without torchvision's aux head
  PSPAuxHead& psp_aux();  // throws for other architectures
  // The incremental classifiers of the aux heads (PSPNet's one, BiSeNet's two), which grow with the
  // main one: MiB's initialisation and frozen old classes apply to them too.
  std::vector<IncrementalClassifier*> aux_classifiers();

  // State-dict prefixes of the parts, as the flavour names them ("backbone."/"body.", ...).
  std::string backbone_prefix() const;
  static constexpr const char* kClassifierPrefix = "cls.";

 private:
  ModelConfig config_;
  Generator generator_;
  std::shared_ptr<ResNet> backbone_;
  std::shared_ptr<TorchvisionHead> torchvision_head_;
  std::shared_ptr<MiBHead> mib_head_;
  std::shared_ptr<FCNHead> aux_;
  std::shared_ptr<PSPHead> psp_head_;
  std::shared_ptr<PSPAuxHead> psp_aux_;
  std::shared_ptr<DeepLabV3PlusHead> plus_head_;
  std::shared_ptr<BiSeNetHead> bise_head_;
  std::array<std::shared_ptr<BiSeNetAuxHead>, 2> bise_aux_;  // aux16 (on cp8), aux32 (on cp16)
  std::shared_ptr<IncrementalClassifier> classifier_;

  Tensor upsample(const Tensor& low, int64_t height, int64_t width) const;
};

class FoldedSegmentationModel {
 public:
  // Folds `model`, whose norms must all be in eval mode: strata::Error naming the first norm in
  // training mode (e.g. "body.mod1.bn1 (inplace_abn) is in training mode"). The folded weights are in
  // the model's dtype, on its device.
  explicit FoldedSegmentationModel(const SegmentationModel& model);

  // As SegmentationModel::forward in eval mode; records no graph whatever the grad mode.
  ForwardResult forward(const Tensor& images, const ForwardOptions& options = {}) const;

  const ModelConfig& config() const { return config_; }
  int64_t total_classes() const { return classifier_.weight().size(0); }
  int64_t bytes() const;  // of the folded weights
  std::vector<Tensor> weights() const;  // the folded weights and biases themselves

 private:
  void for_each_conv(const std::function<void(const FoldedConv&)>& f) const;

  ModelConfig config_;
  FoldedResNet backbone_;
  std::optional<FoldedTorchvisionHead> torchvision_head_;
  std::optional<FoldedMiBHead> mib_head_;
  std::optional<FoldedFCNHead> aux_;
  std::optional<FoldedPSPHead> psp_head_;
  std::optional<FoldedPSPAuxHead> psp_aux_;
  std::optional<FoldedDeepLabV3PlusHead> plus_head_;
  std::optional<FoldedBiSeNetHead> bise_head_;
  std::array<std::optional<FoldedBiSeNetAuxHead>, 2> bise_aux_;
  FoldedConv classifier_;
};

// strata's small configuration (see the file comment): mib flavour, ResNet-14 width 16, 64-channel
// head, In-place ABN, the given output stride and classes per step.
ModelConfig small_model_config(std::vector<int64_t> classes, int output_stride = 16);

// The backbone names of the command lines: "resnet18", "resnet34", "resnet50", "resnet101" (the reference
// sizes of that depth) or "small" (small_model_config's ResNet-14, width 16, 64-channel head). Sets
// config's depth, blocks, width and head_channels; throws naming the accepted names.
void apply_backbone(ModelConfig& config, const std::string& name);
inline constexpr const char* kBackboneNames = "resnet18, resnet34, resnet50, resnet101 or small";
// The backbone an architecture's reference uses: resnet101 (DeepLabV3, DeepLabV3+), resnet50 (PSPNet),
// resnet18 (BiSeNet).
const char* reference_backbone(Architecture arch);
// Its output stride: 16 (DeepLabV3 as MiB/PLOP, DeepLabV3+), 8 (PSPNet), 32 (BiSeNet's context path).
int reference_output_stride(Architecture arch);

// Parses "21" or "16,1,1,1,1,1" into classes per step; throws naming the text.
std::vector<int64_t> parse_classes(const std::string& text);

}  // namespace strata::models
