"""Spatial ops: max/avg/adaptive/global pooling, bilinear resizing, replicate padding, roll/flip and
shifted differences, channel concat/slice.

Pooling parameters are stored per axis (kernel_h, kernel_w, stride_h, ...), booleans as 0/1.
Inputs are NCHW here; the strata tests receive them as NHWC.
"""
import torch
import torch.nn.functional as F

from .common import randn, reference, seed_for


def gen(name):
    return torch.Generator().manual_seed(seed_for(name))


def pool_params(kernel, stride, pad=(0, 0), dilation=(1, 1), ceil_mode=False, count_include_pad=True):
    return {
        "kernel_h": kernel[0], "kernel_w": kernel[1],
        "stride_h": stride[0], "stride_w": stride[1],
        "pad_h": pad[0], "pad_w": pad[1],
        "dilation_h": dilation[0], "dilation_w": dilation[1],
        "ceil_mode": int(ceil_mode), "count_include_pad": int(count_include_pad),
    }


def max_pool(params):
    def fn(x):
        return F.max_pool2d(x, (params["kernel_h"], params["kernel_w"]), (params["stride_h"], params["stride_w"]),
                            (params["pad_h"], params["pad_w"]), (params["dilation_h"], params["dilation_w"]),
                            ceil_mode=bool(params["ceil_mode"]))
    return fn


def avg_pool(params):
    def fn(x):
        return F.avg_pool2d(x, (params["kernel_h"], params["kernel_w"]), (params["stride_h"], params["stride_w"]),
                            (params["pad_h"], params["pad_w"]), ceil_mode=bool(params["ceil_mode"]),
                            count_include_pad=bool(params["count_include_pad"]))
    return fn


def mib_eval_pool(x):
    """The MiB/PLOP DeepLabV3 head's image pooling in evaluation (modules/deeplab.py, pooling_size 32)."""
    h, w = x.shape[2], x.shape[3]
    ph, pw = min(32, h), min(32, w)
    pad = ((pw - 1) // 2, (pw - 1) // 2 if pw % 2 == 1 else (pw - 1) // 2 + 1,
           (ph - 1) // 2, (ph - 1) // 2 if ph % 2 == 1 else (ph - 1) // 2 + 1)
    params = pool_params((ph, pw), (1, 1))
    params.update({"left": pad[0], "right": pad[1], "top": pad[2], "bottom": pad[3]})
    return (lambda x: F.pad(F.avg_pool2d(x, (ph, pw), stride=1), pad, mode="replicate")), params


def pooling_cases():
    max_cases = {
        # ResNet stem: 3x3, stride 2, pad 1.
        "max_pool2d_stem": ((2, 5, 17, 19), pool_params((3, 3), (2, 2), (1, 1))),
        "max_pool2d_dilation": ((2, 4, 13, 11), pool_params((3, 3), (1, 2), (1, 1), (2, 2))),
        "max_pool2d_rect": ((1, 3, 10, 13), pool_params((2, 3), (1, 2), (1, 1), (3, 1))),
        "max_pool2d_ceil": ((2, 3, 16, 15), pool_params((3, 3), (2, 2), (1, 1), ceil_mode=True)),
        # Width 8, kernel 3, stride 3, pad 1 in ceil mode: the third window would start in the right
        # padding, so PyTorch drops it (output width 3, not 4).
        "max_pool2d_ceil_last_window": ((1, 3, 5, 8), pool_params((3, 3), (3, 3), (1, 1), ceil_mode=True)),
    }
    for name, (shape, params) in max_cases.items():
        x = randn(*shape, generator=gen(name))
        yield reference(name, max_pool(params), {"x": x}, ["x"], params)

    # Quantized values: many ties inside overlapping windows; the gradient goes to the first maximum.
    params = pool_params((3, 3), (1, 1), (1, 1))
    x = torch.round(randn(2, 3, 9, 10, generator=gen("max_pool2d_ties")) * 1.5)
    yield reference("max_pool2d_ties", max_pool(params), {"x": x}, ["x"], params)

    params = pool_params((2, 2), (2, 2))
    x = randn(1, 4, 6, 8, generator=gen("max_pool2d_nan"))
    x[0, 0, 0, 0] = float("nan")
    x[0, 1, 2, 3] = float("nan")
    x[0, 1, 3, 2] = float("nan")
    x[0, 2, 5, 7] = float("nan")
    yield reference("max_pool2d_nan", max_pool(params), {"x": x}, ["x"], params)

    avg_cases = {
        "avg_pool2d_include_pad": ((2, 5, 17, 19), pool_params((3, 3), (2, 2), (1, 1))),
        "avg_pool2d_exclude_pad": ((2, 5, 17, 19), pool_params((3, 3), (2, 2), (1, 1), count_include_pad=False)),
        "avg_pool2d_rect": ((1, 4, 11, 14), pool_params((2, 5), (3, 2), (1, 2))),
        "avg_pool2d_ceil_include_pad": ((2, 3, 16, 15), pool_params((3, 3), (2, 2), (1, 1), ceil_mode=True)),
        "avg_pool2d_ceil_exclude_pad": ((2, 3, 16, 15),
                                        pool_params((3, 3), (2, 2), (1, 1), ceil_mode=True, count_include_pad=False)),
        "avg_pool2d_ceil_no_pad": ((1, 3, 10, 9), pool_params((4, 4), (3, 3), ceil_mode=True)),
        "avg_pool2d_ceil_last_window": ((1, 3, 5, 8), pool_params((3, 3), (3, 3), (1, 1), ceil_mode=True)),
    }
    for name, (shape, params) in avg_cases.items():
        x = randn(*shape, generator=gen(name))
        yield reference(name, avg_pool(params), {"x": x}, ["x"], params)

    # Larger than the pooling size in both axes, and smaller (the window is the whole map).
    for name, shape in (("mib_eval_pool_large", (1, 6, 40, 35)), ("mib_eval_pool_small", (2, 5, 13, 21))):
        x = randn(*shape, generator=gen(name))
        fn, params = mib_eval_pool(x)
        yield reference(name, fn, {"x": x}, ["x"], params)

    # PSPNet's pyramid bins on sizes they do not divide, more outputs than inputs, a rectangular one.
    adaptive_cases = {
        "adaptive_avg_pool2d_bin1": ((2, 3, 7, 9), (1, 1)),
        "adaptive_avg_pool2d_bin2": ((2, 3, 7, 9), (2, 2)),
        "adaptive_avg_pool2d_bin3": ((1, 4, 13, 11), (3, 3)),
        "adaptive_avg_pool2d_bin6": ((1, 4, 13, 11), (6, 6)),
        "adaptive_avg_pool2d_upscale": ((2, 3, 5, 4), (6, 7)),
        "adaptive_avg_pool2d_rect": ((2, 5, 60, 61), (6, 5)),
    }
    for name, (shape, size) in adaptive_cases.items():
        x = randn(*shape, generator=gen(name))
        yield reference(name, lambda x, s=size: F.adaptive_avg_pool2d(x, s), {"x": x}, ["x"],
                        {"out_h": size[0], "out_w": size[1]})

    x = randn(2, 7, 9, 11, generator=gen("global_avg_pool"))
    yield reference("global_avg_pool", lambda x: F.adaptive_avg_pool2d(x, 1), {"x": x}, ["x"])


def upsample_cases():
    cases = {
        "up_7x5_to_65x97": ((2, 3, 7, 5), (65, 97)),
        "down_65x97_to_17x13": ((2, 3, 65, 97), (17, 13)),
        "up_33x17_to_513x257": ((1, 3, 33, 17), (513, 257)),
        "down_20x9_to_7x8": ((1, 5, 20, 9), (7, 8)),
        "in_1x1_to_5x7": ((2, 3, 1, 1), (5, 7)),
        "in_1x6_to_4x3": ((2, 3, 1, 6), (4, 3)),
        "out_9x8_to_1x1": ((2, 3, 9, 8), (1, 1)),
        "out_9x8_to_1x4": ((1, 4, 9, 8), (1, 4)),
        "same_6x7": ((2, 3, 6, 7), (6, 7)),
    }
    for base, (shape, size) in cases.items():
        for align_corners in (False, True):
            name = f"upsample_{base}_align{int(align_corners)}"
            x = randn(*shape, generator=gen(name))
            fn = (lambda x, size=size, ac=align_corners:
                  F.interpolate(x, size=size, mode="bilinear", align_corners=ac))
            params = {"out_h": size[0], "out_w": size[1], "align_corners": int(align_corners)}
            yield reference(name, fn, {"x": x}, ["x"], params)


def upsample_nearest_cases():
    # The same size, exactly twice (the shift path), BiSeNet's odd context-path sizes (3x4 -> 5x7 and
    # 5x7 -> 9x13), other up- and down-sampling factors, and size-1 axes.
    cases = {
        "same_6x7": ((2, 3, 6, 7), (6, 7)),
        "twice_4x5_to_8x10": ((2, 3, 4, 5), (8, 10)),
        "up_3x4_to_5x7": ((2, 4, 3, 4), (5, 7)),
        "up_5x7_to_9x13": ((1, 3, 5, 7), (9, 13)),
        "up_7x5_to_65x97": ((1, 2, 7, 5), (65, 97)),
        "down_20x9_to_7x8": ((1, 5, 20, 9), (7, 8)),
        "in_1x1_to_5x7": ((2, 3, 1, 1), (5, 7)),
        "out_9x8_to_1x4": ((1, 4, 9, 8), (1, 4)),
    }
    for base, (shape, size) in cases.items():
        name = f"upsample_nearest_{base}"
        x = randn(*shape, generator=gen(name))
        yield reference(name, lambda x, size=size: F.interpolate(x, size=size, mode="nearest"), {"x": x}, ["x"],
                        {"out_h": size[0], "out_w": size[1]})


def pad_cases():
    cases = {
        "pad_replicate_mixed": ((2, 3, 5, 7), (2, 3, 1, 4)),
        "pad_replicate_wide": ((1, 2, 3, 2), (5, 0, 0, 6)),
        "pad_replicate_one_pixel": ((1, 4, 1, 1), (2, 1, 3, 2)),
        "pad_replicate_none": ((2, 3, 4, 5), (0, 0, 0, 0)),
    }
    for name, (shape, (top, bottom, left, right)) in cases.items():
        x = randn(*shape, generator=gen(name))
        fn = (lambda x, p=(left, right, top, bottom): F.pad(x, p, mode="replicate"))
        yield reference(name, fn, {"x": x}, ["x"], {"top": top, "bottom": bottom, "left": left, "right": right})


def shift_cases():
    """roll_flip (torch.roll then torch.flip along W) and DeepInversion's four slice differences of
    get_image_prior_losses, as spatial_difference offsets (dy, dx)."""
    rolls = {
        "roll_flip_positive": ((2, 3, 5, 7), (2, 3), False),
        "roll_flip_negative_flipped": ((2, 3, 5, 7), (-1, -4), True),
        "roll_flip_beyond_size": ((1, 2, 4, 3), (9, -7), False),
    }
    for name, (shape, (sh, sw), flip) in rolls.items():
        x = randn(*shape, generator=gen(name))

        def fn(x, sh=sh, sw=sw, flip=flip):
            y = torch.roll(x, shifts=(sh, sw), dims=(2, 3))
            return torch.flip(y, dims=(3,)) if flip else y

        yield reference(name, fn, {"x": x}, ["x"], {"shift_h": sh, "shift_w": sw, "flip": int(flip)})
    differences = {
        "spatial_difference_0_1": ((0, 1), lambda x: x[:, :, :, :-1] - x[:, :, :, 1:]),
        "spatial_difference_1_0": ((1, 0), lambda x: x[:, :, :-1, :] - x[:, :, 1:, :]),
        "spatial_difference_m1_1": ((-1, 1), lambda x: x[:, :, 1:, :-1] - x[:, :, :-1, 1:]),
        "spatial_difference_1_1": ((1, 1), lambda x: x[:, :, :-1, :-1] - x[:, :, 1:, 1:]),
    }
    for name, ((dy, dx), fn) in differences.items():
        x = randn(2, 3, 5, 7, generator=gen(name))
        yield reference(name, fn, {"x": x}, ["x"], {"dy": dy, "dx": dx})


def channel_cases():
    g = gen("concat_nchw")
    inputs = {"a": randn(2, 3, 4, 5, generator=g), "b": randn(2, 1, 4, 5, generator=g),
              "c": randn(2, 6, 4, 5, generator=g)}
    yield reference("concat_nchw", lambda a, b, c: torch.cat([a, b, c], dim=1), inputs, ["a", "b", "c"])
    g = gen("concat_rank2")
    inputs = {"a": randn(7, 3, generator=g), "b": randn(7, 5, generator=g)}
    yield reference("concat_rank2", lambda a, b: torch.cat([a, b], dim=1), inputs, ["a", "b"])

    cases = {
        "slice_middle": ((2, 9, 4, 5), (2, 7)),
        "slice_all": ((2, 9, 4, 5), (0, 9)),
        "slice_last_channel": ((1, 6, 3, 7), (5, 6)),
        "slice_rank2": ((6, 10), (3, 8)),
    }
    for name, (shape, (begin, end)) in cases.items():
        x = randn(*shape, generator=gen(name))
        yield reference(name, lambda x, b=begin, e=end: x[:, b:e], {"x": x}, ["x"], {"begin": begin, "end": end})


def cases():
    yield from pooling_cases()
    yield from upsample_cases()
    yield from upsample_nearest_cases()
    yield from pad_cases()
    yield from shift_cases()
    yield from channel_cases()
