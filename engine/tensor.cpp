#include "engine/tensor.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "engine/autograd.h"
#include "engine/device_context.h"
#include "engine/dispatch.h"
#include "kernels/common/philox.h"

namespace strata {

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

Storage::Storage(size_t bytes, Device device)
    : device_(std::move(device)), allocator_(&allocator_for(device_)), data_(allocator_->allocate(bytes)), bytes_(bytes) {}

Storage::Storage(Device device, void* data, size_t bytes)
    : device_(std::move(device)), allocator_(&allocator_for(device_)), data_(data), bytes_(bytes) {}

Storage::~Storage() { allocator_->deallocate(data_, bytes_); }

namespace {

void check_shape(const char* op, const Shape& shape) {
  for (int64_t d : shape) check(d >= 0, op, ": negative dimension in shape ", shape_str(shape));
}

// Calls f(offset_a, offset_b) for every index of `shape`, in row-major order, with element
// offsets computed from each side's strides.
template <class F>
void for_each_offset(const Shape& shape, const Shape& strides_a, int64_t offset_a, const Shape& strides_b,
                     int64_t offset_b, F&& f) {
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  size_t rank = shape.size();
  std::vector<int64_t> index(rank, 0);
  int64_t a = offset_a, b = offset_b;
  for (int64_t i = 0; i < n; ++i) {
    f(a, b);
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < shape[d]) {
        a += strides_a[d];
        b += strides_b[d];
        break;
      }
      a -= strides_a[d] * (shape[d] - 1);
      b -= strides_b[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
}

// Copies src into dst element by element (same shape, any strides, any dtypes), on the host.
void strided_copy(const Tensor& dst, const Tensor& src) {
  visit_dtype(dst.dtype(), [&](auto dst_tag) {
    using D = decltype(dst_tag);
    visit_dtype(src.dtype(), [&](auto src_tag) {
      using S = decltype(src_tag);
      D* d = static_cast<D*>(dst.impl().storage->data());
      const S* s = static_cast<const S*>(src.impl().storage->data());
      if constexpr (std::is_same_v<D, S>) {
        if (dst.is_contiguous() && src.is_contiguous()) {
          std::memcpy(d + dst.offset(), s + src.offset(), src.nbytes());
          return;
        }
      }
      for_each_offset(src.shape(), dst.strides(), dst.offset(), src.strides(), src.offset(),
                      [&](int64_t od, int64_t os) { d[od] = convert_scalar<D>(s[os]); });
    });
  });
}

DeviceContext& context_of(const Tensor& t) {
  check(t.device().context != nullptr, "tensor on ", t.device().str(), " has no device context");
  return *t.device().context;
}

// dst (contiguous, on dst's device) = src (same device, any strides and dtype).
void device_strided_copy(const Tensor& dst, const Tensor& src) {
  check(src.dim() <= DeviceContext::kMaxStridedRank, "copy of ", src.describe(), ": rank above ",
        DeviceContext::kMaxStridedRank, " on ", src.device().str());
  if (dst.dtype() == src.dtype() && src.is_contiguous()) {
    context_of(dst).copy_on_device(dst.raw_data(), src.raw_data(), src.nbytes());
    return;
  }
  context_of(dst).copy_strided(dst.raw_data(), dst.dtype(), src.impl().storage->data(), src.dtype(),
                               src.shape().data(), src.strides().data(), static_cast<int>(src.dim()), src.offset());
}

}  // namespace

// ---- creation ---------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape("Tensor::empty", shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (t.device().is_cpu()) {
    std::memset(t.raw_data(), 0, t.nbytes());
  } else {
    context_of(t).fill_zero(t.raw_data(), t.nbytes());
  }
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

template <class T>
Tensor Tensor::from_data(std::span<const T> data, const Shape& shape, Device device) {
  check_shape("Tensor::from_data", shape);
  check(static_cast<int64_t>(data.size()) == shape_numel(shape), "Tensor::from_data: ", data.size(),
        " values given for shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
  Tensor t = empty(shape, dtype_v<T>, Device::cpu());
  if (!data.empty()) std::memcpy(t.raw_data(), data.data(), data.size_bytes());
  return device.is_cpu() ? t : t.to(device);
}

template Tensor Tensor::from_data<float>(std::span<const float>, const Shape&, Device);
template Tensor Tensor::from_data<double>(std::span<const double>, const Shape&, Device);
template Tensor Tensor::from_data<bf16>(std::span<const bf16>, const Shape&, Device);
template Tensor Tensor::from_data<f16>(std::span<const f16>, const Shape&, Device);
template Tensor Tensor::from_data<uint8_t>(std::span<const uint8_t>, const Shape&, Device);
template Tensor Tensor::from_data<int32_t>(std::span<const int32_t>, const Shape&, Device);
template Tensor Tensor::from_data<int64_t>(std::span<const int64_t>, const Shape&, Device);

namespace {

template <class Sample>
Tensor random_tensor(const char* op, const Shape& shape, Generator& generator, DType dtype, Device device,
                     Sample sample) {
  check(dtype == DType::f32 || dtype == DType::f64, op, ": random tensors are f32 or f64, got ", dtype_name(dtype));
  Tensor t = Tensor::empty(shape, dtype, Device::cpu());
  int64_t n = t.numel();
  uint64_t first = generator.advance(static_cast<uint64_t>(n));
  visit_floating(op, dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(sample(generator.seed(), first + static_cast<uint64_t>(i)));
  });
  return device.is_cpu() ? t : t.to(device);
}

}  // namespace

Tensor Tensor::randn(const Shape& shape, Generator& generator, DType dtype, Device device) {
  return random_tensor("Tensor::randn", shape, generator, dtype, device,
                       [](uint64_t seed, uint64_t i) { return philox::normal(seed, i); });
}

Tensor Tensor::uniform(const Shape& shape, double low, double high, Generator& generator, DType dtype,
                       Device device) {
  check(low < high, "Tensor::uniform: need low < high, got [", low, ", ", high, ")");
  return random_tensor("Tensor::uniform", shape, generator, dtype, device, [low, high](uint64_t seed, uint64_t i) {
    return low + (high - low) * philox::uniform(seed, i);
  });
}

// ---- properties -------------------------------------------------------------------------------

TensorImpl& Tensor::impl() const {
  if (!impl_) throw Error("use of an undefined tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const {
  int64_t rank = dim();
  int64_t i = d < 0 ? d + rank : d;
  check(i >= 0 && i < rank, "Tensor::size: dimension ", d, " out of range for ", describe());
  return impl().shape[static_cast<size_t>(i)];
}

bool Tensor::is_contiguous() const {
  const TensorImpl& t = impl();
  int64_t expected = 1;
  for (size_t i = t.shape.size(); i-- > 0;) {
    if (t.shape[i] != 1 && t.strides[i] != expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

std::string Tensor::describe() const {
  if (!impl_) return "undefined tensor";
  return cat(dtype_name(dtype()), shape_str(shape()), " on ", device().str());
}

void* Tensor::raw_data() const {
  const TensorImpl& t = impl();
  return static_cast<char*>(t.storage->data()) + t.offset * static_cast<int64_t>(dtype_size(t.dtype));
}

template <class T>
T* Tensor::data() {
  check(dtype() == dtype_v<T>, "Tensor::data<", dtype_name(dtype_v<T>), ">() on ", describe());
  return static_cast<T*>(raw_data());
}

template <class T>
const T* Tensor::data() const {
  check(dtype() == dtype_v<T>, "Tensor::data<", dtype_name(dtype_v<T>), ">() on ", describe());
  return static_cast<const T*>(raw_data());
}

#define STRATA_INSTANTIATE_DATA(T) \
  template T* Tensor::data<T>();   \
  template const T* Tensor::data<T>() const;
STRATA_INSTANTIATE_DATA(float)
STRATA_INSTANTIATE_DATA(double)
STRATA_INSTANTIATE_DATA(bf16)
STRATA_INSTANTIATE_DATA(f16)
STRATA_INSTANTIATE_DATA(uint8_t)
STRATA_INSTANTIATE_DATA(int32_t)
STRATA_INSTANTIATE_DATA(int64_t)
#undef STRATA_INSTANTIATE_DATA

// ---- copies, casts, views ---------------------------------------------------------------------

Tensor Tensor::to(const Device& target) const {
  if (target == device()) return *this;
  if (target.is_cuda()) check(target.context != nullptr, "Tensor::to(", target.str(), ") on ", describe(),
                              ": a CUDA device must come from open_cuda_device()");
  Tensor out = empty(shape(), dtype(), target);
  if (device().is_cpu()) {
    Tensor src = contiguous();
    context_of(out).copy_from_host(out.raw_data(), src.raw_data(), src.nbytes());
  } else if (target.is_cpu()) {
    Tensor src = contiguous();
    context_of(src).copy_to_host(out.raw_data(), src.raw_data(), src.nbytes());
  } else {
    return to(Device::cpu()).to(target);  // between two device contexts, through the host
  }
  return out;
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = empty(shape(), target, device());
  if (device().is_cpu()) {
    strided_copy(out, *this);
  } else {
    device_strided_copy(out, *this);
  }
  return out;
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  if (device().is_cpu()) {
    strided_copy(out, *this);
  } else {
    device_strided_copy(out, *this);
  }
  return out;
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  check(is_contiguous(), "Tensor::reshape: ", describe(), " is not contiguous; call contiguous() first");
  Shape resolved = new_shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      check(infer < 0, "Tensor::reshape: more than one -1 in ", shape_str(new_shape));
      infer = static_cast<int64_t>(i);
    } else {
      check(resolved[i] >= 0, "Tensor::reshape: negative dimension in ", shape_str(new_shape));
      known *= resolved[i];
    }
  }
  if (infer >= 0) {
    check(known > 0 && numel() % known == 0, "Tensor::reshape: cannot infer -1 in ", shape_str(new_shape), " for ",
          describe());
    resolved[static_cast<size_t>(infer)] = numel() / known;
  }
  check(shape_numel(resolved) == numel(), "Tensor::reshape: ", describe(), " has ", numel(),
        " elements, shape ", shape_str(new_shape), " has ", shape_numel(resolved));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = this->impl().storage;
  impl->shape = resolved;
  impl->strides = contiguous_strides(resolved);
  impl->offset = offset();
  impl->dtype = dtype();
  Tensor out(std::move(impl));
  Shape input_shape = shape();
  autograd::record("reshape", out, {*this}, [input_shape](const Tensor& grad_out, const std::vector<bool>&) {
    return std::vector<Tensor>{grad_out.contiguous().reshape(input_shape)};
  });
  return out;
}

Tensor Tensor::narrow_channels(int64_t begin, int64_t end) const {
  check(dim() >= 1, "Tensor::narrow_channels on ", describe());
  int64_t channels = size(-1);
  check(0 <= begin && begin <= end && end <= channels, "Tensor::narrow_channels: range [", begin, ", ", end,
        ") outside the ", channels, " channels of ", describe());
  check(!requires_grad(), "Tensor::narrow_channels: views are not recorded by autograd; use slice() on ",
        describe());
  auto impl = std::make_shared<TensorImpl>(*impl_ptr());
  impl->grad = nullptr;
  impl->grad_fn = nullptr;
  impl->shape.back() = end - begin;
  impl->offset += begin * impl->strides.back();
  return Tensor(std::move(impl));
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  check(static_cast<int64_t>(dims.size()) == dim(), "Tensor::permute: ", dims.size(), " dimensions given for ",
        describe());
  check(!requires_grad(), "Tensor::permute: views are not recorded by autograd (", describe(), ")");
  std::vector<bool> used(dims.size(), false);
  auto impl = std::make_shared<TensorImpl>(*impl_ptr());
  impl->grad = nullptr;
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = dims[i];
    check(d >= 0 && d < dim() && !used[static_cast<size_t>(d)], "Tensor::permute: dims must be a permutation of 0..",
          dim() - 1);
    used[static_cast<size_t>(d)] = true;
    impl->shape[i] = shape()[static_cast<size_t>(d)];
    impl->strides[i] = strides()[static_cast<size_t>(d)];
  }
  return Tensor(std::move(impl));
}

Tensor nchw_to_nhwc(const Tensor& t) {
  check(t.dim() == 4, "nchw_to_nhwc: expected a rank-4 tensor, got ", t.describe());
  return t.detach().permute({0, 2, 3, 1}).clone();
}

Tensor nhwc_to_nchw(const Tensor& t) {
  check(t.dim() == 4, "nhwc_to_nchw: expected a rank-4 tensor, got ", t.describe());
  return t.detach().permute({0, 3, 1, 2}).clone();
}

Tensor& Tensor::fill_(double value) {
  if (!device().is_cpu()) {
    check(is_contiguous(), "Tensor::fill_ on a strided view of ", describe(), " is not supported on ", device().str());
    context_of(*this).fill(raw_data(), dtype(), value, numel());
    return *this;
  }
  visit_dtype(dtype(), [&](auto tag) {
    using T = decltype(tag);
    T v = convert_scalar<T>(value);
    T* base = static_cast<T*>(impl().storage->data());
    if (is_contiguous()) {
      T* p = base + offset();
      for (int64_t i = 0, n = numel(); i < n; ++i) p[i] = v;
    } else {
      for_each_offset(shape(), strides(), offset(), strides(), offset(), [&](int64_t o, int64_t) { base[o] = v; });
    }
  });
  return *this;
}

Tensor& Tensor::copy_(const Tensor& source) {
  check_same_shape("Tensor::copy_", *this, "destination", source, "source");
  if (device().is_cpu()) {
    strided_copy(*this, source.device().is_cpu() ? source : source.to(Device::cpu()));
    return *this;
  }
  check(is_contiguous(), "Tensor::copy_ into a strided view of ", describe(), " is not supported on ", device().str());
  device_strided_copy(*this, source.device() == device() ? source : source.to(device()));
  return *this;
}

// ---- host access ------------------------------------------------------------------------------

template <class T>
std::vector<T> Tensor::to_vector() const {
  if (!device().is_cpu()) return to(Device::cpu()).to_vector<T>();
  std::vector<T> out(static_cast<size_t>(numel()));
  if (out.empty()) return out;
  Tensor tmp = empty(shape(), dtype_v<T>, Device::cpu());
  strided_copy(tmp, *this);
  std::memcpy(out.data(), tmp.raw_data(), out.size() * sizeof(T));
  return out;
}

template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

double Tensor::item() const {
  check(numel() == 1, "Tensor::item: ", describe(), " has ", numel(), " elements, expected 1");
  return to_vector<double>()[0];
}

// ---- autograd ---------------------------------------------------------------------------------

Tensor& Tensor::set_requires_grad(bool enabled) {
  check(is_leaf(), "Tensor::set_requires_grad: ", describe(),
        " is the output of an op; only leaves (parameters, inputs) can be marked");
  check(!enabled || is_floating(dtype()), "Tensor::set_requires_grad: ", describe(),
        " is not floating point; only floating tensors have gradients");
  impl().requires_grad = enabled;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& g = impl().grad;
  return g ? Tensor(g) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  if (grad.defined()) check_same_shape("Tensor::set_grad", *this, "tensor", grad, "gradient");
  impl().grad = grad.impl_ptr();
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = this->impl().storage;
  impl->shape = shape();
  impl->strides = strides();
  impl->offset = offset();
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

void Tensor::backward(const Tensor& grad_output) const { autograd::backward(*this, grad_output); }

// ---- printing ---------------------------------------------------------------------------------

namespace {

constexpr int64_t kEdgeItems = 3;  // shown at each end of a dimension longer than 2 * kEdgeItems

void print_recursive(std::ostringstream& out, const std::vector<double>& values, const Shape& shape,
                     const Shape& strides, size_t d, int64_t base, bool floating, int indent) {
  if (shape.empty()) {
    out << values[0];
    return;
  }
  out << "[";
  int64_t n = shape[d];
  bool elide = n > 2 * kEdgeItems;
  for (int64_t i = 0; i < n; ++i) {
    if (elide && i == kEdgeItems) {
      out << (d + 1 == shape.size() ? "..., " : "...,\n" + std::string(static_cast<size_t>(indent + 1), ' '));
      i = n - kEdgeItems;
    }
    int64_t at = base + i * strides[d];
    if (d + 1 == shape.size()) {
      char buf[32];
      if (floating) {
        std::snprintf(buf, sizeof buf, "%.4g", values[static_cast<size_t>(at)]);
      } else {
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(values[static_cast<size_t>(at)]));
      }
      out << buf;
    } else {
      print_recursive(out, values, shape, strides, d + 1, at, floating, indent + 1);
    }
    if (i + 1 < n) out << (d + 1 == shape.size() ? ", " : ",\n" + std::string(static_cast<size_t>(indent + 1), ' '));
  }
  out << "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "undefined tensor";
  std::ostringstream out;
  out << describe();
  if (requires_grad()) out << ", requires_grad";
  if (grad_fn()) out << ", grad_fn";
  out << "\n";
  std::vector<double> values = to_vector<double>();
  print_recursive(out, values, shape(), contiguous_strides(shape()), 0, 0, is_floating(dtype()), 0);
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) { return out << tensor.str(); }

// ---- op argument checks -----------------------------------------------------------------------

void check_defined(const char* op, const char* role, const Tensor& t) {
  check(t.defined(), op, ": ", role, " is an undefined tensor");
}

void check_dim(const char* op, const char* role, const Tensor& t, int64_t dim, const char* layout) {
  check_defined(op, role, t);
  check(t.dim() == dim, op, ": expected ", role, " of rank ", dim, " ", layout, ", got ", t.describe());
}

void check_dtype(const char* op, const char* role, const Tensor& t, DType dtype) {
  check_defined(op, role, t);
  check(t.dtype() == dtype, op, ": expected ", role, " of dtype ", dtype_name(dtype), ", got ", t.describe());
}

void check_floating(const char* op, const char* role, const Tensor& t) {
  check_defined(op, role, t);
  check(t.dtype() == DType::f32 || t.dtype() == DType::f64, op, ": expected ", role, " in f32 or f64, got ",
        t.describe());
}

void check_tensor_math_dtype(const char* op, const char* role, const Tensor& t) {
  check_defined(op, role, t);
  if (t.dtype() == DType::bf16) {
    check(t.device().is_cuda(), op, ": expected ", role, " in f32 or f64 on the CPU (bf16 computes on CUDA only), got ",
          t.describe());
    return;
  }
  check(t.dtype() == DType::f32 || t.dtype() == DType::f64, op, ": expected ", role,
        " in f32 or f64 (or bf16 on CUDA), got ", t.describe());
}

void check_same_dtype(const char* op, const Tensor& a, const char* role_a, const Tensor& b, const char* role_b) {
  check(a.dtype() == b.dtype(), op, ": ", role_a, " is ", a.describe(), " but ", role_b, " is ", b.describe(),
        " (dtypes must match)");
}

void check_same_device(const char* op, const Tensor& a, const char* role_a, const Tensor& b, const char* role_b) {
  check(a.device() == b.device(), op, ": ", role_a, " is ", a.describe(), " but ", role_b, " is ", b.describe(),
        " (devices must match)");
}

void check_same_shape(const char* op, const Tensor& a, const char* role_a, const Tensor& b, const char* role_b) {
  check(a.shape() == b.shape(), op, ": ", role_a, " is ", a.describe(), " but ", role_b, " is ", b.describe(),
        " (shapes must match)");
}

void check_cpu(const char* op, const Tensor& t) {
  check(t.device().is_cpu(), op, ": no CUDA implementation yet (got ", t.describe(), ")");
}

}  // namespace strata
