#!/usr/bin/env python3
"""tools/bench_gpu_torch.py where no GPU is: with device "cuda" and a torch without CUDA it says so
and runs nothing; with device "cpu" it runs the step it would time on the GPU (bench_step_torch's
make_step at a tiny size), f32 only, and reports the other modes as errors rather than running them
in another precision. Usage: test_bench_gpu_torch.py (run by ctest with the tests' Python)."""
import contextlib
import io
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))

import torch  # noqa: E402

import bench_gpu_torch  # noqa: E402

PHASES = {"teacher_forward": "teacher forward", "student_forward": "student forward", "losses": "losses",
          "backward": "backward", "optimizer_step": "optimizer step"}


def run(settings):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(settings, f)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench_gpu_torch.main(f.name)
    os.unlink(f.name)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def main():
    settings = {"depth": 50, "output_stride": 16, "classes": [16, 5], "unce": True, "unkd": True, "loss_kd": 10.0,
                "loss_de": 0.0, "alpha": 1.0, "init_balanced": True, "lr": 0.001, "momentum": 0.9,
                "weight_decay": 1e-4, "nesterov": True, "lr_power": 0.9, "max_iterations": 4, "seed": 42,
                "phases": PHASES, "height": 32, "width": 32, "warmup": 1, "steps": 1,
                "runs": [{"batch": 2, "modes": ["f32", "tf32"]}]}
    if not torch.cuda.is_available():
        out = run(dict(settings, device="cuda"))
        assert out == {"torch": torch.__version__, "cuda": False}, out
    out = run(dict(settings, device="cpu"))
    rows = out["rows"]
    assert [(r["batch"], r["mode"]) for r in rows] == [(2, "f32"), (2, "tf32")], rows
    assert "error" not in rows[0] and rows[0]["images_per_second"] > 0 and rows[0]["ms"] > 0, rows[0]
    assert rows[1]["error"] == "only f32 runs on the CPU", rows[1]
    print("ok")


if __name__ == "__main__":
    main()
