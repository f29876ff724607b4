#include "engine/cuda/nccl_communicator.h"

#include <cstring>
#include <stdexcept>

#include "engine/cuda/context.h"
#include "engine/error.h"
#include "kernels/cuda/collectives.h"

namespace strata::distributed {

namespace {

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::unique_ptr<Communicator> host) : host_(std::move(host)) {
    rank_ = host_->rank();
    world_size_ = host_->world_size();
    local_rank_ = host_->local_rank();
    backend_ = CommBackend::nccl;
    timeout_seconds_ = host_->timeout_seconds();
  }
  ~NcclCommunicator() override { kernels::cuda::nccl_destroy(comm_); }

  void all_reduce_sum(Tensor& t) override {
    if (!t.defined() || t.device().is_cpu()) return host_->all_reduce_sum(t);
    check(t.is_contiguous(), "distributed all_reduce_sum: expected a contiguous tensor, got ", t.describe());
    const DType dtype = t.dtype();
    check(dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16,
          "distributed all_reduce_sum: expected an f32, f64 or bf16 tensor, got ", t.describe());
    if (t.numel() == 0) return;
    const auto type = dtype == DType::f32   ? kernels::cuda::CollectiveType::f32
                      : dtype == DType::f64 ? kernels::cuda::CollectiveType::f64
                                            : kernels::cuda::CollectiveType::bf16;
    ncclComm* comm = comm_for(t.device());
    call("ncclAllReduce",
         [&] { kernels::cuda::nccl_all_reduce_sum(t.raw_data(), t.numel(), type, comm, stream_of(t.device())); });
  }

  void broadcast(Tensor& t, int root) override {
    if (!t.defined() || t.device().is_cpu()) return host_->broadcast(t, root);
    check(root >= 0 && root < world_size_, "distributed broadcast: root ", root, " is not a rank of a world of ",
          world_size_);
    check(t.is_contiguous(), "distributed broadcast: expected a contiguous tensor, got ", t.describe());
    if (t.numel() == 0) return;
    ncclComm* comm = comm_for(t.device());
    call("ncclBroadcast", [&] {
      kernels::cuda::nccl_broadcast(t.raw_data(), static_cast<int64_t>(t.nbytes()), root, comm, stream_of(t.device()));
    });
  }

  Tensor all_gather(const Tensor& t) override {
    if (!t.defined() || t.device().is_cpu()) return host_->all_gather(t);
    Tensor local = t.contiguous();
    Shape shape = t.shape();
    shape.insert(shape.begin(), world_size_);
    Tensor gathered = Tensor::empty(shape, t.dtype(), t.device());
    if (local.nbytes() == 0) return gathered;
    ncclComm* comm = comm_for(t.device());
    call("ncclAllGather", [&] {
      kernels::cuda::nccl_all_gather(local.raw_data(), gathered.raw_data(), static_cast<int64_t>(local.nbytes()), comm,
                                     stream_of(t.device()));
    });
    return gathered;
  }

  void barrier() override { host_->barrier(); }
  int64_t all_reduce_sum(int64_t value) override { return host_->all_reduce_sum(value); }
  double all_reduce_max(double value) override { return host_->all_reduce_max(value); }

 private:
  static const kernels::cuda::Stream& stream_of(const Device& device) { return cuda_context(device).stream(); }

  template <class F>
  void call(const char* what, F&& f) {
    try {
      f();
    } catch (const std::runtime_error& e) {
      throw Error(cat("distributed ", what, " on rank ", rank_, " of ", world_size_, ": ", e.what()));
    }
  }

  ncclComm* comm_for(const Device& device) {
    if (comm_ == nullptr) {
      check(kernels::cuda::nccl_available(), "--dist-backend nccl: this build of strata has no NCCL");
      kernels::cuda::NcclUniqueId id{};
      if (rank_ == 0) id = kernels::cuda::nccl_unique_id();
      Tensor bytes = Tensor::empty({static_cast<int64_t>(id.size())}, DType::u8);
      std::memcpy(bytes.raw_data(), id.data(), id.size());
      host_->broadcast(bytes, 0);
      std::memcpy(id.data(), bytes.raw_data(), id.size());
      call("ncclCommInitRank", [&] { comm_ = kernels::cuda::nccl_init(world_size_, id, rank_); });
      device_ = device;
    }
    check(device == device_, "distributed (nccl): rank ", rank_, " reduces on ", device_.str(), ", got a tensor on ",
          device.str(), " (one device per rank)");
    return comm_;
  }

  std::unique_ptr<Communicator> host_;
  ncclComm* comm_ = nullptr;
  Device device_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host) {
  return std::make_unique<NcclCommunicator>(std::move(host));
}

}  // namespace strata::distributed
