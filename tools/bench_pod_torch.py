#!/usr/bin/env python3
"""PyTorch side of `strata bench pod`: PLOP's Local POD (SPEC-continual.md §3.7 (b)) forward + backward
on the maps listed in a JSON file, as PLOP computes it in PyTorch: square the maps, cut each scale's
windows by slicing, take the width and height means of each window, concatenate, Frobenius norm of the
difference per sample, batch mean, factor and schedule; the student's logits folded into background
first ("extra_channels: sum").

Usage: bench_pod_torch.py SETTINGS.json THREADS
SETTINGS is {"batch", "maps": [{"name", "h", "w", "teacher_channels", "student_channels"}...]}. Prints one
JSON object {"torch": version, "threads": n, "results": {name: [seconds per rep...], "all": [...]}}.
Timing follows the C++ side: 2 warm-up iterations, then repetitions until 0.5 s or 30 reps.
"""
import json
import sys
import time

import torch

SCALES = (1, 2, 4)


def embedding(x):
    n, w = x.shape[0], x.shape[-1]
    parts = []
    for s in SCALES:
        k = w // s
        for i in range(s):
            for j in range(s):
                window = x[:, :, i * k:(i + 1) * k, j * k:(j + 1) * k]
                parts.append(window.mean(dim=3).reshape(n, -1))
                parts.append(window.mean(dim=2).reshape(n, -1))
    return torch.cat(parts, dim=1)


def local_pod(teachers, students, factors, schedule):
    loss = torch.zeros(())
    for a, b, factor in zip(teachers, students, factors):
        if b.shape[1] != a.shape[1]:
            c_old = a.shape[1]
            folded = torch.zeros_like(a)
            folded[:, 0] = b[:, 0] + b[:, c_old:].sum(dim=1)
            folded[:, 1:] = b[:, 1:c_old]
            b = folded
        d = torch.frobenius_norm(embedding(a.pow(2)) - embedding(b.pow(2)), dim=-1)
        loss = loss + factor * d.mean() * schedule
    return loss / len(teachers)


def time_maps(maps, batch, schedule):
    g = torch.Generator().manual_seed(0)
    teachers = [torch.randn(batch, m["teacher_channels"], m["h"], m["w"], generator=g) for m in maps]
    students = [torch.randn(batch, m["student_channels"], m["h"], m["w"], generator=g).requires_grad_(True)
                for m in maps]
    factors = [m["factor"] for m in maps]

    def step():
        for s in students:
            s.grad = None
        local_pod(teachers, students, factors, schedule).backward()

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
        settings = json.load(f)
    maps, batch, schedule = settings["maps"], settings["batch"], settings["schedule"]
    results = {m["name"]: time_maps([m], batch, schedule) for m in maps}
    results["all"] = time_maps(maps, batch, schedule)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
