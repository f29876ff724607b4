// CUDA graphs for the training step (incremental/step_graph.h), under the emulator's stream capture:
// a MiB step 1 iteration (teacher forward, student forward, losses, backward, SGD) replayed from its
// captured graph gives exactly the eager iteration's results, bit for bit, iteration after iteration
// (losses, parameters, momentum buffers, batch-norm statistics), with the poly schedule's lr of each
// replay, without making the host wait; and a change of the batch's shape re-captures.
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "engine/device.h"
#include "incremental/method.h"
#include "incremental/recipe.h"
#include "incremental/step_graph.h"
#include "incremental/step_session.h"
#include "incremental/task.h"
#include "models/segmentation_model.h"

#if STRATA_CUDA_EMULATION_FOR_TESTS
#include <cudaemu/control.h>
#endif

using namespace strata;
using namespace strata::incremental;

namespace {

Tensor batch_images(int64_t n, int64_t size, uint64_t seed) {
  Generator g(seed);
  return Tensor::uniform({n, size, size, 3}, 0.0, 255.0, g).to(DType::u8);
}

Tensor batch_labels(int64_t n, int64_t size, int64_t classes) {
  std::vector<uint8_t> v(static_cast<size_t>(n * size * size));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>((i / 5) % static_cast<size_t>(classes));
  return Tensor::from_vector(v, {n, size, size});
}

// Everything an iteration changes, read to the host: parameters, buffers (batch-norm statistics) and
// SGD's momentum buffers, by name.
std::map<std::string, std::vector<float>> state(StepSession& session) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : session.model().named_parameters()) out[name] = t.to_vector<float>();
  for (const auto& [name, t] : session.model().named_buffers()) {
    if (is_floating(t.dtype())) out[name] = t.to_vector<float>();
  }
  Metadata metadata;
  for (const auto& [name, t] : session.optimizer().state_dict(metadata)) out[name] = t.to_vector<float>();
  return out;
}

}  // namespace

TEST_CASE("a replayed CUDA graph of the MiB step equals the eager step bit for bit, and a new shape re-captures",
          "[cuda]") {
  const Task task = Task::create(LabelSpace::voc(), "15-5");
  models::ModelConfig model = models::small_model_config({16, 5});
  model.seed = 3;
  models::ModelConfig previous_config = models::small_model_config({16});
  previous_config.seed = 5;
  const TensorMap previous = models::SegmentationModel(previous_config).state_dict();
  const Device gpu = parse_device("cuda", Precision::f32);
  const auto session_with = [&](bool graphs) {
    StepSetup setup;
    setup.step = 1;
    setup.model = model;
    setup.method = method_preset("MiB", task);
    setup.recipe = reference_recipe(task, 1);
    setup.recipe.lr = 0.05;
    setup.device = gpu;
    setup.cuda_graphs = graphs;
    return std::make_unique<StepSession>(setup, task, &previous, "previous", "", 12);
  };
  std::unique_ptr<StepSession> eager = session_with(false), graphed = session_with(true);
  REQUIRE(eager->graph() == nullptr);
  REQUIRE(graphed->graph() != nullptr);

  // 5 iterations of batch 2 (eager, primed, captured, 2 replays), then 4 of batch 3 (eager, primed,
  // captured, replay): 2 captures, 5 launches. Each batch differs, so a replay reading stale inputs
  // or a stale lr shows.
  std::vector<double> lrs;
  int iteration = 0;
  for (const int64_t n : {2, 2, 2, 2, 2, 3, 3, 3, 3}) {
    INFO("iteration " << iteration << ", batch " << n);
    const Tensor images = batch_images(n, 16, 10 + iteration);
    const Tensor labels = batch_labels(n, 16, 21);
#if STRATA_CUDA_EMULATION_FOR_TESTS
    const auto syncs = cudaemu::host_synchronization_count();
#endif
    const int64_t replays = graphed->graph()->replays();
    const IterationStats g = graphed->train_iteration(images, labels);
#if STRATA_CUDA_EMULATION_FOR_TESTS
    // A replay (its inputs uploaded through pinned staging, copied into the graph's) never waits.
    if (graphed->graph()->replays() > replays) CHECK(cudaemu::host_synchronization_count() == syncs);
#endif
    const IterationStats e = eager->train_iteration(images, labels);
    CHECK(g.lr == e.lr);
    lrs.push_back(g.lr);
    CHECK(g.names == e.names);
    CHECK(g.loss.to_vector<float>() == e.loss.to_vector<float>());
    CHECK(g.terms.to_vector<float>() == e.terms.to_vector<float>());
    const auto graphed_state = state(*graphed), eager_state = state(*eager);
    REQUIRE(graphed_state.size() == eager_state.size());
    for (const auto& [name, values] : eager_state) {
      INFO(name);
      CHECK(graphed_state.at(name) == values);
    }
    CHECK(graphed->optimizer().steps() == eager->optimizer().steps());
    CHECK(graphed->schedule().iteration() == eager->schedule().iteration());
    ++iteration;
  }
  CHECK(graphed->graph()->captures() == 2);
  CHECK(graphed->graph()->replays() == 5);
  // The poly schedule moved at every iteration, replays included.
  for (size_t i = 1; i < lrs.size(); ++i) CHECK(lrs[i] < lrs[i - 1]);
}
