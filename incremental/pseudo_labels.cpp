// PLOP's pseudo-label thresholds: the two medians, the checkpoint state and the threshold pass
// (incremental/pseudo_labels.h).
#include "incremental/pseudo_labels.h"

#include <cmath>

#include "engine/autograd.h"
#include "engine/error.h"

namespace strata::incremental {

namespace {

constexpr const char* kThresholdsKey = "pseudo_thresholds";
constexpr const char* kMedianKey = "pseudo_median";
constexpr const char* kKindsKey = "pseudo_threshold_kinds";

enum ThresholdKind : int64_t { kFinite = 0, kNaN = 1, kPlusInf = 2, kMinusInf = 3 };

ThresholdKind kind_of(float tau) {
  if (std::isnan(tau)) return kNaN;
  if (std::isinf(tau)) return tau > 0 ? kPlusInf : kMinusInf;
  return kFinite;
}

}  // namespace

// PLOP's loop, step by step: `half` and every comparison in float32 (a long tensor's sum / 2 and
// Python floats compared with it), the running sum and the bin position in Python's doubles.
float reference_histogram_median(const int64_t* counts, int64_t bins) {
  int64_t total = 0;
  for (int64_t b = 0; b < bins; ++b) total += counts[b];
  if (total <= 0) return 0.0f;
  const float half = static_cast<float>(total) / 2.0f;
  double running = 0, lower = 0;
  int64_t bin = 0;
  for (int64_t i = 0; i < bins; ++i) {
    lower = static_cast<double>(i) / static_cast<double>(bins);
    bin = static_cast<int64_t>(lower * static_cast<double>(bins));
    const float below = static_cast<float>(running);
    if (half >= below && half <= below + static_cast<float>(counts[bin])) break;
    running += lower * static_cast<double>(bins);
  }
  const float step = static_cast<float>(1.0 / static_cast<double>(bins));
  return static_cast<float>(lower) + ((half - static_cast<float>(running)) / static_cast<float>(counts[bin])) * step;
}

float true_histogram_median(const int64_t* counts, int64_t bins) {
  int64_t total = 0;
  for (int64_t b = 0; b < bins; ++b) total += counts[b];
  if (total <= 0) return 0.0f;
  const double half = static_cast<double>(total) / 2.0;
  double before = 0;
  for (int64_t b = 0; b < bins; ++b) {
    const double count = static_cast<double>(counts[b]);
    if (count > 0 && before + count >= half) {
      return static_cast<float>((static_cast<double>(b) + (half - before) / count) / static_cast<double>(bins));
    }
    before += count;
  }
  return 1.0f;  // not reached: half <= total
}

PseudoLabelThresholds PseudoLabelThresholds::from_histogram(const std::vector<int64_t>& histogram, PseudoMedian median,
                                                            double minimum) {
  check(!histogram.empty() && histogram.size() % static_cast<size_t>(kEntropyBins) == 0,
        "pseudo-label thresholds: the histogram has ", histogram.size(), " counts; expected C_old rows of ",
        kEntropyBins, " bins");
  for (const int64_t count : histogram) {
    check(count >= 0, "pseudo-label thresholds: the histogram has a negative count ", count);
  }
  PseudoLabelThresholds out;
  out.median = median;
  const int64_t classes = static_cast<int64_t>(histogram.size()) / kEntropyBins;
  const float floor = static_cast<float>(minimum);
  for (int64_t c = 0; c < classes; ++c) {
    const int64_t* row = histogram.data() + c * kEntropyBins;
    const float tau = median == PseudoMedian::reference ? reference_histogram_median(row, kEntropyBins)
                                                        : true_histogram_median(row, kEntropyBins);
    // Python's max(τ, minimum): τ unless minimum > τ, so NaN stays NaN.
    out.values.push_back(floor > tau ? floor : tau);
  }
  return out;
}

Tensor PseudoLabelThresholds::tensor(DType dtype, const Device& device) const {
  const int64_t classes = static_cast<int64_t>(values.size());
  return Tensor::from_vector(values, {classes}).to(dtype).to(device);
}

TensorMap PseudoLabelThresholds::state() const {
  const int64_t classes = static_cast<int64_t>(values.size());
  std::vector<float> finite(values.size());
  std::vector<int64_t> kinds(values.size());
  for (size_t c = 0; c < values.size(); ++c) {
    kinds[c] = kind_of(values[c]);
    finite[c] = kinds[c] == kFinite ? values[c] : 0.0f;
  }
  return {{kThresholdsKey, Tensor::from_vector(finite, {classes})},
          {kKindsKey, Tensor::from_vector(kinds, {classes})},
          {kMedianKey, Tensor::from_vector(std::vector<int64_t>{median == PseudoMedian::fixed ? 1 : 0}, {1})}};
}

PseudoLabelThresholds PseudoLabelThresholds::from_state(const TensorMap& state, const std::string& source) {
  const auto find = [&](const char* key) -> const Tensor& {
    const auto it = state.find(key);
    check(it != state.end(), source, ": no method state '", key, "' (PLOP's pseudo-label thresholds)");
    return it->second;
  };
  const Tensor& tau = find(kThresholdsKey);
  const Tensor& kinds = find(kKindsKey);
  const Tensor& median = find(kMedianKey);
  check(tau.dtype() == DType::f32 && tau.dim() == 1 && tau.size(0) >= 1, source, ": method state '", kThresholdsKey,
        "' is ", tau.describe(), "; expected f32 (C_old)");
  check(kinds.dtype() == DType::i64 && kinds.shape() == tau.shape(), source, ": method state '", kKindsKey, "' is ",
        kinds.describe(), "; expected i64 of the shape of '", kThresholdsKey, "' ", shape_str(tau.shape()));
  check(median.dtype() == DType::i64 && median.numel() == 1, source, ": method state '", kMedianKey, "' is ",
        median.describe(), "; expected i64 (1)");
  const int64_t variant = median.to(Device::cpu()).to_vector<int64_t>()[0];
  check(variant == 0 || variant == 1, source, ": method state '", kMedianKey, "' is ", variant,
        "; expected 0 (reference) or 1 (fixed)");
  PseudoLabelThresholds out;
  out.median = variant == 1 ? PseudoMedian::fixed : PseudoMedian::reference;
  out.values = tau.to(Device::cpu()).to_vector<float>();
  const std::vector<int64_t> kind = kinds.to(Device::cpu()).to_vector<int64_t>();
  for (size_t c = 0; c < out.values.size(); ++c) {
    check(std::isfinite(out.values[c]), source, ": method state '", kThresholdsKey, "' holds ", out.values[c],
          " at class ", c, "; expected finite values (the others are in '", kKindsKey, "')");
    switch (kind[c]) {
      case kFinite: break;
      case kNaN: out.values[c] = NAN; break;
      case kPlusInf: out.values[c] = INFINITY; break;
      case kMinusInf: out.values[c] = -INFINITY; break;
      default:
        throw Error(cat(source, ": method state '", kKindsKey, "' holds ", kind[c], " at class ", c,
                        "; expected 0 (finite), 1 (NaN), 2 (+inf) or 3 (-inf)"));
    }
  }
  return out;
}

PseudoLabelThresholds compute_pseudo_label_thresholds(const NextThresholdBatch& next,
                                                      const TeacherLogits& teacher_logits,
                                                      const PseudoLabelOptions& options,
                                                      const ThresholdProgress& progress, double minimum) {
  autograd::NoGradGuard no_grad;
  Tensor histogram;
  int64_t batches = 0;
  while (std::optional<ThresholdBatch> batch = next()) {
    const Tensor logits = teacher_logits(batch->images);
    check(logits.defined() && logits.dim() == 4, "pseudo-label thresholds: the teacher returned ", logits.describe(),
          "; expected its low-resolution logits (N,h,w,C_old)");
    if (!histogram.defined()) histogram = Tensor::zeros({logits.size(3), kEntropyBins}, DType::i64, logits.device());
    accumulate_entropy_histogram(histogram, logits, batch->labels, options);
    ++batches;
    if (progress) progress(batches);
  }
  check(batches > 0, "pseudo-label thresholds: the training data gave no batch to compute them from");
  return PseudoLabelThresholds::from_histogram(histogram.to(Device::cpu()).to_vector<int64_t>(), options.median,
                                               minimum);
}

}  // namespace strata::incremental
