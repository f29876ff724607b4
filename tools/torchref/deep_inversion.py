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


def cases():
    yield feature_statistics_case("mib_resnet18_os16", 18, 16, [21])
