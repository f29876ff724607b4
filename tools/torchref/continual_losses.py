"""Continual losses (SPEC-continual.md §3), written here in PyTorch from the SPEC formulas, for strata's
incremental/losses.h: knowledge_distillation (LwF/ILT, §3.2), unbiased_cross_entropy (MiB, §3.5.1),
unbiased_knowledge_distillation (MiB, §3.5.2), feature_distillation (ILT, §3.4), icarl_bce,
icarl_distillation and icarl_disjoint (LwF-MC, §3.3); and LwF-MC's total loss of a step
(lwf_mc_total: the method's composition of those, on logits upsampled as the references do), for
strata's incremental/method.h on both of its paths.

The formulas are deliberately computed differently from strata's composition (probabilities instead
of log-space folds, gathers and masks instead of remapped labels), in float64, and cast to float32 at
the end, so a wrong channel range or reduction in either shows up. (knowledge_distillation,
unbiased_cross_entropy, unbiased_knowledge_distillation and feature_distillation take the computing
dtype as an argument: `strata bench step` runs them in float32, as training does.) Inputs are float32; the teacher
tensors get no gradient (the teacher runs under no_grad in the references).

Reductions use strata's names: none (per pixel), sum, mean_all (MiB/PLOP: .mean() over all B*H*W
pixels, ignored ones included) and mean_valid (over non-ignored pixels, labelled losses only)."""
import torch
import torch.nn.functional as F

from .common import randn, reference, seed_for

IGNORE = 255

# (C_old, N_new): C_old = 1 (only background is old), N_new = 1 (one new class per step, 15-1),
# and larger mixes.
PAIRS = ((1, 1), (1, 3), (3, 1), (4, 3), (16, 1), (6, 5))


def gen(name):
    return torch.Generator().manual_seed(seed_for(name))


def reduce_pixels(per_pixel, reduction, valid=None):
    """per_pixel: (N,H,W) float64 with 0 at ignored pixels."""
    if reduction == "none":
        return per_pixel
    if reduction == "sum":
        return per_pixel.sum()
    if reduction == "mean_all":
        return per_pixel.mean()
    if reduction == "mean_valid":
        return per_pixel.sum() / valid.sum()
    raise ValueError(reduction)


def make_labels(n, h, w, c_old, c_tot, generator, ignored=4):
    """u8 labels over [0, C_tot) with every class present, some pixels 255 (ignored)."""
    labels = torch.randint(0, c_tot, (n, h, w), generator=generator)
    flat = labels.view(-1)
    order = torch.randperm(flat.numel(), generator=generator)
    flat[order[:c_tot]] = torch.arange(c_tot)
    flat[order[c_tot:c_tot + ignored]] = IGNORE
    return labels.to(torch.uint8)


def knowledge_distillation(logits, teacher_logits, alpha, reduction, dtype=torch.float64):
    z, t = logits.to(dtype), teacher_logits.to(dtype)
    c_old = t.shape[1]
    q = torch.softmax(alpha * t, dim=1)
    p_old = torch.softmax(z[:, :c_old], dim=1)  # the student's softmax over its first C_old channels
    per_pixel = -(q * torch.log(p_old)).sum(dim=1) / c_old
    return reduce_pixels(per_pixel, reduction).float()


def distillation(logits, teacher_logits, alpha, temperature, loss, include_background, unbiased, reduction):
    """KD (or MiB's unbiased KD) under the LwF ablation log's knobs, from their definitions: the
    softmaxes of z / T and alpha * z° / T over the old channels (from channel 1 without background, the
    unbiased KD's background folded with the new channels), compared by the soft cross-entropy (ce),
    PyTorch's kl_div (kl) or the mean squared difference (l2), averaged over those channels, times T^2."""
    z, t = logits.double(), teacher_logits.double()
    c_old = t.shape[1]
    first = 0 if include_background else 1
    q = torch.softmax(alpha * t[:, first:] / temperature, dim=1)
    if unbiased:
        p = torch.softmax(z / temperature, dim=1)
        student = torch.cat([p[:, :1] + p[:, c_old:].sum(dim=1, keepdim=True), p[:, 1:c_old]], dim=1)
    else:
        student = torch.softmax(z[:, first:c_old] / temperature, dim=1)
    if loss == "l2":
        per_pixel = ((student - q) ** 2).mean(dim=1)
    elif loss == "kl":
        per_pixel = F.kl_div(torch.log(student), q, reduction="none").mean(dim=1)
    else:
        per_pixel = -(q * torch.log(student)).mean(dim=1)
    return reduce_pixels(per_pixel * temperature ** 2, reduction).float()


def distillation_cases():
    """The knobs on (C_old, N_new) = (4, 3) and (6, 5): T = 1 and 2.5, every loss, background in and out,
    plain and unbiased KD (the unbiased KD neither in L2 nor without background), alpha 0.5."""
    n, h, w = 2, 5, 3
    for c_old, n_new in ((4, 3), (6, 5)):
        g = gen(f"distillation_{c_old}_{n_new}")
        logits = randn(n, c_old + n_new, h, w, generator=g) * 2
        teacher = randn(n, c_old, h, w, generator=g) * 2
        for temperature in (1.0, 2.5):
            for loss in ("ce", "kl", "l2"):
                for include_background in (True, False):
                    for unbiased in (False, True):
                        if unbiased and (loss == "l2" or not include_background):
                            continue
                        reduction = "none" if loss == "kl" and temperature == 1.0 else "mean_all"
                        name = (f"distill_{c_old}_{n_new}_t{temperature}_{loss}_"
                                f"{'bg' if include_background else 'nobg'}{'_unbiased' if unbiased else ''}")
                        params = {"old_channels": c_old, "new_channels": n_new, "alpha": 0.5,
                                  "temperature": temperature, "loss": loss, "include_background": include_background,
                                  "unbiased": unbiased, "reduction": reduction}
                        yield reference(name,
                                        lambda logits, teacher_logits, T=temperature, l=loss, b=include_background,
                                        u=unbiased, r=reduction:
                                        distillation(logits, teacher_logits, 0.5, T, l, b, u, r),
                                        {"logits": logits, "teacher_logits": teacher}, ["logits"], params)


def unbiased_cross_entropy(logits, labels, c_old, reduction, dtype=torch.float64):
    z = logits.to(dtype)
    y = labels.long()
    ignored = y == IGNORE
    p = torch.softmax(z, dim=1)
    old_mass = p[:, :c_old].sum(dim=1)  # Σ_{c<C_old} p_c: background and old classes
    index = torch.where(ignored, torch.zeros_like(y), y)
    p_y = p.gather(1, index.unsqueeze(1)).squeeze(1)
    per_pixel = torch.where(y < c_old, -torch.log(old_mass), -torch.log(p_y))
    per_pixel = torch.where(ignored, torch.zeros_like(per_pixel), per_pixel)
    return reduce_pixels(per_pixel, reduction, (~ignored).to(dtype)).float()


def unbiased_knowledge_distillation(logits, teacher_logits, alpha, reduction, dtype=torch.float64):
    z, t = logits.to(dtype), teacher_logits.to(dtype)
    c_old = t.shape[1]
    q = torch.softmax(alpha * t, dim=1)
    p = torch.softmax(z, dim=1)
    p_background = p[:, 0] + p[:, c_old:].sum(dim=1)  # background folded with the new classes
    per_pixel = -(q[:, 0] * torch.log(p_background) + (q[:, 1:] * torch.log(p[:, 1:c_old])).sum(dim=1)) / c_old
    return reduce_pixels(per_pixel, reduction).float()


def feature_distillation(features, teacher_features, reduction, dtype=torch.float64):
    diff = features.to(dtype) - teacher_features.to(dtype)
    squared = diff * diff
    if reduction == "none":
        return squared.float()
    return (squared.sum() if reduction == "sum" else squared.mean()).float()


def icarl_bce(logits, labels, reduction):
    z = logits.double()
    y = labels.long()
    valid = y != IGNORE
    one_hot = torch.zeros_like(z)
    one_hot.scatter_(1, torch.where(valid, y, torch.zeros_like(y)).unsqueeze(1), 1.0)
    one_hot = one_hot * valid.unsqueeze(1)  # an ignored pixel's row is all zero
    per_pixel = F.binary_cross_entropy_with_logits(z, one_hot, reduction="none").sum(dim=1) * valid
    return reduce_pixels(per_pixel, reduction, valid.double()).float()


def icarl_distillation(logits, teacher_logits, reduction):
    z, t = logits.double(), teacher_logits.double()
    c_old = t.shape[1]
    if reduction == "mean_all":
        # As the SPEC states it: C_old * mean over (B, C_old, H, W) of BCEWithLogits(z_old, sigmoid(z°)).
        return (c_old * F.binary_cross_entropy_with_logits(z[:, :c_old], torch.sigmoid(t))).float()
    per_pixel = F.binary_cross_entropy_with_logits(z[:, :c_old], torch.sigmoid(t), reduction="none").sum(dim=1)
    return reduce_pixels(per_pixel, reduction).float()


def icarl_disjoint(logits, teacher_logits, labels, keep_background, reduction):
    """--icarl_disjoint (SPEC §3.3; MiB's IcarlLoss): one BCE over all C_tot channels whose targets are the
    one-hot labels with the old channels' replaced by sigmoid(z°) (from channel 1 with --icarl_bkg, which
    keeps the labels' background). The one-hot row of an ignored pixel is all zero, and the pixel is NOT
    masked: it counts with its replaced targets (IcarlLoss has no mask; its mean is over all pixels)."""
    z, t = logits.double(), teacher_logits.double()
    c_tot, c_old = z.shape[1], t.shape[1]
    y = labels.long()
    # The ignored label becomes an extra class, dropped after the one-hot (the reference's way).
    extended = torch.where(y == IGNORE, torch.full_like(y, c_tot), y)
    targets = F.one_hot(extended, c_tot + 1).permute(0, 3, 1, 2)[:, :c_tot].double()
    first = 1 if keep_background else 0
    targets[:, first:c_old] = torch.sigmoid(t[:, first:])
    per_pixel = F.binary_cross_entropy_with_logits(z, targets, reduction="none").sum(dim=1)
    return reduce_pixels(per_pixel, reduction).float()


def lwf_mc_total(low_logits, low_teacher_logits, labels, step, variant, importance):
    """LwF-MC's loss of one batch at `step` (SPEC §3.3; MiB's train.py with --icarl): the logits (and
    the teacher's) bilinearly upsampled to the labels (align_corners=False, SPEC §3.0), then
      step 0:               BCE(one-hot, ignored pixels masked).mean() over all pixels
      combined (default):   that + importance * C_old * BCEWithLogits(z[:, :C_old], sigmoid(z°)).mean()
      disjoint / disjoint_bkg: icarl_disjoint(z, z°, y) alone (no weight)."""
    size = labels.shape[-2:]
    z = F.interpolate(low_logits.double(), size=size, mode="bilinear", align_corners=False)
    c_tot = z.shape[1]
    y = labels.long()
    if step == 0 or variant == "combined":
        # BCEWithLogitsLossWithIgnoreIndex(reduction='none'): the per-pixel channel sum times the
        # one-hot row's sum (0 at ignored pixels), then .mean() over all pixels.
        extended = torch.where(y == IGNORE, torch.full_like(y, c_tot), y)
        one_hot = F.one_hot(extended, c_tot + 1).permute(0, 3, 1, 2)[:, :c_tot].double()
        classification = (F.binary_cross_entropy_with_logits(z, one_hot, reduction="none").sum(dim=1)
                          * one_hot.sum(dim=1)).mean()
        if step == 0:
            return classification.float()
    t = F.interpolate(low_teacher_logits.double(), size=size, mode="bilinear", align_corners=False)
    c_old = t.shape[1]
    if variant == "combined":
        distillation = importance * c_old * F.binary_cross_entropy_with_logits(z[:, :c_old], torch.sigmoid(t))
        return (classification + distillation).float()
    return icarl_disjoint(z, t, labels, variant == "disjoint_bkg", "mean_all")


def step_labels(n, h, w, c_old, c_tot, generator):
    """u8 labels of a step >= 1 after its label table: background (old classes included), the new
    classes [C_old, C_tot) and some ignored pixels."""
    labels = torch.randint(c_old - 1, c_tot, (n, h, w), generator=generator)
    labels[labels == c_old - 1] = 0
    labels[torch.rand(n, h, w, generator=generator) < 0.15] = IGNORE
    return labels.to(torch.uint8)


def lwf_mc_cases():
    """LwF-MC's total loss: low-resolution logits (N,C,4,5) upsampled to 13x11 labels; step 0 and step 1
    in the three variants, for (C_old, N_new) = (1, 2) (only background is old) and (4, 3)."""
    n, low_h, low_w, h, w = 2, 4, 5, 13, 11
    for c_old, n_new in ((1, 2), (4, 3)):
        c_tot = c_old + n_new
        g = gen(f"lwf_mc_{c_old}_{n_new}")
        step0_logits = randn(n, c_old, low_h, low_w, generator=g) * 2
        step0_labels = make_labels(n, h, w, c_old, c_old, g, ignored=20)
        params = {"old_channels": c_old, "new_channels": n_new, "importance": 10.0}
        yield reference(f"lwf_mc_{c_old}_{n_new}_step0",
                        lambda logits, labels: lwf_mc_total(logits, None, labels, 0, "combined", 10.0),
                        {"logits": step0_logits, "labels": step0_labels}, ["logits"], dict(params, step=0))
        logits = randn(n, c_tot, low_h, low_w, generator=g) * 2
        teacher = randn(n, c_old, low_h, low_w, generator=g) * 2
        labels = step_labels(n, h, w, c_old, c_tot, g)
        for variant in ("combined", "disjoint", "disjoint_bkg"):
            yield reference(f"lwf_mc_{c_old}_{n_new}_step1_{variant}",
                            lambda logits, teacher_logits, labels, v=variant:
                            lwf_mc_total(logits, teacher_logits, labels, 1, v, 10.0),
                            {"logits": logits, "teacher_logits": teacher, "labels": labels}, ["logits"],
                            dict(params, step=1, variant=variant))


def cases():
    yield from lwf_mc_cases()
    yield from distillation_cases()
    n, h, w = 2, 5, 3
    for c_old, n_new in PAIRS:
        c_tot = c_old + n_new
        tag = f"{c_old}_{n_new}"
        g = gen(f"continual_{tag}")
        logits = randn(n, c_tot, h, w, generator=g) * 2
        teacher = randn(n, c_old, h, w, generator=g) * 2
        labels = make_labels(n, h, w, c_old, c_tot, g)
        params = {"old_channels": c_old, "new_channels": n_new}

        for reduction in ("mean_all", "sum", "none"):
            # With C_old = 1 both KD losses are identically 0 (strata tests that identity itself).
            for alpha in () if c_old == 1 else (1.0, 0.5, 2.0) if reduction == "mean_all" else (1.0,):
                p = dict(params, reduction=reduction, alpha=alpha)
                yield reference(f"kd_{tag}_{reduction}_a{alpha}",
                                lambda logits, teacher_logits, a=alpha, r=reduction:
                                knowledge_distillation(logits, teacher_logits, a, r),
                                {"logits": logits, "teacher_logits": teacher}, ["logits"], p)
                yield reference(f"unkd_{tag}_{reduction}_a{alpha}",
                                lambda logits, teacher_logits, a=alpha, r=reduction:
                                unbiased_knowledge_distillation(logits, teacher_logits, a, r),
                                {"logits": logits, "teacher_logits": teacher}, ["logits"], p)
            yield reference(f"icarl_distillation_{tag}_{reduction}",
                            lambda logits, teacher_logits, r=reduction: icarl_distillation(logits, teacher_logits, r),
                            {"logits": logits, "teacher_logits": teacher}, ["logits"],
                            dict(params, reduction=reduction))

        for reduction in ("mean_all", "mean_valid", "sum", "none"):
            p = dict(params, reduction=reduction)
            yield reference(f"unce_{tag}_{reduction}",
                            lambda logits, labels, r=reduction, c=c_old: unbiased_cross_entropy(logits, labels, c, r),
                            {"logits": logits, "labels": labels}, ["logits"], p)
            yield reference(f"icarl_bce_{tag}_{reduction}",
                            lambda logits, labels, r=reduction: icarl_bce(logits, labels, r),
                            {"logits": logits, "labels": labels}, ["logits"], p)

        for reduction in ("mean_all", "sum", "none"):
            for keep_background in (False, True):
                yield reference(f"icarl_disjoint_{tag}_{reduction}{'_bkg' if keep_background else ''}",
                                lambda logits, teacher_logits, labels, r=reduction, k=keep_background:
                                icarl_disjoint(logits, teacher_logits, labels, k, r),
                                {"logits": logits, "teacher_logits": teacher, "labels": labels}, ["logits"],
                                dict(params, reduction=reduction, keep_background=keep_background))

    # Logits far from zero: only max-shifted log-sum-exps stay accurate in float32.
    g = gen("continual_shifted")
    logits = randn(n, 7, h, w, generator=g) * 6 + 40
    teacher = randn(n, 4, h, w, generator=g) * 6 + 40
    labels = make_labels(n, h, w, 4, 7, g)
    p = {"old_channels": 4, "new_channels": 3, "reduction": "mean_all", "alpha": 1.0}
    yield reference("kd_shifted", lambda logits, teacher_logits: knowledge_distillation(logits, teacher_logits, 1.0,
                                                                                        "mean_all"),
                    {"logits": logits, "teacher_logits": teacher}, ["logits"], p)
    yield reference("unkd_shifted",
                    lambda logits, teacher_logits: unbiased_knowledge_distillation(logits, teacher_logits, 1.0,
                                                                                   "mean_all"),
                    {"logits": logits, "teacher_logits": teacher}, ["logits"], p)
    yield reference("unce_shifted", lambda logits, labels: unbiased_cross_entropy(logits, labels, 4, "mean_all"),
                    {"logits": logits, "labels": labels}, ["logits"], p)

    # ILT's feature distillation on backbone-like features (N,C,H,W).
    g = gen("continual_features")
    features = randn(2, 9, 4, 3, generator=g)
    teacher_features = randn(2, 9, 4, 3, generator=g)
    for reduction in ("mean_all", "sum", "none"):
        yield reference(f"feature_distillation_{reduction}",
                        lambda features, teacher_features, r=reduction: feature_distillation(features,
                                                                                             teacher_features, r),
                        {"features": features, "teacher_features": teacher_features}, ["features"],
                        {"reduction": reduction})
