"""DeepInversion's feature-statistics loss (Yin et al., CVPR 2020, eq. 4) on the MiB model of
models_mib.py in eval mode, for tests/models/test_inversion_gradients.cpp. As NVlabs' DeepInversion
computes it: a forward hook on every norm in model.modules() order takes the per-channel mean and biased
variance (unbiased=False) of the norm's input over N, H, W, and the loss is the sum over norms of
||running_var - var||_2 + ||running_mean - mean||_2, the first norm's term times first_bn_multiplier.
The case stores the model state and the images in float32 ("state.*", "x"), and, computed in float64
from those values, the loss ("loss") and its gradient w.r.t. the images ("grad.x")."""
import copy

import torch

from .common import seed_for
from .models_common import calibrate_norms, parameter_count
from .models_mib import ABN, MiBModel

FIRST_BN_MULTIPLIER = 10.0


def feature_statistics_case(name, depth, output_stride, classes):
    torch.manual_seed(seed_for(name))
    model = MiBModel(depth, output_stride, classes)
    calibrate_norms(model, ABN, name, sign_flips=True)
    g = torch.Generator().manual_seed(seed_for(name + "/input"))
    x = torch.randn(2, 3, 33, 41, generator=g)

    m64 = copy.deepcopy(model).double().eval()
    terms = []

    def hook(module, inputs, output):
        features = inputs[0]
        channels = features.shape[1]
        mean = features.mean([0, 2, 3])
        var = features.permute(1, 0, 2, 3).contiguous().view([channels, -1]).var(1, unbiased=False)
        terms.append((module, torch.norm(module.running_var - var, 2) + torch.norm(module.running_mean - mean, 2)))

    norms = [m for m in m64.modules() if isinstance(m, ABN)]
    handles = [m.register_forward_hook(hook) for m in norms]
    images = x.double().requires_grad_(True)
    m64(images)
    # The hooks ran in forward order; NVlabs weights the first norm of model.modules() (here both are
    # body.mod1.bn1, whose input is the stem convolution's output).
    assert len(terms) == len(norms)
    loss = sum(FIRST_BN_MULTIPLIER * term if module is norms[0] else term for module, term in terms)
    loss.backward()
    for h in handles:
        h.remove()

    tensors = {"state." + k: v.detach().clone() for k, v in model.state_dict().items()}
    tensors["x"] = x
    tensors["loss"] = loss.detach()
    tensors["grad.x"] = images.grad.detach()
    return name, tensors, {"parameters": parameter_count(model), "first_bn_multiplier": FIRST_BN_MULTIPLIER,
                           "norms": len(norms)}


# The objective's weights in objective_case: every term weighted enough to show in the gradient.
OBJECTIVE_WEIGHTS = {"main_loss_multiplier": 0.8, "r_feature": 0.05, "first_bn_multiplier": 10.0, "tv_l1": 0.3,
                     "tv_l2": 0.01, "l2": 0.002, "adi_scale": 0.7}
JITTER = {"shift_h": 3, "shift_w": -5, "flip": 1}


def prior_losses(x):
    """NVlabs' get_image_prior_losses."""
    diff1 = x[:, :, :, :-1] - x[:, :, :, 1:]
    diff2 = x[:, :, :-1, :] - x[:, :, 1:, :]
    diff3 = x[:, :, 1:, :-1] - x[:, :, :-1, 1:]
    diff4 = x[:, :, :-1, :-1] - x[:, :, 1:, 1:]
    l2 = torch.norm(diff1) + torch.norm(diff2) + torch.norm(diff3) + torch.norm(diff4)
    l1 = ((diff1.abs() / 255.0).mean() + (diff2.abs() / 255.0).mean() + (diff3.abs() / 255.0).mean() +
          (diff4.abs() / 255.0).mean()) * 255.0
    return l1, l2


def competition(student_logits, teacher_logits, temperature=3.0):
    """NVlabs' Adaptive DeepInversion term, 1 - clamp(JS, 0, 1), with KLDivLoss(reduction='batchmean') over
    pixel rows (N*H*W, C) of the dense logits."""
    kl_loss = torch.nn.KLDivLoss(reduction="batchmean")

    def rows(t):
        return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])

    p = torch.nn.functional.softmax(rows(student_logits) / temperature, dim=1)
    q = torch.nn.functional.softmax(rows(teacher_logits) / temperature, dim=1)
    m = 0.5 * (p + q)
    p = torch.clamp(p, 0.01, 0.99)
    q = torch.clamp(q, 0.01, 0.99)
    m = torch.clamp(m, 0.01, 0.99)
    js = 0.5 * kl_loss(torch.log(p), m) + 0.5 * kl_loss(torch.log(q), m)
    return 1.0 - torch.clamp(js, 0.0, 1.0)


def objective_case(name):
    """The whole DeepInversion objective of one iteration in float64, as deepinversion.py's get_images
    composes it, on a MiB ResNet-18 teacher (3 classes) and a student of the next step (3 + 2 classes),
    after a jitter (torch.roll by (3, -5), then a flip) applied to the images and, for a segmentation
    target, to the target map. Stores both models' states, the images and the un-jittered and jittered
    targets, every term, the total and its gradient w.r.t. the images."""
    torch.manual_seed(seed_for(name))
    teacher = MiBModel(18, 16, [3])
    calibrate_norms(teacher, ABN, name, sign_flips=True)
    student = MiBModel(18, 16, [3, 2])
    calibrate_norms(student, ABN, name + "/student", sign_flips=True)
    g = torch.Generator().manual_seed(seed_for(name + "/input"))
    x = torch.randn(2, 3, 29, 31, generator=g)
    target = torch.randint(0, 3, (2, 29, 31), generator=g)

    t64, s64 = copy.deepcopy(teacher).double().eval(), copy.deepcopy(student).double().eval()
    w = OBJECTIVE_WEIGHTS
    terms = []

    def hook(module, inputs, output):
        features = inputs[0]
        channels = features.shape[1]
        mean = features.mean([0, 2, 3])
        var = features.permute(1, 0, 2, 3).contiguous().view([channels, -1]).var(1, unbiased=False)
        terms.append(torch.norm(module.running_var - var, 2) + torch.norm(module.running_mean - mean, 2))

    handles = [m.register_forward_hook(hook) for m in t64.modules() if isinstance(m, ABN)]
    images = x.double().requires_grad_(True)
    shifts = (JITTER["shift_h"], JITTER["shift_w"])
    jittered = torch.flip(torch.roll(images, shifts=shifts, dims=(2, 3)), dims=(3,))
    target_jittered = torch.flip(torch.roll(target, shifts=shifts, dims=(1, 2)), dims=(2,))
    outputs = t64(jittered)["out"]
    ce = torch.nn.functional.cross_entropy(outputs, target_jittered)
    feature = sum(w["first_bn_multiplier"] * t if i == 0 else t for i, t in enumerate(terms))
    tv_l1, tv_l2 = prior_losses(jittered)
    l2 = torch.norm(jittered.view(jittered.shape[0], -1), dim=1).mean()
    comp = competition(s64(jittered)["out"][:, :3], outputs)
    total = (w["main_loss_multiplier"] * ce + w["tv_l2"] * tv_l2 + w["tv_l1"] * tv_l1 + w["r_feature"] * feature +
             w["l2"] * l2 + w["adi_scale"] * comp)
    total.backward()
    for h in handles:
        h.remove()

    tensors = {"teacher." + k: v.detach().clone() for k, v in teacher.state_dict().items()}
    tensors.update({"student." + k: v.detach().clone() for k, v in student.state_dict().items()})
    tensors["x"] = x
    tensors["target"] = target
    tensors["target_jittered"] = target_jittered
    for key, value in (("cross_entropy", ce), ("feature", feature), ("tv_l1", tv_l1), ("tv_l2", tv_l2), ("l2", l2),
                       ("competition", comp), ("total", total)):
        tensors[key] = value.detach()
    tensors["grad.x"] = images.grad.detach()
    return name, tensors, dict(OBJECTIVE_WEIGHTS, **JITTER)


def cases():
    yield feature_statistics_case("mib_resnet18_os16", 18, 16, [21])
    yield objective_case("objective_mib_resnet18")
