"""PLOP's Local POD (SPEC-continual.md §3.7 (b)), written here in PyTorch from the SPEC's description, for
strata's local_pod_distance (engine/ops/pod.h) and incremental::local_pod /
fold_new_channels_into_background (incremental/losses.h).

The embedding is computed as products with averaging matrices rather than window slices: for a scale s
with windows of kh rows and kw columns, A_w (s, W) holds 1/kw where column q lies in window column j
(columns past s*kw in none), A_h (s, H) likewise for rows; the width-mean profiles of every window are
x @ A_w^T restricted to the rows that lie in a window (r < s*kh), the height-mean profiles A_h @ x
restricted to the columns that lie in one. The values are the SPEC's (and PLOP's) embedding in another
order, which leaves the norm unchanged. Computed in float64 from the float32 inputs and cast to float32
at the end; the distance is torch.linalg.vector_norm, whose gradient is 0 where the distance is 0
(PyTorch's norm backward), as the reference's frobenius_norm.

Windows: "square" is the SPEC's k = W // s for both axes (square maps only); "per_axis" is strata's
generalisation, kh = H // s and kw = W // s."""
import math

import torch

from .common import randn, reference, seed_for


def gen(name):
    return torch.Generator().manual_seed(seed_for(name))


def averaging(size, s, k, dtype):
    """(s, size): row j averages positions [j*k, (j+1)*k)."""
    a = torch.zeros(s, size, dtype=dtype)
    for j in range(s):
        a[j, j * k:(j + 1) * k] = 1.0 / k
    return a


def embedding(x, scales, windows):
    """x: (N, C, H, W) float64 -> (N, E)."""
    n, c, h, w = x.shape
    parts = []
    for s in scales:
        kw = w // s
        kh = w // s if windows == "square" else h // s
        a_w = averaging(w, s, kw, x.dtype)
        a_h = averaging(h, s, kh, x.dtype)
        width_means = torch.einsum("nchw,jw->nchj", x, a_w)[:, :, :s * kh]   # (N, C, s*kh, s)
        height_means = torch.einsum("nchw,ih->nciw", x, a_h)[:, :, :, :s * kw]  # (N, C, s, s*kw)
        parts += [width_means.reshape(n, -1), height_means.reshape(n, -1)]
    return torch.cat(parts, dim=1)


def local_pod_distance(teacher, student, scales=(1, 2, 4), windows="square"):
    """Per sample ||Phi(a^2) - Phi(b^2)||_2, (N)."""
    a, b = teacher.double(), student.double()
    if windows == "square":
        assert a.shape[2] == a.shape[3], "the SPEC's windows need square maps"
    diff = embedding(a * a, scales, windows) - embedding(b * b, scales, windows)
    return torch.linalg.vector_norm(diff, dim=1).float()


def fold_new_channels_into_background(logits, old_channels):
    """'extra_channels: sum': channel 0 <- channel 0 + the channels >= C_old, channels 1..C_old-1 kept."""
    background = logits[:, :1] + logits[:, old_channels:].sum(dim=1, keepdim=True)
    return torch.cat([background, logits[:, 1:old_channels]], dim=1)


def local_pod(teachers, students, factors, schedule, windows="square"):
    """Sum over maps of factor * schedule * mean_batch(distance), divided by the number of maps; a map
    with factor <= 0 adds nothing but still counts. A student map with more channels than its teacher's
    (the logits) is folded first."""
    total = torch.zeros((), dtype=torch.float64)
    for a, b, factor in zip(teachers, students, factors):
        if b.shape[1] != a.shape[1]:
            b = fold_new_channels_into_background(b, a.shape[1])
        if factor <= 0:
            continue
        d = local_pod_distance(a, b, windows=windows).double()
        total = total + factor * d.mean() * schedule
    return (total / len(teachers)).float()


DISTANCE_CASES = (
    # name, (N, C, H, W), windows, scales
    ("square_8", (2, 3, 8, 8), "square", (1, 2, 4)),
    ("square_9_c70", (3, 70, 9, 9), "square", (1, 2, 4)),    # W mod 4 = 1; more channels than a CPU block
    ("square_33", (1, 4, 33, 33), "square", (1, 2, 4)),      # k = 33, 16, 8: row and column 32 in no
                                                             # window at scales 2 and 4
    ("square_12_scales_1_3", (2, 2, 12, 12), "square", (1, 3)),
    ("per_axis_6x11", (2, 5, 6, 11), "per_axis", (1, 2, 4)),  # W > H
    ("per_axis_13x7", (2, 3, 13, 7), "per_axis", (1, 2, 4)),  # H > W
    ("per_axis_square_10", (2, 3, 10, 10), "per_axis", (1, 2, 4)),
)


def distance_cases():
    for name, shape, windows, scales in DISTANCE_CASES:
        g = gen(f"pod_{name}")
        teacher = randn(*shape, generator=g)
        student = teacher + 0.5 * randn(*shape, generator=g)
        params = {"windows": windows, "scales": ",".join(str(s) for s in scales)}
        yield reference(f"distance_{name}",
                        lambda teacher, student, s=scales, w=windows: local_pod_distance(teacher, student, s, w),
                        {"teacher": teacher, "student": student}, ["student"], params)
    # Sample 0 identical in both maps: distance 0 and a zero gradient there.
    g = gen("pod_identical")
    teacher = randn(2, 3, 8, 8, generator=g)
    student = teacher.clone()
    student[1] += randn(3, 8, 8, generator=g)
    yield reference("distance_identical_sample", lambda teacher, student: local_pod_distance(teacher, student),
                    {"teacher": teacher, "student": student}, ["student"], {"windows": "square", "scales": "1,2,4"})


# PLOP's six maps (stages 2-5, head, logits) at small sizes: strides 4, 8, 16, 16 of a 32-px crop,
# the logits with C_old teacher channels and C_old + N_new student channels.
def local_pod_cases():
    c_old, n_new = 4, 3
    schedule = math.sqrt((c_old + n_new) / n_new)
    channels = (6, 8, 12, 16, 6)
    sizes = (8, 4, 2, 2, 2)
    for windows, stretch in (("square", 1), ("per_axis", 2)):
        g = gen(f"local_pod_{windows}")
        tensors, names = {}, []
        for k, (c, s) in enumerate(zip(channels, sizes)):
            # Sizes of at least 4 so that scale 4 has windows; per_axis: twice as wide as high.
            h = max(s * 2, 4)
            teacher = randn(2, c, h, h * stretch, generator=g)
            tensors[f"teacher{k}"] = teacher
            tensors[f"student{k}"] = teacher + 0.3 * randn(2, c, h, h * stretch, generator=g)
        h = 4
        tensors["teacher5"] = randn(2, c_old, h, h * stretch, generator=g) * 2
        tensors["student5"] = randn(2, c_old + n_new, h, h * stretch, generator=g) * 2
        names = [f"teacher{k}" for k in range(6)] + [f"student{k}" for k in range(6)]
        for label, factors in (("plop", (0.01,) * 5 + (0.0005,)), ("skipped", (0.01, 0.0, 0.02, -1.0, 0.01, 0.0005))):
            params = {"windows": windows, "factors": ",".join(repr(f) for f in factors), "schedule": schedule,
                      "old_channels": c_old}

            def f(*maps, fs=factors, w=windows):
                return local_pod(maps[:6], maps[6:], fs, schedule, w)

            yield reference(f"local_pod_{windows}_{label}", lambda **m: f(*[m[n] for n in names]),
                            {n: tensors[n] for n in names},
                            [f"student{k}" for k in range(6) if factors[k] > 0], params)
    g = gen("fold")
    logits = randn(2, 7, 3, 5, generator=g)
    for c_old in (1, 4, 7):
        yield reference(f"fold_{c_old}", lambda logits, c=c_old: fold_new_channels_into_background(logits, c),
                        {"logits": logits}, ["logits"], {"old_channels": c_old})


def cases():
    yield from distance_cases()
    yield from local_pod_cases()
