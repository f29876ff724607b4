// map_labels on CUDA: equal to the CPU on every case of tests/engine/labels_cases.h (MiB's unbiased
// remap among them) with the table as a device tensor or a host vector, and an invalid label reported
// at the device's next host synchronisation with the CPU's message.
#include <catch2/catch.hpp>

#include "engine/device_context.h"
#include "engine/ops/labels.h"
#include "tests/cuda/cuda_device.h"
#include "tests/engine/labels_cases.h"

using namespace strata;

TEST_CASE("cuda map_labels equals the CPU on every case", "[cpu]") {
  const Device& gpu = test::cuda_device();
  for (const test::MapLabelsCase& c : test::map_labels_cases()) {
    INFO(c.name);
    std::vector<int64_t> expected = map_labels(c.labels, c.table, c.ignore_index).to_vector<int64_t>();
    Tensor labels = c.labels.to(gpu);
    Tensor table = Tensor::from_vector(c.table, {static_cast<int64_t>(c.table.size())}).to(gpu);
    Tensor mapped = map_labels(labels, table, c.ignore_index);
    CHECK(mapped.device() == gpu);
    CHECK(mapped.dtype() == DType::i64);
    CHECK(mapped.to_vector<int64_t>() == expected);
    CHECK(map_labels(labels, c.table, c.ignore_index).to_vector<int64_t>() == expected);
  }
}

TEST_CASE("cuda map_labels reports an invalid label at the next host synchronisation", "[cpu]") {
  const Device& gpu = test::cuda_device();
  for (DType dtype : {DType::u8, DType::i32, DType::i64}) {
    INFO(dtype_name(dtype));
    Tensor labels = test::labels_with_invalid(dtype).to(gpu);
    Tensor mapped = map_labels(labels, test::unbiased_table(3, 5));
    CHECK_THROWS_WITH(mapped.to_vector<int64_t>(),
                      Catch::Contains("map_labels: label 7 at (n=1, h=1, w=3) of labels " + labels.describe() +
                                      " is outside [0, 5) and is not ignore_index 255") &&
                          Catch::Contains("first host synchronisation after the op ran"));
    CHECK_NOTHROW(gpu.context->synchronize());
  }
  CHECK_THROWS_WITH(map_labels(Tensor::zeros({3}, DType::u8).to(gpu), Tensor::zeros({2}, DType::i64)),
                    Catch::Contains("map_labels") && Catch::Contains("devices must match"));
}
