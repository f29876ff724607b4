"""BiSeNet v1 as CoinCheung/BiSeNet builds it (lib/models/bisenetv1.py, its classic version with the
spatial path and size-based nearest upsampling in the context path), written from the paper (Yu et al.
2018) and that layout, for strata's --arch bisenet parity tests (tests/models/test_bisenet_parity.cpp).
Case layout: models_common.py.

Model (the reference's names):
  cp.resnet  torchvision's ResNet-18 (conv1, bn1, layer1..4, BasicBlock) at output stride 32
  cp         avg = conv_avg(global mean of stage 4); arm32(stage 4) + avg, nearest-resized to stage 3's
             size, conv_head32 = cp16; arm16(stage 3) + cp16, nearest-resized to the spatial path's
             size, conv_head16 = cp8. ARM: conv (ConvBNReLU 3x3), x sigmoid(bn_atten(conv_atten(mean)))
  sp         ConvBNReLU 7x7/2 3->64, 3x3/2, 3x3/2, 1x1 64->128
  ffm        convblk (1x1 ConvBNReLU 256->256) of [sp, cp8]; x sigmoid(conv2(relu(conv1(mean)))) + itself
  conv_out   ConvBNReLU 3x3 256->256 + 1x1 classifier; conv_out16 on cp8, conv_out32 on cp16 (128->64)
  all three logits upsampled to the input size (bilinear, align_corners True)
strata's classifiers carry a bias (the incremental classifier's), so this model's do too; the
reference's have none (tools/convert_weights.py gives converted ones zeros). The loss is
cross-entropy of the main logits + the two aux ones, weight 1 each (the reference uses OHEM
cross-entropy; the method's classification loss here). The state is saved with strata's names
through tools/convert_weights.py's bisenet_name.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet18

from convert_weights import bisenet_name

from .common import seed_for
from . import models_common
from .models_common import (MACS_HEIGHT, MACS_WIDTH, calibrate_norms, conv_macs, cross_entropy_loss, parameter_count,
                            parity_input, parity_labels, renamed, state_case)


class ConvBNReLU(nn.Module):
    def __init__(self, cin, cout, ks=3, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, ks, stride=stride, padding=ks // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class AttentionRefinement(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x):
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean(dim=(2, 3), keepdim=True))))


class ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = resnet18(weights=None)
        del self.resnet.fc
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, ks=1)

    def forward(self, x, size8):
        r = self.resnet
        feat16 = r.layer3(r.layer2(r.layer1(r.maxpool(r.relu(r.bn1(r.conv1(x)))))))
        feat32 = r.layer4(feat16)
        avg = self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))
        cp16 = self.conv_head32(F.interpolate(self.arm32(feat32) + avg, size=feat16.shape[2:], mode="nearest"))
        cp8 = self.conv_head16(F.interpolate(self.arm16(feat16) + cp16, size=size8, mode="nearest"))
        return cp8, cp16, feat32


class SpatialPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ConvBNReLU(3, 64, ks=7, stride=2)
        self.conv2 = ConvBNReLU(64, 64, stride=2)
        self.conv3 = ConvBNReLU(64, 64, stride=2)
        self.conv_out = ConvBNReLU(64, 128, ks=1)

    def forward(self, x):
        return self.conv_out(self.conv3(self.conv2(self.conv1(x))))


class FeatureFusion(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, ks=1)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, fsp, fcp):
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean(dim=(2, 3), keepdim=True)))))
        return feat * atten + feat


class Output(nn.Module):
    def __init__(self, cin, mid, classes):
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, classes, 1, bias=True)

    def forward(self, x):
        features = self.conv(x)
        return self.conv_out(features), features


class BiSeNet(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.cp = ContextPath()
        self.sp = SpatialPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = Output(256, 256, classes)
        self.conv_out16 = Output(128, 64, classes)
        self.conv_out32 = Output(128, 64, classes)

    def forward(self, x):
        size = x.shape[2:]
        spatial = self.sp(x)
        cp8, cp16, body = self.cp(x, spatial.shape[2:])
        low, head = self.conv_out(self.ffm(spatial, cp8))
        up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=True)  # noqa: E731
        return {"out": up(low), "aux_out": up(self.conv_out16(cp8)[0]), "aux_out2": up(self.conv_out32(cp16)[0]),
                "low_res": low, "head": head, "body": body}


def strata_names(tensors):
    return renamed(tensors, bisenet_name)


def run_case(name, model, x, labels, training):
    return models_common.run_case(name, model, x, labels, training, lambda m, inputs: m(inputs),
                                  loss=cross_entropy_loss(1.0, ("aux_out", "aux_out2")), name_of=bisenet_name)


def cases():
    name = "bisenet_resnet18"
    torch.manual_seed(seed_for(name))
    model = BiSeNet(21)
    calibrate_norms(model, nn.BatchNorm2d, name)
    x, g = parity_input(name)
    # BiSeNet normalises globally pooled maps over the batch in training (the ARMs' bn_atten, conv_avg),
    # two values per channel here: i.i.d. noise images pool to nearly equal values, and normalising
    # their tiny difference amplifies float32 rounding a thousandfold in any implementation. Real
    # images differ in brightness; so do these two.
    x = x + torch.tensor([0.75, -0.75]).view(2, 1, 1, 1)
    labels = parity_labels(21, g)
    state_name, tensors, _ = state_case(name, model, x, labels, {})
    yield state_name, strata_names(tensors), {"parameters": parameter_count(model),
                                              "macs": conv_macs(model, MACS_HEIGHT, MACS_WIDTH)}
    # The reference's own names, for the converter's end-to-end test.
    yield name + "_reference_state", {k: v.detach().clone() for k, v in model.state_dict().items()}, {}
    yield run_case(name, model, x, labels, False)
    yield run_case(name, model, x, labels, True)
