"""conv2d (pointwise, strided pointwise, 3x3, strided, dilated, 7x7 stem-like, rectangular kernels,
without bias) and linear, on odd sizes."""
import torch
import torch.nn.functional as F

from .common import randn, reference, seed_for

CONV_CASES = [
    # name, N, C, H, W, K, R, S, stride, pad, dilation, bias
    ("pointwise", 2, 6, 7, 5, 4, 1, 1, 1, 0, 1, True),
    ("pointwise_strided", 2, 6, 7, 5, 8, 1, 1, 2, 0, 1, False),
    ("3x3", 2, 5, 9, 7, 6, 3, 3, 1, 1, 1, True),
    ("3x3_stride2", 2, 5, 9, 8, 6, 3, 3, 2, 1, 1, True),
    ("3x3_dilation2", 1, 4, 11, 9, 5, 3, 3, 1, 2, 2, False),
    ("3x3_dilation3_pad0", 2, 3, 12, 10, 4, 3, 3, 1, 0, 3, True),
    ("7x7_stem", 2, 3, 17, 15, 8, 7, 7, 2, 3, 1, False),
    ("5x3_rect", 1, 4, 8, 9, 3, 5, 3, 1, 1, 1, True),
]


def cases():
    for name, n, c, h, w, k, r, s, stride, pad, dil, bias in CONV_CASES:
        g = torch.Generator().manual_seed(seed_for("conv/" + name))
        inputs = {"x": randn(n, c, h, w, generator=g), "weight": randn(k, c, r, s, generator=g) * 0.3}
        grads = ["x", "weight"]
        if bias:
            inputs["bias"] = randn(k, generator=g)
            grads.append("bias")
        params = {"stride": stride, "pad": pad, "dilation": dil}

        def fn(x, weight, bias=None, stride=stride, pad=pad, dil=dil):
            return F.conv2d(x, weight, bias, stride=stride, padding=pad, dilation=dil)

        yield reference("conv2d_" + name, fn, inputs, grads, params)

    g = torch.Generator().manual_seed(seed_for("linear"))
    x, wt, b = randn(5, 7, generator=g), randn(3, 7, generator=g), randn(3, generator=g)
    yield reference("linear", lambda x, weight, bias: F.linear(x, weight, bias),
                    {"x": x, "weight": wt, "bias": b}, ["x", "weight", "bias"])
    x3 = randn(2, 4, 7, generator=g)
    yield reference("linear_rank3_nobias", lambda x, weight: F.linear(x, weight),
                    {"x": x3, "weight": wt}, ["x", "weight"])
