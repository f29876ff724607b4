// Host-to-device copies on the copy stream and through pinned staging: an Upload delivers the host
// bytes in every dtype and layout, the host tensor may change as soon as the Upload exists, the
// memory of a taken or abandoned Upload goes back to the right stream's pool, staging buffers are
// reused, the device prefetcher delivers exactly the loader's batches, and misuse errors.
#include <catch2/catch.hpp>

#include <cstring>

#include "data/device_prefetcher.h"
#include "data/generate.h"
#include "data/loader.h"
#include "engine/caching_allocator.h"
#include "engine/cuda/context.h"
#include "engine/error.h"
#include "engine/ops/elementwise.h"
#include "engine/pinned_staging.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"
#include "engine/upload.h"
#include "tests/cuda/cuda_device.h"
#include "tests/data/temp_dir.h"

using namespace strata;
using test::cuda_device;

namespace {

bool same_bytes(const Tensor& a, const Tensor& b) {
  Tensor ha = a.to(Device::cpu()).contiguous(), hb = b.to(Device::cpu()).contiguous();
  return ha.shape() == hb.shape() && ha.dtype() == hb.dtype() &&
         std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

CachingAllocator& caching_allocator(const Device& device) {
  auto* caching = dynamic_cast<CachingAllocator*>(&cuda_context(device).allocator());
  REQUIRE(caching != nullptr);
  return *caching;
}

}  // namespace

TEST_CASE("upload: the device tensor holds the host bytes in every dtype", "[cpu]") {
  const Device& gpu = cuda_device();
  Generator g(5);
  Tensor x = Tensor::randn({2, 7, 9, 3}, g);
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::u8, DType::i32, DType::i64}) {
    INFO(dtype_name(dtype));
    Tensor host = x.to(dtype);
    Upload upload(host, gpu);
    REQUIRE(upload.pending());
    Tensor device = upload.take();
    CHECK(!upload.pending());
    CHECK(device.device() == gpu);
    CHECK(device.is_contiguous());
    CHECK(same_bytes(device, host));
  }
}

TEST_CASE("upload: a strided host view arrives contiguous, and the host may change at once", "[cpu]") {
  const Device& gpu = cuda_device();
  Generator g(6);
  Tensor x = Tensor::randn({2, 3, 4, 5}, g);
  Tensor nchw = x.permute({0, 3, 1, 2});
  Upload strided(nchw, gpu);
  Tensor expected = nchw.contiguous();
  Tensor host = Tensor::full({1000}, 1.0);
  Upload filled(host, gpu);
  host.fill_(2.0);  // the bytes were staged when the Upload was made
  CHECK(same_bytes(strided.take(), expected));
  CHECK(filled.take().to_vector<float>() == std::vector<float>(1000, 1.0f));
}

TEST_CASE("upload: ops on the compute stream read the copied values", "[cpu]") {
  const Device& gpu = cuda_device();
  Generator g(7);
  Tensor a = Tensor::randn({4, 33}, g), b = Tensor::randn({4, 33}, g);
  Upload ua(a, gpu), ub(b, gpu);
  Tensor sum = add(ua.take(), ub.take());
  CHECK(same_bytes(sum, add(a, b)));
}

TEST_CASE("upload: memory comes from the copy stream's pool and returns to it", "[cpu]") {
  const Device& gpu = cuda_device();
  CachingAllocator& allocator = caching_allocator(gpu);
  gpu.context->synchronize();
  const CachingAllocatorStats before = allocator.detailed_stats();
  Tensor host = Tensor::zeros({3 * 1024 * 1024}, DType::u8);
  void* first = nullptr;
  {
    Upload abandoned(host, gpu);  // never taken: freed on the copy stream
    CHECK(allocator.detailed_stats().live_blocks == before.live_blocks + 1);
  }
  CHECK(allocator.detailed_stats().live_blocks == before.live_blocks);
  {
    Tensor taken = Upload(host, gpu).take();
    first = taken.raw_data();
    // A compute-stream allocation of the same size never gets copy-stream memory.
    Tensor compute = Tensor::empty({3 * 1024 * 1024}, DType::u8, gpu);
    CHECK(compute.raw_data() != first);
  }
  // The taken block waits for an event behind the compute stream's work (still queued, under a
  // deferred emulator schedule), then serves the copy stream again.
  gpu.context->synchronize();
  Tensor again = Upload(host, gpu).take();
  CHECK(again.raw_data() == first);
  CHECK(allocator.detailed_stats().pending_bytes == 0);
}

TEST_CASE("upload: the next upload never overwrites memory the compute stream still reads", "[cpu]") {
  // Batch k is freed on the host while the compute stream's work on it may still be queued; the
  // copy of batch k+1 must not land in that memory before the work has run (record_stream). Under
  // the emulator's deferred schedule (CUDAEMU_STREAMS=deferred) the work really is still queued.
  const Device& gpu = cuda_device();
  Generator g(8);
  Tensor ones = Tensor::ones({64, 1024});
  Tensor bias = Tensor::randn({64, 1024}, g).to(gpu);
  Tensor expected = add(ones, bias.to(Device::cpu()));
  std::vector<Tensor> sums;
  for (int batch = 0; batch < 4; ++batch) {
    Tensor images = Upload(batch % 2 == 0 ? ones : Tensor::zeros({64, 1024}), gpu).take();
    Tensor sum = add(images, bias);
    if (batch % 2 == 0) sums.push_back(sum);
  }
  for (const Tensor& sum : sums) CHECK(same_bytes(sum, expected));
}

TEST_CASE("upload: copies from the host reuse their pinned staging buffers", "[cpu]") {
  const Device& gpu = cuda_device();
  CudaContext& context = cuda_context(gpu);
  gpu.context->synchronize();
  Tensor host = Tensor::zeros({2, 64, 64, 3}, DType::u8);
  const PinnedStagingStats before = context.staging_stats();
  for (int i = 0; i < 5; ++i) {
    Tensor on_copy_stream = Upload(host, gpu).take();
    Tensor on_compute_stream = host.to(gpu);
  }
  const PinnedStagingStats after = context.staging_stats();
  CHECK(after.acquisitions - before.acquisitions == 10);
  // One buffer of the class at most is new; the copies complete before the next request here.
  CHECK(after.host_allocations - before.host_allocations <= 1);
  CHECK(after.in_use_bytes == 0);
}

TEST_CASE("upload: misuse names the tensor", "[cpu]") {
  const Device& gpu = cuda_device();
  Tensor on_device = Tensor::zeros({3}, DType::f32, gpu);
  CHECK_THROWS_WITH(Upload(on_device, gpu), Catch::Contains("expected a tensor on the cpu") &&
                                                Catch::Contains("f32[3] on cuda:0"));
  CHECK_THROWS_WITH(Upload(Tensor(), gpu), Catch::Contains("undefined"));
  Upload upload(Tensor::zeros({3}), gpu);
  upload.take();
  CHECK_THROWS_WITH(upload.take(), Catch::Contains("already called"));
  // On the CPU there is nothing to copy: the tensor itself comes back.
  Tensor host = Tensor::zeros({3});
  CHECK(Upload(host, Device::cpu()).take().same(host));
}

TEST_CASE("device prefetcher delivers the loader's batches on the device, errors at their batch", "[cpu]") {
  const Device& gpu = cuda_device();
  test::TempDir dir("prefetcher");
  data::GenerateOptions generate;
  generate.classes = 4;
  generate.train = 11;
  generate.val = 0;
  generate.size = 40;
  generate.threads = 2;
  data::generate_dataset(dir.str(), generate);
  data::LoaderOptions options;
  options.batch_size = 3;
  options.crop_size = 24;
  options.workers = 2;
  options.drop_last = false;
  const data::Dataset dataset = data::Dataset::voc(dir.str(), "train_aug");

  data::Loader reference(dataset, options);
  reference.start_epoch(1);
  data::Loader loader(dataset, options);
  data::DevicePrefetcher prefetcher(loader, gpu);
  CHECK_THROWS_WITH(prefetcher.next(), Catch::Contains("start_epoch"));
  prefetcher.start_epoch(1);
  int batches = 0;
  while (std::optional<data::Batch> expected = reference.next()) {
    std::optional<data::Batch> got = prefetcher.next();
    REQUIRE(got.has_value());
    CHECK(got->images.device() == gpu);
    CHECK(got->labels.device() == gpu);
    CHECK(got->indices == expected->indices);
    CHECK(got->number == expected->number);
    CHECK(same_bytes(got->images, expected->images));
    CHECK(same_bytes(got->labels, expected->labels));
    ++batches;
  }
  CHECK(batches == 4);  // 11 samples in batches of 3, the last one partial
  CHECK(!prefetcher.next().has_value());

  // Evaluation keeps the labels on the host; an epoch abandoned mid-way is clean.
  data::DevicePrefetcher eval(loader, gpu, data::DevicePrefetcher::LabelsOn::host);
  eval.start_epoch(0);
  std::optional<data::Batch> first = eval.next();
  REQUIRE(first.has_value());
  CHECK(first->images.device() == gpu);
  CHECK(first->labels.device().is_cpu());
  eval.start_epoch(2);
  CHECK(eval.next().has_value());

  // A corrupt image: the error comes with the batch that holds it, and the epoch goes on after it.
  write_file_atomically(dataset.sample(4).image, "\x89PNG\r\n\x1a\n not really");
  data::LoaderOptions in_order = options;
  in_order.shuffle = false;
  data::Loader strict(dataset, in_order);
  data::DevicePrefetcher with_error(strict, gpu);
  with_error.start_epoch(0);
  CHECK(with_error.next().has_value());  // samples 0-2
  CHECK_THROWS_WITH(with_error.next(), Catch::Contains("train_00004.jpg"));
  std::optional<data::Batch> after = with_error.next();
  REQUIRE(after.has_value());
  CHECK(after->indices == std::vector<int64_t>{6, 7, 8});
}
