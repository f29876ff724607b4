"""The MiB/PLOP segmentation model, written from SPEC-continual.md §4 (fcdl94/MiB models/resnet.py,
modules/residual.py, modules/deeplab.py, segmentation_module.py), for strata's mib-flavour parity
tests (tests/models/test_mib_parity.cpp). Case layout: models_common.py.

PyTorch has no In-place ABN, so ABN below is batch norm + leaky ReLU 0.01 (or identity) with
mapillary/inplace_abn v1's semantics (|weight| + eps, the biased batch variance to normalise and the
unbiased one for the running statistics), written with torch ops (normalization.py). Its state keys
are inplace_abn's: weight, bias, running_mean, running_var.

Model (state-dict names as MiB's):
  body.mod1.{conv1 7x7/2, bn1}, max pool 3x3/2 pad 1
  body.mod{2..5}.block{1..n}.convs.{conv1 1x1, bn1, conv2 3x3 stride s dilation d, bn2, conv3 1x1,
      bn3 (identity)}, body.mod{k}.block1.{proj_conv, proj_bn (identity)}; block output =
      leaky_relu(convs(x) + shortcut, 0.01); dilation per module [1,1,1,2] (OS16) or [1,1,2,4]
      (OS8) applied to every block; stride 2 on block1 of mod3..mod5 when their dilation is 1
  head.map_convs.{0 1x1, 1..3 3x3 rates}, head.map_bn over the 1024-channel concatenation,
      head.red_conv; image branch head.global_pooling_conv -> global_pooling_bn -> pool_red_conv,
      added (broadcast in training / pooling None; sliding-window pooling in eval); head.red_bn
  cls.{i} 1x1 conv with bias per step; logits = cat, bilinear upsampling (align_corners False)
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import seed_for
from .models_common import calibrate_norms, parameter_count, parity_input, parity_labels, run_case, state_case
from .normalization import inplace_abn_reference

SLOPE = 0.01


class ABN(nn.Module):
    def __init__(self, channels, activation="leaky_relu", eps=1e-5, momentum=0.1):
        super().__init__()
        self.activation = activation
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        return inplace_abn_reference(x, self.weight, self.bias, self.running_mean, self.running_var, self.training,
                                     self.momentum, self.eps, self.activation, SLOPE)


class ResidualBlock(nn.Module):
    """Three widths: a bottleneck (1x1, 3x3 with the stride and dilation, 1x1); two: a basic block
    (3x3 with the stride and dilation, 3x3 with the dilation)."""

    def __init__(self, in_channels, channels, stride, dilation):
        super().__init__()
        if len(channels) == 3:
            layers = [
                ("conv1", nn.Conv2d(in_channels, channels[0], 1, bias=False)),
                ("bn1", ABN(channels[0])),
                ("conv2", nn.Conv2d(channels[0], channels[1], 3, stride=stride, padding=dilation, dilation=dilation,
                                    bias=False)),
                ("bn2", ABN(channels[1])),
                ("conv3", nn.Conv2d(channels[1], channels[2], 1, bias=False)),
                ("bn3", ABN(channels[2], activation="identity")),
            ]
        else:
            layers = [
                ("conv1", nn.Conv2d(in_channels, channels[0], 3, stride=stride, padding=dilation, dilation=dilation,
                                    bias=False)),
                ("bn1", ABN(channels[0])),
                ("conv2", nn.Conv2d(channels[0], channels[1], 3, padding=dilation, dilation=dilation, bias=False)),
                ("bn2", ABN(channels[1], activation="identity")),
            ]
        self.convs = nn.Sequential(OrderedDict(layers))
        if stride != 1 or in_channels != channels[-1]:
            self.proj_conv = nn.Conv2d(in_channels, channels[-1], 1, stride=stride, bias=False)
            self.proj_bn = ABN(channels[-1], activation="identity")

    def forward(self, x):
        residual = self.proj_bn(self.proj_conv(x)) if hasattr(self, "proj_conv") else x
        pre = self.convs(x) + residual
        return F.leaky_relu(pre, SLOPE), pre


class Body(nn.Module):
    def __init__(self, depth, output_stride):
        super().__init__()
        structure = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}[depth]
        dilation = {16: [1, 1, 1, 2], 8: [1, 1, 2, 4], 32: [1, 1, 1, 1]}[output_stride]
        self.mod1 = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)),
            ("bn1", ABN(64)),
            ("pool1", nn.MaxPool2d(3, stride=2, padding=1)),
        ]))
        in_channels = 64
        for mod_id, blocks in enumerate(structure):
            channels = (64 * 2 ** mod_id,) * 2 + ((256 * 2 ** mod_id,) if depth >= 50 else ())
            d = dilation[mod_id]
            module = nn.Module()
            for block_id in range(blocks):
                stride = 2 if d == 1 and block_id == 0 and mod_id > 0 else 1
                module.add_module(f"block{block_id + 1}", ResidualBlock(in_channels, channels, stride, d))
                in_channels = channels[-1]
            self.add_module(f"mod{mod_id + 2}", module)

    def forward(self, x):
        x = self.mod1(x)
        pre_activations = []
        for k in range(2, 6):
            for block in getattr(self, f"mod{k}").children():
                x, pre = block(x)
            pre_activations.append(pre)
        return x, pre_activations


class Head(nn.Module):
    def __init__(self, in_channels, rates, pooling_size):
        super().__init__()
        self.pooling_size = pooling_size
        self.map_convs = nn.ModuleList([nn.Conv2d(in_channels, 256, 1, bias=False)] + [
            nn.Conv2d(in_channels, 256, 3, padding=r, dilation=r, bias=False) for r in rates])
        self.map_bn = ABN(1024)
        self.red_conv = nn.Conv2d(1024, 256, 1, bias=False)
        self.global_pooling_conv = nn.Conv2d(in_channels, 256, 1, bias=False)
        self.global_pooling_bn = ABN(256)
        self.pool_red_conv = nn.Conv2d(256, 256, 1, bias=False)
        self.red_bn = ABN(256)
        gain = nn.init.calculate_gain("leaky_relu", SLOPE)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight, gain)

    def global_pooling(self, x):
        if self.training or self.pooling_size is None:
            return x.mean(dim=(2, 3), keepdim=True)
        ph, pw = min(self.pooling_size, x.shape[2]), min(self.pooling_size, x.shape[3])
        padding = ((pw - 1) // 2, (pw - 1) // 2 if pw % 2 == 1 else (pw - 1) // 2 + 1,
                   (ph - 1) // 2, (ph - 1) // 2 if ph % 2 == 1 else (ph - 1) // 2 + 1)
        return F.pad(F.avg_pool2d(x, (ph, pw), stride=1), pad=padding, mode="replicate")

    def forward(self, x):
        out = self.red_conv(self.map_bn(torch.cat([m(x) for m in self.map_convs], dim=1)))
        pool = self.pool_red_conv(self.global_pooling_bn(self.global_pooling_conv(self.global_pooling(x))))
        if self.training or self.pooling_size is None:
            pool = pool.repeat(1, 1, x.shape[2], x.shape[3])
        return self.red_bn(out + pool)


class MiBModel(nn.Module):
    def __init__(self, depth, output_stride, classes, pooling_size=32):
        super().__init__()
        rates = {16: (6, 12, 18), 8: (12, 24, 32)}[output_stride]
        self.body = Body(depth, output_stride)
        self.head = Head(2048 if depth >= 50 else 512, rates, pooling_size)
        self.cls = nn.ModuleList([nn.Conv2d(256, c, 1) for c in classes])
        for m in self.body.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        body, pre_activations = self.body(x)
        head = self.head(body)
        low = torch.cat([c(head) for c in self.cls], dim=1)
        out = F.interpolate(low, size=x.shape[2:], mode="bilinear", align_corners=False)
        return {"out": out, "low_res": low, "body": body, "head": head,
                **{f"pre.{i}": p for i, p in enumerate(pre_activations)}}


def model_cases(depth, output_stride, classes, pooling_size, name, modes=(False, True)):
    torch.manual_seed(seed_for(name))
    model = MiBModel(depth, output_stride, classes, pooling_size)
    calibrate_norms(model, ABN, name, sign_flips=True)
    x, g = parity_input(name)
    labels = parity_labels(sum(classes), g)
    yield state_case(name, model, x, labels, {"parameters": parameter_count(model)})
    for training in modes:
        yield run_case(name, model, x, labels, training, lambda m, inputs: m(inputs))


def cases():
    # The published configuration: ResNet-101, output stride 16, eval pooling 32 (here the 5x7 feature
    # map is smaller than the window: global pooling).
    yield from model_cases(101, 16, [21], 32, "mib_resnet101_os16")
    # ResNet-50 at output stride 8 with three classifier steps, and an eval pooling window (4) smaller
    # than the 9x13 feature map: sliding-window pooling with an even window (asymmetric padding).
    yield from model_cases(50, 8, [16, 3, 2], 4, "mib_resnet50_os8_steps")
    # An odd eval pooling window (3 on the 5x7 map of output stride 16).
    yield from model_cases(50, 16, [11], 3, "mib_resnet50_os16_pool3", modes=(False,))
    # Basic blocks, dilated: ResNet-18 at output stride 16 (the BiSeNet-era MiB protocol's backbone) and
    # ResNet-34 at 8.
    yield from model_cases(18, 16, [21], 32, "mib_resnet18_os16")
    yield from model_cases(34, 8, [16, 5], 32, "mib_resnet34_os8_steps", modes=(True,))
