#!/usr/bin/env python3
"""PyTorch side of `strata bench gpu`: the MiB incremental step of bench_step_torch.py on a CUDA
device, in the modes PyTorch users train in.

Usage: bench_gpu_torch.py SETTINGS.json
Settings: bench_step_torch.py's step settings ("depth", "output_stride", "classes", the method's
terms, the optimiser's, "seed", "phases", "height", "width"), plus
  runs      [{"batch": N, "modes": [...]}, ...]: the batches strata ran, each with the modes to time
  warmup    untimed steps per run; steps: timed steps per run
  device    "cuda" (default), or "cpu" to exercise this script where no GPU is (f32 only)
Modes:
  f32       strict float32: cuDNN and cuBLAS without TF32 (torch.backends.*.allow_tf32 = False)
  tf32      float32 tensors, TF32 tensor-core convolutions and matmuls allowed
  amp_bf16  eager AMP: torch.autocast(bfloat16) around the forwards and losses, TF32 allowed
  compile   torch.compile(student) under the same bf16 autocast, when torch.compile exists
Prints one JSON object: "torch" (version), "cuda" (whether a CUDA device was usable), "device" (its
name) and "rows": {"batch", "mode", "images_per_second", "ms", "peak_allocated"} or {"batch",
"mode", "error"} for a run that failed (out of memory, compile errors). Without CUDA (and device
"cuda") it prints {"torch", "cuda": false} and runs nothing.
"""
import json
import sys
import time

import torch

from bench_step_torch import make_step

MODES = ("f32", "tf32", "amp_bf16", "compile")


def set_tf32(on):
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def run(s, batch, mode, device):
    """Times `mode` at `batch`: (images/s, ms per step, peak allocated bytes or 0 on the CPU)."""
    settings = dict(s, batch=batch)
    set_tf32(mode != "f32")
    autocast = torch.bfloat16 if mode in ("amp_bf16", "compile") else None
    step, _, student, _, _ = make_step(settings, device, autocast)
    if mode == "compile":
        student.forward = torch.compile(student.forward)
    for _ in range(s["warmup"]):
        step()
    synchronize(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(s["steps"]):
        step()
    synchronize(device)
    seconds = (time.perf_counter() - t0) / s["steps"]
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else 0
    return batch / seconds, seconds * 1e3, peak


def main(path):
    with open(path) as f:
        s = json.load(f)
    device = s.get("device", "cuda")
    out = {"torch": torch.__version__, "cuda": device == "cuda" and torch.cuda.is_available()}
    if device == "cuda" and not out["cuda"]:
        print(json.dumps(out))
        return
    out["device"] = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    rows = []
    for r in s["runs"]:
        for mode in r["modes"]:
            if mode not in MODES:
                raise SystemExit(f"bench_gpu_torch.py: unknown mode {mode!r} (expected one of {MODES})")
            row = {"batch": r["batch"], "mode": mode}
            if mode == "compile" and not hasattr(torch, "compile"):
                row["error"] = f"torch {torch.__version__} has no torch.compile"
            elif device == "cpu" and mode != "f32":
                row["error"] = "only f32 runs on the CPU"
            else:
                try:
                    images, ms, peak = run(s, r["batch"], mode, device)
                    row.update(images_per_second=images, ms=ms, peak_allocated=peak)
                except Exception as e:  # out of memory, a compile failure: reported in the row, the others run
                    row["error"] = str(e).splitlines()[0][:200]
                    if device == "cuda":
                        torch.cuda.empty_cache()
            rows.append(row)
    out["rows"] = rows
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
