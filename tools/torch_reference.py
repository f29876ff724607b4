#!/usr/bin/env python3
"""Writes the PyTorch reference tensors that strata's parity tests compare against.

Usage: torch_reference.py OUT_DIR [GROUP ...]

Every module in tools/torchref/ that defines cases() is a group (others, like common.py, are helpers).
cases() yields
(name, tensors, params): tensors is a dict of torch tensors in PyTorch's layouts (NCHW activations,
OIHW weights), params a dict of op parameters. Each case is written to OUT_DIR/<group>/<name>.safetensors
with the params as string metadata. The strata tests read these files (rank-4 tensors converted to
NHWC/OHWI on load) and compare forward outputs and gradients.

ctest runs this script as the fixture `torch_references` before every [torch] test, so the references
are always regenerated from this code. It needs Debian's python3-torch and the `safetensors` package
(the README's setup creates a venv with system site packages for it).
"""
import importlib
import os
import pkgutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import torchref  # noqa: E402


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = argv[1]
    wanted = set(argv[2:])
    torch.set_num_threads(1)
    groups = [m.name for m in pkgutil.iter_modules(torchref.__path__)
              if hasattr(importlib.import_module(f"torchref.{m.name}"), "cases")]
    unknown = wanted - set(groups)
    if unknown:
        print(f"torch_reference.py: unknown group(s) {sorted(unknown)}; known: {sorted(groups)}", file=sys.stderr)
        return 2
    count = 0
    for group in sorted(groups):
        if wanted and group not in wanted:
            continue
        module = importlib.import_module(f"torchref.{group}")
        os.makedirs(os.path.join(out_dir, group), exist_ok=True)
        for name, tensors, params in module.cases():
            tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
            # Booleans become 1/0 so the C++ side reads every parameter with TorchCase::param.
            metadata = {k: str(int(v)) if isinstance(v, bool) else str(v) for k, v in params.items()}
            path = os.path.join(out_dir, group, f"{name}.safetensors")
            tmp = path + ".tmp"
            save_file(tensors, tmp, metadata=metadata)
            os.replace(tmp, path)
            count += 1
    print(f"torch_reference.py: wrote {count} cases to {out_dir} (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
