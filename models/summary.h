// Model summaries computed analytically from the module structure: for an input size, every layer's
// output shape, parameter count and forward multiply-accumulates, without running a kernel.
//
// Convention (reference/performance-anchors.md §1.2): a convolution costs P*Q*K*C*R*S MACs per
// image (output pixels x output channels x input channels x kernel taps); normalisation,
// activations, pooling, additions and interpolation cost none. Counts are per image.
//
// Every module of models/ has a trace(in_shape, builder) that mirrors its forward: it reports its
// layers to a SummaryBuilder, which names them by their state-dict path and files them under the
// current stage ("stem", "layer1" ... "head", "aux", "classifier"). tests/models check the traced
// shapes against real forwards and the traced parameters against parameter_count().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/nn/layers.h"

namespace strata::models {

struct LayerRow {
  std::string name;   // state-dict path of the layer, e.g. "backbone.layer1.0.conv2"
  std::string kind;   // "conv 3x3/2 d2 64->64", "inplace_abn", "max_pool 3x3/2", "add", ...
  std::string stage;  // the stage it belongs to
  Shape output;       // (1,H,W,C)
  int64_t parameters = 0;
  int64_t macs = 0;
  int depth = 0;      // nesting level of its module, for printing the tree
};

struct StageTotal {
  std::string stage;
  std::string label;  // e.g. "layer3 (23 blocks)"
  Shape output;       // output of the stage's last layer
  int64_t parameters = 0;
  int64_t macs = 0;
};

struct ModelSummary {
  std::string title;  // one line describing the model and the input
  Shape input;        // (1,H,W,3)
  std::vector<LayerRow> layers;
  std::vector<StageTotal> stages;  // in forward order; filled by finish()
  int64_t parameters = 0;
  int64_t macs = 0;

  const StageTotal& stage(const std::string& name) const;  // throws naming the stages that exist
  // Sums over the stages whose names are listed (e.g. the backbone's).
  int64_t macs_of(const std::vector<std::string>& stages) const;
};

class SummaryBuilder {
 public:
  explicit SummaryBuilder(ModelSummary& summary) : summary_(summary) {}

  // Enters the state-dict level `name` for the lifetime of the returned guard.
  class Level {
   public:
    Level(SummaryBuilder& builder, const std::string& name);
    ~Level();
    Level(const Level&) = delete;
    Level& operator=(const Level&) = delete;

   private:
    SummaryBuilder& builder_;
  };

  void set_stage(const std::string& stage, const std::string& label);
  // A convolution: output shape from its parameters, its weights' count, its MACs.
  Shape conv(const std::string& name, const nn::Conv2d& conv, const Shape& in);
  // A layer with parameters but no MACs (a norm): output shape = input shape.
  Shape norm(const std::string& name, const std::string& kind, const nn::Module& module, const Shape& in);
  // A layer with neither (pooling, add, concat, interpolation): given its output shape.
  Shape op(const std::string& name, const std::string& kind, const Shape& out);

  // Computes the stage totals, the overall totals, and checks them.
  void finish();

 private:
  std::string path(const std::string& name) const;
  void add_row(LayerRow row);

  ModelSummary& summary_;
  std::vector<std::string> levels_;
  std::string stage_ = "model";
  std::vector<std::pair<std::string, std::string>> stage_labels_;
};

// Readable text: a title, one row per stage (every layer with verbose), totals, and the MACs in
// GMAC with two decimals.
std::string format_summary(const ModelSummary& summary, bool verbose);

}  // namespace strata::models
