"""A torch.nn stack (Conv2d without bias, BatchNorm2d, ReLU, Conv2d with bias) whose state dict
strata loads by name: the output of one training-mode forward, the gradients of every parameter and the running
statistics after that forward."""
import torch
import torch.nn as nn

from .common import seed_for


def cases():
    torch.manual_seed(seed_for("nn/sequential"))
    # A bias right before training-mode batch norm has an exactly zero gradient (the norm removes any
    # per-channel constant), which would compare rounding noise with rounding noise; as in
    # torchvision, the conv feeding the norm has none.
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 1))
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 1.5)
        net[1].bias.uniform_(-0.5, 0.5)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    g = torch.Generator().manual_seed(seed_for("nn/sequential/input"))
    x = torch.randn(2, 3, 7, 5, generator=g)
    grad_out = torch.randn(2, 4, 7, 5, generator=g)
    net.train()
    out = net(x)
    out.backward(grad_out)
    tensors = {"state." + k: v for k, v in state.items()}
    tensors.update({"x": x, "out": out.detach(), "grad_out": grad_out})
    for name, p in net.named_parameters():
        tensors["grad." + name] = p.grad
    for name, b in net.named_buffers():
        tensors["after." + name] = b.detach().clone()
    yield "sequential_conv_bn_relu", tensors, {}
