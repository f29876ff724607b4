#!/usr/bin/env python3
"""PyTorch side of `strata bench model`: times training steps of torchvision's deeplabv3_resnet50/101,
or with "arch": "pspnet" of semseg's PSPNet (tools/torchref/models_pspnet.py, Dropout2d off, aux loss 0.4),
"bisenet" of BiSeNet v1 on ResNet-18 (tools/torchref/models_bisenet.py, both aux losses x 1), or
"deeplabv3plus" of DeepLabV3+ at output stride 16 (tools/torchref/models_deeplabv3plus.py, dropout off).

Usage: bench_model_torch.py SETTINGS.json
Settings: {"batch", "height", "width", "classes", "depth", "aux", "arch", "warmup", "steps", "profile_steps",
"threads"}. One step = zero_grad, forward, F.cross_entropy on the upsampled logits (+ 0.5 x the aux
loss with "aux"), backward, SGD (lr 0.01, momentum 0.9, weight decay 1e-4), in training mode, NCHW (what
MiB/PLOP users train in). Prints one JSON object: the versions, the parameter count, and
bench_torch_common.measure()'s times, memory and profile.
"""
import json
import sys

import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.segmentation import deeplabv3_resnet50, deeplabv3_resnet101

from bench_torch_common import environment, measure


def main(path):
    with open(path) as f:
        s = json.load(f)
    torch.set_num_threads(int(s["threads"]))
    torch.manual_seed(0)
    arch = s.get("arch", "deeplabv3")
    pspnet = arch == "pspnet"
    if arch == "bisenet":
        from torchref.models_bisenet import BiSeNet
        model = BiSeNet(s["classes"])
    elif arch == "deeplabv3plus":
        from torchref.models_deeplabv3plus import DeepLabV3Plus
        model = DeepLabV3Plus(s["depth"], 16, s["classes"])
    elif pspnet:
        from torchref.models_pspnet import PSPNet
        model = PSPNet(s["depth"], s["classes"])
    else:
        build = {50: deeplabv3_resnet50, 101: deeplabv3_resnet101}[s["depth"]]
        model = build(weights=None, weights_backbone=None, num_classes=s["classes"], aux_loss=s["aux"])
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(s["batch"], 3, s["height"], s["width"], generator=g)
    labels = torch.randint(0, s["classes"], (s["batch"], s["height"], s["width"]), generator=g)

    def step():
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(out["out"], labels)
        if arch == "bisenet":
            loss = loss + F.cross_entropy(out["aux_out"], labels) + F.cross_entropy(out["aux_out2"], labels)
        elif pspnet:
            loss = loss + 0.4 * F.cross_entropy(out["aux_out"], labels)
        elif s["aux"]:
            loss = loss + 0.5 * F.cross_entropy(out["aux"], labels)
        del out
        loss.backward()
        optimizer.step()

    print(json.dumps({
        **environment(), "torchvision": torchvision.__version__,
        "parameters": sum(p.numel() for p in model.parameters()), **measure(step, s),
    }))


if __name__ == "__main__":
    main(sys.argv[1])
