"""Continual losses (SPEC-continual.md §3), written here in PyTorch from the SPEC formulas, for strata's
incremental/losses.h: knowledge_distillation (LwF/ILT, §3.2), unbiased_cross_entropy (MiB, §3.5.1),
unbiased_knowledge_distillation (MiB, §3.5.2), feature_distillation (ILT, §3.4), icarl_bce and
icarl_distillation (LwF-MC, §3.3).

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


def cases():
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
