#include "models/segmentation_model.h"

#include <functional>
#include <sstream>

#include "engine/autograd.h"
#include "engine/ops/upsample.h"

namespace strata::models {

namespace {

// Seeds of the dropout layers, derived from the model's seed so two models built alike draw alike.
constexpr uint64_t kAsppDropoutStream = 0x5eed'a5b0;
constexpr uint64_t kAuxDropoutStream = 0x5eed'a0c5;
constexpr uint64_t kPspDropoutStream = 0x5eed'b5b0;
constexpr uint64_t kDeepLabV3PlusDropoutStream = 0x5eed'd3b0;

}  // namespace

const char* flavour_name(Flavour flavour) { return flavour == Flavour::torchvision ? "torchvision" : "mib"; }

Flavour parse_flavour(const std::string& s) {
  if (s == "torchvision") return Flavour::torchvision;
  if (s == "mib") return Flavour::mib;
  throw Error(cat("unknown head/flavour '", s, "' (expected torchvision or mib)"));
}

const char* architecture_name(Architecture arch) {
  switch (arch) {
    case Architecture::deeplabv3: return "deeplabv3";
    case Architecture::pspnet: return "pspnet";
    case Architecture::deeplabv3plus: return "deeplabv3plus";
    case Architecture::bisenet: return "bisenet";
  }
  return "?";
}

Architecture parse_architecture(const std::string& s) {
  for (Architecture arch :
       {Architecture::deeplabv3, Architecture::pspnet, Architecture::deeplabv3plus, Architecture::bisenet}) {
    if (s == architecture_name(arch)) return arch;
  }
  throw Error(cat("--arch '", s, "': expected deeplabv3, pspnet, deeplabv3plus or bisenet"));
}

Norm ModelConfig::resolved_norm() const {
  if (norm) return *norm;
  return flavour == Flavour::torchvision || arch != Architecture::deeplabv3 ? Norm::batch_norm : Norm::inplace_abn;
}

int64_t ModelConfig::resolved_head_channels() const {
  check(head_channels >= 0, "ModelConfig: head channels must be >= 1 (0: the architecture's), got ", head_channels);
  return head_channels == 0 ? reference_head_channels() : head_channels;
}

std::array<int64_t, 3> ModelConfig::resolved_rates() const {
  if (atrous_rates != std::array<int64_t, 3>{0, 0, 0}) {
    for (int64_t r : atrous_rates) check(r >= 1, "ModelConfig: atrous rates must be >= 1, got ", r);
    return atrous_rates;
  }
  switch (output_stride) {
    case 8:
      return flavour == Flavour::torchvision || arch == Architecture::deeplabv3plus
                 ? std::array<int64_t, 3>{12, 24, 36}
                 : std::array<int64_t, 3>{12, 24, 32};
    case 16: return {6, 12, 18};
    case 32: return {3, 6, 9};
    default: break;
  }
  throw Error(cat("ModelConfig: output stride must be 8, 16 or 32, got ", output_stride));
}

ResNetConfig ModelConfig::backbone_config() const {
  const Layout layout = arch == Architecture::pspnet                                       ? Layout::semseg
                        : arch == Architecture::deeplabv3plus                              ? Layout::deeplabv3plus
                        : flavour == Flavour::torchvision || arch == Architecture::bisenet ? Layout::torchvision
                                                                                           : Layout::mib;
  ResNetConfig config{depth, output_stride, resolved_norm(), layout, initialize};
  config.blocks = blocks;
  config.width = width;
  return config;
}

bool ModelConfig::reference_size() const {
  return blocks.empty() && width == 64 && resolved_head_channels() == reference_head_channels();
}

std::string ModelConfig::backbone_name() const {
  if (blocks.empty() && width == 64) return cat("ResNet-", depth);
  ResNetConfig config = backbone_config();
  std::vector<int> b = config.resolved_blocks();
  return cat("ResNet-", config.layers(), " (blocks ", b[0], ",", b[1], ",", b[2], ",", b[3], ", width ", width, ")");
}

std::string ModelConfig::describe() const {
  std::ostringstream classes_text;
  for (size_t i = 0; i < classes.size(); ++i) classes_text << (i ? "," : "") << classes[i];
  const int64_t channels = resolved_head_channels();
  std::string head_size = channels == reference_head_channels() ? "" : cat(channels, " channels, ");
  if (arch == Architecture::pspnet) {
    std::string bin_text;
    for (size_t i = 0; i < bins.size(); ++i) bin_text += cat(i ? "/" : "", bins[i]);
    return cat("PSPNet (", head_size, "bins ", bin_text, ", aux head) on ", backbone_name(), " (deep stem), ",
               norm_name(resolved_norm()), ", output stride ", output_stride, ", classes per step ",
               classes_text.str());
  }
  std::array<int64_t, 3> rates = resolved_rates();
  if (arch == Architecture::bisenet) {
    return cat("BiSeNet v1 (", head_size, "spatial path, two aux heads) on ", backbone_name(), ", ",
               norm_name(resolved_norm()), ", output stride ", output_stride, " (logits at 1/8), classes per step ",
               classes_text.str());
  }
  if (arch == Architecture::deeplabv3plus) {
    return cat("DeepLabV3+ (", head_size, "rates ", rates[0], "/", rates[1], "/", rates[2], ") on ", backbone_name(),
               " (multi-grid), ", norm_name(resolved_norm()), ", output stride ", output_stride, ", classes per step ",
               classes_text.str());
  }
  return cat("DeepLabV3 (", flavour_name(flavour), " head, ", head_size, "rates ", rates[0], "/", rates[1], "/",
             rates[2], aux ? ", aux FCN head" : "", ") on ", backbone_name(), ", ", norm_name(resolved_norm()),
             ", output stride ", output_stride, ", classes per step ", classes_text.str());
}

ModelConfig small_model_config(std::vector<int64_t> classes, int output_stride) {
  ModelConfig config;
  config.flavour = Flavour::mib;
  config.output_stride = output_stride;
  config.classes = std::move(classes);
  config.blocks = {1, 1, 1, 1};
  config.width = 16;
  config.head_channels = 64;
  return config;
}

SegmentationModel::SegmentationModel(const ModelConfig& config) : config_(config), generator_(config.seed) {
  check(!config.aux || (config.flavour == Flavour::torchvision && config.arch == Architecture::deeplabv3),
        "SegmentationModel: the aux FCN head exists only in the torchvision flavour of DeepLabV3 (PSPNet has its "
        "own)");
  check(!config.classes.empty(), "SegmentationModel: classes per step must not be empty");
  const Norm norm = config.resolved_norm();
  const int64_t head_channels = config.resolved_head_channels();
  const bool tv = config.flavour == Flavour::torchvision;
  const bool psp = config.arch == Architecture::pspnet;
  const bool plus = config.arch == Architecture::deeplabv3plus;
  const bool bise = config.arch == Architecture::bisenet;
  backbone_ = register_module(tv || psp || plus || bise ? "backbone" : "body",
                              std::make_shared<ResNet>(config.backbone_config(), generator_));
  int64_t total_classes = 0;
  for (int64_t c : config.classes) total_classes += c;
  if (bise) {
    bise_head_ =
        register_module("head", std::make_shared<BiSeNetHead>(backbone_->stage3_channels(), backbone_->out_channels(),
                                                              norm, config.initialize, generator_, head_channels));
  } else if (plus) {
    plus_head_ = register_module(
        "head", std::make_shared<DeepLabV3PlusHead>(
                    backbone_->out_channels(), backbone_->stage_channels(1), config.resolved_rates(), norm,
                    config.initialize, config.seed ^ kDeepLabV3PlusDropoutStream, generator_, head_channels));
  } else if (psp) {
    psp_head_ = register_module(
        "head", std::make_shared<PSPHead>(backbone_->out_channels(), config.bins, norm, config.psp_dropout,
                                          config.seed ^ kPspDropoutStream, generator_, head_channels));
  } else if (tv) {
    const std::array<int64_t, 3> rates = config.resolved_rates();
    torchvision_head_ = register_module(
        "classifier", std::make_shared<TorchvisionHead>(backbone_->out_channels(), rates, norm, config.aspp_dropout,
                                                        config.seed ^ kAsppDropoutStream, generator_, head_channels));
    if (config.aux) {
      aux_ = register_module("aux_classifier",
                             std::make_shared<FCNHead>(backbone_->stage3_channels(), total_classes, norm, config.aux_dropout,
                                                       config.seed ^ kAuxDropoutStream, generator_));
    }
  } else {
    mib_head_ = register_module(
        "head", std::make_shared<MiBHead>(backbone_->out_channels(), config.resolved_rates(), norm, config.pooling_size,
                                          config.initialize, generator_, head_channels));
  }
  classifier_ =
      register_module("cls", std::make_shared<IncrementalClassifier>(head_channels, config.classes, generator_));
  if (bise) {
    for (int i = 0; i < 2; ++i) {
      bise_aux_[static_cast<size_t>(i)] = register_module(
          i == 0 ? "aux16" : "aux32", std::make_shared<BiSeNetAuxHead>(BiSeNetHead::kContextChannels, config.classes,
                                                                       norm, config.initialize, generator_));
    }
  }
  if (psp) {
    psp_aux_ = register_module(
        "aux", std::make_shared<PSPAuxHead>(backbone_->stage3_channels(), config.classes, norm, config.psp_dropout,
                                            config.seed ^ kAuxDropoutStream, generator_));
  }
}

nn::Module& SegmentationModel::head() {
  if (torchvision_head_) return *torchvision_head_;
  if (psp_head_) return *psp_head_;
  if (plus_head_) return *plus_head_;
  if (bise_head_) return *bise_head_;
  return *mib_head_;
}

PSPAuxHead& SegmentationModel::psp_aux() {
  check(psp_aux_ != nullptr, "SegmentationModel: this model has no PSPNet aux head (", config_.describe(), ")");
  return *psp_aux_;
}

std::vector<IncrementalClassifier*> SegmentationModel::aux_classifiers() {
  std::vector<IncrementalClassifier*> out;
  if (psp_aux_) out.push_back(&psp_aux_->classifier());
  for (auto& aux : bise_aux_) {
    if (aux) out.push_back(&aux->classifier());
  }
  return out;
}

Tensor SegmentationModel::upsample(const Tensor& low, int64_t height, int64_t width) const {
  return upsample_bilinear(low, height, width, config_.align_corners());
}

FCNHead& SegmentationModel::aux() {
  check(aux_ != nullptr, "SegmentationModel: this model has no aux head (", config_.describe(), ")");
  return *aux_;
}

std::string SegmentationModel::backbone_prefix() const {
  return config_.flavour == Flavour::torchvision || config_.arch != Architecture::deeplabv3 ? "backbone." : "body.";
}

void SegmentationModel::add_step(int64_t classes) {
  check(aux_ == nullptr, "SegmentationModel: the aux FCN head's classifier is not incremental; a model with the aux "
        "head cannot add a step");
  classifier_->add_step(classes, generator_);
  if (psp_aux_) psp_aux_->classifier().add_step(classes, generator_);
  for (auto& aux : bise_aux_) {
    if (aux) aux->classifier().add_step(classes, generator_);
  }
  config_.classes.push_back(classes);
}

ForwardResult SegmentationModel::forward(const Tensor& images, const ForwardOptions& options,
                                         const ForwardResult* shared) {
  check(images.dim() == 4 && images.size(3) == 3, "SegmentationModel: expected normalised images (N,H,W,3), got ",
        images.describe());
  check(!options.aux_logits || aux_ != nullptr || psp_aux_ != nullptr || bise_head_ != nullptr,
        "SegmentationModel: aux logits asked for, but the model has no aux head (", config_.describe(), ")");
  const int64_t height = images.size(1), width = images.size(2);
  ForwardResult result;
  const int start = shared ? options.shared_stages : 0;
  if (shared) {
    check(start >= 1 && start <= 4 && shared->stage_output.defined(),
          "SegmentationModel: starting after shared "
          "stages needs ForwardOptions::shared_stages in 1..4 (got ",
          start, ") and the other network's stage output");
    for (int s = 0; s < start && options.stage_pre_activations; ++s) {
      check(shared->stage_pre_activations[static_cast<size_t>(s)].defined(),
            "SegmentationModel: the shared "
            "result lacks stage ",
            s + 1, "'s pre-activation, asked for by ForwardOptions::stage_pre_activations");
    }
  }
  ResNet::Output features = backbone_->forward(
      shared ? shared->stage_output : images, options.aux_logits || bise_head_ != nullptr,
      options.stage_pre_activations, start, shared ? 0 : options.shared_stages, plus_head_ != nullptr);
  if (options.stage_pre_activations) {
    result.stage_pre_activations = features.pre_activations;
    for (int s = 0; s < start; ++s) {
      result.stage_pre_activations[static_cast<size_t>(s)] = shared->stage_pre_activations[static_cast<size_t>(s)];
    }
  }
  features.pre_activations = {};
  result.stage_output = features.stage_output;
  features.stage_output = Tensor();
  if (options.body) result.body = features.out;
  std::vector<Tensor> aux_logits;
  if (options.aux_logits && psp_aux_) aux_logits.push_back(psp_aux_->forward(features.stage3));
  if (options.aux_logits && aux_) aux_logits.push_back(aux_->forward(features.stage3));
  Tensor head;
  if (bise_head_) {
    BiSeNetHead::Maps maps = bise_head_->forward(images, features.stage3, features.out);
    head = maps.features;
    if (options.aux_logits) {
      aux_logits.push_back(bise_aux_[0]->forward(maps.context8));
      aux_logits.push_back(bise_aux_[1]->forward(maps.context16));
    }
  } else {
    head = torchvision_head_ ? torchvision_head_->forward(features.out)
           : psp_head_       ? psp_head_->forward(features.out)
           : plus_head_      ? plus_head_->forward(features.out, features.stage1)
                             : mib_head_->forward(features.out);
  }
  features = ResNet::Output();
  Tensor low = classifier_->forward(head);
  if (options.head) result.head = head;
  if (options.upsample) {
    result.logits = upsample(low, height, width);
    for (const Tensor& aux : aux_logits) result.aux_logits.push_back(upsample(aux, height, width));
  } else {
    result.aux_logits = std::move(aux_logits);
  }
  if (options.low_res_logits || !options.upsample) result.low_res_logits = low;
  return result;
}

FoldedSegmentationModel::FoldedSegmentationModel(const SegmentationModel& model) : config_(model.config_) {
  check_foldable(model);
  backbone_ = model.backbone_->fold(model.backbone_prefix());
  if (model.torchvision_head_) torchvision_head_ = model.torchvision_head_->fold("classifier.");
  if (model.mib_head_) mib_head_ = model.mib_head_->fold("head.");
  if (model.aux_) aux_ = model.aux_->fold("aux_classifier.");
  if (model.psp_head_) psp_head_ = model.psp_head_->fold("head.");
  if (model.psp_aux_) psp_aux_ = model.psp_aux_->fold("aux.");
  if (model.plus_head_) plus_head_ = model.plus_head_->fold("head.");
  if (model.bise_head_) bise_head_ = model.bise_head_->fold("head.");
  for (size_t i = 0; i < 2; ++i) {
    if (model.bise_aux_[i]) bise_aux_[i] = model.bise_aux_[i]->fold(i == 0 ? "aux16." : "aux32.");
  }
  classifier_ = model.classifier_->fold();
}

ForwardResult FoldedSegmentationModel::forward(const Tensor& images, const ForwardOptions& options) const {
  check(images.dim() == 4 && images.size(3) == 3, "SegmentationModel: expected normalised images (N,H,W,3), got ",
        images.describe());
  check(!options.aux_logits || aux_.has_value() || psp_aux_.has_value() || bise_head_.has_value(),
        "SegmentationModel: aux logits asked for, but the model has no aux head (", config_.describe(), ")");
  autograd::NoGradGuard no_grad;
  const int64_t height = images.size(1), width = images.size(2);
  ForwardResult result;
  ResNet::Output features =
      backbone_.forward(images, options.aux_logits || bise_head_.has_value(), options.stage_pre_activations,
                        options.shared_stages, plus_head_.has_value());
  if (options.stage_pre_activations) result.stage_pre_activations = features.pre_activations;
  features.pre_activations = {};
  result.stage_output = features.stage_output;
  features.stage_output = Tensor();
  if (options.body) result.body = features.out;
  std::vector<Tensor> aux_logits;
  if (options.aux_logits && psp_aux_) aux_logits.push_back(psp_aux_->forward(features.stage3));
  if (options.aux_logits && aux_) aux_logits.push_back(aux_->forward(features.stage3));
  Tensor head;
  if (bise_head_) {
    FoldedBiSeNetHead::Maps maps = bise_head_->forward(images, features.stage3, features.out);
    head = maps.features;
    if (options.aux_logits) {
      aux_logits.push_back(bise_aux_[0]->forward(maps.context8));
      aux_logits.push_back(bise_aux_[1]->forward(maps.context16));
    }
  } else {
    head = torchvision_head_ ? torchvision_head_->forward(features.out)
           : psp_head_       ? psp_head_->forward(features.out)
           : plus_head_      ? plus_head_->forward(features.out, features.stage1)
                             : mib_head_->forward(features.out);
  }
  features = ResNet::Output();
  Tensor low = classifier_.forward(head);
  if (options.head) result.head = head;
  head = Tensor();
  if (options.upsample) {
    const bool align = config_.align_corners();
    result.logits = upsample_bilinear(low, height, width, align);
    for (const Tensor& aux : aux_logits) result.aux_logits.push_back(upsample_bilinear(aux, height, width, align));
  } else {
    result.aux_logits = std::move(aux_logits);
  }
  if (options.low_res_logits || !options.upsample) result.low_res_logits = low;
  return result;
}

void FoldedSegmentationModel::for_each_conv(const std::function<void(const FoldedConv&)>& f) const {
  for (const FoldedConv& c : backbone_.stem) f(c);
  for (const auto& stage : backbone_.stages) {
    for (const FoldedResidualBlock& b : stage) {
      for (const FoldedConv& c : b.convs) f(c);
      if (b.has_projection) f(b.projection);
    }
  }
  if (torchvision_head_) {
    for (const FoldedConv& c : torchvision_head_->branches) f(c);
    f(torchvision_head_->pooling);
    f(torchvision_head_->project);
    f(torchvision_head_->conv);
  }
  if (mib_head_) {
    for (const FoldedConv& c : mib_head_->maps) f(c);
    f(mib_head_->reduce);
    f(mib_head_->pooling);
    f(mib_head_->pooling_reduce);
  }
  if (aux_) {
    f(aux_->conv);
    f(aux_->classifier);
  }
  if (psp_head_) {
    for (const FoldedConv& c : psp_head_->pyramid) f(c);
    f(psp_head_->conv);
  }
  if (psp_aux_) {
    f(psp_aux_->conv);
    f(psp_aux_->classifier);
  }
  if (bise_head_) {
    const FoldedBiSeNetHead& b = *bise_head_;
    for (const FoldedConv& c : b.sp) f(c);
    for (int i = 0; i < 2; ++i) {
      f(b.arm_conv[i]);
      f(b.arm_atten[i]);
    }
    for (const FoldedConv* c :
         {&b.conv_avg, &b.conv_head32, &b.conv_head16, &b.ffm_block, &b.ffm_conv1, &b.ffm_conv2, &b.out}) {
      f(*c);
    }
  }
  for (const auto& aux : bise_aux_) {
    if (!aux) continue;
    f(aux->conv);
    f(aux->classifier);
  }
  if (plus_head_) {
    for (const FoldedConv& c : plus_head_->branches) f(c);
    for (const FoldedConv* c : {&plus_head_->pooling, &plus_head_->project, &plus_head_->reduce_low, &plus_head_->conv1,
                                &plus_head_->conv2}) {
      f(*c);
    }
  }
  f(classifier_);
}

int64_t FoldedSegmentationModel::bytes() const {
  int64_t total = 0;
  for_each_conv([&](const FoldedConv& c) { total += c.bytes(); });
  return total;
}

std::vector<Tensor> FoldedSegmentationModel::weights() const {
  std::vector<Tensor> out;
  for_each_conv([&](const FoldedConv& c) {
    out.push_back(c.weight());
    if (c.bias().defined()) out.push_back(c.bias());
  });
  return out;
}

ModelSummary SegmentationModel::summary(int64_t height, int64_t width) const {
  check(height >= 1 && width >= 1, "SegmentationModel::summary: invalid input size ", height, "x", width);
  ModelSummary summary;
  summary.title = cat(config_.describe(), "; input ", height, "x", width);
  summary.input = {1, height, width, 3};
  SummaryBuilder builder(summary);
  const bool tv = torchvision_head_ != nullptr;
  Shape stage3, stage1, features, context8, context16;
  {
    SummaryBuilder::Level level(builder, backbone_prefix() == "backbone." ? "backbone" : "body");
    features = backbone_->trace(summary.input, builder, &stage3, &stage1);
  }
  Shape head;
  {
    builder.set_stage("head", tv           ? "head (classifier.0-2)"
                              : psp_head_  ? "head (ppm, conv)"
                              : plus_head_ ? "head (aspp, decoder)"
                              : bise_head_ ? "head (sp, cp, ffm, out)"
                                           : "head");
    SummaryBuilder::Level level(builder, tv ? "classifier" : "head");
    head = tv           ? torchvision_head_->trace(features, builder)
           : psp_head_  ? psp_head_->trace(features, builder)
           : plus_head_ ? plus_head_->trace(features, stage1, builder)
           : bise_head_ ? bise_head_->trace(summary.input, stage3, features, builder, &context8, &context16)
                        : mib_head_->trace(features, builder);
  }
  Shape low;
  {
    builder.set_stage("classifier", cat("classifier (cls, ", classifier_->steps(), " step",
                                        classifier_->steps() > 1 ? "s)" : ")"));
    SummaryBuilder::Level level(builder, "cls");
    low = classifier_->trace(head, builder);
  }
  if (aux_) {
    builder.set_stage("aux", "aux (aux_classifier)");
    SummaryBuilder::Level level(builder, "aux_classifier");
    Shape a = aux_->trace(stage3, builder);
    builder.op("", "upsample_bilinear", {1, height, width, a[3]});
  }
  for (size_t i = 0; i < 2 && bise_head_; ++i) {
    const char* name = i == 0 ? "aux16" : "aux32";
    builder.set_stage(name, cat(name, " (training only)"));
    SummaryBuilder::Level level(builder, name);
    Shape a = bise_aux_[i]->trace(i == 0 ? context8 : context16, builder);
    builder.op("", "upsample_bilinear (align_corners)", {1, height, width, a[3]});
  }
  if (psp_aux_) {
    builder.set_stage("aux", "aux (aux, training only)");
    SummaryBuilder::Level level(builder, "aux");
    Shape a = psp_aux_->trace(stage3, builder);
    builder.op("", "upsample_bilinear (align_corners)", {1, height, width, a[3]});
  }
  builder.set_stage("upsample", "logits (upsampled)");
  builder.op("", "upsample_bilinear", {1, height, width, low[3]});
  builder.finish();
  return summary;
}

const char* reference_backbone(Architecture arch) {
  switch (arch) {
    case Architecture::pspnet: return "resnet50";
    case Architecture::bisenet: return "resnet18";
    case Architecture::deeplabv3:
    case Architecture::deeplabv3plus: break;
  }
  return "resnet101";
}

int reference_output_stride(Architecture arch) {
  switch (arch) {
    case Architecture::pspnet: return 8;
    case Architecture::bisenet: return 32;
    case Architecture::deeplabv3:
    case Architecture::deeplabv3plus: break;
  }
  return 16;
}

void apply_backbone(ModelConfig& config, const std::string& name) {
  if (name == "small") {
    const ModelConfig small = small_model_config(config.classes);
    config.depth = small.depth;
    config.blocks = small.blocks;
    config.width = small.width;
    config.head_channels = small.head_channels;
    return;
  }
  for (int depth : {18, 34, 50, 101}) {
    if (name == cat("resnet", depth)) {
      const ModelConfig reference;
      config.depth = depth;
      config.blocks = reference.blocks;
      config.width = reference.width;
      config.head_channels = reference.head_channels;  // the architecture's
      return;
    }
  }
  throw Error(cat("--backbone '", name, "': expected ", kBackboneNames));
}

std::vector<int64_t> parse_classes(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == item.size() && !item.empty() && value >= 1, "classes '", text,
          "': expected a class count or a comma-separated list of counts per step (each >= 1), e.g. 21 or 16,1,1");
    out.push_back(value);
  }
  check(!out.empty(), "classes '", text, "': expected at least one step");
  return out;
}

}  // namespace strata::models
