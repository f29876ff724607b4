// cudaemu: the cuDNN 9 legacy API subset on the CPU, from the cuDNN API reference.
// Notation (N,C,H,W) input, (K,C/G,R,S) filter, (N,K,P,Q) output, G groups, pad (ph,pw), stride
// (u,v), dilation (dh,dw); dimension arrays are always in N,C,H,W order, strides give the layout.
//   forward:  y[n,k,p,q] = sum_{c<C/G,r<R,s<S} x[n, g*C/G+c, p*u-ph+r*dh, q*v-pw+s*dw] * w[k,c,r',s']
//             with g = k / (K/G), taps outside x contributing zero, and (r',s') = (r,s) for
//             CUDNN_CROSS_CORRELATION, (R-1-r, S-1-s) for CUDNN_CONVOLUTION (the flipped filter);
//   backward data:   dx = the adjoint of x -> y for fixed w, applied to dy;
//   backward filter: dw = the adjoint of w -> y for fixed x, applied to dy;
//   backward bias:   db[k] = sum_{n,p,q} dy[n,k,p,q];
// each followed by out = alpha*result + beta*out (beta == 0: out is not read). P = 1 + (H + 2ph -
// ((R-1)*dh + 1)) / u, Q likewise.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cudaemu/float16_bits.h"
#include "cudnn.h"
#include "internal.h"

struct cudnnContext {
    cudaStream_t stream = nullptr;
};

struct cudnnTensorStruct {
    bool set = false;
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
    int nb_dims = 0;
    int dims[CUDNN_DIM_MAX] = {};
    int strides[CUDNN_DIM_MAX] = {};
};

struct cudnnFilterStruct {
    bool set = false;
    cudnnDataType_t type = CUDNN_DATA_FLOAT;
    cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
    int nb_dims = 0;
    int dims[CUDNN_DIM_MAX] = {};
};

struct cudnnConvolutionStruct {
    bool set = false;
    int spatial = 0;
    int pad[3] = {};
    int stride[3] = {};
    int dilation[3] = {};
    cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
    int groups = 1;
};

namespace cudaemu::detail {
namespace {

enum class ObjectKind { handle, tensor, filter, convolution };

struct Objects {
    std::mutex mutex;
    std::map<const void*, ObjectKind> live;
};

Objects& objects() {
    static Objects* instance = new Objects;
    return *instance;
}

const char* kind_name(ObjectKind kind) {
    switch (kind) {
        case ObjectKind::handle: return "cuDNN handle";
        case ObjectKind::tensor: return "tensor descriptor";
        case ObjectKind::filter: return "filter descriptor";
        case ObjectKind::convolution: return "convolution descriptor";
    }
    return "?";
}

const char* status_name(cudnnStatus_t status) {
    switch (status) {
        case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
        case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
        case CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH: return "CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH";
        case CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH: return "CUDNN_STATUS_SERIALIZATION_VERSION_MISMATCH";
        case CUDNN_STATUS_DEPRECATED: return "CUDNN_STATUS_DEPRECATED";
        case CUDNN_STATUS_LICENSE_ERROR: return "CUDNN_STATUS_LICENSE_ERROR";
        case CUDNN_STATUS_RUNTIME_IN_PROGRESS: return "CUDNN_STATUS_RUNTIME_IN_PROGRESS";
        case CUDNN_STATUS_RUNTIME_FP_OVERFLOW: return "CUDNN_STATUS_RUNTIME_FP_OVERFLOW";
        case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
        case CUDNN_STATUS_INVALID_VALUE: return "CUDNN_STATUS_INVALID_VALUE";
        case CUDNN_STATUS_BAD_PARAM_NULL_POINTER: return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
        case CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER: return "CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER";
        case CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED: return "CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED";
        case CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND: return "CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND";
        case CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT: return "CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT";
        case CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH: return "CUDNN_STATUS_BAD_PARAM_STREAM_MISMATCH";
        case CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH: return "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH";
        case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
        case CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN: return "CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN";
        case CUDNN_STATUS_NOT_SUPPORTED_SHAPE: return "CUDNN_STATUS_NOT_SUPPORTED_SHAPE";
        case CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE: return "CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE";
        case CUDNN_STATUS_NOT_SUPPORTED_LAYOUT: return "CUDNN_STATUS_NOT_SUPPORTED_LAYOUT";
        case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
        case CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED: return "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED";
        case CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED:
            return "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED";
        case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
        case CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER: return "CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER";
        case CUDNN_STATUS_EXECUTION_FAILED_CUBLAS: return "CUDNN_STATUS_EXECUTION_FAILED_CUBLAS";
        case CUDNN_STATUS_EXECUTION_FAILED_CUDART: return "CUDNN_STATUS_EXECUTION_FAILED_CUDART";
    }
    return "CUDNN_UNKNOWN_STATUS_FOUND";
}

cudnnStatus_t dnn_fail(cudnnStatus_t status, const char* api, const std::string& message) {
    report_error(format("%s: %s (%s)", api, message.c_str(), status_name(status)));
    return status;
}

void add_object(const void* object, ObjectKind kind) {
    Objects& objs = objects();
    std::lock_guard lock(objs.mutex);
    objs.live[object] = kind;
}

bool is_live(const void* object, ObjectKind kind) {
    Objects& objs = objects();
    std::lock_guard lock(objs.mutex);
    auto it = objs.live.find(object);
    return it != objs.live.end() && it->second == kind;
}

bool remove_object(const void* object, ObjectKind kind) {
    Objects& objs = objects();
    std::lock_guard lock(objs.mutex);
    auto it = objs.live.find(object);
    if (it == objs.live.end() || it->second != kind) {
        return false;
    }
    objs.live.erase(it);
    return true;
}

cudnnStatus_t check_object(const void* object, ObjectKind kind, const char* api, const char* role) {
    if (object == nullptr || !is_live(object, kind)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                    format("%s %p is not a live %s", role, object, kind_name(kind)));
    }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t check_handle(cudnnHandle_t handle, const char* api) {
    return check_object(handle, ObjectKind::handle, api, "handle");
}

// For the calls that compute: they run now, after the work queued before them on the handle's
// stream, which is the same order as queueing them there.
// The convolution passes are recorded when the stream captures (execute_pass); the other computing
// calls are refused then (strata does not call them inside a captured step; see graphs.cpp).
cudnnStatus_t check_handle_and_join_stream(cudnnHandle_t handle, const char* api, bool capturable = false) {
  if (cudnnStatus_t s = check_handle(handle, api); s != CUDNN_STATUS_SUCCESS) {
    return s;
  }
  if (!capturable && refuse_on_capturing_stream(handle->stream, api, "is not emulated in a capture") != cudaSuccess) {
    return CUDNN_STATUS_NOT_SUPPORTED;
  }
  complete_stream(handle->stream);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t check_tensor(cudnnTensorDescriptor_t desc, const char* api, const char* role) {
    if (cudnnStatus_t s = check_object(desc, ObjectKind::tensor, api, role); s != CUDNN_STATUS_SUCCESS) {
        return s;
    }
    if (!desc->set) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("%s was created but never set", role));
    }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t check_filter(cudnnFilterDescriptor_t desc, const char* api, const char* role) {
    if (cudnnStatus_t s = check_object(desc, ObjectKind::filter, api, role); s != CUDNN_STATUS_SUCCESS) {
        return s;
    }
    if (!desc->set) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("%s was created but never set", role));
    }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t check_convolution(cudnnConvolutionDescriptor_t desc, const char* api) {
    if (cudnnStatus_t s = check_object(desc, ObjectKind::convolution, api, "convDesc"); s != CUDNN_STATUS_SUCCESS) {
        return s;
    }
    if (!desc->set) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "convDesc was created but never set");
    }
    return CUDNN_STATUS_SUCCESS;
}

bool known_type(cudnnDataType_t type) {
    switch (type) {
        case CUDNN_DATA_FLOAT:
        case CUDNN_DATA_DOUBLE:
        case CUDNN_DATA_HALF:
        case CUDNN_DATA_INT8:
        case CUDNN_DATA_INT32:
        case CUDNN_DATA_UINT8:
        case CUDNN_DATA_BFLOAT16:
        case CUDNN_DATA_INT64:
        case CUDNN_DATA_BOOLEAN: return true;
    }
    return false;
}

bool computable_type(cudnnDataType_t type) {
    return type == CUDNN_DATA_FLOAT || type == CUDNN_DATA_DOUBLE || type == CUDNN_DATA_HALF ||
           type == CUDNN_DATA_BFLOAT16;
}

std::size_t type_bytes(cudnnDataType_t type) {
    switch (type) {
        case CUDNN_DATA_DOUBLE:
        case CUDNN_DATA_INT64: return 8;
        case CUDNN_DATA_FLOAT:
        case CUDNN_DATA_INT32: return 4;
        case CUDNN_DATA_HALF:
        case CUDNN_DATA_BFLOAT16: return 2;
        default: return 1;
    }
}

const char* type_name(cudnnDataType_t type) {
    switch (type) {
        case CUDNN_DATA_FLOAT: return "CUDNN_DATA_FLOAT";
        case CUDNN_DATA_DOUBLE: return "CUDNN_DATA_DOUBLE";
        case CUDNN_DATA_HALF: return "CUDNN_DATA_HALF";
        case CUDNN_DATA_BFLOAT16: return "CUDNN_DATA_BFLOAT16";
        default: return "a data type the emulator does not compute with";
    }
}

double load(const void* base, cudnnDataType_t type, std::int64_t index) {
    switch (type) {
        case CUDNN_DATA_DOUBLE: return static_cast<const double*>(base)[index];
        case CUDNN_DATA_FLOAT: return static_cast<const float*>(base)[index];
        case CUDNN_DATA_HALF: return half_bits_to_float(static_cast<const std::uint16_t*>(base)[index]);
        case CUDNN_DATA_BFLOAT16: return bfloat16_bits_to_float(static_cast<const std::uint16_t*>(base)[index]);
        default: return 0.0;
    }
}

// `value` holds a value of the accumulation type (float for all but double data), so the
// conversion to float below is exact and the 16-bit formats are rounded from float as on a GPU.
void store(void* base, cudnnDataType_t type, std::int64_t index, double value) {
    switch (type) {
        case CUDNN_DATA_DOUBLE: static_cast<double*>(base)[index] = value; break;
        case CUDNN_DATA_FLOAT: static_cast<float*>(base)[index] = static_cast<float>(value); break;
        case CUDNN_DATA_HALF:
            static_cast<std::uint16_t*>(base)[index] = float_to_half_bits(static_cast<float>(value));
            break;
        case CUDNN_DATA_BFLOAT16:
            static_cast<std::uint16_t*>(base)[index] = float_to_bfloat16_bits(static_cast<float>(value));
            break;
        default: break;
    }
}

// Bytes from the first to one past the last element of a strided tensor.
std::size_t tensor_span_bytes(int nb_dims, const int* dims, const std::int64_t* strides, cudnnDataType_t type) {
    std::int64_t last = 0;
    for (int i = 0; i < nb_dims; ++i) {
        last += static_cast<std::int64_t>(dims[i] - 1) * strides[i];
    }
    return static_cast<std::size_t>(last + 1) * type_bytes(type);
}

cudnnStatus_t check_memory(const void* ptr, std::size_t bytes, const char* api, const char* role) {
    if (ptr == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("%s is a null pointer", role));
    }
    if (!find_allocation(ptr, bytes, nullptr)) {
        return dnn_fail(CUDNN_STATUS_EXECUTION_FAILED, api,
                    format("%s: %zu bytes at %s are not inside one device allocation; the kernel would fault", role,
                           bytes, describe_pointer(ptr).c_str()));
    }
    return CUDNN_STATUS_SUCCESS;
}

// Scaling factors: double for double data, float otherwise (cuDNN API reference, "Scaling
// Parameters").
double read_scale(const void* ptr, cudnnDataType_t type) {
    return type == CUDNN_DATA_DOUBLE ? *static_cast<const double*>(ptr) : *static_cast<const float*>(ptr);
}

// ---- a strided 4-D view -------------------------------------------------------------------------

struct View {
    const void* data;
    cudnnDataType_t type;
    int dims[4];
    std::int64_t strides[4];

    std::int64_t offset(int a, int b, int c, int d) const {
        return a * strides[0] + b * strides[1] + c * strides[2] + d * strides[3];
    }
    std::size_t span_bytes() const { return tensor_span_bytes(4, dims, strides, type); }
};

View tensor_view(const cudnnTensorStruct& t, const void* data) {
    View v{data, t.type, {}, {}};
    for (int i = 0; i < 4; ++i) {
        v.dims[i] = t.dims[i];
        v.strides[i] = t.strides[i];
    }
    return v;
}

// KCRS (NCHW format) or KRSC (NHWC format), addressed as (k, c, r, s).
View filter_view(const cudnnFilterStruct& f, const void* data) {
    const int c = f.dims[1];
    const int r = f.dims[2];
    const int s = f.dims[3];
    View v{data, f.type, {f.dims[0], c, r, s}, {}};
    if (f.format == CUDNN_TENSOR_NHWC) {
        v.strides[0] = static_cast<std::int64_t>(r) * s * c;
        v.strides[1] = 1;
        v.strides[2] = static_cast<std::int64_t>(s) * c;
        v.strides[3] = c;
    } else {
        v.strides[0] = static_cast<std::int64_t>(c) * r * s;
        v.strides[1] = static_cast<std::int64_t>(r) * s;
        v.strides[2] = s;
        v.strides[3] = 1;
    }
    return v;
}

// Dense NCHW copy of a view in the accumulation type, optionally rounded to TF32.
template <class Acc>
std::vector<Acc> gather(const View& v, bool tf32) {
    std::vector<Acc> out(static_cast<std::size_t>(v.dims[0]) * v.dims[1] * v.dims[2] * v.dims[3]);
    std::size_t i = 0;
    for (int a = 0; a < v.dims[0]; ++a) {
        for (int b = 0; b < v.dims[1]; ++b) {
            for (int c = 0; c < v.dims[2]; ++c) {
                for (int d = 0; d < v.dims[3]; ++d) {
                    Acc value = static_cast<Acc>(load(v.data, v.type, v.offset(a, b, c, d)));
                    if constexpr (std::is_same_v<Acc, float>) {
                        if (tf32) {
                            value = round_to_tf32(value);
                        }
                    }
                    out[i++] = value;
                }
            }
        }
    }
    return out;
}

// out = alpha * result + beta * out over a view, result dense in NCHW order.
template <class Acc>
void blend(const View& v, const std::vector<Acc>& result, Acc alpha, Acc beta) {
    void* data = const_cast<void*>(v.data);
    std::size_t i = 0;
    for (int a = 0; a < v.dims[0]; ++a) {
        for (int b = 0; b < v.dims[1]; ++b) {
            for (int c = 0; c < v.dims[2]; ++c) {
                for (int d = 0; d < v.dims[3]; ++d) {
                    const std::int64_t at = v.offset(a, b, c, d);
                    Acc value = alpha * result[i++];
                    if (beta != Acc(0)) {
                        value += beta * static_cast<Acc>(load(data, v.type, at));
                    }
                    store(data, v.type, at, static_cast<double>(value));
                }
            }
        }
    }
}

// ---- convolution problems -----------------------------------------------------------------------

struct ConvProblem {
    View x;  // (N, C, H, W)
    View w;  // (K, C/G, R, S)
    View y;  // (N, K, P, Q)
    int pad_h, pad_w, u, v, dil_h, dil_w, groups;
    bool flip;
    cudnnDataType_t type;
    bool tf32;
    cudnnMathType_t math;

    int N() const { return x.dims[0]; }
    int C() const { return x.dims[1]; }
    int H() const { return x.dims[2]; }
    int W() const { return x.dims[3]; }
    int K() const { return w.dims[0]; }
    int Cg() const { return w.dims[1]; }
    int R() const { return w.dims[2]; }
    int S() const { return w.dims[3]; }
    int P() const { return y.dims[2]; }
    int Q() const { return y.dims[3]; }
    bool unit_stride_dilation() const { return u == 1 && v == 1 && dil_h == 1 && dil_w == 1; }
    // Channels not innermost in x and y: the layout FFT- and GEMM-based algorithms need.
    bool nchw() const {
        return x.strides[3] == 1 && x.strides[1] > x.strides[2] && y.strides[3] == 1 && y.strides[1] > y.strides[2];
    }
};

int output_size(int in, int pad, int filter, int dilation, int stride) {
    return 1 + (in + 2 * pad - ((filter - 1) * dilation + 1)) / stride;
}

// Checks the descriptors of a 2-D convolution and fills the geometry (views without data).
// `y` plays the output role: y for forward, dy for the backward passes.
cudnnStatus_t make_problem(const char* api, cudnnTensorDescriptor_t x_desc, const char* x_role,
                           cudnnFilterDescriptor_t w_desc, const char* w_role, cudnnConvolutionDescriptor_t conv,
                           cudnnTensorDescriptor_t y_desc, const char* y_role, ConvProblem* problem) {
    if (cudnnStatus_t s = check_tensor(x_desc, api, x_role); s != CUDNN_STATUS_SUCCESS) return s;
    if (cudnnStatus_t s = check_filter(w_desc, api, w_role); s != CUDNN_STATUS_SUCCESS) return s;
    if (cudnnStatus_t s = check_convolution(conv, api); s != CUDNN_STATUS_SUCCESS) return s;
    if (y_desc != nullptr) {
        if (cudnnStatus_t s = check_tensor(y_desc, api, y_role); s != CUDNN_STATUS_SUCCESS) return s;
    }
    const cudnnTensorStruct& x = *x_desc;
    const cudnnFilterStruct& w = *w_desc;
    if (x.nb_dims != w.nb_dims || (y_desc != nullptr && y_desc->nb_dims != x.nb_dims)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                    format("%s, %s%s have different numbers of dimensions", x_role, w_role,
                           y_desc != nullptr ? " and the output" : ""));
    }
    if (x.nb_dims != conv->spatial + 2) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                    format("%s has %d dimensions but convDesc describes a %d-D convolution", x_role, x.nb_dims,
                           conv->spatial));
    }
    if (x.nb_dims != 4) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, "only 2-D convolutions (4-D tensors) are emulated");
    }
    if (x.type != w.type || (y_desc != nullptr && y_desc->type != x.type)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("%s, %s and the output have different data types", x_role, w_role));
    }
    const cudnnDataType_t type = x.type;
    const cudnnDataType_t compute = conv->compute;
    const bool config_ok = (type == CUDNN_DATA_FLOAT && compute == CUDNN_DATA_FLOAT) ||
                           (type == CUDNN_DATA_DOUBLE && compute == CUDNN_DATA_DOUBLE) ||
                           (type == CUDNN_DATA_HALF && (compute == CUDNN_DATA_HALF || compute == CUDNN_DATA_FLOAT)) ||
                           (type == CUDNN_DATA_BFLOAT16 && compute == CUDNN_DATA_FLOAT);
    if (!config_ok) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api,
                    format("data type %s with compute type %s is not a supported configuration", type_name(type),
                           type_name(compute)));
    }
    const int groups = conv->groups;
    if (x.dims[1] != w.dims[1] * groups) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                    format("%s has %d channels but %s has %d per group x %d groups", x_role, x.dims[1], w_role,
                           w.dims[1], groups));
    }
    if (w.dims[0] % groups != 0) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                    format("%s has %d output channels, not a multiple of the group count %d", w_role, w.dims[0], groups));
    }
    const int p = output_size(x.dims[2], conv->pad[0], w.dims[2], conv->dilation[0], conv->stride[0]);
    const int q = output_size(x.dims[3], conv->pad[1], w.dims[3], conv->dilation[1], conv->stride[1]);
    if ((w.dims[2] - 1) * conv->dilation[0] + 1 > x.dims[2] + 2 * conv->pad[0] ||
        (w.dims[3] - 1) * conv->dilation[1] + 1 > x.dims[3] + 2 * conv->pad[1] || p <= 0 || q <= 0) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                    format("the (dilated) filter %dx%d is larger than the padded input %dx%d", w.dims[2], w.dims[3],
                           x.dims[2] + 2 * conv->pad[0], x.dims[3] + 2 * conv->pad[1]));
    }
    if (y_desc != nullptr) {
        const cudnnTensorStruct& y = *y_desc;
        if (y.dims[0] != x.dims[0] || y.dims[1] != w.dims[0]) {
            return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                        format("%s is (%d,%d,%d,%d) but must have N = %d and K = %d channels", y_role, y.dims[0],
                               y.dims[1], y.dims[2], y.dims[3], x.dims[0], w.dims[0]));
        }
        if (y.dims[2] != p || y.dims[3] != q) {
            return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api,
                        format("%s has spatial size %dx%d but the convolution produces %dx%d (see "
                               "cudnnGetConvolution2dForwardOutputDim)",
                               y_role, y.dims[2], y.dims[3], p, q));
        }
    }
    problem->x = tensor_view(x, nullptr);
    problem->w = filter_view(w, nullptr);
    if (y_desc != nullptr) {
        problem->y = tensor_view(*y_desc, nullptr);
    } else {
        problem->y = View{nullptr, type, {x.dims[0], w.dims[0], p, q}, {}};
    }
    problem->pad_h = conv->pad[0];
    problem->pad_w = conv->pad[1];
    problem->u = conv->stride[0];
    problem->v = conv->stride[1];
    problem->dil_h = conv->dilation[0];
    problem->dil_w = conv->dilation[1];
    problem->groups = groups;
    problem->flip = conv->mode == CUDNN_CONVOLUTION;
    problem->type = type;
    problem->math = conv->math;
    problem->tf32 = type == CUDNN_DATA_FLOAT && conv->math != CUDNN_FMA_MATH && tf32_allowed();
    return CUDNN_STATUS_SUCCESS;
}

// Visits every (output position, filter tap, input position) triple of the convolution.
template <class F>
void for_each_tap(const ConvProblem& pb, F&& visit) {
    const int kg = pb.K() / pb.groups;
    for (int n = 0; n < pb.N(); ++n) {
        for (int k = 0; k < pb.K(); ++k) {
            const int g = k / kg;
            for (int p = 0; p < pb.P(); ++p) {
                for (int q = 0; q < pb.Q(); ++q) {
                    for (int c = 0; c < pb.Cg(); ++c) {
                        const int ic = g * pb.Cg() + c;
                        for (int r = 0; r < pb.R(); ++r) {
                            const int ih = p * pb.u - pb.pad_h + r * pb.dil_h;
                            if (ih < 0 || ih >= pb.H()) {
                                continue;
                            }
                            const int fr = pb.flip ? pb.R() - 1 - r : r;
                            for (int s = 0; s < pb.S(); ++s) {
                                const int iw = q * pb.v - pb.pad_w + s * pb.dil_w;
                                if (iw < 0 || iw >= pb.W()) {
                                    continue;
                                }
                                const int fs = pb.flip ? pb.S() - 1 - s : s;
                                const std::size_t yi = ((static_cast<std::size_t>(n) * pb.K() + k) * pb.P() + p) * pb.Q() + q;
                                const std::size_t xi = ((static_cast<std::size_t>(n) * pb.C() + ic) * pb.H() + ih) * pb.W() + iw;
                                const std::size_t wi = ((static_cast<std::size_t>(k) * pb.Cg() + c) * pb.R() + fr) * pb.S() + fs;
                                visit(yi, xi, wi);
                            }
                        }
                    }
                }
            }
        }
    }
}

enum class Pass { forward, backward_data, backward_filter };

// Sums are accumulated in double (each float product is exact in double) and rounded once to the
// accumulation type. Real cuDNN accumulates in float in an order the emulator cannot know; the
// emulator's job is to check how strata uses cuDNN, so its own rounding must never mask or mimic
// an error of ours.
template <class Acc>
std::vector<Acc> rounded(const std::vector<double>& sums) {
    return std::vector<Acc>(sums.begin(), sums.end());
}

template <class Acc>
void run_convolution(const ConvProblem& pb, Pass pass, double alpha, double beta) {
    switch (pass) {
        case Pass::forward: {
            const std::vector<Acc> x = gather<Acc>(pb.x, pb.tf32);
            const std::vector<Acc> w = gather<Acc>(pb.w, pb.tf32);
            std::vector<double> y(static_cast<std::size_t>(pb.N()) * pb.K() * pb.P() * pb.Q(), 0.0);
            for_each_tap(pb, [&](std::size_t yi, std::size_t xi, std::size_t wi) {
                y[yi] += static_cast<double>(x[xi]) * static_cast<double>(w[wi]);
            });
            blend(pb.y, rounded<Acc>(y), static_cast<Acc>(alpha), static_cast<Acc>(beta));
            break;
        }
        case Pass::backward_data: {
            const std::vector<Acc> dy = gather<Acc>(pb.y, pb.tf32);
            const std::vector<Acc> w = gather<Acc>(pb.w, pb.tf32);
            std::vector<double> dx(static_cast<std::size_t>(pb.N()) * pb.C() * pb.H() * pb.W(), 0.0);
            for_each_tap(pb, [&](std::size_t yi, std::size_t xi, std::size_t wi) {
                dx[xi] += static_cast<double>(dy[yi]) * static_cast<double>(w[wi]);
            });
            blend(pb.x, rounded<Acc>(dx), static_cast<Acc>(alpha), static_cast<Acc>(beta));
            break;
        }
        case Pass::backward_filter: {
            const std::vector<Acc> x = gather<Acc>(pb.x, pb.tf32);
            const std::vector<Acc> dy = gather<Acc>(pb.y, pb.tf32);
            std::vector<double> dw(static_cast<std::size_t>(pb.K()) * pb.Cg() * pb.R() * pb.S(), 0.0);
            for_each_tap(pb, [&](std::size_t yi, std::size_t xi, std::size_t wi) {
                dw[wi] += static_cast<double>(dy[yi]) * static_cast<double>(x[xi]);
            });
            blend(pb.w, rounded<Acc>(dw), static_cast<Acc>(alpha), static_cast<Acc>(beta));
            break;
        }
    }
}

// ---- algorithms ---------------------------------------------------------------------------------
// A model of cuDNN's support tables for 2-D convolutions: the implicit-GEMM style algorithms
// support everything; GEMM needs channels-outer (NCHW-like) tensors; FFT, FFT_TILING and the
// Winograd variants need unit stride and dilation, one group and float/half data (FFT: padded input
// at most 256 and padding smaller than the filter; FFT_TILING: filter at most 32; Winograd: 3x3,
// non-fused also 5x5); forward DIRECT and backward-filter WINOGRAD are never supported.

struct AlgoRule {
    bool supported;
    std::size_t workspace;
    bool deterministic;
};

std::size_t next_pow2(int value) {
    std::size_t p = 1;
    while (p < static_cast<std::size_t>(value)) {
        p <<= 1;
    }
    return p;
}

std::size_t fft_workspace(const ConvProblem& pb) {
    const std::size_t fh = next_pow2(pb.H() + 2 * pb.pad_h);
    const std::size_t fw = next_pow2(pb.W() + 2 * pb.pad_w);
    const std::size_t planes = static_cast<std::size_t>(pb.N()) * pb.C() + static_cast<std::size_t>(pb.K()) * pb.C() +
                               static_cast<std::size_t>(pb.N()) * pb.K();
    return planes * fh * (fw / 2 + 1) * 8;
}

std::size_t fft_tiling_workspace(const ConvProblem& pb) {
    const std::size_t planes = static_cast<std::size_t>(pb.N()) * pb.C() + static_cast<std::size_t>(pb.K()) * pb.C() +
                               static_cast<std::size_t>(pb.N()) * pb.K();
    return planes * 32 * 17 * 8;
}

std::size_t winograd_nonfused_workspace(const ConvProblem& pb) {
    const std::size_t tiles = static_cast<std::size_t>((pb.P() + 3) / 4) * static_cast<std::size_t>((pb.Q() + 3) / 4);
    return 36 * 4 *
           (static_cast<std::size_t>(pb.K()) * pb.Cg() + tiles * pb.N() * (static_cast<std::size_t>(pb.C()) + pb.K()));
}

std::size_t im2col_workspace(const ConvProblem& pb) {
    return static_cast<std::size_t>(pb.Cg()) * pb.R() * pb.S() * pb.P() * pb.Q() * type_bytes(pb.type);
}

bool fft_ok(const ConvProblem& pb) {
    return pb.nchw() && pb.unit_stride_dilation() && pb.groups == 1 &&
           (pb.type == CUDNN_DATA_FLOAT || pb.type == CUDNN_DATA_HALF) && pb.pad_h < pb.R() && pb.pad_w < pb.S() &&
           pb.H() + 2 * pb.pad_h <= 256 && pb.W() + 2 * pb.pad_w <= 256;
}

bool fft_tiling_ok(const ConvProblem& pb) {
    return pb.nchw() && pb.unit_stride_dilation() && pb.groups == 1 &&
           (pb.type == CUDNN_DATA_FLOAT || pb.type == CUDNN_DATA_HALF) && pb.R() <= 32 && pb.S() <= 32 &&
           pb.pad_h < pb.R() && pb.pad_w < pb.S();
}

bool winograd_ok(const ConvProblem& pb, bool allow_5x5) {
    const bool shape = (pb.R() == 3 && pb.S() == 3) || (allow_5x5 && pb.R() == 5 && pb.S() == 5);
    return shape && pb.unit_stride_dilation() && pb.groups == 1 &&
           (pb.type == CUDNN_DATA_FLOAT || pb.type == CUDNN_DATA_HALF);
}

AlgoRule forward_rule(const ConvProblem& pb, int algo) {
    switch (algo) {
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return {true, 0, true};
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM:
            return {true, sizeof(int) * static_cast<std::size_t>(pb.Cg()) * pb.R() * pb.S(), true};
        case CUDNN_CONVOLUTION_FWD_ALGO_GEMM:
            return {pb.nchw() && pb.type != CUDNN_DATA_BFLOAT16, im2col_workspace(pb), true};
        case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return {false, 0, true};
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return {fft_ok(pb), fft_workspace(pb), true};
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return {fft_tiling_ok(pb), fft_tiling_workspace(pb), true};
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return {winograd_ok(pb, false) && pb.nchw(), 0, true};
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED:
            return {winograd_ok(pb, true), winograd_nonfused_workspace(pb), true};
        default: return {false, 0, true};
    }
}

AlgoRule backward_data_rule(const ConvProblem& pb, int algo) {
    switch (algo) {
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return {true, 0, false};
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return {true, 0, true};
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return {fft_ok(pb), fft_workspace(pb), true};
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: return {fft_tiling_ok(pb), fft_tiling_workspace(pb), true};
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: return {winograd_ok(pb, false) && pb.nchw(), 0, true};
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED:
            return {winograd_ok(pb, true), winograd_nonfused_workspace(pb), true};
        default: return {false, 0, true};
    }
}

AlgoRule backward_filter_rule(const ConvProblem& pb, int algo) {
    switch (algo) {
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return {true, 0, false};
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: return {true, im2col_workspace(pb), true};
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: return {fft_ok(pb), fft_workspace(pb), true};
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3:
            return {true, sizeof(int) * static_cast<std::size_t>(pb.Cg()) * pb.R() * pb.S(), false};
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD: return {false, 0, true};
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED:
            return {winograd_ok(pb, true), winograd_nonfused_workspace(pb), true};
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING:
            return {fft_tiling_ok(pb), fft_tiling_workspace(pb), true};
        default: return {false, 0, true};
    }
}

struct PassInfo {
    const char* name;
    int algo_count;
    AlgoRule (*rule)(const ConvProblem&, int);
    const int* heuristic_order;  // best first, algo_count entries
    const float* relative_time;  // synthetic timing factors for Find, per algorithm
};

constexpr int kForwardOrder[] = {1, 0, 6, 7, 2, 5, 4, 3};
constexpr int kBackwardDataOrder[] = {1, 0, 4, 5, 3, 2};
constexpr int kBackwardFilterOrder[] = {1, 0, 3, 5, 6, 2, 4};
constexpr float kForwardTime[] = {1.3f, 1.0f, 2.2f, 4.0f, 1.9f, 1.7f, 0.9f, 1.2f};
constexpr float kBackwardDataTime[] = {1.4f, 1.0f, 1.9f, 1.7f, 0.9f, 1.2f};
constexpr float kBackwardFilterTime[] = {1.5f, 1.0f, 1.9f, 1.3f, 4.0f, 1.2f, 1.7f};

const PassInfo& pass_info(Pass pass) {
    static const PassInfo kInfo[] = {
        {"forward", CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &forward_rule, kForwardOrder, kForwardTime},
        {"backward data", CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &backward_data_rule, kBackwardDataOrder,
         kBackwardDataTime},
        {"backward filter", CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &backward_filter_rule, kBackwardFilterOrder,
         kBackwardFilterTime},
    };
    return kInfo[static_cast<int>(pass)];
}

struct PerfRecord {
    int algo;
    cudnnStatus_t status;
    float time;
    std::size_t memory;
    bool deterministic;
};

std::vector<PerfRecord> heuristic_records(const ConvProblem& pb, Pass pass) {
    const PassInfo& info = pass_info(pass);
    std::vector<PerfRecord> supported;
    std::vector<PerfRecord> unsupported;
    for (int i = 0; i < info.algo_count; ++i) {
        const int algo = info.heuristic_order[i];
        const AlgoRule rule = info.rule(pb, algo);
        if (rule.supported) {
            supported.push_back({algo, CUDNN_STATUS_SUCCESS, -1.0f, rule.workspace, rule.deterministic});
        } else {
            unsupported.push_back({algo, CUDNN_STATUS_NOT_SUPPORTED, -1.0f, 0, rule.deterministic});
        }
    }
    supported.insert(supported.end(), unsupported.begin(), unsupported.end());
    return supported;
}

template <class Perf, class Algo>
cudnnStatus_t write_records(const std::vector<PerfRecord>& records, cudnnMathType_t math, int requested, int* returned,
                            Perf* results) {
    const int count = std::min<int>(requested, static_cast<int>(records.size()));
    for (int i = 0; i < count; ++i) {
        Perf perf{};
        perf.algo = static_cast<Algo>(records[static_cast<std::size_t>(i)].algo);
        perf.status = records[static_cast<std::size_t>(i)].status;
        perf.time = records[static_cast<std::size_t>(i)].time;
        perf.memory = records[static_cast<std::size_t>(i)].memory;
        perf.determinism = records[static_cast<std::size_t>(i)].deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
        perf.mathType = math;
        results[i] = perf;
    }
    *returned = count;
    return CUDNN_STATUS_SUCCESS;
}

// Runs one pass after the argument checks every compute entry point shares.
cudnnStatus_t execute_pass(cudaStream_t stream, const char* api, Pass pass, ConvProblem& pb, int algo, void* workspace,
                           std::size_t workspace_bytes, const void* alpha, const void* beta, bool check_algo) {
  const PassInfo& info = pass_info(pass);
  if (check_algo) {
    if (algo < 0 || algo >= info.algo_count) {
      return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("algorithm %d is not a valid %s algorithm", algo, info.name));
    }
    const AlgoRule rule = info.rule(pb, algo);
    if (!rule.supported) {
      return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api,
                      format("%s algorithm %d does not support this convolution", info.name, algo));
    }
    if (rule.workspace > 0) {
      if (workspace == nullptr || workspace_bytes < rule.workspace) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                        format("%s algorithm %d needs a workspace of %zu bytes; got %zu bytes at %p", info.name, algo,
                               rule.workspace, workspace_bytes, workspace));
      }
      if (cudnnStatus_t s = check_memory(workspace, rule.workspace, api, "workSpace"); s != CUDNN_STATUS_SUCCESS) {
        return s;
      }
    }
  }
  if (alpha == nullptr || beta == nullptr) {
    return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "alpha or beta is null");
  }
  if (cudnnStatus_t s = check_memory(pb.x.data, pb.x.span_bytes(), api, pass == Pass::backward_data ? "dx" : "x");
      s != CUDNN_STATUS_SUCCESS) {
    return s;
  }
  if (cudnnStatus_t s = check_memory(pb.w.data, pb.w.span_bytes(), api, pass == Pass::backward_filter ? "dw" : "w");
      s != CUDNN_STATUS_SUCCESS) {
    return s;
  }
  if (cudnnStatus_t s = check_memory(pb.y.data, pb.y.span_bytes(), api, pass == Pass::forward ? "y" : "dy");
      s != CUDNN_STATUS_SUCCESS) {
    return s;
  }
  const double a = read_scale(alpha, pb.type);
  const double b = read_scale(beta, pb.type);
  // The workspace is scratch: clobbering it exposes callers that alias it with live data.
  const std::size_t clobbered = check_algo ? info.rule(pb, algo).workspace : 0;
  const bool recorded = run_or_capture(stream, [pb, pass, a, b, workspace, clobbered] {
    if (clobbered > 0) {
      std::memset(workspace, 0xFF, clobbered);
    }
    if (pb.type == CUDNN_DATA_DOUBLE) {
      run_convolution<double>(pb, pass, a, b);
    } else {
      run_convolution<float>(pb, pass, a, b);
    }
  });
  if (!recorded) {
    return dnn_fail(CUDNN_STATUS_EXECUTION_FAILED, api,
                    format("stream %p's capture is invalidated", static_cast<void*>(stream)));
  }
  return CUDNN_STATUS_SUCCESS;
}

template <class Perf, class Algo>
cudnnStatus_t find_algorithms(const char* api, Pass pass, ConvProblem& pb, const void* alpha_one, int requested,
                              int* returned, Perf* results, void* workspace, std::size_t workspace_bytes) {
    if (requested <= 0 || returned == nullptr || results == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "requestedAlgoCount <= 0 or a null output pointer");
    }
    if (workspace_bytes > 0) {
        if (cudnnStatus_t s = check_memory(workspace, workspace_bytes, api, "workSpace"); s != CUDNN_STATUS_SUCCESS) {
            return s;
        }
    }
    static const double zero = 0.0;
    const auto start = std::chrono::steady_clock::now();
    if (cudnnStatus_t s = execute_pass(nullptr, api, pass, pb, 0, nullptr, 0, alpha_one, &zero, false);
        s != CUDNN_STATUS_SUCCESS) {
      return s;
    }
    const float measured = std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (workspace_bytes > 0) {
        std::memset(workspace, 0xFF, workspace_bytes);
    }
    const PassInfo& info = pass_info(pass);
    std::vector<PerfRecord> records;
    std::vector<PerfRecord> failed;
    for (int algo = 0; algo < info.algo_count; ++algo) {
        const AlgoRule rule = info.rule(pb, algo);
        if (!rule.supported) {
            failed.push_back({algo, CUDNN_STATUS_NOT_SUPPORTED, -1.0f, 0, rule.deterministic});
        } else if (rule.workspace > workspace_bytes) {
            failed.push_back({algo, CUDNN_STATUS_ALLOC_FAILED, -1.0f, rule.workspace, rule.deterministic});
        } else {
            records.push_back({algo, CUDNN_STATUS_SUCCESS, measured * info.relative_time[algo], rule.workspace,
                               rule.deterministic});
        }
    }
    std::stable_sort(records.begin(), records.end(),
                     [](const PerfRecord& a, const PerfRecord& b) { return a.time < b.time; });
    records.insert(records.end(), failed.begin(), failed.end());
    return write_records<Perf, Algo>(records, pb.math, requested, returned, results);
}

cudnnStatus_t set_tensor(cudnnTensorDescriptor_t desc, cudnnDataType_t type, int nb_dims, const int* dims,
                         const int* strides, const char* api) {
    if (cudnnStatus_t s = check_object(desc, ObjectKind::tensor, api, "tensorDesc"); s != CUDNN_STATUS_SUCCESS) {
        return s;
    }
    if (!known_type(type)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("invalid data type %d", static_cast<int>(type)));
    }
    for (int i = 0; i < nb_dims; ++i) {
        if (dims[i] <= 0 || strides[i] <= 0) {
            return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                        format("dimension %d is %d with stride %d; both must be positive", i, dims[i], strides[i]));
        }
    }
    desc->set = true;
    desc->type = type;
    desc->nb_dims = nb_dims;
    std::fill(std::begin(desc->dims), std::end(desc->dims), 0);
    std::fill(std::begin(desc->strides), std::end(desc->strides), 0);
    std::copy(dims, dims + nb_dims, desc->dims);
    std::copy(strides, strides + nb_dims, desc->strides);
    return CUDNN_STATUS_SUCCESS;
}

// Visits every element of a tensor given by dims/strides, passing its offset and the offset of the
// broadcast source (strides 0 where the source dimension is 1).
template <class F>
void for_each_element(int nb_dims, const int* dims, const std::int64_t* strides, const std::int64_t* source_strides,
                      F&& visit) {
    int index[CUDNN_DIM_MAX] = {};
    for (;;) {
        std::int64_t at = 0;
        std::int64_t from = 0;
        for (int i = 0; i < nb_dims; ++i) {
            at += index[i] * strides[i];
            from += index[i] * source_strides[i];
        }
        visit(at, from);
        int d = nb_dims - 1;
        while (d >= 0 && ++index[d] == dims[d]) {
            index[d] = 0;
            --d;
        }
        if (d < 0) {
            return;
        }
    }
}

std::int64_t* widen(const int* strides, int nb_dims, std::int64_t* out) {
    for (int i = 0; i < nb_dims; ++i) {
        out[i] = strides[i];
    }
    return out;
}

}  // namespace
}  // namespace cudaemu::detail

using cudaemu::detail::check_convolution;
using cudaemu::detail::check_filter;
using cudaemu::detail::check_handle;
using cudaemu::detail::check_handle_and_join_stream;
using cudaemu::detail::check_memory;
using cudaemu::detail::check_object;
using cudaemu::detail::check_tensor;
using cudaemu::detail::ConvProblem;
using cudaemu::detail::dnn_fail;
using cudaemu::detail::format;
using cudaemu::detail::ObjectKind;
using cudaemu::detail::Pass;

extern "C" {

size_t CUDNNWINAPI cudnnGetVersion(void) { return CUDNN_VERSION; }

const char* CUDNNWINAPI cudnnGetErrorString(cudnnStatus_t status) { return cudaemu::detail::status_name(status); }

cudnnStatus_t CUDNNWINAPI cudnnCreate(cudnnHandle_t* handle) {
    if (handle == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreate", "null output pointer");
    }
    *handle = new cudnnContext;
    cudaemu::detail::add_object(*handle, ObjectKind::handle);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnDestroy(cudnnHandle_t handle) {
    if (!cudaemu::detail::remove_object(handle, ObjectKind::handle)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroy", format("handle %p is not live", static_cast<void*>(handle)));
    }
    delete handle;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetStream(cudnnHandle_t handle, cudaStream_t streamId) {
    if (cudnnStatus_t s = check_handle(handle, "cudnnSetStream"); s != CUDNN_STATUS_SUCCESS) return s;
    if (!cudaemu::detail::is_valid_stream(streamId)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetStream",
                    format("stream %p is not a live stream", static_cast<void*>(streamId)));
    }
    handle->stream = streamId;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnGetStream(cudnnHandle_t handle, cudaStream_t* streamId) {
    if (cudnnStatus_t s = check_handle(handle, "cudnnGetStream"); s != CUDNN_STATUS_SUCCESS) return s;
    if (streamId == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetStream", "null output pointer");
    }
    *streamId = handle->stream;
    return CUDNN_STATUS_SUCCESS;
}

// ---- tensors ------------------------------------------------------------------------------------

cudnnStatus_t CUDNNWINAPI cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* tensorDesc) {
    if (tensorDesc == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateTensorDescriptor", "null output pointer");
    }
    *tensorDesc = new cudnnTensorStruct;
    cudaemu::detail::add_object(*tensorDesc, ObjectKind::tensor);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnTensorFormat_t format,
                                                     cudnnDataType_t dataType, int n, int c, int h, int w) {
    const char* api = "cudnnSetTensor4dDescriptor";
    const int dims[4] = {n, c, h, w};
    int strides[4];
    if (format == CUDNN_TENSOR_NCHW) {
        strides[0] = c * h * w;
        strides[1] = h * w;
        strides[2] = w;
        strides[3] = 1;
    } else if (format == CUDNN_TENSOR_NHWC) {
        strides[0] = h * w * c;
        strides[1] = 1;
        strides[2] = w * c;
        strides[3] = c;
    } else if (format == CUDNN_TENSOR_NCHW_VECT_C) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, "CUDNN_TENSOR_NCHW_VECT_C is not emulated");
    } else {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, cudaemu::detail::format("invalid format %d", static_cast<int>(format)));
    }
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, cudaemu::detail::format("dimensions (%d,%d,%d,%d) must be positive", n, c, h, w));
    }
    return cudaemu::detail::set_tensor(tensorDesc, dataType, 4, dims, strides, api);
}

cudnnStatus_t CUDNNWINAPI cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t dataType,
                                                       int n, int c, int h, int w, int nStride, int cStride,
                                                       int hStride, int wStride) {
    const int dims[4] = {n, c, h, w};
    const int strides[4] = {nStride, cStride, hStride, wStride};
    return cudaemu::detail::set_tensor(tensorDesc, dataType, 4, dims, strides, "cudnnSetTensor4dDescriptorEx");
}

cudnnStatus_t CUDNNWINAPI cudnnGetTensor4dDescriptor(const cudnnTensorDescriptor_t tensorDesc,
                                                     cudnnDataType_t* dataType, int* n, int* c, int* h, int* w,
                                                     int* nStride, int* cStride, int* hStride, int* wStride) {
    const char* api = "cudnnGetTensor4dDescriptor";
    if (cudnnStatus_t s = check_tensor(tensorDesc, api, "tensorDesc"); s != CUDNN_STATUS_SUCCESS) return s;
    if (tensorDesc->nb_dims != 4) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("the descriptor has %d dimensions, not 4", tensorDesc->nb_dims));
    }
    if (dataType == nullptr || n == nullptr || c == nullptr || h == nullptr || w == nullptr || nStride == nullptr ||
        cStride == nullptr || hStride == nullptr || wStride == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer");
    }
    *dataType = tensorDesc->type;
    *n = tensorDesc->dims[0];
    *c = tensorDesc->dims[1];
    *h = tensorDesc->dims[2];
    *w = tensorDesc->dims[3];
    *nStride = tensorDesc->strides[0];
    *cStride = tensorDesc->strides[1];
    *hStride = tensorDesc->strides[2];
    *wStride = tensorDesc->strides[3];
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t tensorDesc, cudnnDataType_t dataType,
                                                     int nbDims, const int dimA[], const int strideA[]) {
    const char* api = "cudnnSetTensorNdDescriptor";
    if (dimA == nullptr || strideA == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null dimension or stride array");
    }
    if (nbDims < 3 || nbDims > CUDNN_DIM_MAX) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, format("nbDims %d is outside [3, %d]", nbDims, CUDNN_DIM_MAX));
    }
    return cudaemu::detail::set_tensor(tensorDesc, dataType, nbDims, dimA, strideA, api);
}

cudnnStatus_t CUDNNWINAPI cudnnGetTensorNdDescriptor(const cudnnTensorDescriptor_t tensorDesc, int nbDimsRequested,
                                                     cudnnDataType_t* dataType, int* nbDims, int dimA[],
                                                     int strideA[]) {
    const char* api = "cudnnGetTensorNdDescriptor";
    if (cudnnStatus_t s = check_tensor(tensorDesc, api, "tensorDesc"); s != CUDNN_STATUS_SUCCESS) return s;
    if (dataType == nullptr || nbDims == nullptr || (nbDimsRequested > 0 && (dimA == nullptr || strideA == nullptr)) ||
        nbDimsRequested < 0) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer or negative nbDimsRequested");
    }
    *dataType = tensorDesc->type;
    *nbDims = tensorDesc->nb_dims;
    for (int i = 0; i < std::min(nbDimsRequested, tensorDesc->nb_dims); ++i) {
        dimA[i] = tensorDesc->dims[i];
        strideA[i] = tensorDesc->strides[i];
    }
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnGetTensorSizeInBytes(const cudnnTensorDescriptor_t tensorDesc, size_t* size) {
    if (cudnnStatus_t s = check_tensor(tensorDesc, "cudnnGetTensorSizeInBytes", "tensorDesc"); s != CUDNN_STATUS_SUCCESS)
        return s;
    if (size == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetTensorSizeInBytes", "null output pointer");
    }
    std::int64_t strides[CUDNN_DIM_MAX];
    *size = cudaemu::detail::tensor_span_bytes(tensorDesc->nb_dims, tensorDesc->dims,
                                               cudaemu::detail::widen(tensorDesc->strides, tensorDesc->nb_dims, strides),
                                               tensorDesc->type);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t tensorDesc) {
    if (tensorDesc == nullptr) {
        return CUDNN_STATUS_SUCCESS;
    }
    if (!cudaemu::detail::remove_object(tensorDesc, ObjectKind::tensor)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroyTensorDescriptor",
                    format("%p is not a live tensor descriptor", static_cast<void*>(tensorDesc)));
    }
    delete tensorDesc;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnAddTensor(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t aDesc,
                                         const void* A, const void* beta, const cudnnTensorDescriptor_t cDesc, void* C) {
    const char* api = "cudnnAddTensor";
    if (cudnnStatus_t s = check_handle_and_join_stream(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    if (cudnnStatus_t s = check_tensor(aDesc, api, "aDesc"); s != CUDNN_STATUS_SUCCESS) return s;
    if (cudnnStatus_t s = check_tensor(cDesc, api, "cDesc"); s != CUDNN_STATUS_SUCCESS) return s;
    if (aDesc->type != cDesc->type) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "aDesc and cDesc have different data types");
    }
    if (!cudaemu::detail::computable_type(cDesc->type)) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, format("data type %d is not emulated", static_cast<int>(cDesc->type)));
    }
    if (aDesc->nb_dims != cDesc->nb_dims) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "aDesc and cDesc have different numbers of dimensions");
    }
    if (cDesc->nb_dims > 5) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, "more than 5 dimensions");
    }
    const int nb = cDesc->nb_dims;
    std::int64_t c_strides[CUDNN_DIM_MAX];
    std::int64_t a_strides[CUDNN_DIM_MAX];
    cudaemu::detail::widen(cDesc->strides, nb, c_strides);
    for (int i = 0; i < nb; ++i) {
        if (aDesc->dims[i] != cDesc->dims[i] && aDesc->dims[i] != 1) {
            return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                        format("dimension %d of A is %d; it must be 1 or equal C's %d", i, aDesc->dims[i], cDesc->dims[i]));
        }
        a_strides[i] = aDesc->dims[i] == 1 ? 0 : aDesc->strides[i];
    }
    if (alpha == nullptr || beta == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "alpha or beta is null");
    }
    std::int64_t a_full[CUDNN_DIM_MAX];
    if (cudnnStatus_t s = check_memory(A, cudaemu::detail::tensor_span_bytes(nb, aDesc->dims,
                                                                             cudaemu::detail::widen(aDesc->strides, nb, a_full),
                                                                             aDesc->type),
                                       api, "A");
        s != CUDNN_STATUS_SUCCESS)
        return s;
    if (cudnnStatus_t s = check_memory(C, cudaemu::detail::tensor_span_bytes(nb, cDesc->dims, c_strides, cDesc->type), api, "C");
        s != CUDNN_STATUS_SUCCESS)
        return s;
    const cudnnDataType_t type = cDesc->type;
    const double a = cudaemu::detail::read_scale(alpha, type);
    const double b = cudaemu::detail::read_scale(beta, type);
    const bool in_double = type == CUDNN_DATA_DOUBLE;
    cudaemu::detail::for_each_element(nb, cDesc->dims, c_strides, a_strides, [&](std::int64_t at, std::int64_t from) {
        const double source = cudaemu::detail::load(A, type, from);
        double value;
        if (in_double) {
            value = a * source + (b != 0.0 ? b * cudaemu::detail::load(C, type, at) : 0.0);
        } else {
            float v = static_cast<float>(a) * static_cast<float>(source);
            if (b != 0.0) {
                v += static_cast<float>(b) * static_cast<float>(cudaemu::detail::load(C, type, at));
            }
            value = v;
        }
        cudaemu::detail::store(C, type, at, value);
    });
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetTensor(cudnnHandle_t handle, const cudnnTensorDescriptor_t yDesc, void* y,
                                         const void* valuePtr) {
    const char* api = "cudnnSetTensor";
    if (cudnnStatus_t s = check_handle_and_join_stream(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    if (cudnnStatus_t s = check_tensor(yDesc, api, "yDesc"); s != CUDNN_STATUS_SUCCESS) return s;
    if (valuePtr == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "valuePtr is null");
    }
    if (!cudaemu::detail::computable_type(yDesc->type)) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, format("data type %d is not emulated", static_cast<int>(yDesc->type)));
    }
    const int nb = yDesc->nb_dims;
    std::int64_t strides[CUDNN_DIM_MAX];
    cudaemu::detail::widen(yDesc->strides, nb, strides);
    if (cudnnStatus_t s = check_memory(y, cudaemu::detail::tensor_span_bytes(nb, yDesc->dims, strides, yDesc->type), api, "y");
        s != CUDNN_STATUS_SUCCESS)
        return s;
    const std::size_t bytes = cudaemu::detail::type_bytes(yDesc->type);
    cudaemu::detail::for_each_element(nb, yDesc->dims, strides, strides, [&](std::int64_t at, std::int64_t) {
        std::memcpy(static_cast<char*>(y) + at * static_cast<std::int64_t>(bytes), valuePtr, bytes);
    });
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnScaleTensor(cudnnHandle_t handle, const cudnnTensorDescriptor_t yDesc, void* y,
                                           const void* alpha) {
    const char* api = "cudnnScaleTensor";
    if (cudnnStatus_t s = check_handle_and_join_stream(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    if (cudnnStatus_t s = check_tensor(yDesc, api, "yDesc"); s != CUDNN_STATUS_SUCCESS) return s;
    if (alpha == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "alpha is null");
    }
    if (!cudaemu::detail::computable_type(yDesc->type)) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, format("data type %d is not emulated", static_cast<int>(yDesc->type)));
    }
    const int nb = yDesc->nb_dims;
    std::int64_t strides[CUDNN_DIM_MAX];
    cudaemu::detail::widen(yDesc->strides, nb, strides);
    if (cudnnStatus_t s = check_memory(y, cudaemu::detail::tensor_span_bytes(nb, yDesc->dims, strides, yDesc->type), api, "y");
        s != CUDNN_STATUS_SUCCESS)
        return s;
    const cudnnDataType_t type = yDesc->type;
    const double a = cudaemu::detail::read_scale(alpha, type);
    cudaemu::detail::for_each_element(nb, yDesc->dims, strides, strides, [&](std::int64_t at, std::int64_t) {
        const double old = cudaemu::detail::load(y, type, at);
        const double value = type == CUDNN_DATA_DOUBLE ? a * old : static_cast<double>(static_cast<float>(a) * static_cast<float>(old));
        cudaemu::detail::store(y, type, at, value);
    });
    return CUDNN_STATUS_SUCCESS;
}

// ---- filters ------------------------------------------------------------------------------------

cudnnStatus_t CUDNNWINAPI cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* filterDesc) {
    if (filterDesc == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateFilterDescriptor", "null output pointer");
    }
    *filterDesc = new cudnnFilterStruct;
    cudaemu::detail::add_object(*filterDesc, ObjectKind::filter);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                                     cudnnTensorFormat_t format, int nbDims, const int filterDimA[]) {
    const char* api = "cudnnSetFilterNdDescriptor";
    if (cudnnStatus_t s = check_object(filterDesc, ObjectKind::filter, api, "filterDesc"); s != CUDNN_STATUS_SUCCESS)
        return s;
    if (!cudaemu::detail::known_type(dataType)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, cudaemu::detail::format("invalid data type %d", static_cast<int>(dataType)));
    }
    if (format == CUDNN_TENSOR_NCHW_VECT_C) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, "CUDNN_TENSOR_NCHW_VECT_C is not emulated");
    }
    if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, cudaemu::detail::format("invalid format %d", static_cast<int>(format)));
    }
    if (filterDimA == nullptr || nbDims < 3 || nbDims > CUDNN_DIM_MAX) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, cudaemu::detail::format("nbDims %d is outside [3, %d] or the array is null", nbDims,
                                                        CUDNN_DIM_MAX));
    }
    for (int i = 0; i < nbDims; ++i) {
        if (filterDimA[i] <= 0) {
            return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, cudaemu::detail::format("dimension %d is %d", i, filterDimA[i]));
        }
    }
    filterDesc->set = true;
    filterDesc->type = dataType;
    filterDesc->format = format;
    filterDesc->nb_dims = nbDims;
    std::fill(std::begin(filterDesc->dims), std::end(filterDesc->dims), 0);
    std::copy(filterDimA, filterDimA + nbDims, filterDesc->dims);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t filterDesc, cudnnDataType_t dataType,
                                                     cudnnTensorFormat_t format, int k, int c, int h, int w) {
    const int dims[4] = {k, c, h, w};
    return cudnnSetFilterNdDescriptor(filterDesc, dataType, format, 4, dims);
}

cudnnStatus_t CUDNNWINAPI cudnnGetFilter4dDescriptor(const cudnnFilterDescriptor_t filterDesc,
                                                     cudnnDataType_t* dataType, cudnnTensorFormat_t* format, int* k,
                                                     int* c, int* h, int* w) {
    const char* api = "cudnnGetFilter4dDescriptor";
    if (cudnnStatus_t s = check_filter(filterDesc, api, "filterDesc"); s != CUDNN_STATUS_SUCCESS) return s;
    if (filterDesc->nb_dims != 4) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, cudaemu::detail::format("the descriptor has %d dimensions, not 4", filterDesc->nb_dims));
    }
    if (dataType == nullptr || format == nullptr || k == nullptr || c == nullptr || h == nullptr || w == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer");
    }
    *dataType = filterDesc->type;
    *format = filterDesc->format;
    *k = filterDesc->dims[0];
    *c = filterDesc->dims[1];
    *h = filterDesc->dims[2];
    *w = filterDesc->dims[3];
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t filterDesc) {
    if (filterDesc == nullptr) {
        return CUDNN_STATUS_SUCCESS;
    }
    if (!cudaemu::detail::remove_object(filterDesc, ObjectKind::filter)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroyFilterDescriptor",
                    format("%p is not a live filter descriptor", static_cast<void*>(filterDesc)));
    }
    delete filterDesc;
    return CUDNN_STATUS_SUCCESS;
}

// ---- convolution descriptors --------------------------------------------------------------------

cudnnStatus_t CUDNNWINAPI cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* convDesc) {
    if (convDesc == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnCreateConvolutionDescriptor", "null output pointer");
    }
    *convDesc = new cudnnConvolutionStruct;
    cudaemu::detail::add_object(*convDesc, ObjectKind::convolution);
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t convDesc) {
    if (convDesc == nullptr) {
        return CUDNN_STATUS_SUCCESS;
    }
    if (!cudaemu::detail::remove_object(convDesc, ObjectKind::convolution)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroyConvolutionDescriptor",
                    format("%p is not a live convolution descriptor", static_cast<void*>(convDesc)));
    }
    delete convDesc;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t mathType) {
    const char* api = "cudnnSetConvolutionMathType";
    if (cudnnStatus_t s = check_object(convDesc, ObjectKind::convolution, api, "convDesc"); s != CUDNN_STATUS_SUCCESS)
        return s;
    if (mathType < CUDNN_DEFAULT_MATH || mathType > CUDNN_FMA_MATH) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("invalid math type %d", static_cast<int>(mathType)));
    }
    convDesc->math = mathType;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t convDesc, cudnnMathType_t* mathType) {
    const char* api = "cudnnGetConvolutionMathType";
    if (cudnnStatus_t s = check_object(convDesc, ObjectKind::convolution, api, "convDesc"); s != CUDNN_STATUS_SUCCESS)
        return s;
    if (mathType == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer");
    }
    *mathType = convDesc->math;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int groupCount) {
    const char* api = "cudnnSetConvolutionGroupCount";
    if (cudnnStatus_t s = check_object(convDesc, ObjectKind::convolution, api, "convDesc"); s != CUDNN_STATUS_SUCCESS)
        return s;
    if (groupCount <= 0) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("group count %d must be positive", groupCount));
    }
    convDesc->groups = groupCount;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionGroupCount(cudnnConvolutionDescriptor_t convDesc, int* groupCount) {
    const char* api = "cudnnGetConvolutionGroupCount";
    if (cudnnStatus_t s = check_object(convDesc, ObjectKind::convolution, api, "convDesc"); s != CUDNN_STATUS_SUCCESS)
        return s;
    if (groupCount == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer");
    }
    *groupCount = convDesc->groups;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t convDesc, int pad_h, int pad_w,
                                                          int u, int v, int dilation_h, int dilation_w,
                                                          cudnnConvolutionMode_t mode, cudnnDataType_t computeType) {
    const char* api = "cudnnSetConvolution2dDescriptor";
    if (cudnnStatus_t s = check_object(convDesc, ObjectKind::convolution, api, "convDesc"); s != CUDNN_STATUS_SUCCESS)
        return s;
    if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 || dilation_w <= 0) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                    format("pad (%d,%d) must be >= 0, stride (%d,%d) and dilation (%d,%d) > 0", pad_h, pad_w, u, v,
                           dilation_h, dilation_w));
    }
    if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("invalid mode %d", static_cast<int>(mode)));
    }
    if (!cudaemu::detail::known_type(computeType)) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, format("invalid compute type %d", static_cast<int>(computeType)));
    }
    convDesc->set = true;
    convDesc->spatial = 2;
    convDesc->pad[0] = pad_h;
    convDesc->pad[1] = pad_w;
    convDesc->stride[0] = u;
    convDesc->stride[1] = v;
    convDesc->dilation[0] = dilation_h;
    convDesc->dilation[1] = dilation_w;
    convDesc->mode = mode;
    convDesc->compute = computeType;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolution2dDescriptor(const cudnnConvolutionDescriptor_t convDesc, int* pad_h,
                                                          int* pad_w, int* u, int* v, int* dilation_h, int* dilation_w,
                                                          cudnnConvolutionMode_t* mode, cudnnDataType_t* computeType) {
    const char* api = "cudnnGetConvolution2dDescriptor";
    if (cudnnStatus_t s = check_convolution(convDesc, api); s != CUDNN_STATUS_SUCCESS) return s;
    if (pad_h == nullptr || pad_w == nullptr || u == nullptr || v == nullptr || dilation_h == nullptr ||
        dilation_w == nullptr || mode == nullptr || computeType == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer");
    }
    *pad_h = convDesc->pad[0];
    *pad_w = convDesc->pad[1];
    *u = convDesc->stride[0];
    *v = convDesc->stride[1];
    *dilation_h = convDesc->dilation[0];
    *dilation_w = convDesc->dilation[1];
    *mode = convDesc->mode;
    *computeType = convDesc->compute;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                                const cudnnTensorDescriptor_t inputTensorDesc,
                                                                const cudnnFilterDescriptor_t filterDesc, int* n, int* c,
                                                                int* h, int* w) {
    const char* api = "cudnnGetConvolution2dForwardOutputDim";
    if (n == nullptr || c == nullptr || h == nullptr || w == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer");
    }
    ConvProblem pb{};
    if (cudnnStatus_t s = cudaemu::detail::make_problem(api, inputTensorDesc, "inputTensorDesc", filterDesc,
                                                        "filterDesc", convDesc, nullptr, "", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    *n = pb.N();
    *c = pb.K();
    *h = pb.P();
    *w = pb.Q();
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionNdForwardOutputDim(const cudnnConvolutionDescriptor_t convDesc,
                                                                const cudnnTensorDescriptor_t inputTensorDesc,
                                                                const cudnnFilterDescriptor_t filterDesc, int nbDims,
                                                                int tensorOuputDimA[]) {
    const char* api = "cudnnGetConvolutionNdForwardOutputDim";
    if (tensorOuputDimA == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer");
    }
    ConvProblem pb{};
    if (cudnnStatus_t s = cudaemu::detail::make_problem(api, inputTensorDesc, "inputTensorDesc", filterDesc,
                                                        "filterDesc", convDesc, nullptr, "", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    if (nbDims != inputTensorDesc->nb_dims) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                    format("nbDims %d differs from the input's %d dimensions", nbDims, inputTensorDesc->nb_dims));
    }
    tensorOuputDimA[0] = pb.N();
    tensorOuputDimA[1] = pb.K();
    tensorOuputDimA[2] = pb.P();
    tensorOuputDimA[3] = pb.Q();
    return CUDNN_STATUS_SUCCESS;
}

// ---- forward ------------------------------------------------------------------------------------

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionForwardAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
    if (cudnnStatus_t s = check_handle(handle, "cudnnGetConvolutionForwardAlgorithmMaxCount"); s != CUDNN_STATUS_SUCCESS)
        return s;
    if (count == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetConvolutionForwardAlgorithmMaxCount", "null output pointer");
    }
    *count = CUDNN_CONVOLUTION_FWD_ALGO_COUNT;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionForwardAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc, const cudnnFilterDescriptor_t filterDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t destDesc, const int requestedAlgoCount,
    int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfResults) {
    const char* api = "cudnnGetConvolutionForwardAlgorithm_v7";
    if (cudnnStatus_t s = check_handle(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s = cudaemu::detail::make_problem(api, srcDesc, "srcDesc", filterDesc, "filterDesc", convDesc,
                                                        destDesc, "destDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    if (requestedAlgoCount <= 0 || returnedAlgoCount == nullptr || perfResults == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "requestedAlgoCount <= 0 or a null output pointer");
    }
    return cudaemu::detail::write_records<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
        cudaemu::detail::heuristic_records(pb, Pass::forward), pb.math, requestedAlgoCount, returnedAlgoCount,
        perfResults);
}

cudnnStatus_t CUDNNWINAPI cudnnFindConvolutionForwardAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnFilterDescriptor_t wDesc,
    const void* w, const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc, void* y,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionFwdAlgoPerf_t* perfResults, void* workSpace,
    size_t workSpaceSizeInBytes) {
    const char* api = "cudnnFindConvolutionForwardAlgorithmEx";
    if (cudnnStatus_t s = check_handle_and_join_stream(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s = cudaemu::detail::make_problem(api, xDesc, "xDesc", wDesc, "wDesc", convDesc, yDesc, "yDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    pb.x.data = x;
    pb.w.data = w;
    pb.y.data = y;
    const float one_f = 1.0f;
    const double one_d = 1.0;
    const void* one = pb.type == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
    return cudaemu::detail::find_algorithms<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
        api, Pass::forward, pb, one, requestedAlgoCount, returnedAlgoCount, perfResults, workSpace, workSpaceSizeInBytes);
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionForwardWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnFilterDescriptor_t wDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t yDesc, cudnnConvolutionFwdAlgo_t algo,
    size_t* sizeInBytes) {
    const char* api = "cudnnGetConvolutionForwardWorkspaceSize";
    if (cudnnStatus_t s = check_handle(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s = cudaemu::detail::make_problem(api, xDesc, "xDesc", wDesc, "wDesc", convDesc, yDesc, "yDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    if (sizeInBytes == nullptr || algo < 0 || algo >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer or invalid algorithm");
    }
    const cudaemu::detail::AlgoRule rule = cudaemu::detail::forward_rule(pb, algo);
    if (!rule.supported) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, format("forward algorithm %d does not support this convolution", algo));
    }
    *sizeInBytes = rule.workspace;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha,
                                                  const cudnnTensorDescriptor_t xDesc, const void* x,
                                                  const cudnnFilterDescriptor_t wDesc, const void* w,
                                                  const cudnnConvolutionDescriptor_t convDesc,
                                                  cudnnConvolutionFwdAlgo_t algo, void* workSpace,
                                                  size_t workSpaceSizeInBytes, const void* beta,
                                                  const cudnnTensorDescriptor_t yDesc, void* y) {
    const char* api = "cudnnConvolutionForward";
    if (cudnnStatus_t s = check_handle_and_join_stream(handle, api, true); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s = cudaemu::detail::make_problem(api, xDesc, "xDesc", wDesc, "wDesc", convDesc, yDesc, "yDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    pb.x.data = x;
    pb.w.data = w;
    pb.y.data = y;
    return cudaemu::detail::execute_pass(handle->stream, api, Pass::forward, pb, algo, workSpace, workSpaceSizeInBytes,
                                         alpha, beta, true);
}

// ---- backward data ------------------------------------------------------------------------------

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionBackwardDataAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
    if (cudnnStatus_t s = check_handle(handle, "cudnnGetConvolutionBackwardDataAlgorithmMaxCount");
        s != CUDNN_STATUS_SUCCESS)
        return s;
    if (count == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetConvolutionBackwardDataAlgorithmMaxCount", "null output pointer");
    }
    *count = CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnFindConvolutionBackwardDataAlgorithmEx(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const void* w, const cudnnTensorDescriptor_t dyDesc,
    const void* dy, const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc, void* dx,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
    const char* api = "cudnnFindConvolutionBackwardDataAlgorithmEx";
    if (cudnnStatus_t s = check_handle_and_join_stream(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s =
            cudaemu::detail::make_problem(api, dxDesc, "dxDesc", wDesc, "wDesc", convDesc, dyDesc, "dyDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    pb.x.data = dx;
    pb.w.data = w;
    pb.y.data = dy;
    const float one_f = 1.0f;
    const double one_d = 1.0;
    const void* one = pb.type == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
    return cudaemu::detail::find_algorithms<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
        api, Pass::backward_data, pb, one, requestedAlgoCount, returnedAlgoCount, perfResults, workSpace,
        workSpaceSizeInBytes);
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t filterDesc, const cudnnTensorDescriptor_t diffDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t gradDesc, const int requestedAlgoCount,
    int* returnedAlgoCount, cudnnConvolutionBwdDataAlgoPerf_t* perfResults) {
    const char* api = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
    if (cudnnStatus_t s = check_handle(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s = cudaemu::detail::make_problem(api, gradDesc, "gradDesc", filterDesc, "filterDesc", convDesc,
                                                        diffDesc, "diffDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    if (requestedAlgoCount <= 0 || returnedAlgoCount == nullptr || perfResults == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "requestedAlgoCount <= 0 or a null output pointer");
    }
    return cudaemu::detail::write_records<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
        cudaemu::detail::heuristic_records(pb, Pass::backward_data), pb.math, requestedAlgoCount, returnedAlgoCount,
        perfResults);
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t handle, const cudnnFilterDescriptor_t wDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnTensorDescriptor_t dxDesc,
    cudnnConvolutionBwdDataAlgo_t algo, size_t* sizeInBytes) {
    const char* api = "cudnnGetConvolutionBackwardDataWorkspaceSize";
    if (cudnnStatus_t s = check_handle(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s =
            cudaemu::detail::make_problem(api, dxDesc, "dxDesc", wDesc, "wDesc", convDesc, dyDesc, "dyDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    if (sizeInBytes == nullptr || algo < 0 || algo >= CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer or invalid algorithm");
    }
    const cudaemu::detail::AlgoRule rule = cudaemu::detail::backward_data_rule(pb, algo);
    if (!rule.supported) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api,
                    format("backward data algorithm %d does not support this convolution", algo));
    }
    *sizeInBytes = rule.workspace;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha,
                                                       const cudnnFilterDescriptor_t wDesc, const void* w,
                                                       const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                       const cudnnConvolutionDescriptor_t convDesc,
                                                       cudnnConvolutionBwdDataAlgo_t algo, void* workSpace,
                                                       size_t workSpaceSizeInBytes, const void* beta,
                                                       const cudnnTensorDescriptor_t dxDesc, void* dx) {
    const char* api = "cudnnConvolutionBackwardData";
    if (cudnnStatus_t s = check_handle_and_join_stream(handle, api, true); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s =
            cudaemu::detail::make_problem(api, dxDesc, "dxDesc", wDesc, "wDesc", convDesc, dyDesc, "dyDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    pb.x.data = dx;
    pb.w.data = w;
    pb.y.data = dy;
    return cudaemu::detail::execute_pass(handle->stream, api, Pass::backward_data, pb, algo, workSpace,
                                         workSpaceSizeInBytes, alpha, beta, true);
}

// ---- backward filter ----------------------------------------------------------------------------

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(cudnnHandle_t handle, int* count) {
    if (cudnnStatus_t s = check_handle(handle, "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount");
        s != CUDNN_STATUS_SUCCESS)
        return s;
    if (count == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetConvolutionBackwardFilterAlgorithmMaxCount", "null output pointer");
    }
    *count = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnFindConvolutionBackwardFilterAlgorithmEx(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const void* x, const cudnnTensorDescriptor_t dyDesc,
    const void* y, const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t dwDesc, void* dw,
    const int requestedAlgoCount, int* returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t* perfResults,
    void* workSpace, size_t workSpaceSizeInBytes) {
    const char* api = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
    if (cudnnStatus_t s = check_handle_and_join_stream(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s =
            cudaemu::detail::make_problem(api, xDesc, "xDesc", dwDesc, "dwDesc", convDesc, dyDesc, "dyDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    pb.x.data = x;
    pb.w.data = dw;
    pb.y.data = y;
    const float one_f = 1.0f;
    const double one_d = 1.0;
    const void* one = pb.type == CUDNN_DATA_DOUBLE ? static_cast<const void*>(&one_d) : static_cast<const void*>(&one_f);
    return cudaemu::detail::find_algorithms<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
        api, Pass::backward_filter, pb, one, requestedAlgoCount, returnedAlgoCount, perfResults, workSpace,
        workSpaceSizeInBytes);
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t srcDesc, const cudnnTensorDescriptor_t diffDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc, const int requestedAlgoCount,
    int* returnedAlgoCount, cudnnConvolutionBwdFilterAlgoPerf_t* perfResults) {
    const char* api = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
    if (cudnnStatus_t s = check_handle(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s = cudaemu::detail::make_problem(api, srcDesc, "srcDesc", gradDesc, "gradDesc", convDesc,
                                                        diffDesc, "diffDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    if (requestedAlgoCount <= 0 || returnedAlgoCount == nullptr || perfResults == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "requestedAlgoCount <= 0 or a null output pointer");
    }
    return cudaemu::detail::write_records<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
        cudaemu::detail::heuristic_records(pb, Pass::backward_filter), pb.math, requestedAlgoCount, returnedAlgoCount,
        perfResults);
}

cudnnStatus_t CUDNNWINAPI cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t handle, const cudnnTensorDescriptor_t xDesc, const cudnnTensorDescriptor_t dyDesc,
    const cudnnConvolutionDescriptor_t convDesc, const cudnnFilterDescriptor_t gradDesc,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t* sizeInBytes) {
    const char* api = "cudnnGetConvolutionBackwardFilterWorkspaceSize";
    if (cudnnStatus_t s = check_handle(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s =
            cudaemu::detail::make_problem(api, xDesc, "xDesc", gradDesc, "gradDesc", convDesc, dyDesc, "dyDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    if (sizeInBytes == nullptr || algo < 0 || algo >= CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "null output pointer or invalid algorithm");
    }
    const cudaemu::detail::AlgoRule rule = cudaemu::detail::backward_filter_rule(pb, algo);
    if (!rule.supported) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api,
                    format("backward filter algorithm %d does not support this convolution", algo));
    }
    *sizeInBytes = rule.workspace;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha,
                                                         const cudnnTensorDescriptor_t xDesc, const void* x,
                                                         const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                         const cudnnConvolutionDescriptor_t convDesc,
                                                         cudnnConvolutionBwdFilterAlgo_t algo, void* workSpace,
                                                         size_t workSpaceSizeInBytes, const void* beta,
                                                         const cudnnFilterDescriptor_t dwDesc, void* dw) {
    const char* api = "cudnnConvolutionBackwardFilter";
    if (cudnnStatus_t s = check_handle_and_join_stream(handle, api, true); s != CUDNN_STATUS_SUCCESS) return s;
    ConvProblem pb{};
    if (cudnnStatus_t s =
            cudaemu::detail::make_problem(api, xDesc, "xDesc", dwDesc, "dwDesc", convDesc, dyDesc, "dyDesc", &pb);
        s != CUDNN_STATUS_SUCCESS)
        return s;
    pb.x.data = x;
    pb.w.data = dw;
    pb.y.data = dy;
    return cudaemu::detail::execute_pass(handle->stream, api, Pass::backward_filter, pb, algo, workSpace,
                                         workSpaceSizeInBytes, alpha, beta, true);
}

cudnnStatus_t CUDNNWINAPI cudnnConvolutionBackwardBias(cudnnHandle_t handle, const void* alpha,
                                                       const cudnnTensorDescriptor_t dyDesc, const void* dy,
                                                       const void* beta, const cudnnTensorDescriptor_t dbDesc, void* db) {
    const char* api = "cudnnConvolutionBackwardBias";
    if (cudnnStatus_t s = check_handle_and_join_stream(handle, api); s != CUDNN_STATUS_SUCCESS) return s;
    if (cudnnStatus_t s = check_tensor(dyDesc, api, "dyDesc"); s != CUDNN_STATUS_SUCCESS) return s;
    if (cudnnStatus_t s = check_tensor(dbDesc, api, "dbDesc"); s != CUDNN_STATUS_SUCCESS) return s;
    if (dyDesc->nb_dims != 4 || dbDesc->nb_dims != 4) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, "only 4-D tensors are emulated");
    }
    if (dyDesc->type != dbDesc->type) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "dyDesc and dbDesc have different data types");
    }
    if (!cudaemu::detail::computable_type(dyDesc->type)) {
        return dnn_fail(CUDNN_STATUS_NOT_SUPPORTED, api, format("data type %d is not emulated", static_cast<int>(dyDesc->type)));
    }
    if (dbDesc->dims[0] != 1 || dbDesc->dims[1] != dyDesc->dims[1] || dbDesc->dims[2] != 1 || dbDesc->dims[3] != 1) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api,
                    format("dbDesc is (%d,%d,%d,%d) but must be (1,%d,1,1)", dbDesc->dims[0], dbDesc->dims[1],
                           dbDesc->dims[2], dbDesc->dims[3], dyDesc->dims[1]));
    }
    if (alpha == nullptr || beta == nullptr) {
        return dnn_fail(CUDNN_STATUS_BAD_PARAM, api, "alpha or beta is null");
    }
    const cudaemu::detail::View dyv = cudaemu::detail::tensor_view(*dyDesc, dy);
    const cudaemu::detail::View dbv = cudaemu::detail::tensor_view(*dbDesc, db);
    if (cudnnStatus_t s = check_memory(dy, dyv.span_bytes(), api, "dy"); s != CUDNN_STATUS_SUCCESS) return s;
    if (cudnnStatus_t s = check_memory(db, dbv.span_bytes(), api, "db"); s != CUDNN_STATUS_SUCCESS) return s;
    const double a = cudaemu::detail::read_scale(alpha, dyDesc->type);
    const double b = cudaemu::detail::read_scale(beta, dyDesc->type);
    const auto reduce = [&](auto zero) {
        using Acc = decltype(zero);
        std::vector<Acc> sums(static_cast<std::size_t>(dyv.dims[1]), Acc(0));
        for (int n = 0; n < dyv.dims[0]; ++n) {
            for (int k = 0; k < dyv.dims[1]; ++k) {
                for (int p = 0; p < dyv.dims[2]; ++p) {
                    for (int q = 0; q < dyv.dims[3]; ++q) {
                        sums[static_cast<std::size_t>(k)] +=
                            static_cast<Acc>(cudaemu::detail::load(dy, dyv.type, dyv.offset(n, k, p, q)));
                    }
                }
            }
        }
        cudaemu::detail::blend(dbv, sums, static_cast<Acc>(a), static_cast<Acc>(b));
    };
    if (dyDesc->type == CUDNN_DATA_DOUBLE) {
        reduce(0.0);
    } else {
        reduce(0.0f);
    }
    return CUDNN_STATUS_SUCCESS;
}

}  // extern "C"
