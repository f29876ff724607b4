"""Softmax family, losses and argmax: softmax / log_softmax / logsumexp over channel ranges,
cross_entropy and nll (every reduction, u8/i32/i64 labels, ignored pixels, rank-4 and rank-2),
bce_with_logits, mse, and argmax with exact ties.

Labels are stored in the dtype the C++ test passes (safetensors U8/I32/I64) and widened to int64 for
PyTorch. Reductions use strata's names: none, sum, mean_valid (PyTorch's 'mean') and mean_all
(MiB/PLOP: reduction='none' then .mean() over every pixel, ignored ones included)."""
import torch
import torch.nn.functional as F

from .common import randn, reference, seed_for

LABEL_DTYPES = {"u8": torch.uint8, "i32": torch.int32, "i64": torch.int64}
REDUCTIONS = ("none", "sum", "mean_valid", "mean_all")


def gen(name):
    return torch.Generator().manual_seed(seed_for(name))


def labelled(loss, scores, labels, reduction, ignore_index):
    """loss(scores, labels) in strata's reduction convention; scores are NCHW or (N, C)."""
    labels = labels.long()
    if reduction == "mean_all":
        return loss(scores, labels, ignore_index=ignore_index, reduction="none").mean()
    torch_reduction = "mean" if reduction == "mean_valid" else reduction
    return loss(scores, labels, ignore_index=ignore_index, reduction=torch_reduction)


def elementwise(loss, a, b, reduction):
    return loss(a, b, reduction="mean" if reduction == "mean_all" else reduction)


def make_labels(shape, classes, ignored, generator, dtype, ignore_index=255):
    """Random labels in [0, classes) holding every class at least once and `ignored` ignore pixels."""
    labels = torch.randint(0, classes, shape, generator=generator)
    flat = labels.view(-1)
    order = torch.randperm(flat.numel(), generator=generator)
    flat[order[:classes]] = torch.arange(classes)
    flat[order[classes:classes + ignored]] = ignore_index
    return labels.to(dtype)


def softmax_cases():
    g = gen("softmax")
    x4 = randn(2, 7, 5, 3, generator=g)  # NCHW: N=2, C=7, H=5, W=3
    x2 = randn(9, 7, generator=g)
    x3 = randn(3, 4, 6, generator=g)  # rank 3 is stored as is: channels last
    shifted = randn(2, 7, 5, 3, generator=g) * 8 + 60
    for op_name, op in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
        yield reference(f"{op_name}_nchw", lambda x, op=op: op(x, dim=1), {"x": x4}, ["x"])
        yield reference(f"{op_name}_rank2", lambda x, op=op: op(x, dim=1), {"x": x2}, ["x"])
        yield reference(f"{op_name}_rank3", lambda x, op=op: op(x, dim=-1), {"x": x3}, ["x"])
        yield reference(f"{op_name}_shifted", lambda x, op=op: op(x, dim=1), {"x": shifted}, ["x"])

    ranges = {"full": (0, 7), "start": (0, 3), "middle": (2, 5), "end": (4, 7), "single": (6, 7)}
    for range_name, (begin, end) in ranges.items():
        yield reference(f"logsumexp_{range_name}",
                        lambda x, b=begin, e=end: torch.logsumexp(x[:, b:e], dim=1, keepdim=True),
                        {"x": x4}, ["x"], {"begin": begin, "end": end})
    yield reference("logsumexp_rank2", lambda x: torch.logsumexp(x[:, 1:6], dim=1, keepdim=True), {"x": x2}, ["x"],
                    {"begin": 1, "end": 6})
    yield reference("logsumexp_shifted", lambda x: torch.logsumexp(x[:, 2:7], dim=1, keepdim=True),
                    {"x": shifted}, ["x"], {"begin": 2, "end": 7})


def cross_entropy_cases():
    def ce_case(name, logits, labels, reduction, ignore_index=255):
        return reference(name, lambda logits, labels: labelled(F.cross_entropy, logits, labels, reduction, ignore_index),
                         {"logits": logits, "labels": labels}, ["logits"],
                         {"reduction": reduction, "ignore_index": ignore_index})

    g = gen("cross_entropy")
    logits = randn(2, 7, 5, 3, generator=g) * 2
    for dtype_name, dtype in LABEL_DTYPES.items():
        labels = make_labels((2, 5, 3), 7, 6, g, dtype)
        for reduction in REDUCTIONS:
            yield ce_case(f"cross_entropy_{reduction}_{dtype_name}", logits, labels, reduction)

    logits2 = randn(11, 7, generator=g) * 2
    labels2 = make_labels((11,), 7, 3, g, torch.int64)
    for reduction in REDUCTIONS:
        yield ce_case(f"cross_entropy_rank2_{reduction}", logits2, labels2, reduction)

    # Many pixels (several chunks of the CPU kernel) and VOC's 21 classes with u8 labels.
    large = randn(2, 21, 33, 35, generator=g) * 3
    large_labels = make_labels((2, 33, 35), 21, 400, g, torch.uint8)
    for reduction in ("none", "mean_valid", "mean_all"):
        yield ce_case(f"cross_entropy_large_{reduction}", large, large_labels, reduction)

    # Logits far from zero: only a max-shifted logsumexp stays accurate.
    shifted = randn(2, 7, 5, 3, generator=g) * 10 + 80
    yield ce_case("cross_entropy_shifted", shifted, make_labels((2, 5, 3), 7, 4, g, torch.int32), "mean_all")

    # Every pixel ignored: PyTorch's 'mean' is 0/0 = NaN with a zero gradient.
    ignored = torch.full((2, 5, 3), 255, dtype=torch.uint8)
    yield ce_case("cross_entropy_all_ignored_mean_valid", logits, ignored, "mean_valid")
    yield ce_case("cross_entropy_all_ignored_sum", logits, ignored, "sum")

    # Other ignore indices: PyTorch's default -100, and a real class (0) ignored.
    yield ce_case("cross_entropy_ignore_minus100", logits, make_labels((2, 5, 3), 7, 5, g, torch.int64, -100),
                  "mean_valid", -100)
    yield ce_case("cross_entropy_ignore_class0", logits, make_labels((2, 5, 3), 7, 0, g, torch.int32), "mean_valid", 0)


def nll_cases():
    def nll_case(name, log_probs, labels, reduction, ignore_index=255):
        return reference(name, lambda log_probs, labels: labelled(F.nll_loss, log_probs, labels, reduction,
                                                                 ignore_index),
                         {"log_probs": log_probs, "labels": labels}, ["log_probs"],
                         {"reduction": reduction, "ignore_index": ignore_index})

    g = gen("nll")
    log_probs = F.log_softmax(randn(2, 7, 5, 3, generator=g) * 2, dim=1)
    dtype_names = list(LABEL_DTYPES)
    for i, reduction in enumerate(REDUCTIONS):
        dtype_name = dtype_names[i % len(dtype_names)]
        labels = make_labels((2, 5, 3), 7, 6, g, LABEL_DTYPES[dtype_name])
        yield nll_case(f"nll_{reduction}_{dtype_name}", log_probs, labels, reduction)
    log_probs2 = F.log_softmax(randn(11, 7, generator=g), dim=1)
    labels2 = make_labels((11,), 7, 3, g, torch.uint8)
    for reduction in REDUCTIONS:
        yield nll_case(f"nll_rank2_{reduction}", log_probs2, labels2, reduction)
    ignored = torch.full((2, 5, 3), 255, dtype=torch.int64)
    yield nll_case("nll_all_ignored_mean_valid", log_probs, ignored, "mean_valid")


def elementwise_cases():
    g = gen("bce_with_logits")
    logits = randn(2, 7, 5, 3, generator=g) * 3
    soft = torch.rand(2, 7, 5, 3, generator=g)  # iCaRL distillation targets are sigmoid(teacher)
    hard = (torch.rand(2, 7, 5, 3, generator=g) > 0.7).float()
    for reduction in ("none", "sum", "mean_all"):
        yield reference(f"bce_with_logits_{reduction}",
                        lambda logits, targets, r=reduction: elementwise(F.binary_cross_entropy_with_logits, logits,
                                                                         targets, r),
                        {"logits": logits, "targets": soft}, ["logits", "targets"], {"reduction": reduction})
    yield reference("bce_with_logits_hard",
                    lambda logits, targets: F.binary_cross_entropy_with_logits(logits, targets, reduction="mean"),
                    {"logits": logits, "targets": hard}, ["logits", "targets"], {"reduction": "mean_all"})
    yield reference("bce_with_logits_large",
                    lambda logits, targets: F.binary_cross_entropy_with_logits(logits, targets, reduction="none"),
                    {"logits": logits * 30, "targets": soft}, ["logits", "targets"], {"reduction": "none"})
    yield reference("bce_with_logits_rank2",
                    lambda logits, targets: F.binary_cross_entropy_with_logits(logits, targets, reduction="sum"),
                    {"logits": randn(9, 7, generator=g), "targets": torch.rand(9, 7, generator=g)},
                    ["logits", "targets"], {"reduction": "sum"})

    g = gen("mse")
    a = randn(2, 7, 5, 3, generator=g)
    b = randn(2, 7, 5, 3, generator=g)
    for reduction in ("none", "sum", "mean_all"):
        yield reference(f"mse_{reduction}", lambda a, b, r=reduction: elementwise(F.mse_loss, a, b, r),
                        {"a": a, "b": b}, ["a", "b"], {"reduction": reduction})
    yield reference("mse_rank2", lambda a, b: F.mse_loss(a, b), {"a": randn(9, 7, generator=g),
                                                                "b": randn(9, 7, generator=g)},
                    ["a", "b"], {"reduction": "mean_all"})


def argmax_cases():
    g = gen("argmax")
    yield reference("argmax_nchw", lambda x: torch.argmax(x, dim=1), {"x": randn(2, 7, 5, 3, generator=g)}, [])
    # Small integers: most pixels have several maximal channels; PyTorch returns the first.
    ties = torch.randint(0, 3, (2, 7, 5, 3), generator=g).float()
    yield reference("argmax_ties", lambda x: torch.argmax(x, dim=1), {"x": ties}, [])
    ties2 = torch.randint(0, 2, (9, 7), generator=g).double()
    yield reference("argmax_rank2_ties", lambda x: torch.argmax(x, dim=1), {"x": ties2}, [])
    yield reference("argmax_one_channel", lambda x: torch.argmax(x, dim=1), {"x": randn(2, 1, 3, 4, generator=g)}, [])


def cases():
    yield from softmax_cases()
    yield from cross_entropy_cases()
    yield from nll_cases()
    yield from elementwise_cases()
    yield from argmax_cases()
