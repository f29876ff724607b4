// The communicator's collectives between the two ranks of `mpirun -np 2` (engine/distributed/
// communicator.h): sums, broadcasts and gathers of every dtype it takes, on host tensors and on
// (emulated) CUDA tensors and the argument errors (the timeout: test_timeout.cpp).
#include <catch2/catch.hpp>
#include <vector>

#include "engine/device.h"
#include "engine/error.h"
#include "tests/distributed/world.h"

using namespace strata;
using strata::testing::world;

namespace {

// Rank r's values: r + 1 + i / 4 (exact in bf16 for the sizes used).
Tensor rank_values(int64_t n, DType dtype, const Device& device = Device::cpu()) {
  std::vector<double> values;
  for (int64_t i = 0; i < n; ++i) values.push_back(world().rank() + 1 + static_cast<double>(i) / 4);
  return Tensor::from_vector(values, {n}).to(dtype).to(device);
}

std::vector<double> expected_sums(int64_t n) {
  std::vector<double> sums;
  const int w = world().world_size();
  for (int64_t i = 0; i < n; ++i) sums.push_back(w * (w + 1) / 2.0 + w * static_cast<double>(i) / 4);
  return sums;
}

}  // namespace

TEST_CASE("the suite runs as two ranks of one world", "[distributed]") {
  REQUIRE(world().world_size() == 2);
  Tensor ranks = world().all_gather(Tensor::from_vector<int64_t>({world().rank()}, {1}));
  CHECK(ranks.shape() == Shape{2, 1});
  CHECK(ranks.to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK(world().local_rank() == world().rank());  // one machine
}

TEST_CASE("all_reduce_sum sums f32, f64 and bf16 tensors in place on every rank", "[distributed]") {
  for (DType dtype : {DType::f32, DType::f64, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    Tensor t = rank_values(37, dtype);
    world().all_reduce_sum(t);
    CHECK(t.dtype() == dtype);
    CHECK(t.to_vector<double>() == expected_sums(37));
  }
  CHECK(world().all_reduce_sum(int64_t{world().rank() + 5}) == 11);
  CHECK(world().all_reduce_max(world().rank() == 1 ? 2.5 : -1.0) == 2.5);
}

TEST_CASE("broadcast gives every rank the root's tensor, all_gather every rank's", "[distributed]") {
  Tensor t = rank_values(5, DType::f32);
  world().broadcast(t, 1);
  CHECK(t.to_vector<double>() == std::vector<double>{2, 2.25, 2.5, 2.75, 3});
  Tensor labels = Tensor::full({2, 3}, world().rank() * 10 + 7, DType::u8);
  world().broadcast(labels, 0);
  CHECK(labels.to_vector<int>() == std::vector<int>(6, 7));
  Tensor gathered = world().all_gather(rank_values(3, DType::f64));
  CHECK(gathered.shape() == Shape{2, 3});
  CHECK(gathered.to_vector<double>() == std::vector<double>{1, 1.25, 1.5, 2, 2.25, 2.5});
}

TEST_CASE("collectives on CUDA tensors go through the host and come back on the device", "[distributed]") {
  if (std::string(cuda_backend()) != "emulated") return;  // the real backend's test runs on a GPU machine
  Device device = open_cuda_device(0);
  Tensor t = rank_values(9, DType::f32, device);
  world().all_reduce_sum(t);
  CHECK(t.device() == device);
  CHECK(t.to_vector<double>() == expected_sums(9));
  Tensor b = rank_values(2, DType::f64, device);
  world().broadcast(b, 1);
  CHECK(b.to_vector<double>() == std::vector<double>{2, 2.25});
  Tensor g = world().all_gather(rank_values(1, DType::f32, device));
  CHECK(g.device() == device);
  CHECK(g.to_vector<double>() == std::vector<double>{1, 2});
}

TEST_CASE("collectives refuse what they cannot reduce, naming it", "[distributed]") {
  Tensor u8 = Tensor::zeros({3}, DType::u8);
  CHECK_THROWS_WITH(world().all_reduce_sum(u8), Catch::Contains("expected an f32, f64 or bf16 tensor, got u8[3]"));
  Tensor strided = Tensor::zeros({2, 3}).permute({1, 0});
  CHECK_THROWS_WITH(world().all_reduce_sum(strided), Catch::Contains("expected a defined contiguous tensor"));
  Tensor t = Tensor::zeros({1});
  CHECK_THROWS_WITH(world().broadcast(t, 2), Catch::Contains("root 2 is not a rank of a world of 2"));
  CHECK_THROWS_WITH(distributed::parse_backend("gloo"), "--dist-backend 'gloo': expected mpi or nccl");
  CHECK_THROWS_WITH(distributed::make_communicator(strata::testing::mpi_session(),
                                                   {.backend = distributed::CommBackend::mpi, .timeout_seconds = 0}),
                    "--dist-timeout must be > 0 seconds, got 0");
}

TEST_CASE("the nccl backend reduces emulated CUDA tensors on the device and host ones over MPI", "[distributed]") {
  if (std::string(cuda_backend()) != "emulated") return;  // the real backend's test runs on a GPU machine
  std::unique_ptr<distributed::Communicator> nccl = distributed::make_communicator(
      strata::testing::mpi_session(), {.backend = distributed::CommBackend::nccl, .timeout_seconds = 60});
  CHECK(nccl->backend() == distributed::CommBackend::nccl);
  CHECK(nccl->rank() == world().rank());
  Device device = open_cuda_device(0);
  for (DType dtype : {DType::f32, DType::f64, DType::bf16}) {
    CAPTURE(dtype_name(dtype));
    Tensor t = rank_values(33, dtype, device);
    nccl->all_reduce_sum(t);
    CHECK(t.device() == device);
    CHECK(t.dtype() == dtype);
    CHECK(t.to_vector<double>() == expected_sums(33));
  }
  Tensor b = rank_values(4, DType::f32, device);
  nccl->broadcast(b, 1);
  CHECK(b.to_vector<double>() == std::vector<double>{2, 2.25, 2.5, 2.75});
  Tensor g = nccl->all_gather(rank_values(2, DType::f64, device));
  CHECK(g.device() == device);
  CHECK(g.shape() == Shape{2, 2});
  CHECK(g.to_vector<double>() == std::vector<double>{1, 1.25, 2, 2.25});
  // Host tensors and values take the MPI path.
  Tensor host = rank_values(3, DType::f32);
  nccl->all_reduce_sum(host);
  CHECK(host.to_vector<double>() == expected_sums(3));
  CHECK(nccl->all_reduce_sum(int64_t{world().rank()}) == 1);
  // One device per rank.
  Device other = open_cuda_device(0);
  Tensor elsewhere = rank_values(2, DType::f32, other);
  CHECK_THROWS_WITH(nccl->all_reduce_sum(elsewhere), Catch::Contains("(one device per rank)"));
}
