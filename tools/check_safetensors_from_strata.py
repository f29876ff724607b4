#!/usr/bin/env python3
"""Checks, with the official safetensors library and PyTorch, a file written by strata's
test_safetensors.cpp. Exits non-zero with a message on any difference."""
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file


def main(path):
    tensors = load_file(path)
    expected = {
        "f32": torch.tensor([1.5, -2.0]),
        "i32": torch.tensor([7, -8], dtype=torch.int32),
        "f16": torch.tensor([0.5], dtype=torch.float16),
        # strata's NHWC/OHWI (2,1,1,3) weight arrives in PyTorch's OIHW layout.
        "conv": torch.tensor([1.0, 2, 3, 4, 5, 6]).view(2, 1, 1, 3).permute(0, 3, 1, 2).contiguous(),
    }
    if set(tensors) != set(expected):
        sys.exit(f"keys {sorted(tensors)} != {sorted(expected)}")
    for name, want in expected.items():
        got = tensors[name]
        if got.dtype != want.dtype or got.shape != want.shape or not torch.equal(got, want):
            sys.exit(f"{name}: got {got.dtype} {tuple(got.shape)} {got.flatten().tolist()}, want "
                     f"{want.dtype} {tuple(want.shape)} {want.flatten().tolist()}")
    with safe_open(path, framework="pt") as f:
        if f.metadata() != {"written_by": "strata"}:
            sys.exit(f"metadata {f.metadata()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
