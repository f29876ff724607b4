#!/usr/bin/env python3
"""PyTorch side of `strata bench step`: times one incremental training step of MiB's model.

Usage: bench_step_torch.py SETTINGS.json
Settings: bench_torch_common's ("batch", "height", "width", "warmup", "steps", "profile_steps",
"threads") and the step's: "depth", "output_stride", "classes" (per step, the last one new), the
method's terms "unce", "unkd", "loss_kd", "loss_de", "alpha", "init_balanced", the optimiser's "lr",
"momentum", "weight_decay", "nesterov", "lr_power", "max_iterations", "seed", and "phases" (the range
name of each phase it runs, keyed teacher_forward, student_forward, losses, backward, optimizer_step,
as strata's StepSession names its profiler scopes).

Models: tools/torchref/models_mib.py (MiB's modules and names, SPEC §4): the student with every
step's classifier, the teacher with all but the last one, loaded from the same step-0 weights (the
student from them with strict=False, then MiB's balanced init when asked: not timed); the teacher
frozen, in eval mode, run under no_grad. NCHW (what MiB/PLOP users train in).

In-place ABN has no PyTorch op. models_mib's reference ABN is a composition of a dozen torch ops
meant for parity, not speed; here its forward is replaced by PyTorch's fused batch-norm kernel
(F.batch_norm with weight |w| + eps: the same formula and running-statistics update) followed by an
in-place leaky ReLU, which is mapillary/inplace_abn's plain ABN: PyTorch's best case, keeping two
tensors per convolution where In-place ABN keeps one.

One step (ranges named by "phases"): normalise the u8 batch, the teacher's forward (when a term uses
it), the student's forward, the losses, backward, SGD + the poly schedule. Losses: torchref's
continual_losses (SPEC §3) in float32, every one a mean over all B·H·W pixels:
  seg  unbiased_cross_entropy (unce) or F.cross_entropy(ignore_index=255, reduction="none").mean()
  kd   loss_kd x unbiased_knowledge_distillation (unkd) or knowledge_distillation, when loss_kd > 0
  de   loss_de x feature_distillation of the backbone outputs, when loss_de > 0
Prints one JSON object: the versions, parameter counts, the first step's loss, and
bench_torch_common.measure()'s times, memory, profile and per-phase times ("ranges").
"""
import contextlib
import json
import math
import sys

import torch
import torch.nn.functional as F

from bench_torch_common import environment, measure
from torchref import models_mib
from torchref.continual_losses import (feature_distillation, knowledge_distillation, unbiased_cross_entropy,
                                       unbiased_knowledge_distillation)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IGNORE = 255


def abn_forward(self, x):
    """models_mib.ABN with PyTorch's batch-norm kernel (see the module docstring)."""
    y = F.batch_norm(x, self.running_mean, self.running_var, self.weight.abs() + self.eps, self.bias, self.training,
                     self.momentum, self.eps)
    return F.leaky_relu(y, models_mib.SLOPE, inplace=True) if self.activation == "leaky_relu" else y


def build_models(s):
    models_mib.ABN.forward = abn_forward
    torch.manual_seed(s["seed"])
    classes = s["classes"]
    teacher = models_mib.MiBModel(s["depth"], s["output_stride"], classes[:-1])
    student = models_mib.MiBModel(s["depth"], s["output_stride"], classes)
    student.load_state_dict(teacher.state_dict(), strict=False)
    if s["init_balanced"]:
        # MiB's balanced init (SPEC §3.5.3): new rows copy the background row, biases shifted.
        with torch.no_grad():
            shift = math.log(classes[-1] + 1)
            new, old = student.cls[-1], student.cls[0]
            new.weight.copy_(old.weight[0:1].expand_as(new.weight))
            new.bias.copy_(old.bias[0] - shift)
            old.bias[0] -= shift
    for p in teacher.parameters():
        p.requires_grad_(False)
    teacher.eval()
    student.train()
    return student, teacher


def make_step(s, device="cpu", autocast_dtype=None):
    """The step of the module docstring on `device`, its forward and losses under autocast to
    `autocast_dtype` when given (PyTorch's eager AMP: convolutions in that type, losses in float32);
    returns (step, first_losses, student, teacher, uses_teacher). first_losses gets the first step's
    loss."""
    student, teacher = build_models(s)
    student.to(device)
    teacher.to(device)
    c_old = sum(s["classes"][:-1])
    uses_teacher = s["loss_kd"] > 0 or s["loss_de"] > 0
    optimizer = torch.optim.SGD(student.parameters(), lr=s["lr"], momentum=s["momentum"],
                                weight_decay=s["weight_decay"], nesterov=s["nesterov"])
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: (1 - min(it, s["max_iterations"]) / s["max_iterations"]) ** s["lr_power"])

    g = torch.Generator().manual_seed(s["seed"])
    n, h, w = s["batch"], s["height"], s["width"]
    images = torch.randint(0, 256, (n, 3, h, w), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, sum(s["classes"]), (n, h, w), generator=g)
    labels[torch.rand(n, h, w, generator=g) < 0.05] = IGNORE
    images, labels = images.to(device), labels.to(torch.uint8).to(device)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    phases = s["phases"]  # profiler scope names by phase, strata's step_phase_name()
    teacher_phase, student_phase, loss_phase = phases["teacher_forward"], phases["student_forward"], phases["losses"]
    backward_phase, optimizer_phase = phases["backward"], phases["optimizer_step"]
    f32 = torch.float32
    losses = []
    autocast = (lambda: torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype)) \
        if autocast_dtype is not None else contextlib.nullcontext

    def step():
        optimizer.zero_grad(set_to_none=True)
        x = (images.float().div_(255) - mean) / std
        y = labels.long()
        with autocast():
            if uses_teacher:
                with torch.autograd.profiler.record_function(teacher_phase), torch.no_grad():
                    out = teacher(x)
                    teacher_logits, teacher_body = out["out"], out["body"]
                    del out
            with torch.autograd.profiler.record_function(student_phase):
                out = student(x)
                logits, body = out["out"], out["body"]
                del out
            with torch.autograd.profiler.record_function(loss_phase):
                if s["unce"]:
                    loss = unbiased_cross_entropy(logits, y, c_old, "mean_all", f32)
                else:
                    loss = F.cross_entropy(logits.float(), y, ignore_index=IGNORE, reduction="none").mean()
                if s["loss_kd"] > 0:
                    kd = unbiased_knowledge_distillation if s["unkd"] else knowledge_distillation
                    loss = loss + s["loss_kd"] * kd(logits, teacher_logits, s["alpha"], "mean_all", f32)
                if s["loss_de"] > 0:
                    loss = loss + s["loss_de"] * feature_distillation(body, teacher_body, "mean_all", f32)
        del logits, body
        if uses_teacher:
            del teacher_logits, teacher_body
        with torch.autograd.profiler.record_function(backward_phase):
            loss.backward()
        with torch.autograd.profiler.record_function(optimizer_phase):
            optimizer.step()
            schedule.step()
        if not losses:
            losses.append(loss.item())

    return step, losses, student, teacher, uses_teacher


def main(path):
    with open(path) as f:
        s = json.load(f)
    torch.set_num_threads(int(s["threads"]))
    step, losses, student, teacher, uses_teacher = make_step(s)
    result = measure(step, s, exclude=set(s["phases"].values()))
    print(json.dumps({
        **environment(), "first_loss": losses[0],
        "parameters": sum(p.numel() for p in student.parameters()),
        "teacher_parameters": sum(p.numel() for p in teacher.parameters()) if uses_teacher else 0, **result,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
