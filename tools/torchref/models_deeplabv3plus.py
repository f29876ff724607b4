"""DeepLabV3+ as jfzhang95/pytorch-deeplab-xception builds it for ResNet (modeling/backbone/resnet.py,
aspp.py, decoder.py, deeplab.py), written from the paper (Chen et al. 2018) and that layout, for
strata's --arch deeplabv3plus parity tests (tests/models/test_deeplabv3plus_parity.cpp). Case layout:
models_common.py.

Model (the reference's names):
  backbone  torchvision's stem and Bottleneck blocks; output stride 16: layer1 s1, layer2 s2, layer3 s2,
            layer4 a multi-grid unit at stride 1 with its three blocks at dilation 2, 4, 8 (output stride
            8: layer3 at stride 1 dilation 2, layer4 at 4, 8, 16); every block of a stage at the stage's
            dilation; layer1's output is the low-level feature map
  aspp      aspp1 (1x1) and aspp2-4 (3x3 at 6/12/18, or 12/24/36 at output stride 8), each atrous_conv +
            bn + ReLU; global_avg_pool = (AdaptiveAvgPool2d(1), 1x1 conv, BN, ReLU), upsampled back
            (align_corners True); concat 1280 -> conv1 1x1 -> bn1 -> ReLU -> Dropout(0.5)
  decoder   conv1 1x1 256->48 + bn1 + ReLU on the low-level features; the ASPP output upsampled to their
            size (align_corners True) and concatenated before them (304); last_conv = 3x3 304->256, BN,
            ReLU, Dropout(0.5), 3x3 256->256, BN, ReLU, Dropout(0.1), 1x1 256->classes (with bias)
  the logits upsampled to the input size (align_corners True)
Dropout is random: the training-mode case runs it in eval mode (identity) and strata sets p = 0. The
state is saved with strata's names through tools/convert_weights.py's deeplabv3plus_name, so the cases
also test the converter's mapping; "<name>_reference_state" keeps the reference's own names.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import Bottleneck

from convert_weights import deeplabv3plus_name

from .common import seed_for
from . import models_common
from .models_common import (MACS_HEIGHT, MACS_WIDTH, calibrate_norms, conv_macs, cross_entropy_loss, parameter_count,
                            parity_input, parity_labels, renamed, state_case)


def conv_bn_relu(cin, cout, kernel, dilation=1):
    return [nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU()]


def make_layer(inplanes, planes, stride, dilations):
    downsample = None
    if stride != 1 or inplanes != planes * 4:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(planes * 4))
    layers = [Bottleneck(inplanes, planes, stride, downsample, dilation=dilations[0])]
    layers += [Bottleneck(planes * 4, planes, dilation=d) for d in dilations[1:]]
    return nn.Sequential(*layers)


class Backbone(nn.Module):
    def __init__(self, depth, output_stride):
        super().__init__()
        blocks = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}[depth]
        strides, dilations = {16: ([1, 2, 2, 1], [1, 1, 1, 2]), 8: ([1, 2, 1, 1], [1, 1, 2, 4])}[output_stride]
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = make_layer(64, 64, strides[0], [dilations[0]] * blocks[0])
        self.layer2 = make_layer(256, 128, strides[1], [dilations[1]] * blocks[1])
        self.layer3 = make_layer(512, 256, strides[2], [dilations[2]] * blocks[2])
        self.layer4 = make_layer(1024, 512, strides[3], [g * dilations[3] for g in (1, 2, 4)])

    def forward(self, x):
        low = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        return self.layer4(self.layer3(self.layer2(low))), low


class ASPPBranch(nn.Module):
    def __init__(self, cin, cout, kernel, dilation):
        super().__init__()
        self.atrous_conv = nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.atrous_conv(x)))


class ASPP(nn.Module):
    def __init__(self, cin, rates):
        super().__init__()
        self.aspp1 = ASPPBranch(cin, 256, 1, 1)
        self.aspp2, self.aspp3, self.aspp4 = (ASPPBranch(cin, 256, 3, r) for r in rates)
        self.global_avg_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), *conv_bn_relu(cin, 256, 1))
        self.conv1 = nn.Conv2d(1280, 256, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(256)
        self.dropout = nn.Dropout(0.5)

    def forward(self, x):
        pooled = F.interpolate(self.global_avg_pool(x), size=x.shape[2:], mode="bilinear", align_corners=True)
        y = torch.cat([self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x), pooled], 1)
        return self.dropout(F.relu(self.bn1(self.conv1(y))))


class Decoder(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(256, 48, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(48)
        self.last_conv = nn.Sequential(*conv_bn_relu(304, 256, 3), nn.Dropout(0.5), *conv_bn_relu(256, 256, 3),
                                       nn.Dropout(0.1), nn.Conv2d(256, classes, 1))

    def forward(self, x, low):
        low = F.relu(self.bn1(self.conv1(low)))
        x = F.interpolate(x, size=low.shape[2:], mode="bilinear", align_corners=True)
        head = self.last_conv[:8](torch.cat([x, low], 1))
        return self.last_conv[8](head), head


class DeepLabV3Plus(nn.Module):
    def __init__(self, depth, output_stride, classes):
        super().__init__()
        self.backbone = Backbone(depth, output_stride)
        self.aspp = ASPP(2048, {16: (6, 12, 18), 8: (12, 24, 36)}[output_stride])
        self.decoder = Decoder(classes)

    def forward(self, x):
        for m in self.modules():
            if isinstance(m, nn.Dropout):
                m.eval()
        body, low_level = self.backbone(x)
        low, head = self.decoder(self.aspp(body), low_level)
        return {"out": F.interpolate(low, size=x.shape[2:], mode="bilinear", align_corners=True),
                "low_res": low, "body": body, "head": head}


def strata_names(tensors):
    return renamed(tensors, deeplabv3plus_name)


def run_case(name, model, x, labels, training):
    return models_common.run_case(name, model, x, labels, training, lambda m, inputs: m(inputs),
                                  loss=cross_entropy_loss(), name_of=deeplabv3plus_name)


def model_cases(depth, output_stride, name):
    torch.manual_seed(seed_for(name))
    model = DeepLabV3Plus(depth, output_stride, 21)
    calibrate_norms(model, nn.BatchNorm2d, name)
    x, g = parity_input(name)
    labels = parity_labels(21, g)
    state_name, tensors, _ = state_case(name, model, x, labels, {})
    yield state_name, strata_names(tensors), {"parameters": parameter_count(model),
                                              "macs": conv_macs(model, MACS_HEIGHT, MACS_WIDTH)}
    # The reference's own names, for the converter's end-to-end test.
    yield name + "_reference_state", {k: v.detach().clone() for k, v in model.state_dict().items()}, {}
    yield run_case(name, model, x, labels, False)
    yield run_case(name, model, x, labels, True)


def cases():
    yield from model_cases(50, 16, "deeplabv3plus_resnet50_os16")
    yield from model_cases(50, 8, "deeplabv3plus_resnet50_os8")
