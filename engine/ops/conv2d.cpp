#include "engine/ops/conv2d.h"

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/device_dispatch.h"
#include "engine/profiler.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/reduce.h"

#if defined(STRATA_HAVE_CUDA)
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/reduce.h"
#endif

namespace strata {

namespace kc = kernels::cpu;
#if defined(STRATA_HAVE_CUDA)
namespace kcu = kernels::cuda;
#endif

int64_t conv2d_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

namespace {

kc::Conv2dShape conv_shape(const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  kc::Conv2dShape s{};
  s.N = x.size(0);
  s.H = x.size(1);
  s.W = x.size(2);
  s.C = x.size(3);
  s.K = w.size(0);
  s.R = w.size(1);
  s.S = w.size(2);
  s.stride_h = p.stride_h;
  s.stride_w = p.stride_w;
  s.pad_h = p.pad_h;
  s.pad_w = p.pad_w;
  s.dilation_h = p.dilation_h;
  s.dilation_w = p.dilation_w;
  s.P = conv2d_output_size(s.H, s.R, s.stride_h, s.pad_h, s.dilation_h);
  s.Q = conv2d_output_size(s.W, s.S, s.stride_w, s.pad_w, s.dilation_w);
  return s;
}

Tensor workspace_for(const kc::Conv2dShape& s, const Tensor& like) {
  size_t n = kc::conv2d_workspace_elements(s);
  return n ? Tensor::empty({static_cast<int64_t>(n)}, like.dtype(), like.device()) : Tensor();
}

template <class T>
T* data_or_null(Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

#if defined(STRATA_HAVE_CUDA)
// cuDNN's workspace from the device's caching allocator: a byte tensor, grown on demand and released
// when the op returns. The convolution queued on the compute stream may still be reading it then;
// that is safe because the allocator hands the block out again only for work on the same stream.
class DeviceWorkspace final : public kcu::Workspace {
 public:
  explicit DeviceWorkspace(Device device) : device_(std::move(device)) {}
  void* get(size_t bytes) override {
    if (bytes == 0) return nullptr;
    if (!buffer_.defined() || buffer_.nbytes() < bytes) {
      buffer_ = Tensor::empty({static_cast<int64_t>(bytes)}, DType::u8, device_);
    }
    return buffer_.raw_data();
  }

 private:
  Device device_;
  Tensor buffer_;
};

// Per-channel sums of dy over the N*P*Q output pixels (the bias gradient), deterministic.
template <class T>
void bias_gradient_cuda(Tensor& db, const Tensor& dy, int64_t rows, int64_t channels, const kcu::Stream& stream) {
  (void)stream;
  TensorScratch scratch(dy.device());
  kcu::sum_rows(db.data<T>(), dy.data<T>(), rows, channels, cuda_context(dy.device()).kernel_backend(&scratch));
}
#endif

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& params) {
  constexpr const char* op = "conv2d";
  profiler::Scope profile_scope(op);
  check_dim(op, "x", x, 4, "(N,H,W,C)");
  check_dim(op, "weight", weight, 4, "(K,R,S,C)");
  check_floating(op, "x", x);
  check_same_dtype(op, x, "x", weight, "weight");
  check_same_device(op, x, "x", weight, "weight");
  check(weight.size(3) == x.size(3), op, ": weight ", weight.describe(), " expects ", weight.size(3),
        " input channels but x ", x.describe(), " has ", x.size(3));
  if (bias.defined()) {
    check_dim(op, "bias", bias, 1, "(K)");
    check_same_dtype(op, x, "x", bias, "bias");
    check_same_device(op, x, "x", bias, "bias");
    check(bias.size(0) == weight.size(0), op, ": bias ", bias.describe(), " does not match the ", weight.size(0),
          " output channels of weight ", weight.describe());
  }
  check(params.stride_h >= 1 && params.stride_w >= 1 && params.dilation_h >= 1 && params.dilation_w >= 1 &&
            params.pad_h >= 0 && params.pad_w >= 0,
        op, ": stride and dilation must be >= 1 and padding >= 0, got stride (", params.stride_h, ",",
        params.stride_w, "), padding (", params.pad_h, ",", params.pad_w, "), dilation (", params.dilation_h, ",",
        params.dilation_w, ")");
  kc::Conv2dShape s = conv_shape(x, weight, params);
  check(s.P > 0 && s.Q > 0, op, ": kernel ", s.R, "x", s.S, " with dilation (", s.dilation_h, ",", s.dilation_w,
        ") and padding (", s.pad_h, ",", s.pad_w, ") does not fit input ", x.describe());

  Tensor xc = x.contiguous(), wc = weight.contiguous(), bc = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty({s.N, s.P, s.Q, s.K}, x.dtype(), x.device());
  dispatch(op, x,
           [&](auto tag) {
             using T = decltype(tag);
             Tensor workspace = workspace_for(s, x);
             kc::conv2d_forward_cpu<T>(y.data<T>(), xc.data<T>(), wc.data<T>(), data_or_null<T>(bc), s,
                                       data_or_null<T>(workspace));
           }
#if defined(STRATA_HAVE_CUDA)
           ,
           [&](auto tag, const kcu::Stream& stream) {
             using T = decltype(tag);
             CudaContext& context = cuda_context(x.device());
             DeviceWorkspace workspace(x.device());
             kcu::conv2d_forward_cuda<T>(y.data<T>(), xc.data<T>(), wc.data<T>(), data_or_null<T>(bc), s, workspace,
                                         context.conv_algorithms(), context.cudnn(), stream);
           }
#endif
  );
  autograd::record(op, y, {x, weight, bias},
                   [s, x_saved = autograd::save(xc), w_saved = autograd::save(wc)](
                       const Tensor& grad, const std::vector<bool>& needs) {
                     profiler::Scope backward_scope("conv2d", profiler::Phase::backward);
                     Tensor g = grad.contiguous();
                     Tensor dx = needs[0] ? Tensor::empty(x_saved.shape(), g.dtype(), g.device()) : Tensor();
                     Tensor dw = needs[1] ? Tensor::empty(w_saved.shape(), g.dtype(), g.device()) : Tensor();
                     Tensor db = needs[2] ? Tensor::empty({s.K}, g.dtype(), g.device()) : Tensor();
                     dispatch("conv2d backward", g,
                              [&](auto tag) {
                                using T = decltype(tag);
                                Tensor workspace = (needs[0] || needs[1]) ? workspace_for(s, g) : Tensor();
                                if (needs[0]) {
                                  kc::conv2d_backward_data_cpu<T>(dx.data<T>(), g.data<T>(), w_saved.data<T>(), s,
                                                                  data_or_null<T>(workspace));
                                }
                                if (needs[1]) {
                                  kc::conv2d_backward_filter_cpu<T>(dw.data<T>(), g.data<T>(), x_saved.data<T>(), s,
                                                                    data_or_null<T>(workspace));
                                }
                                if (needs[2]) kc::sum_rows<T>(db.data<T>(), g.data<T>(), s.N * s.P * s.Q, s.K, kc::Backend{});
                              }
#if defined(STRATA_HAVE_CUDA)
                              ,
                              [&](auto tag, const kcu::Stream& stream) {
                                using T = decltype(tag);
                                CudaContext& context = cuda_context(g.device());
                                DeviceWorkspace workspace(g.device());
                                if (needs[0]) {
                                  kcu::conv2d_backward_data_cuda<T>(dx.data<T>(), g.data<T>(), w_saved.data<T>(), s,
                                                                    workspace, context.conv_algorithms(),
                                                                    context.cudnn(), stream);
                                }
                                if (needs[1]) {
                                  kcu::conv2d_backward_filter_cuda<T>(dw.data<T>(), g.data<T>(), x_saved.data<T>(),
                                                                      s, workspace, context.conv_algorithms(),
                                                                      context.cudnn(), stream);
                                }
                                if (needs[2]) bias_gradient_cuda<T>(db, g, s.N * s.P * s.Q, s.K, stream);
                              }
#endif
                     );
                     return std::vector<Tensor>{dx, dw, db};
                   });
  return y;
}

}  // namespace strata
