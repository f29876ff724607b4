"""torchvision's deeplabv3_resnet50 / deeplabv3_resnet101 (weights=None, num_classes=21, aux head),
seeded, for strata's torchvision-flavour parity tests (tests/models/test_torchvision_parity.cpp).
Case layout: models_common.py. The state dict keeps torchvision's names (classifier.4 included), so
the tests also exercise strata's classifier.4 -> cls.0 mapping.

torchvision builds these models at output stride 8 (layer3 and layer4 dilated) with ASPP rates
12/24/36. Dropout is random, so for the training-mode case the model's Dropout modules run in eval
mode (identity) and strata's are built with p = 0; dropout itself is tested at the op level.
Also writes "parameter_counts": torchvision's parameter counts (metadata resnet50, resnet50_aux, ...:
the whole model and its aux head), which strata's models and summaries must equal.

ResNet-18/34 (basic blocks): torchvision has no deeplabv3_resnet18/34 and its BasicBlock refuses
dilation, so the case "deeplabv3_resnet18_os32" assembles the same DeepLabV3 from torchvision's own
modules (resnet18 at output stride 32, DeepLabHead(512) with rates 12/24/36, FCNHead(256) on layer3);
dilated basic blocks are covered by the MiB layout (models_mib.py). resnet18/resnet34 counts are
those of such models.
"""
import torch
import torch.nn as nn
from torchvision.models import resnet18, resnet34
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.segmentation import deeplabv3_resnet50, deeplabv3_resnet101
from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3
from torchvision.models.segmentation.fcn import FCNHead

from .common import seed_for
from .models_common import (MACS_HEIGHT, MACS_WIDTH, calibrate_norms, conv_macs, parameter_count, parity_input,
                            parity_labels, run_case, state_case)

CLASSES = 21
BUILDERS = {50: deeplabv3_resnet50, 101: deeplabv3_resnet101}


BASIC = {18: resnet18, 34: resnet34}


def build(depth, name):
    torch.manual_seed(seed_for(name))
    if depth in BASIC:
        backbone = IntermediateLayerGetter(BASIC[depth](weights=None), {"layer4": "out", "layer3": "aux"})
        return DeepLabV3(backbone, DeepLabHead(512, CLASSES), FCNHead(256, CLASSES))
    return BUILDERS[depth](weights=None, weights_backbone=None, num_classes=CLASSES, aux_loss=True)


def forward(model, x):
    # A training-mode forward keeps Dropout in eval mode (identity), see the module docstring.
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    result = model(x)
    return {"out": result["out"], "aux_out": result["aux"]}


def model_cases(depth, counts):
    name = f"deeplabv3_resnet{depth}" + ("_os32" if depth in BASIC else "")
    model = build(depth, name)
    counts[f"resnet{depth}"] = parameter_count(model)
    counts[f"resnet{depth}_aux"] = parameter_count(model.aux_classifier)
    counts[f"resnet{depth}_macs"] = conv_macs(model, MACS_HEIGHT, MACS_WIDTH)
    calibrate_norms(model, nn.BatchNorm2d, name)
    x, g = parity_input(name)
    labels = parity_labels(CLASSES, g)
    yield state_case(name, model, x, labels, {})
    yield run_case(name, model, x, labels, False, forward, aux=True)
    yield run_case(name, model, x, labels, True, forward, aux=True)


def cases():
    counts = {}
    yield from model_cases(50, counts)
    yield from model_cases(101, counts)
    yield from model_cases(18, counts)
    resnet34_model = build(34, "deeplabv3_resnet34_os32")
    counts["resnet34"] = parameter_count(resnet34_model)
    counts["resnet34_aux"] = parameter_count(resnet34_model.aux_classifier)
    counts["resnet34_macs"] = conv_macs(resnet34_model, MACS_HEIGHT, MACS_WIDTH)
    yield "parameter_counts", {"unused": torch.zeros(1)}, counts
