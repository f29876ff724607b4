"""Helpers shared by the reference groups."""
import zlib

import torch


def seed_for(name):
    """A stable per-case seed, so each case's inputs do not depend on which other cases exist."""
    return zlib.crc32(name.encode())


def randn(*shape, generator, dtype=torch.float32):
    return torch.randn(*shape, generator=generator, dtype=dtype)


def reference(name, fn, inputs, grad, params=None, generator=None):
    """Runs fn(**inputs) in PyTorch and returns the case tuple (name, tensors, params).

    tensors holds every input, "out" = fn(...), "grad_out" = a random upstream gradient, and
    "grad.<k>" = d(sum(out * grad_out))/d(input k) for every k in `grad`.
    """
    if generator is None:
        generator = torch.Generator().manual_seed(seed_for(name + "/grad_out"))
    leaves = {k: v.detach().clone().requires_grad_(k in grad) for k, v in inputs.items()}
    out = fn(**leaves)
    tensors = {k: v.detach() for k, v in inputs.items()}
    tensors["out"] = out.detach()
    if grad:
        grad_out = torch.randn(out.shape, generator=generator, dtype=out.dtype)
        out.backward(grad_out)
        tensors["grad_out"] = grad_out
        for k in grad:
            tensors["grad." + k] = leaves[k].grad
    return name, tensors, dict(params or {})
