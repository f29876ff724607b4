// map_labels (engine/ops/labels.h): the definition on every case of tests/engine/labels_cases.h (MiB's
// unbiased remap among them), both forms of the table, invalid labels reported at once on the CPU,
// and bad input.
#include <catch2/catch.hpp>

#include "engine/ops/labels.h"
#include "tests/engine/labels_cases.h"

using namespace strata;

TEST_CASE("map_labels maps classes through the table and keeps ignore_index, on every case", "[cpu]") {
  for (const test::MapLabelsCase& c : test::map_labels_cases()) {
    INFO(c.name);
    const int64_t classes = static_cast<int64_t>(c.table.size());
    std::vector<int64_t> expected = c.labels.to_vector<int64_t>();
    for (int64_t& y : expected) {
      if (y != c.ignore_index) y = c.table[static_cast<size_t>(y)];
    }
    Tensor table = Tensor::from_vector(c.table, {classes});
    Tensor mapped = map_labels(c.labels, table, c.ignore_index);
    CHECK(mapped.dtype() == DType::i64);
    CHECK(mapped.shape() == c.labels.shape());
    CHECK(mapped.to_vector<int64_t>() == expected);
    CHECK(map_labels(c.labels, c.table, c.ignore_index).to_vector<int64_t>() == expected);
  }
}

TEST_CASE("map_labels with MiB's table: old classes to background, new classes after it, 255 kept", "[cpu]") {
  Tensor labels = Tensor::from_vector<int64_t>({0, 5, 15, 16, 17, 20, 255}, {7}).to(DType::u8);
  CHECK(map_labels(labels, test::unbiased_table(16, 21)).to_vector<int64_t>() ==
        std::vector<int64_t>{0, 0, 0, 1, 2, 5, 255});
}

TEST_CASE("map_labels rejects a label outside the table at once on the CPU, naming it", "[cpu]") {
  for (DType dtype : {DType::u8, DType::i32, DType::i64}) {
    INFO(dtype_name(dtype));
    Tensor labels = test::labels_with_invalid(dtype);
    CHECK_THROWS_WITH(map_labels(labels, test::unbiased_table(3, 5)),
                      Catch::Contains("map_labels: label 7 at (n=1, h=1, w=3) of labels " + labels.describe()) &&
                          Catch::Contains("outside [0, 5)") && Catch::Contains("ignore_index 255"));
  }
  CHECK_THROWS_WITH(map_labels(Tensor::from_vector<int32_t>({0, -1, 2}, {3}), std::vector<int64_t>{0, 1, 2}),
                    Catch::Contains("label -1 at (n=1)"));
  CHECK_THROWS_WITH(map_labels(Tensor::from_vector<int32_t>({0, 1, 2, 3}, {2, 2}), std::vector<int64_t>{0, 1, 2}),
                    Catch::Contains("label 3 at (i=3)"));
  // 255 is a label like any other when ignore_index is something else.
  CHECK_THROWS_WITH(map_labels(Tensor::full({4}, 255, DType::u8), std::vector<int64_t>{0, 1}, -1),
                    Catch::Contains("label 255 at (n=0)") && Catch::Contains("ignore_index -1"));
}

TEST_CASE("map_labels rejects bad input clearly", "[cpu]") {
  Tensor labels = Tensor::zeros({2, 3}, DType::u8);
  CHECK_THROWS_WITH(map_labels(Tensor::zeros({2, 3}), std::vector<int64_t>{0}),
                    Catch::Contains("map_labels") && Catch::Contains("u8, i32 or i64") && Catch::Contains("f32[2,3]"));
  CHECK_THROWS_WITH(map_labels(labels, Tensor::zeros({3}, DType::i32)),
                    Catch::Contains("map_labels") && Catch::Contains("table of shape (K) and dtype i64") &&
                        Catch::Contains("i32[3]"));
  CHECK_THROWS_WITH(map_labels(labels, Tensor::zeros({3, 1}, DType::i64)), Catch::Contains("i64[3,1]"));
  CHECK_THROWS_WITH(map_labels(labels, Tensor()), Catch::Contains("table is an undefined tensor"));
  CHECK_THROWS_WITH(map_labels(Tensor(), std::vector<int64_t>{0}), Catch::Contains("labels is an undefined tensor"));
}
