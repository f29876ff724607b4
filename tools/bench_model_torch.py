#!/usr/bin/env python3
"""PyTorch side of `strata bench model`: times training steps of torchvision's deeplabv3_resnet50/101.

Usage: bench_model_torch.py SETTINGS.json
Settings: {"batch", "height", "width", "classes", "depth", "aux", "warmup", "steps", "profile_steps",
"threads"}. One step = zero_grad, forward, F.cross_entropy on the upsampled logits (+ 0.5 x the aux
loss with "aux"), backward, SGD (lr 0.01, momentum 0.9, weight decay 1e-4), in training mode, NCHW (what
MiB/PLOP users train in). Prints one JSON object:
  seconds            time of each timed step (after the warm-up steps)
  rss_increase       VmHWM after the steps minus VmRSS just before the first step (bytes; VmHWM is
                     reset through /proc/self/clear_refs first), as the C++ side measures itself
  ops                the top 20 ops of torch.autograd.profiler's key_averages over profile_steps more
                     steps, by self CPU time: {"name", "calls", "self_seconds"}
  ops_total_seconds  the self CPU time of all ops; profiled_seconds the wall time of those steps
"""
import json
import re
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.segmentation import deeplabv3_resnet50, deeplabv3_resnet101


def resident():
    with open("/proc/self/status") as f:
        status = f.read()
    kb = lambda key: int(re.search(rf"{key}:\s+(\d+)", status).group(1)) * 1024  # noqa: E731
    return kb("VmRSS"), kb("VmHWM")


def main(path):
    with open(path) as f:
        s = json.load(f)
    torch.set_num_threads(int(s["threads"]))
    torch.manual_seed(0)
    build = {50: deeplabv3_resnet50, 101: deeplabv3_resnet101}[s["depth"]]
    model = build(weights=None, weights_backbone=None, num_classes=s["classes"], aux_loss=s["aux"])
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(s["batch"], 3, s["height"], s["width"], generator=g)
    labels = torch.randint(0, s["classes"], (s["batch"], s["height"], s["width"]), generator=g)

    def step():
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(out["out"], labels)
        if s["aux"]:
            loss = loss + 0.5 * F.cross_entropy(out["aux"], labels)
        del out
        loss.backward()
        optimizer.step()

    baseline, _ = resident()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    for _ in range(s["warmup"]):
        step()
    seconds = []
    for _ in range(s["steps"]):
        t0 = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - t0)
    _, peak = resident()

    t0 = time.perf_counter()
    with torch.autograd.profiler.profile() as prof:
        for _ in range(s["profile_steps"]):
            step()
    profiled = time.perf_counter() - t0
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    ops = [{"name": e.key, "calls": e.count, "self_seconds": e.self_cpu_time_total * 1e-6} for e in events[:20]]
    print(json.dumps({
        "torch": torch.__version__, "torchvision": torchvision.__version__, "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": seconds, "rss_increase": peak - baseline, "ops": ops,
        "ops_total_seconds": sum(e.self_cpu_time_total for e in events) * 1e-6, "profiled_seconds": profiled,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
