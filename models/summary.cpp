#include "models/summary.h"

#include <algorithm>
#include <cstdio>

#include "engine/ops/conv2d.h"

namespace strata::models {

namespace {

std::string hwc(const Shape& s) { return s.size() == 4 ? cat(s[1], "x", s[2], "x", s[3]) : shape_str(s); }

// 12345678 -> "12,345,678"
std::string grouped(int64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string gmac(int64_t macs) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", static_cast<double>(macs) * 1e-9);
  return text;
}

}  // namespace

const StageTotal& ModelSummary::stage(const std::string& name) const {
  std::string known;
  for (const StageTotal& s : stages) {
    if (s.stage == name) return s;
    known += " " + s.stage;
  }
  throw Error(cat("model summary: no stage '", name, "' (stages:", known, ")"));
}

int64_t ModelSummary::macs_of(const std::vector<std::string>& names) const {
  int64_t n = 0;
  for (const std::string& name : names) n += stage(name).macs;
  return n;
}

SummaryBuilder::Level::Level(SummaryBuilder& builder, const std::string& name) : builder_(builder) {
  builder_.levels_.push_back(name);
}

SummaryBuilder::Level::~Level() { builder_.levels_.pop_back(); }

std::string SummaryBuilder::path(const std::string& name) const {
  std::string p;
  for (const std::string& level : levels_) p += (p.empty() ? "" : ".") + level;
  if (!name.empty()) p += (p.empty() ? "" : ".") + name;
  return p;
}

void SummaryBuilder::set_stage(const std::string& stage, const std::string& label) {
  stage_ = stage;
  stage_labels_.emplace_back(stage, label);
}

void SummaryBuilder::add_row(LayerRow row) {
  row.stage = stage_;
  row.depth = static_cast<int>(levels_.size());
  summary_.layers.push_back(std::move(row));
}

Shape SummaryBuilder::conv(const std::string& name, const nn::Conv2d& conv, const Shape& in) {
  const Conv2dParams& p = conv.params();
  // nn::Conv2d exposes its weight only mutably; its first registered parameter is the weight (K,R,S,C).
  const Tensor weight = conv.named_parameters().front().second;
  const int64_t r = weight.size(1), s = weight.size(2);
  check(in.size() == 4 && in[3] == conv.in_channels(), "model summary: ", path(name), " expects ",
        conv.in_channels(), " input channels, traced input is ", shape_str(in));
  Shape out = {in[0], conv2d_output_size(in[1], r, p.stride_h, p.pad_h, p.dilation_h),
               conv2d_output_size(in[2], s, p.stride_w, p.pad_w, p.dilation_w), conv.out_channels()};
  check(out[1] > 0 && out[2] > 0, "model summary: ", path(name), " has no output for input ", shape_str(in));
  std::string kind = cat("conv ", r, "x", s);
  if (p.stride_h != 1) kind += cat("/", p.stride_h);
  if (p.dilation_h != 1) kind += cat(" d", p.dilation_h);
  kind += cat(" ", conv.in_channels(), "->", conv.out_channels());
  LayerRow row;
  row.name = path(name);
  row.kind = kind;
  row.output = out;
  row.parameters = conv.parameter_count();
  row.macs = out[1] * out[2] * conv.out_channels() * conv.in_channels() * r * s;
  add_row(std::move(row));
  return out;
}

Shape SummaryBuilder::norm(const std::string& name, const std::string& kind, const nn::Module& module,
                           const Shape& in) {
  LayerRow row;
  row.name = path(name);
  row.kind = kind;
  row.output = in;
  row.parameters = module.parameter_count();
  add_row(std::move(row));
  return in;
}

Shape SummaryBuilder::op(const std::string& name, const std::string& kind, const Shape& out) {
  LayerRow row;
  row.name = path(name);
  row.kind = kind;
  row.output = out;
  add_row(std::move(row));
  return out;
}

void SummaryBuilder::finish() {
  summary_.stages.clear();
  summary_.parameters = 0;
  summary_.macs = 0;
  for (const auto& [stage, label] : stage_labels_) {
    StageTotal total;
    total.stage = stage;
    total.label = label;
    for (const LayerRow& row : summary_.layers) {
      if (row.stage != stage) continue;
      total.parameters += row.parameters;
      total.macs += row.macs;
      total.output = row.output;
    }
    summary_.parameters += total.parameters;
    summary_.macs += total.macs;
    summary_.stages.push_back(std::move(total));
  }
}

std::string format_summary(const ModelSummary& summary, bool verbose) {
  std::string out = summary.title + "\n";
  out += "MACs per image (conv P*Q*K*C*R*S; norms, pooling, interpolation not counted)\n\n";
  // Verbose rows carry the layer's state-dict path and kind; stage rows only a label.
  const int name_width = verbose ? 52 : 30, kind_width = verbose ? 28 : 0;
  const size_t rule = static_cast<size_t>(name_width + (verbose ? kind_width + 1 : 0) + 16 + 15 + 11 + 3);
  char line[256];
  auto row = [&](const std::string& name, const std::string& kind, const std::string& shape,
                 const std::string& params, const std::string& macs) {
    if (verbose) {
      std::snprintf(line, sizeof line, "%-*s %-*s %-16s %14s %10s\n", name_width, name.c_str(), kind_width,
                    kind.c_str(), shape.c_str(), params.c_str(), macs.c_str());
    } else {
      std::snprintf(line, sizeof line, "%-*s %-16s %14s %10s\n", name_width, name.c_str(), shape.c_str(),
                    params.c_str(), macs.c_str());
    }
    out += line;
  };
  row(verbose ? "stage / layer" : "stage", "kind", "output HxWxC", "parameters", "GMAC");
  out += std::string(rule, '-') + "\n";
  const std::vector<std::string> backbone = {"stem", "layer1", "layer2", "layer3", "layer4"};
  int64_t backbone_params = 0, backbone_macs = 0;
  for (const StageTotal& stage : summary.stages) {
    if (std::find(backbone.begin(), backbone.end(), stage.stage) != backbone.end()) {
      backbone_params += stage.parameters;
      backbone_macs += stage.macs;
    }
    row(stage.label, "", hwc(stage.output), grouped(stage.parameters), gmac(stage.macs));
    if (!verbose) continue;
    for (const LayerRow& layer : summary.layers) {
      if (layer.stage != stage.stage) continue;
      row(std::string(2 * static_cast<size_t>(layer.depth), ' ') + layer.name, layer.kind, hwc(layer.output),
          layer.parameters ? grouped(layer.parameters) : "", layer.macs ? gmac(layer.macs) : "");
    }
  }
  out += std::string(rule, '-') + "\n";
  row("backbone (stem + 4 stages)", "", "", grouped(backbone_params), gmac(backbone_macs));
  row("decoder (after the backbone)", "", "", grouped(summary.parameters - backbone_params),
      gmac(summary.macs - backbone_macs));
  row("total", "", "", grouped(summary.parameters), gmac(summary.macs));
  return out;
}

}  // namespace strata::models
