"""PLOP's entropy pseudo-labelling of background and classifier adaptive factor (SPEC-continual.md
§3.7 (a)), written here in PyTorch from the SPEC, for strata's engine/ops/pseudo_labels.h,
incremental/pseudo_labels.h and engine/ops/fused_losses.h's image weights.

The teacher's logits are upsampled bilinearly (align_corners=False) to the labels' size before the
softmax, as PLOP's model returns them. Two entropy variants:
  reference  mean over channels of -p log(p + 1e-8), divided by log(C_old + 1e-8), then by log(C_tot)
  fixed      the entropy -sum p log p divided by log(C_old)
computed in float32 as in PLOP's training (the bins and thresholds depend on float32 rounding).
The histogram has 100 bins per teacher class of the pixels labelled 0; the thresholds are:
  reference  PLOP's loop, whose running sum adds the bin position i/100*100 (not the bin's count),
             its bin read at int(i/100*100), half and the comparisons in float32
  fixed      the interpolated median of the histogram
each floored at 0.001 as Python's max does (NaN kept). The pseudo-labels and the adaptive factor
gamma follow, then the loss mean over all B*H*W pixels of gamma_image * CE(z, y_pseudo) (float64,
on the student's logits upsampled likewise)."""
import math

import torch
import torch.nn.functional as F

from .common import randn, seed_for

IGNORE = 255
BINS = 100
MINIMUM = 0.001


def gen(name):
    return torch.Generator().manual_seed(seed_for(name))


def upsample(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def entropy_and_class(teacher_logits, size, variant, c_tot):
    """The upsampled teacher's argmax and normalised entropy per pixel, float32."""
    p = torch.softmax(upsample(teacher_logits, size), dim=1)
    c_old = p.shape[1]
    pseudo = p.argmax(dim=1)
    if variant == "reference":
        plogp = p * torch.log(p + 1e-8)
        e = -(1.0 / math.log(c_old + 1e-8)) * plogp.mean(dim=1)
        e = e / torch.log(torch.tensor(float(c_tot)))
    else:
        plogp = torch.where(p > 0, p * torch.log(p), torch.zeros_like(p))
        e = -plogp.sum(dim=1) / math.log(c_old)
    return pseudo, e


def histogram(teacher_logits, labels, variant, c_tot):
    c_old = teacher_logits.shape[1]
    pseudo, e = entropy_and_class(teacher_logits, labels.shape[-2:], variant, c_tot)
    background = labels.long() == 0
    rows = pseudo[background]
    cols = torch.clamp((e[background] * BINS).long(), max=BINS - 1)
    hist = torch.zeros(c_old * BINS, dtype=torch.long)
    hist.index_add_(0, rows * BINS + cols, torch.ones_like(rows))
    return hist.view(c_old, BINS)


def reference_median(row):
    """The published loop, restated: stop at the first i where half lies within
    [running, running + count of bin int(i/100*100)]; running grows by i/100*100 each step."""
    total = int(row.sum())
    if total <= 0:
        return torch.tensor(0.0)
    half = torch.tensor(float(total), dtype=torch.float32) / 2
    running = 0.0
    for i in range(BINS):
        position = i / BINS
        read = int(position * BINS)
        count = torch.tensor(float(row[read]), dtype=torch.float32)
        below = torch.tensor(running, dtype=torch.float32)
        if bool(half >= below) and bool(half <= below + count):
            break
        running += position * BINS
    step = torch.tensor(1.0 / BINS, dtype=torch.float32)
    return torch.tensor(position, dtype=torch.float32) + (half - torch.tensor(running, dtype=torch.float32)) / \
        torch.tensor(float(row[read]), dtype=torch.float32) * step


def true_median(row):
    total = int(row.sum())
    if total <= 0:
        return torch.tensor(0.0)
    half = total / 2
    cumulative = torch.cumsum(row.double(), 0)
    b = int(torch.nonzero((cumulative >= half) & (row > 0))[0])
    before = float(cumulative[b] - row[b])
    return torch.tensor((b + (half - before) / float(row[b])) / BINS, dtype=torch.float32)


def thresholds(hist, variant):
    median = reference_median if variant == "reference" else true_median
    out = []
    for row in hist:
        tau = median(row)
        floor = torch.tensor(MINIMUM, dtype=torch.float32)
        out.append(floor if bool(floor > tau) else tau)  # NaN > nothing: kept
    return torch.stack(out).float()


def pseudo_labels(teacher_logits, labels, tau, variant, c_tot):
    c_old = teacher_logits.shape[1]
    pseudo, e = entropy_and_class(teacher_logits, labels.shape[-2:], variant, c_tot)
    y = labels.long().clone()
    background = y < c_old
    valid = e < tau[pseudo]
    y[background & valid] = pseudo[background & valid]
    y[background & ~valid] = IGNORE
    gamma = (background & valid).float().sum(dim=(1, 2)) / (background.float().sum(dim=(1, 2)) + 1e-6)
    return y.to(torch.uint8), gamma


def weighted_cross_entropy(logits, labels, gamma):
    z = upsample(logits.double(), labels.shape[-2:])
    ce = F.cross_entropy(z, labels.long(), ignore_index=IGNORE, reduction="none")
    return (gamma.double()[:, None, None] * ce).mean().float()


def step_labels(n, h, w, c_old, c_tot, generator):
    """Mostly background (0), some old classes, new classes and ignored pixels."""
    u = torch.rand(n, h, w, generator=generator)
    other = torch.randint(1, c_tot, (n, h, w), generator=generator)
    labels = torch.where(u < 0.6, torch.zeros_like(other), other)
    labels[u > 0.95] = IGNORE
    return labels.to(torch.uint8)


# (N, C_old, C_tot, h, w, H, W, teacher scale)
SHAPES = ((2, 4, 6, 5, 7, 17, 19, 3.0), (3, 16, 17, 7, 9, 33, 31, 4.0), (2, 3, 5, 9, 9, 9, 9, 2.0))


def constructed_histograms():
    """Rows for each case of SPEC §3.7's quirks, then random rows."""
    rows = []

    def row(*counts, at=None):
        r = torch.zeros(BINS, dtype=torch.long)
        if at is None:
            r[:len(counts)] = torch.tensor(counts)
        else:
            for b, c in zip(at, counts):
                r[b] = c
        rows.append(r)

    row(60, 40)
    row(40, 60)
    row(40, 30, 30)
    row(40, 25, 25)
    row()  # a class the teacher never predicts
    row(10, 810, at=(28, 99))  # the loop reaches i = 29, which reads bin 28
    row(5000, *([1000] * 7), at=(0, 10, 11, 12, 13, 14, 15, 16))  # runs to the end, half > 4950: +inf
    row(50)
    row(1, 1, 1, 1, at=(3, 20, 57, 90))
    g = gen("constructed_histograms")
    for _ in range(4):
        r = torch.randint(0, 50, (BINS,), generator=g)
        r[torch.rand(BINS, generator=g) < 0.6] = 0
        rows.append(r)
    return torch.stack(rows)


def cases():
    hist = constructed_histograms()
    yield "medians", {"histogram": hist, "reference": thresholds(hist, "reference"),
                      "fixed": thresholds(hist, "fixed")}, {}
    for variant in ("reference", "fixed"):
        for k, (n, c_old, c_tot, h, w, big_h, big_w, scale) in enumerate(SHAPES):
            name = f"plop_{variant}_{k}"
            g = gen(name)
            teacher = scale * randn(n, c_old, h, w, generator=g)
            logits = randn(n, c_tot, h, w, generator=g)
            labels = step_labels(n, big_h, big_w, c_old, c_tot, g)
            hist = histogram(teacher, labels, variant, c_tot)
            tau = thresholds(hist, variant)
            pseudo, gamma = pseudo_labels(teacher, labels, tau, variant, c_tot)
            leaf = logits.clone().requires_grad_(True)
            loss = weighted_cross_entropy(leaf, pseudo, gamma)
            grad_out = torch.randn((), generator=g)
            loss.backward(grad_out)
            yield name, {"teacher_logits": teacher, "labels": labels, "logits": logits, "histogram": hist,
                         "thresholds": tau, "pseudo_labels": pseudo, "image_weights": gamma, "out": loss.detach(),
                         "grad_out": grad_out, "grad.logits": leaf.grad}, \
                {"median": variant, "total_channels": c_tot}
