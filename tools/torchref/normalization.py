"""Normalisation and dropout: batch_norm (F.batch_norm), inplace_abn (mapillary/inplace_abn v1, written
as a composition of torch ops), dropout (strata's Philox mask, reproduced by philox.py: PyTorch's own
generator draws other masks, so the case checks the scaling and gradient given the mask) and
normalize_image (torchvision's ToTensor then Normalize, image by image, as MiB's and PLOP's data
pipelines apply them).

Cases with running statistics also store "running_mean_after" / "running_var_after": the running
statistics after the call (updated in place in training, unchanged in eval).
"""
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from .common import randn, reference, seed_for
from .philox import dropout_kept


def gen(name):
    return torch.Generator().manual_seed(seed_for(name))


def channel_view(v, x):
    """A (C) vector shaped to broadcast over x's channel dimension 1 (NCHW or (N, C))."""
    return v.view([1, -1] + [1] * (x.dim() - 2))


def inplace_abn_reference(x, weight, bias, running_mean, running_var, training, momentum, eps, activation, slope):
    """y = act((x - mean) / sqrt(var + eps) * (|weight| + eps) + bias), mapillary/inplace_abn v1."""
    dims = [0] + list(range(2, x.dim()))
    if training:
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        if running_mean is not None:
            count = x.numel() // x.shape[1]
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(momentum * mean)
                running_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))
    else:
        mean, var = running_mean, running_var
    xhat = (x - channel_view(mean, x)) / torch.sqrt(channel_view(var, x) + eps)
    if weight is not None:
        xhat = xhat * channel_view(weight.abs() + eps, x) + channel_view(bias, x)
    return F.leaky_relu(xhat, slope) if activation == "leaky_relu" else xhat


def normalization_case(name, op, shape, training, momentum=0.1, eps=1e-5, affine=True, running=True,
                       activation="leaky_relu", slope=0.01):
    """A batch_norm or inplace_abn case on x of `shape` (NCHW or (N, C)) with C = shape[1]."""
    g = gen(name)
    channels = shape[1]
    x = randn(*shape, generator=g) * 1.5 + 0.7
    inputs = {"x": x}
    if affine:
        # Weights of both signs, bounded away from 0 where |w|'s derivative jumps.
        magnitude = torch.rand(channels, generator=g) + 0.5
        sign = torch.where(torch.rand(channels, generator=g) < 0.4, -1.0, 1.0)
        inputs["weight"] = magnitude * sign
        inputs["bias"] = randn(channels, generator=g) * 0.5
    if running:
        inputs["running_mean"] = randn(channels, generator=g) * 0.3
        inputs["running_var"] = torch.rand(channels, generator=g) + 0.5
    after = {}

    def fn(x, weight=None, bias=None, running_mean=None, running_var=None):
        rm = running_mean.clone() if running else None
        rv = running_var.clone() if running else None
        if op == "batch_norm":
            out = F.batch_norm(x, rm, rv, weight, bias, training, momentum, eps)
        else:
            out = inplace_abn_reference(x, weight, bias, rm, rv, training, momentum, eps, activation, slope)
        if running:
            after["running_mean_after"] = rm
            after["running_var_after"] = rv
        return out

    params = {"training": int(training), "momentum": momentum, "eps": eps, "affine": int(affine),
              "running": int(running), "activation": activation, "slope": slope}
    grads = ["x", "weight", "bias"] if affine else ["x"]
    case_name, tensors, params = reference(name, fn, inputs, grads, params)
    tensors.update(after)
    return case_name, tensors, params


def dropout_case(name, shape, p, seed, offset):
    """strata's dropout of x of `shape` with Generator(seed) at counter `offset`: the mask runs over
    strata's row-major layout, which is NHWC for rank-4 tensors."""
    g = gen(name)
    x = randn(*shape, generator=g)
    strata_shape = [shape[0], shape[2], shape[3], shape[1]] if len(shape) == 4 else list(shape)
    kept = dropout_kept(seed, offset, x.numel(), p)
    mask = torch.tensor(kept, dtype=x.dtype).view(strata_shape)
    if len(shape) == 4:
        mask = mask.permute(0, 3, 1, 2).contiguous()
    return reference(name, lambda x: x * mask / (1 - p), {"x": x}, ["x"],
                     {"p": p, "seed": seed, "offset": offset})


def normalize_image_case(name, shape, mean, std):
    """u8 images of `shape` (N, 3, H, W) through torchvision's to_tensor (of each HWC image, as the
    references' loaders hand it the decoded image) and normalize; no gradient (integer input)."""
    g = gen(name)
    images = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    images.view(-1)[:2] = torch.tensor([0, 255], dtype=torch.uint8)

    def fn(images):
        return torch.stack([TF.normalize(TF.to_tensor(image.permute(1, 2, 0).numpy()), mean, std) for image in images])

    return reference(name, fn, {"images": images}, [], {"mean": ",".join(map(repr, mean)),
                                                        "std": ",".join(map(repr, std))})


def cases():
    nchw = (2, 5, 7, 3)  # N=2, C=5, H=7, W=3
    yield normalization_case("batch_norm_train", "batch_norm", nchw, True)
    yield normalization_case("batch_norm_train_momentum", "batch_norm", (3, 4, 5, 2), True, momentum=0.3, eps=1e-3)
    yield normalization_case("batch_norm_train_no_affine", "batch_norm", nchw, True, affine=False)
    yield normalization_case("batch_norm_train_no_running", "batch_norm", nchw, True, running=False)
    yield normalization_case("batch_norm_train_rank2", "batch_norm", (7, 5), True, momentum=0.2)
    yield normalization_case("batch_norm_eval", "batch_norm", nchw, False)
    yield normalization_case("batch_norm_eval_rank2", "batch_norm", (6, 3), False, eps=1e-3)
    yield normalization_case("batch_norm_eval_no_affine", "batch_norm", nchw, False, affine=False)

    yield normalization_case("inplace_abn_train_leaky", "inplace_abn", nchw, True)
    yield normalization_case("inplace_abn_train_leaky_slope", "inplace_abn", (3, 4, 5, 2), True, momentum=0.3,
                             eps=1e-3, slope=0.2)
    yield normalization_case("inplace_abn_train_identity", "inplace_abn", nchw, True, activation="identity")
    yield normalization_case("inplace_abn_train_no_affine", "inplace_abn", nchw, True, affine=False)
    yield normalization_case("inplace_abn_train_no_running", "inplace_abn", nchw, True, running=False)
    yield normalization_case("inplace_abn_train_rank2", "inplace_abn", (7, 5), True, slope=0.1)
    yield normalization_case("inplace_abn_eval_leaky", "inplace_abn", nchw, False)
    yield normalization_case("inplace_abn_eval_identity", "inplace_abn", nchw, False, activation="identity")

    yield dropout_case("dropout_nhwc", (2, 5, 7, 3), 0.2, seed=1234, offset=10)
    yield dropout_case("dropout_rank2", (9, 7), 0.5, seed=0x1234567890ABCDEF, offset=3)
    yield dropout_case("dropout_high_p", (3, 4, 5, 6), 0.85, seed=42, offset=0)

    yield normalize_image_case("normalize_image_imagenet", (2, 3, 9, 7), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    yield normalize_image_case("normalize_image_other", (1, 3, 5, 11), [0.5, 0.25, 0.75], [0.3, 0.6, 0.125])
