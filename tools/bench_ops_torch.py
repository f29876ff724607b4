#!/usr/bin/env python3
"""PyTorch side of `strata bench ops`: times conv2d forward+backward for the shapes in a JSON file.

Usage: bench_ops_torch.py SHAPES.json THREADS
Each shape is {"name", "n", "h", "w", "c", "k", "r", "s", "stride", "pad", "dilation"}. Prints one
JSON object {"torch": version, "threads": n, "mkldnn": bool, "results": {name: [seconds per rep...]}}.
Timing follows the C++ side: 2 warm-up iterations, then repetitions until 0.5 s or 30 reps.
PyTorch runs in its default NCHW layout, which is what MiB/PLOP users train in.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def time_shape(sp):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(sp["n"], sp["c"], sp["h"], sp["w"], generator=g).requires_grad_(True)
    w = torch.randn(sp["k"], sp["c"], sp["r"], sp["s"], generator=g).mul_(0.05).requires_grad_(True)

    def step():
        x.grad = None
        w.grad = None
        y = F.conv2d(x, w, None, stride=sp["stride"], padding=sp["pad"], dilation=sp["dilation"])
        y.backward(torch.ones_like(y))

    for _ in range(2):
        step()
    times = []
    start = time.perf_counter()
    while len(times) < 30 and (time.perf_counter() - start < 0.5 or len(times) < 3):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def main(path, threads):
    torch.set_num_threads(int(threads))
    with open(path) as f:
        shapes = json.load(f)
    results = {sp["name"]: time_shape(sp) for sp in shapes}
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "mkldnn": torch.backends.mkldnn.is_available(), "results": results}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
