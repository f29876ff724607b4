#!/usr/bin/env python3
"""PyTorch side of `strata bench teacher`: times the frozen teacher's forward of MiB's model.

Usage: bench_teacher_torch.py SETTINGS.json
Settings: bench_torch_common's ("batch", "height", "width", "warmup", "steps", "profile_steps",
"threads") and "depth", "output_stride", "classes" (per step), "seed".

The model is tools/torchref/models_mib.py's MiB DeepLabV3 (NCHW), its In-place ABN replaced by
PyTorch's fused batch-norm kernel and an in-place leaky ReLU as in bench_step_torch.py (PyTorch's best
case), in eval mode with frozen parameters, run under torch.no_grad() on normalised random images:
what MiB's train.py does with its old model. Only the upsampled logits are kept.
Prints one JSON object: the versions, the parameter count and bench_torch_common.measure()'s times,
memory and profile.
"""
import json
import sys

import torch

from bench_step_torch import abn_forward
from bench_torch_common import environment, measure
from torchref import models_mib


def main(path):
    with open(path) as f:
        s = json.load(f)
    torch.set_num_threads(int(s["threads"]))
    models_mib.ABN.forward = abn_forward
    torch.manual_seed(s["seed"])
    teacher = models_mib.MiBModel(s["depth"], s["output_stride"], s["classes"])
    for p in teacher.parameters():
        p.requires_grad_(False)
    teacher.eval()
    g = torch.Generator().manual_seed(s["seed"])
    images = torch.randn(s["batch"], 3, s["height"], s["width"], generator=g)

    def step():
        with torch.no_grad():
            out = teacher(images)["out"]
            del out

    result = measure(step, s)
    print(json.dumps({**environment(), "parameters": sum(p.numel() for p in teacher.parameters()), **result}))


if __name__ == "__main__":
    main(sys.argv[1])
