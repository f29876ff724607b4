// first_nonfinite (engine/finite.h): a NaN or an Inf anywhere in a tensor of any floating dtype is
// found and named by key; finite tensors, empty ones and integer ones pass.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/finite.h"

using namespace strata;

TEST_CASE("first_nonfinite names the first tensor holding a NaN or an Inf, in key order", "[cpu]") {
  Generator g(4);
  TensorMap tensors{{"a.weight", Tensor::randn({3, 5, 5, 7}, g)},
                    {"b.double", Tensor::randn({1000}, g, DType::f64)},
                    {"c.counts", Tensor::zeros({4}, DType::i64)},
                    {"d.empty", Tensor::zeros({0, 3})},
                    {"e.half", Tensor::randn({9}, g).to(DType::bf16)}};
  CHECK(first_nonfinite(tensors) == "");
  CHECK(first_nonfinite({}) == "");

  // Huge finite values are finite: 0 * x stays 0.
  tensors["b.double"].data<double>()[999] = 1e308;
  tensors["a.weight"].data<float>()[0] = 3e38f;
  CHECK(first_nonfinite(tensors) == "");

  tensors["e.half"] = Tensor::full({9}, -INFINITY).to(DType::bf16);
  CHECK(first_nonfinite(tensors) == "e.half");
  tensors["b.double"].data<double>()[500] = NAN;
  CHECK(first_nonfinite(tensors) == "b.double");
  tensors["a.weight"].data<float>()[3 * 5 * 5 * 7 - 1] = INFINITY;
  CHECK(first_nonfinite(tensors) == "a.weight");
}

TEST_CASE("nonfinite_marker, squared_norm and all_finite: the health probe's pieces", "[cpu]") {
  Generator g(5);
  const Device cpu = Device::cpu();
  std::vector<Tensor> tensors{Tensor::randn({4, 3}, g), Tensor::randn({7}, g, DType::f64),
                              Tensor::zeros({2}, DType::i64), Tensor()};
  double expected = 0;
  for (const Tensor& t : {tensors[0], tensors[1]}) {
    for (double v : t.to_vector<double>()) expected += v * v;
  }
  CHECK(squared_norm(tensors, cpu).to_vector<double>()[0] == Approx(expected).epsilon(1e-6));
  CHECK(squared_norm({}, cpu).to_vector<double>() == std::vector<double>{0.0});
  CHECK(nonfinite_marker(tensors, cpu).to_vector<double>() == std::vector<double>{0.0});
  CHECK(all_finite(tensors[0]));
  CHECK(all_finite(Tensor()));

  tensors[1].data<double>()[3] = INFINITY;
  CHECK(std::isinf(squared_norm(tensors, cpu).to_vector<double>()[0]));
  CHECK(std::isnan(nonfinite_marker(tensors, cpu).to_vector<double>()[0]));
  CHECK_FALSE(all_finite(tensors[1]));
  tensors[1].data<double>()[3] = NAN;
  CHECK(std::isnan(squared_norm(tensors, cpu).to_vector<double>()[0]));
  CHECK(std::isnan(nonfinite_marker(tensors, cpu).to_vector<double>()[0]));
}
