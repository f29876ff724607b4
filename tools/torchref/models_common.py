"""Helpers shared by the model reference groups (models_torchvision.py, models_mib.py): calibrated
norm statistics, the parity input, and the case layout the strata tests read.

Why the references are computed in float64: a 50- or 100-layer network in float32 accumulates
rounding error layer after layer; PyTorch's own float32 logits differ from the float64 result by
about 5e-5 of their largest magnitude on these inputs, more than the project's float32 tolerance
(1e-5 of the largest magnitude). Comparing two float32 computations would compare rounding noise.
So the reference is the float64 computation (stored rounded to float32: the rounding, 6e-8, is far
below the tolerance), strata runs the same model in float64 and must match it within the float32
tolerance, and strata's float32 run is checked against PyTorch's float32 error ("torch_f32.*").

A model case is three files:
  <name>_state  the state dict ("state.<key>", PyTorch names and layouts, float32 as PyTorch trains),
                the input "x" (N,3,H,W), the labels "labels" (N,H,W) int64 with ignored (255)
                pixels, and parameter counts in the metadata
  <name>_train  one training-mode forward and backward from that state, computed in float64:
                "out" (upsampled logits), "loss", "grad.<param>" for every parameter,
                "after.<buffer>" (buffers after the forward), intermediate maps of the forward, and
                PyTorch's float32 forward of the same thing as "torch_f32.<output>"
  <name>_eval   the same in eval mode (no "after.*": eval leaves the statistics alone)
The loss is F.cross_entropy(out, labels) (mean over non-ignored pixels, ignore_index 255), plus
0.5 x the same on the aux logits when the model has them (torchvision's training recipe).
"""
import copy

import torch
import torch.nn.functional as F

from .common import seed_for

# Where the summaries' multiply-add counts are compared with PyTorch's (small: one forward each).
MACS_HEIGHT, MACS_WIDTH = 65, 97

# Odd sizes catch rounding in strides, dilations and upsampling.
BATCH, HEIGHT, WIDTH = 2, 65, 97


def parity_input(name):
    g = torch.Generator().manual_seed(seed_for(name + "/input"))
    x = torch.randn(BATCH, 3, HEIGHT, WIDTH, generator=g)
    return x, g


def parity_labels(classes, g):
    labels = torch.randint(0, classes, (BATCH, HEIGHT, WIDTH), generator=g)
    ignored = torch.rand(BATCH, HEIGHT, WIDTH, generator=g) < 0.1
    return torch.where(ignored, torch.full_like(labels, 255), labels)


def calibrate_norms(model, norm_types, name, sign_flips=False):
    """Gives every norm layer non-trivial affine parameters and running statistics that match the
    model's activations, so eval-mode outputs stay well scaled through a deep network: one
    training-mode forward on a calibration batch with momentum 1 sets the running statistics to
    that batch's. With sign_flips, some weights are negative (In-place ABN uses |weight| + eps)."""
    g = torch.Generator().manual_seed(seed_for(name + "/norms"))
    norms = [m for m in model.modules() if isinstance(m, norm_types)]
    with torch.no_grad():
        for m in norms:
            c = m.weight.numel()
            magnitude = torch.rand(c, generator=g) * 0.5 + 0.75
            if sign_flips:
                magnitude = magnitude * torch.where(torch.rand(c, generator=g) < 0.3, -1.0, 1.0)
            m.weight.copy_(magnitude)
            m.bias.copy_(torch.randn(c, generator=g) * 0.1)
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.momentum = 1.0
        model.train()
        calibration = torch.randn(4, 3, HEIGHT, WIDTH, generator=g)
        model(calibration)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


def state_case(name, model, x, labels, params):
    tensors = {"state." + k: v.detach().clone() for k, v in model.state_dict().items()}
    tensors["x"] = x
    tensors["labels"] = labels
    return name + "_state", tensors, params


def cross_entropy_loss(aux_weight=0.0, aux_keys=("aux_out",)):
    """F.cross_entropy of "out" plus aux_weight x that of each aux output (ignore_index 255)."""
    def loss(outputs, labels):
        total = F.cross_entropy(outputs["out"], labels, ignore_index=255)
        for key in aux_keys if aux_weight else ():
            total = total + aux_weight * F.cross_entropy(outputs[key], labels, ignore_index=255)
        return total
    return loss


def renamed(tensors, name_of, prefixes=("state.", "grad.", "after.")):
    """tensors with the parameter or buffer name after each prefix mapped by name_of (a reference's
    names to strata's); other keys unchanged."""
    out = {}
    for key, value in tensors.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        out[prefix + name_of(key[len(prefix):]) if prefix else key] = value
    return out


def run_case(name, model, x, labels, training, forward, aux=False, loss=None, name_of=None):
    """forward(model, x) -> dict with "out" (upsampled logits), optionally "aux_out" and other maps.
    Runs on float64 and float32 copies of `model`, which is left unchanged. The loss is `loss`
    (outputs, labels) -> scalar, by default cross-entropy plus 0.5 x the aux one when `aux`; name_of
    maps the reference's parameter names to strata's in the written case."""
    loss = loss or cross_entropy_loss(0.5 if aux else 0.0)
    m64 = copy.deepcopy(model).double()
    m64.train(training)
    outputs = forward(m64, x.double())
    value = loss(outputs, labels)
    value.backward()
    tensors = {k: v.detach().float() for k, v in outputs.items()}
    tensors["loss"] = value.detach().float()
    for k, p in m64.named_parameters():
        tensors["grad." + k] = p.grad.detach().float()
    if training:
        for k, b in m64.named_buffers():
            tensors["after." + k] = b.detach().float() if b.is_floating_point() else b.detach().clone()

    m32 = copy.deepcopy(model)
    m32.train(training)
    with torch.no_grad():
        outputs = forward(m32, x)
    for k, v in outputs.items():
        tensors["torch_f32." + k] = v.detach()
    if name_of is not None:
        tensors = renamed(tensors, name_of)
    return f"{name}_{'train' if training else 'eval'}", tensors, {"training": training}


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())


def conv_macs(model, height, width):
    """Multiply-adds of every convolution in one eval forward of a 1x3xHxW input, counted as strata's
    summaries count them: P*Q*K*C*R*S per convolution (groups 1), nothing for norms, pooling or
    interpolation."""
    total = [0]

    def hook(module, inputs, output):
        kh, kw = module.kernel_size
        total[0] += output.shape[2] * output.shape[3] * module.out_channels * module.in_channels * kh * kw

    m = copy.deepcopy(model).eval()
    handles = [c.register_forward_hook(hook) for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    with torch.no_grad():
        m(torch.zeros(1, 3, height, width))
    for h in handles:
        h.remove()
    return total[0]
