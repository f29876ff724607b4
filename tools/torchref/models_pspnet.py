"""PSPNet as hszhao/semseg's model/pspnet.py builds it, written from the paper (Zhao et al. 2017) and
semseg's layout for strata's --arch pspnet parity tests (tests/models/test_pspnet_parity.cpp). Case
layout: models_common.py.

Model (semseg's names):
  layer0   the deep stem: 3x3/2 conv 3->64, BN, ReLU, 3x3 conv 64->64, BN, ReLU, 3x3 conv 64->128, BN,
           ReLU, 3x3/2 max pool (Sequential indices 0,1,3,4,6,7 hold parameters)
  layer1-4 torchvision's Bottleneck blocks (layer1's input is the stem's 128 channels); layer3 and
           layer4 dilated as semseg does: every block's conv2 at dilation 2 (layer3) / 4 (layer4),
           stride 1, and the first block's downsample.0 at stride 1 (output stride 8)
  ppm      features.{i} = Sequential(AdaptiveAvgPool2d(bin), 1x1 conv 2048->512, BN, ReLU) for bins
           1,2,3,6, each upsampled back (bilinear, align_corners True) and concatenated after the input
  cls      3x3 conv 4096->512, BN, ReLU, Dropout2d(0.1), 1x1 conv 512->classes (cls.4, with bias)
  aux      3x3 conv 1024->256, BN, ReLU, Dropout2d(0.1), 1x1 conv 256->classes, on layer3's output
Both logits are upsampled to the input size with align_corners True. Dropout2d is random: the
training-mode case runs it in eval mode (identity) and strata builds p = 0, as for torchvision's
Dropout. The loss is cross-entropy + 0.4 x the aux cross-entropy (semseg's aux_weight).

The state is saved with strata's names through tools/convert_weights.py's semseg_pspnet_name, so the
cases also test the converter's mapping. "semseg_state" keeps semseg's own names for the converter's
end-to-end test.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import Bottleneck

from convert_weights import semseg_pspnet_name

from .common import seed_for
from . import models_common
from .models_common import (MACS_HEIGHT, MACS_WIDTH, calibrate_norms, conv_macs, cross_entropy_loss, parameter_count,
                            parity_input, parity_labels, renamed, state_case)

AUX_WEIGHT = 0.4


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def make_layer(inplanes, planes, blocks, stride):
    downsample = None
    if stride != 1 or inplanes != planes * 4:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(planes * 4))
    layers = [Bottleneck(inplanes, planes, stride, downsample)]
    layers += [Bottleneck(planes * 4, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class PPM(nn.Module):
    def __init__(self, in_dim, reduction_dim, bins):
        super().__init__()
        self.features = nn.ModuleList([nn.Sequential(
            nn.AdaptiveAvgPool2d(b), nn.Conv2d(in_dim, reduction_dim, 1, bias=False), nn.BatchNorm2d(reduction_dim),
            nn.ReLU(inplace=True)) for b in bins])

    def forward(self, x):
        return torch.cat([x] + [F.interpolate(f(x), x.shape[2:], mode="bilinear", align_corners=True)
                                for f in self.features], 1)


class PSPNet(nn.Module):
    def __init__(self, depth, classes, bins=(1, 2, 3, 6), dropout=0.1):
        super().__init__()
        blocks = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}[depth]
        self.layer0 = nn.Sequential(conv3x3(3, 64, 2), nn.BatchNorm2d(64), nn.ReLU(inplace=True), conv3x3(64, 64),
                                    nn.BatchNorm2d(64), nn.ReLU(inplace=True), conv3x3(64, 128), nn.BatchNorm2d(128),
                                    nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1))
        self.layer1 = make_layer(128, 64, blocks[0], 1)
        self.layer2 = make_layer(256, 128, blocks[1], 2)
        self.layer3 = make_layer(512, 256, blocks[2], 2)
        self.layer4 = make_layer(1024, 512, blocks[3], 2)
        for layer, d in ((self.layer3, 2), (self.layer4, 4)):
            for n, m in layer.named_modules():
                if "conv2" in n:
                    m.dilation, m.padding, m.stride = (d, d), (d, d), (1, 1)
                elif "downsample.0" in n:
                    m.stride = (1, 1)
        self.ppm = PPM(2048, 2048 // len(bins), bins)
        self.cls = nn.Sequential(nn.Conv2d(4096, 512, 3, padding=1, bias=False), nn.BatchNorm2d(512),
                                 nn.ReLU(inplace=True), nn.Dropout2d(p=dropout), nn.Conv2d(512, classes, 1))
        self.aux = nn.Sequential(nn.Conv2d(1024, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256),
                                 nn.ReLU(inplace=True), nn.Dropout2d(p=dropout), nn.Conv2d(256, classes, 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m not in list(self.cls) + list(self.aux) + [
                    c for f in self.ppm.features for c in f]:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        for m in self.modules():
            if isinstance(m, nn.Dropout2d):
                m.eval()
        size = x.shape[2:]
        stage3 = self.layer3(self.layer2(self.layer1(self.layer0(x))))
        body = self.layer4(stage3)
        head = self.cls[:4](self.ppm(body))
        low = self.cls[4](head)
        aux = self.aux(stage3)
        return {"out": F.interpolate(low, size, mode="bilinear", align_corners=True),
                "aux_out": F.interpolate(aux, size, mode="bilinear", align_corners=True),
                "low_res": low, "body": body, "head": head}


def strata_names(tensors):
    return renamed(tensors, semseg_pspnet_name)


def run_case(name, model, x, labels, training):
    return models_common.run_case(name, model, x, labels, training, lambda m, inputs: m(inputs),
                                  loss=cross_entropy_loss(AUX_WEIGHT), name_of=semseg_pspnet_name)


def cases():
    name = "pspnet_resnet50"
    torch.manual_seed(seed_for(name))
    model = PSPNet(50, 21)
    calibrate_norms(model, nn.BatchNorm2d, name)
    x, g = parity_input(name)
    labels = parity_labels(21, g)
    state_name, tensors, _ = state_case(name, model, x, labels, {})
    yield state_name, strata_names(tensors), {"parameters": parameter_count(model),
                                              "aux_parameters": parameter_count(model.aux),
                                              "macs": conv_macs(model, MACS_HEIGHT, MACS_WIDTH)}
    yield "semseg_state", {k: v.detach().clone() for k, v in model.state_dict().items()}, {}
    yield run_case(name, model, x, labels, False)
    yield run_case(name, model, x, labels, True)
