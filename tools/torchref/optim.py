"""torch.optim.SGD (momentum 0.9, Nesterov, weight decay 1e-4, two parameter groups) driven by a
poly learning-rate schedule over several steps, and plain SGD / momentum-with-dampening variants;
torch.optim.Adam with its defaults, with L2 weight decay, betas and eps of its own in two groups, and
with AMSGrad. Each case stores the initial parameters, the gradient fed at every step ("grad.<p>.<t>";
absent where a parameter gets none, so Adam's per-parameter step count is exercised) and the
parameters after every step ("<p>.after.<t>")."""
import torch

from .common import seed_for

STEPS = 6
MAX_ITERS = 10


def poly(base, it, power=0.9, min_lr=1e-6):
    return max(base * (1 - it / MAX_ITERS) ** power, min_lr)


def run(name, groups_spec, schedule, optimizer_class=torch.optim.SGD, skipped=()):
    g = torch.Generator().manual_seed(seed_for("optim/" + name))
    params = {"conv": torch.randn(4, 3, 3, 2, generator=g), "bias": torch.randn(5, generator=g)}
    tensors = {k: v.clone() for k, v in params.items()}
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    groups = [dict(spec, params=[leaves[p] for p in spec["params"]]) for spec in groups_spec]
    optimizer = optimizer_class(groups, lr=groups_spec[0]["lr"])
    base = [grp["lr"] for grp in optimizer.param_groups]
    for t in range(STEPS):
        for k, p in leaves.items():
            grad = torch.randn(p.shape, generator=g)
            if (k, t) in skipped:
                p.grad = None
                continue
            p.grad = grad
            tensors[f"grad.{k}.{t}"] = grad
        optimizer.step()
        if schedule:
            for grp, b in zip(optimizer.param_groups, base):
                grp["lr"] = poly(b, t + 1)
        for k, p in leaves.items():
            tensors[f"{k}.after.{t}"] = p.detach().clone()
    return name, tensors, {"steps": STEPS, "max_iters": MAX_ITERS}


def cases():
    yield run("sgd_nesterov_poly", [
        {"params": ["conv"], "lr": 0.01, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
        {"params": ["bias"], "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
    ], schedule=True)
    yield run("sgd_plain", [{"params": ["conv", "bias"], "lr": 0.05}], schedule=False)
    yield run("sgd_momentum_dampening", [
        {"params": ["conv", "bias"], "lr": 0.05, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.01},
    ], schedule=False)
    yield run("adam_defaults", [{"params": ["conv", "bias"], "lr": 0.01}], schedule=False,
              optimizer_class=torch.optim.Adam)
    # "bias" gets no gradient at steps 1 and 2: its bias correction then runs two steps behind conv's.
    yield run("adam_weight_decay", [
        {"params": ["conv"], "lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05},
        {"params": ["bias"], "lr": 0.005, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.1},
    ], schedule=False, optimizer_class=torch.optim.Adam, skipped={("bias", 1), ("bias", 2)})
    yield run("adam_amsgrad", [{"params": ["conv", "bias"], "lr": 0.01, "weight_decay": 0.01, "amsgrad": True}],
              schedule=False, optimizer_class=torch.optim.Adam)
