"""Tensor casts: float32 -> bfloat16 / float16 bit patterns (round to nearest even, ties, overflow,
subnormals, NaN) and float32 -> int64 truncation, as PyTorch converts."""
import torch

from .common import seed_for


def cases():
    g = torch.Generator().manual_seed(seed_for("tensor/casts"))
    special = torch.tensor([0.0, -0.0, 1.0, -2.0, 1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, 65504.0, 65519.0, 65520.0,
                            2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -14, 1023.5 * 2 ** -24, 3.0e38, -7.9,
                            float("inf"), float("-inf"), 1e-40, 123456.789])
    x = torch.cat([special, torch.randn(200, generator=g) * 10, torch.randn(50, generator=g) * 1e-6])
    finite = torch.where(torch.isfinite(x) & (x.abs() < 1e18), x, torch.zeros_like(x))
    tensors = {
        "x": x,
        "bf16_bits": x.to(torch.bfloat16).view(torch.int16).to(torch.int32) & 0xFFFF,
        "f16_bits": x.to(torch.float16).view(torch.int16).to(torch.int32) & 0xFFFF,
        "finite": finite,
        "as_i64": finite.to(torch.int64),
    }
    yield "casts", tensors, {}
