// A program built against the installed strata package: the build it links, a continual task, and
// one forward and backward of strata's small DeepLabV3 on the CPU.
#include <cstdio>

#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "engine/version.h"
#include "incremental/task.h"
#include "models/segmentation_model.h"

int main() {
  using namespace strata;
  std::printf("%s\n", build_description().c_str());
  const incremental::Task task = incremental::Task::create(incremental::LabelSpace::voc(), "15-5");
  std::printf("task %s\n", task.describe().c_str());
  models::SegmentationModel model(models::small_model_config({16, 5}));
  Generator generator(1);
  const Tensor images = Tensor::randn({2, 32, 32, 3}, generator);
  const Tensor logits = model.forward(images).logits;
  sum(logits).backward();
  std::printf("logits %s, %lld parameters\n", logits.describe().c_str(),
              static_cast<long long>(model.parameter_count()));
  return 0;
}
