#!/usr/bin/env python3
"""PyTorch side of `strata bench distill`: MiB's unbiased cross-entropy + 10 x unbiased KD, forward and
backward, on logits upsampled to the crop, as MiB's train.py computes them.

Usage: bench_distill_torch.py SETTINGS.json
Settings: bench_torch_common's ("batch", "height", "width", "warmup", "steps", "profile_steps",
"threads"), "low" (the logits' side before upsampling), "cases" ([{"classes", "old_classes"}]), "seed".

Per case: low-resolution logits (N, C, low, low) that require grad, teacher logits (N, C_old, low,
low), labels (N, H, W) in [0, C) with 5% ignored (255). One step: F.interpolate both to H x W
(bilinear, align_corners=False, as MiB's model), MiB's UnbiasedCrossEntropy (logsumexp over all
channels, the old channels folded into background, nll_loss over all pixels' mean as MiB's
reduction='none' then mean) plus 10 x UnbiasedKnowledgeDistillationLoss (teacher softmax with
alpha 1, background folded with the new channels, divided by C_old, mean over pixels), backward.
Prints one JSON object: {"torch", "threads", "mkldnn", "cases": [{"classes", "seconds", "rss_increase",
"allocated_bytes", "first_loss"}]}; allocated_bytes is the volume of tensors the step allocates
(the sum of every op's positive self memory usage in the profiler), from one extra profiled step.
"""
import json
import sys

import torch
import torch.nn.functional as F

from bench_torch_common import environment, measure

IGNORE = 255


def unbiased_cross_entropy(z, y, c_old):
    den = torch.logsumexp(z, dim=1)
    out = torch.zeros_like(z)
    out[:, 0] = torch.logsumexp(z[:, :c_old], dim=1) - den
    out[:, c_old:] = z[:, c_old:] - den.unsqueeze(1)
    labels = y.clone()
    labels[y < c_old] = 0
    return F.nll_loss(out, labels, ignore_index=IGNORE, reduction="none").mean()


def unbiased_knowledge_distillation(z, t):
    c_old = t.shape[1]
    new = z.shape[1] - c_old
    background = torch.tensor([0] + list(range(c_old, z.shape[1])), device=z.device)
    den = torch.logsumexp(z, dim=1)
    old_classes = z[:, 1:-new] - den.unsqueeze(1)
    folded_background = torch.logsumexp(torch.index_select(z, 1, background), dim=1) - den
    q = torch.softmax(t, dim=1)
    per_pixel = (q[:, 0] * folded_background + (q[:, 1:] * old_classes).sum(dim=1)) / c_old
    return -per_pixel.mean()


def allocated_volume(step):
    """Bytes of the tensors one step allocates: every op's own allocations (its positive self memory
    usage; an op's self usage nets its own allocations against its own frees, so this is a lower bound)."""
    with torch.autograd.profiler.profile(profile_memory=True) as prof:
        step()
    return sum(max(0, e.self_cpu_memory_usage) for e in prof.function_events)


def run_case(s, case):
    g = torch.Generator().manual_seed(s["seed"])
    n, h, w, low = s["batch"], s["height"], s["width"], s["low"]
    c, c_old = case["classes"], case["old_classes"]
    logits = torch.randn(n, c, low, low, generator=g).mul_(2)
    teacher = torch.randn(n, c_old, low, low, generator=g).mul_(2)
    labels = torch.randint(0, c, (n, h, w), generator=g)
    labels[torch.rand(n, h, w, generator=g) < 0.05] = IGNORE
    losses = []

    def step():
        leaf = logits.detach().requires_grad_(True)
        z = F.interpolate(leaf, size=(h, w), mode="bilinear", align_corners=False)
        t = F.interpolate(teacher, size=(h, w), mode="bilinear", align_corners=False)
        loss = unbiased_cross_entropy(z, labels, c_old) + 10 * unbiased_knowledge_distillation(z, t)
        loss.backward()
        if not losses:
            losses.append(loss.item())

    result = measure(step, s)
    return {"classes": c, "seconds": result["seconds"], "rss_increase": result["rss_increase"],
            "allocated_bytes": allocated_volume(step), "first_loss": losses[0]}


def main(path):
    with open(path) as f:
        s = json.load(f)
    torch.set_num_threads(int(s["threads"]))
    print(json.dumps({**environment(), "cases": [run_case(s, case) for case in s["cases"]]}))


if __name__ == "__main__":
    main(sys.argv[1])
