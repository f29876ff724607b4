"""Writes PyTorch checkpoints shaped like the ones users convert with tools/convert_weights.py, for
strata's converter test (tests/models/test_weights.cpp runs this script, then the converter, then
loads the results):

  torchvision.pth             torchvision deeplabv3_resnet50(num_classes=5) state dict (classifier.4 ...)
  mib_step.pth                a MiB step checkpoint: {"model_state": DDP "module."-prefixed state dict of
                              the MiB ResNet-50 OS16 model with steps [4, 2], "optimizer_state", "epoch", ...}
  imagenet_iabn.pth.tar       an inplace_abn ImageNet checkpoint: {"state_dict": "module.mod1..." keys of
                              that model's body plus "module.classifier.fc.{weight,bias}"}
  torchvision_imagenet.pth    a torchvision ResNet-50 ImageNet state dict (conv1.*, layer1.* .. fc.*): the
                              backbone of torchvision.pth plus fc.{weight,bias}
  resnet18_imagenet.pth       torchvision's resnet18() state dict (basic blocks, fc 512->1000), with
                              expected_resnet18.safetensors: its tensors as strata's backbone.* names
  truncated.pth               the first half of mib_step.pth
  not_a_checkpoint.pth        a saved list
and expected_torchvision.safetensors / expected_mib_step.safetensors: the tensors strata must end up
with, in strata's names (written directly, not by the converter). The ImageNet checkpoints hold the
backbones of those two models, so the same files give their expected values.

Usage: models_checkpoints.py OUT_DIR
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from safetensors.torch import save_file  # noqa: E402
from torchvision.models import resnet18  # noqa: E402
from torchvision.models.segmentation import deeplabv3_resnet50  # noqa: E402

from torchref.common import seed_for  # noqa: E402
from torchref.models_mib import MiBModel  # noqa: E402


def floats(state):
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    path = lambda name: os.path.join(out_dir, name)  # noqa: E731

    torch.manual_seed(seed_for("checkpoints/torchvision"))
    tv = deeplabv3_resnet50(weights=None, weights_backbone=None, num_classes=5, aux_loss=False).state_dict()
    torch.save(tv, path("torchvision.pth"))
    save_file({("cls.0." + k[len("classifier.4."):] if k.startswith("classifier.4.") else k): v
               for k, v in floats(tv).items()}, path("expected_torchvision.safetensors"))

    torch.manual_seed(seed_for("checkpoints/mib"))
    mib = MiBModel(50, 16, [4, 2]).state_dict()
    with torch.no_grad():  # non-trivial statistics, so a skipped buffer would show
        for k, v in mib.items():
            if k.endswith("running_mean") or k.endswith("running_var") or k.endswith("bias"):
                v.uniform_(0.5, 1.5)
    torch.save({"model_state": {"module." + k: v for k, v in mib.items()},
                "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.01}]},
                "scheduler_state": {"last_epoch": 30}, "epoch": 30, "best_score": 0.61},
               path("mib_step.pth"))
    save_file(floats(mib), path("expected_mib_step.safetensors"))

    body = {k[len("body."):]: v for k, v in mib.items() if k.startswith("body.")}
    g = torch.Generator().manual_seed(seed_for("checkpoints/imagenet"))
    imagenet = {"module." + k: v for k, v in body.items()}
    imagenet["module.classifier.fc.weight"] = torch.randn(1000, 2048, generator=g)
    imagenet["module.classifier.fc.bias"] = torch.randn(1000, generator=g)
    torch.save({"state_dict": imagenet, "epoch": 90}, path("imagenet_iabn.pth.tar"))

    tv_imagenet = {k[len("backbone."):]: v for k, v in tv.items() if k.startswith("backbone.")}
    tv_imagenet["fc.weight"] = torch.randn(1000, 2048, generator=g)
    tv_imagenet["fc.bias"] = torch.randn(1000, generator=g)
    torch.save(tv_imagenet, path("torchvision_imagenet.pth"))

    torch.manual_seed(seed_for("checkpoints/resnet18"))
    r18 = resnet18(weights=None).state_dict()
    torch.save(r18, path("resnet18_imagenet.pth"))
    save_file({"backbone." + k: v.contiguous() for k, v in floats(r18).items() if not k.startswith("fc.")},
              path("expected_resnet18.safetensors"))

    with open(path("mib_step.pth"), "rb") as f:
        data = f.read()
    with open(path("truncated.pth"), "wb") as f:
        f.write(data[:len(data) // 2])
    torch.save([1, 2, 3], path("not_a_checkpoint.pth"))
    print(f"models_checkpoints.py: wrote checkpoints to {out_dir}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
