// `strata summary --memory` (apps/strata/memory_prediction.h): the peak predicted from two small
// probes against the peak measured at the target size, within kMemoryPredictionShare, on the CUDA
// backend (the emulator's caching allocator in CI), at a size where the maps dominate the peak; what
// does not depend on the batch or the crop (weights, optimizer state) is predicted as measured. The
// CPU is refused with the reason.
#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "apps/strata/memory_prediction.h"
#include "engine/device.h"
#include "tests/support/tolerances.h"

using namespace strata;
using namespace strata::app;

namespace {

void check_prediction(const std::string& device, int64_t batch, int64_t crop) {
  ProfileSettings s;
  s.method = "MiB";
  s.backbone = "small";
  s.device = device;
  s.batch = batch;
  s.crop = crop;
  s.warmup = 1;
  s.iterations = 1;
  const MemoryPrediction predicted = predict_peak_memory(s);
  const MethodProfile measured = profile_method(s, "MiB", true);
  INFO(format_memory_prediction(s, predicted));
  INFO("measured peak " << measured.peak_bytes);
  const double error = std::abs(static_cast<double>(predicted.predicted_peak - measured.peak_bytes)) /
                       static_cast<double>(measured.peak_bytes);
  CHECK(error <= test::kMemoryPredictionShare);
  // The probes are smaller than the target, so the prediction extends them rather than interpolating.
  CHECK(predicted.probe_peak[0] < predicted.probe_peak[1]);
  CHECK(predicted.probe_peak[1] < measured.peak_bytes);
  // What the iteration finds allocated (weights, teacher weights, momentum) does not depend on the
  // size; the maps dominate the target's peak (the small model's weights, gradients and momentum
  // are 23 MiB), so the 10% bound holds the extension of the maps, not only the constant part.
  REQUIRE(predicted.rows.size() >= 2);
  const MemoryPrediction::Row& held = predicted.rows[0];
  CHECK(held.name == "weights, teacher weights, optimizer state");
  CHECK(held.probe[1] == held.probe[0]);
  CHECK(held.predicted == held.probe[0]);
  const int64_t constant = held.predicted + predicted.rows[1].predicted;
  CHECK(predicted.predicted_peak > 2 * constant);
}

}  // namespace

TEST_CASE("the memory prediction refuses the CPU, whose im2col workspace is not affine in the batch", "[cpu]") {
  ProfileSettings s;
  s.backbone = "small";
  s.device = "cpu";
  CHECK_THROWS_WITH(predict_peak_memory(s), Catch::Contains("predicts a CUDA device's memory only"));
}

TEST_CASE("the predicted peak memory of a step is within 10% of the measured one, on the CUDA backend", "[cpu]") {
  if (std::string(cuda_backend()).empty()) return;  // a CPU-only build has no CUDA backend to predict
  check_prediction("cuda", 4, 192);
}
