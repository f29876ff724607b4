// map_labels and the shared label validation: one kernel call for both backends (kernels/cpu/labels.h,
// kernels/cuda/labels.h), and the verdict of the label statistics evaluated now on the CPU or at the
// device's next host synchronisation (DeviceContext::check_at_next_synchronize).
#include "engine/ops/labels.h"

#include <string>
#include <utility>

#include "engine/device_context.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/common/labels.h"
#include "kernels/cpu/labels.h"
#include "kernels/cuda/labels.h"

namespace strata {

namespace {

namespace cm = kernels::common;

// "(n=1, h=2, w=0)" for (N,H,W) labels, "(n=3)" for (N) labels, "(i=7)" (the flat index) otherwise.
std::string label_position(const Shape& shape, int64_t flat) {
  if (shape.size() == 1) return cat("(n=", flat, ")");
  if (shape.size() != 3) return cat("(i=", flat, ")");
  int64_t w = flat % shape[2], h = (flat / shape[2]) % shape[1], n = flat / (shape[1] * shape[2]);
  return cat("(n=", n, ", h=", h, ", w=", w, ")");
}

}  // namespace

Tensor label_stats_tensor(const Device& device) { return Tensor::empty({cm::kLabelStats}, DType::i64, device); }

void check_label_stats(const char* op, const Tensor& stats, const Tensor& labels, int64_t classes,
                       int64_t ignore_index) {
  // Captures only what the message needs: on CUDA the verdict runs later, when the labels may be gone.
  auto verdict = [op = std::string(op), shape = labels.shape(), description = labels.describe(), classes,
                  ignore_index](const void* bytes) -> std::string {
    const auto* s = static_cast<const int64_t*>(bytes);
    if (s[cm::kFirstInvalid] < 0) return "";
    return cat(op, ": label ", s[cm::kInvalidValue], " at ", label_position(shape, s[cm::kFirstInvalid]), " of labels ",
               description, " is outside [0, ", classes, ") and is not ignore_index ", ignore_index);
  };
  if (stats.device().is_cpu()) {
    std::string failure = verdict(stats.raw_data());
    if (!failure.empty()) throw Error(failure);
    return;
  }
  check(stats.device().context != nullptr, op, ": ", stats.describe(), " has no device context");
  stats.device().context->check_at_next_synchronize(stats.raw_data(), stats.nbytes(), std::move(verdict));
}

Tensor map_labels(const Tensor& labels, const Tensor& table, int64_t ignore_index, const char* op) {
  profiler::Scope profile_scope("map_labels");
  check_defined(op, "labels", labels);
  check(is_label_dtype(labels.dtype()), op, ": expected labels of dtype u8, i32 or i64, got ", labels.describe());
  check_defined(op, "table", table);
  check(table.dtype() == DType::i64 && table.dim() == 1, op, ": expected a table of shape (K) and dtype i64, got ",
        table.describe());
  check_same_device(op, labels, "labels", table, "table");
  Tensor lc = labels.contiguous(), tc = table.contiguous();
  Tensor out = Tensor::empty(labels.shape(), DType::i64, labels.device());
  Tensor stats = label_stats_tensor(labels.device());
  const int64_t classes = table.numel();
  // Integer data in and out: the kernel fixes its element types, the body takes only the backend.
  on_backend(op, labels, [&](const auto& backend) {
    visit_label(op, lc.dtype(), [&](auto label_tag) {
      using L = decltype(label_tag);
      map_labels(out.data<int64_t>(), stats.data<int64_t>(), lc.data<L>(), tc.data<int64_t>(), lc.numel(), classes,
                 ignore_index, backend);
    });
  });
  check_label_stats(op, stats, labels, classes, ignore_index);
  return out;
}

Tensor map_labels(const Tensor& labels, const std::vector<int64_t>& table, int64_t ignore_index, const char* op) {
  check_defined(op, "labels", labels);
  return map_labels(labels, Tensor::from_vector(table, {static_cast<int64_t>(table.size())}).to(labels.device()),
                    ignore_index, op);
}

}  // namespace strata
