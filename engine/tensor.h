// Tensor: a cheap handle (shared_ptr) to storage + shape + strides + offset + dtype + device, plus
// the autograd fields (requires_grad, grad, grad_fn).
//
// Layout conventions (DESIGN.md): activations are NHWC (channels last), convolution weights are
// OHWI, so a pixel's channel values are contiguous. The Tensor itself is layout-agnostic: ops
// document the layout they take.
//
// Ops produce contiguous outputs. The views that exist are reshape (of contiguous data, shares
// storage) and narrow_channels (a strided view along the last dimension, for code that writes into
// part of a buffer). Everything else copies.
//
// Misuse (wrong dtype for data<T>(), dimension out of range, reshape to a different element count,
// a CUDA tensor in a CPU-only build) throws strata::Error naming the call and the tensor.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "engine/allocator.h"
#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/error.h"

namespace strata {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "[2,65,97,3]"
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

// Bytes on one device, returned to its allocator when the last tensor using them goes away.
class Storage {
 public:
  Storage(size_t bytes, Device device);
  // Takes ownership of `data`: `bytes` that the device's allocator handed out.
  Storage(Device device, void* data, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  const Device& device() const { return device_; }

 private:
  Device device_;  // holds the device context (and so its allocator) alive while the bytes exist
  Allocator* allocator_;
  void* data_;
  size_t bytes_;
};

// A seeded stream of random numbers (Philox, kernels/common/philox.h). Each draw of n numbers
// takes the next n counter positions, so a program's random tensors depend only on the seed and
// the order of the draws.
class Generator {
 public:
  explicit Generator(uint64_t seed) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }
  // Reserves `count` counter positions and returns the first.
  uint64_t advance(uint64_t count) {
    uint64_t first = offset_;
    offset_ += count;
    return first;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

namespace autograd {
class Node;
}

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;  // set on outputs of recorded ops; null on leaves
};

class Tensor {
 public:
  Tensor() = default;  // undefined: defined() is false
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation -------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32);
  // Copies host data; data.size() must equal the shape's element count.
  template <class T>
  static Tensor from_data(std::span<const T> data, const Shape& shape, Device device = Device::cpu());
  template <class T>
  static Tensor from_vector(const std::vector<T>& data, const Shape& shape, Device device = Device::cpu()) {
    return from_data<T>(std::span<const T>(data), shape, device);
  }
  // Standard normal / uniform [low, high) values from `generator` (f32 or f64).
  static Tensor randn(const Shape& shape, Generator& generator, DType dtype = DType::f32,
                      Device device = Device::cpu());
  static Tensor uniform(const Shape& shape, double low, double high, Generator& generator,
                        DType dtype = DType::f32, Device device = Device::cpu());

  // ---- properties -----------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  const Device& device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  std::string describe() const;  // "f32[2,8,8,3] on cpu" (or "undefined tensor")

  // Pointer to the first element (device memory for CUDA tensors). T must match the dtype.
  template <class T> T* data();
  template <class T> const T* data() const;
  void* raw_data() const;

  // ---- copies, casts, views -------------------------------------------------------------------
  Tensor to(const Device& device) const;  // a copy on `device` (this tensor if already there)
  Tensor to(DType dtype) const;   // casts; bf16/f16 round to nearest even; not recorded by autograd
  Tensor contiguous() const;      // this tensor if already contiguous, else a contiguous copy
  Tensor clone() const;           // always a new contiguous copy (no autograd history)
  Tensor reshape(const Shape& shape) const;  // one -1 allowed; a view of contiguous data, recorded by autograd
  Tensor narrow_channels(int64_t begin, int64_t end) const;  // view of last-dim range [begin, end)
  Tensor permute(const std::vector<int64_t>& dims) const;     // view with dimensions reordered
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& source);  // same shape; casts dtype; any device; CUDA destinations must be contiguous

  // ---- host access ----------------------------------------------------------------------------
  template <class T> std::vector<T> to_vector() const;  // element values in row-major order, cast to T
  double item() const;                                    // the value of a one-element tensor

  // ---- autograd -------------------------------------------------------------------------------
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool enabled);  // leaves only
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const;                        // undefined until a backward reaches this leaf
  void set_grad(const Tensor& grad);          // undefined tensor clears it
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  Tensor detach() const;                      // same storage, no history, requires_grad false
  void backward(const Tensor& grad_output = Tensor()) const;

  std::string str() const;  // readable printing with the describe() header; long dims elided
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

// PyTorch's layouts at the boundary (safetensors files, reference tests): rank-4 tensors move
// between NCHW/OIHW (PyTorch) and NHWC/OHWI (strata); both are the same permutation of dims 1..3.
Tensor nchw_to_nhwc(const Tensor& t);  // contiguous copy
Tensor nhwc_to_nchw(const Tensor& t);  // contiguous copy

// ---- op argument checks, shared by every op -------------------------------------------------------
// Each throws strata::Error("<op>: ...") naming the tensor's role and what was expected.
void check_defined(const char* op, const char* role, const Tensor& t);
void check_dim(const char* op, const char* role, const Tensor& t, int64_t dim, const char* layout);
void check_dtype(const char* op, const char* role, const Tensor& t, DType dtype);
void check_floating(const char* op, const char* role, const Tensor& t);  // f32 or f64 on CPU
// f32 or f64, or bf16 on a CUDA device: the dtypes of the tensor-math ops (convolutions, GEMMs;
// engine/precision.h), whose CUDA kernels compute bf16 operands with f32 accumulation.
void check_tensor_math_dtype(const char* op, const char* role, const Tensor& t);
void check_same_dtype(const char* op, const Tensor& a, const char* role_a, const Tensor& b, const char* role_b);
void check_same_device(const char* op, const Tensor& a, const char* role_a, const Tensor& b, const char* role_b);
void check_same_shape(const char* op, const Tensor& a, const char* role_a, const Tensor& b, const char* role_b);
// Throws "<op>: no CUDA implementation yet" for CUDA tensors (no silent CPU fallback).
void check_cpu(const char* op, const Tensor& t);

}  // namespace strata
