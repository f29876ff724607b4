"""Elementwise ops and reductions: add/sub/mul (same shape, per-channel (C) and per-sample (N,1,1,C)
broadcasts), scale, square, pow, relu, leaky_relu, sigmoid, abs,
log, clamp, sum/mean over all, spatial dims and channels."""
import torch
import torch.nn.functional as F

from .common import randn, reference, seed_for


def cases():
    def gen(name):
        return torch.Generator().manual_seed(seed_for(name))

    g = gen("binary")
    a = randn(2, 5, 4, 3, generator=g)  # NCHW: N=2, C=5, H=4, W=3
    b_same = randn(2, 5, 4, 3, generator=g)
    b_channel = randn(5, generator=g)
    b_spatial = randn(2, 5, 1, 1, generator=g)
    for op_name, op in (("add", torch.add), ("sub", torch.sub), ("mul", torch.mul)):
        yield reference(f"{op_name}_same", lambda a, b, op=op: op(a, b), {"a": a, "b": b_same}, ["a", "b"])
        yield reference(f"{op_name}_channel", lambda a, b, op=op: op(a, b.view(1, -1, 1, 1)),
                        {"a": a, "b": b_channel}, ["a", "b"])
        yield reference(f"{op_name}_spatial", lambda a, b, op=op: op(a, b), {"a": a, "b": b_spatial}, ["a", "b"])

    g = gen("unary")
    x = randn(2, 6, 5, 7, generator=g)
    positive = x.abs() + 0.5
    yield reference("scale", lambda x: x * -2.5, {"x": x}, ["x"], {"s": -2.5})
    yield reference("square", lambda x: x * x, {"x": x}, ["x"])
    yield reference("pow", lambda x: torch.pow(x, 1.7), {"x": positive}, ["x"], {"p": 1.7})
    yield reference("relu", lambda x: F.relu(x), {"x": x}, ["x"])
    yield reference("leaky_relu", lambda x: F.leaky_relu(x, 0.01), {"x": x}, ["x"], {"slope": 0.01})
    yield reference("sigmoid", lambda x: torch.sigmoid(x * 4), {"x": x}, ["x"])
    yield reference("abs", lambda x: torch.abs(x), {"x": x}, ["x"])
    yield reference("log", lambda x: torch.log(x), {"x": positive}, ["x"])
    yield reference("clamp", lambda x: torch.clamp(x, -0.5, 0.75), {"x": x}, ["x"], {"lo": -0.5, "hi": 0.75})

    g = gen("reduce")
    x = randn(2, 6, 5, 7, generator=g)
    yield reference("sum", lambda x: x.sum(), {"x": x}, ["x"])
    yield reference("mean", lambda x: x.mean(), {"x": x}, ["x"])
    yield reference("sum_spatial", lambda x: x.sum(dim=(2, 3), keepdim=True), {"x": x}, ["x"])
    yield reference("mean_spatial", lambda x: x.mean(dim=(2, 3), keepdim=True), {"x": x}, ["x"])
    yield reference("sum_channels", lambda x: x.sum(dim=1, keepdim=True), {"x": x}, ["x"])
    yield reference("mean_channels", lambda x: x.mean(dim=1, keepdim=True), {"x": x}, ["x"])
