"""The weight regularisers EWC, PI (path integral, SI) and RW (Riemannian Walk), written here in PyTorch
from SPEC-continual.md §3.6 for strata's incremental/regularizer.h: one parameter tensor over several
iterations of the importance update, the importance a step hands to the next, and the penalty
towards the previous step's weights with its gradient.

A case holds the points the parameter passes through, "thetas" (T+1, 6, 5): the update of iteration
t sees theta_t and "grads"[t] (the gradient of the method's loss there), and the step ends at
theta_T (where the importance is finished and the penalty taken). At step 1 the previous step's
state is "old_fisher" and "old_score" (as accumulated, not normalised) and its weights "anchor".
Outputs: "fisher" (EWC, RW), "path" (PI's delta, RW's score accumulator), "previous" (the point
remembered last), "score" (PI, RW: what the next step penalises with), and at step 1 "penalty"
= importance * sum(w * (theta_T - anchor)^2) with "grad.theta" its gradient at theta_T.

Computed in float64 from the float32 inputs, cast to float32 at the end."""
import torch

from .common import randn, seed_for

T = 7
SHAPE = (6, 5)


def gen(name):
    return torch.Generator().manual_seed(seed_for(name))


def normalized(m):
    return (m - m.min()) / (m.max() - m.min() + 1e-8)


def run(kind, step, thetas, grads, old_fisher, old_score, anchor, alpha, iterations, importance, normalize):
    thetas, grads = thetas.double(), grads.double()
    start = thetas[0]
    if kind in ("ewc", "rw"):
        fisher = old_fisher.double().clone() if step >= 1 else torch.ones(SHAPE, dtype=torch.float64)
    else:
        fisher = None
    path = torch.zeros(SHAPE, dtype=torch.float64)
    remembered = None
    for t in range(T):
        theta, g = thetas[t], grads[t]
        if kind == "pi":
            if remembered is not None:
                path = path + g * (remembered - theta)
            remembered = theta.clone()
        elif kind == "rw" and t % iterations == 0:
            if remembered is not None:
                moved = remembered - theta
                path = path + g * moved / (0.5 * fisher * (theta - remembered) ** 2 + 1e-8)
            remembered = theta.clone()
        if fisher is not None:
            fisher = alpha * g ** 2 + (1 - alpha) * fisher
    out = {}
    if fisher is not None:
        out["fisher"] = fisher
    if kind != "ewc":
        out["path"] = path
        out["previous"] = remembered
    theta_end = thetas[T]
    if kind == "pi":
        score = torch.clamp(path / ((theta_end - start) ** 2 + 1e-20), min=0)
        if step >= 1:
            score = score + old_score.double()
        out["score"] = score
    elif kind == "rw":
        score = torch.where(path >= 0, path, torch.zeros_like(path))
        if step >= 1:
            score = 0.5 * (score + old_score.double())
        out["score"] = score
    if step >= 1:
        norm = normalized if normalize else (lambda m: m)
        if kind == "ewc":
            weight = norm(old_fisher.double())
        elif kind == "pi":
            weight = norm(old_score.double())
        else:
            weight = norm(old_fisher.double()) + norm(old_score.double())
        theta = theta_end.clone().requires_grad_(True)
        penalty = importance * (weight * (theta - anchor.double()) ** 2).sum()
        penalty.backward()
        out["penalty"] = penalty.detach()
        out["grad.theta"] = theta.grad
    return {k: v.float() for k, v in out.items()}


def cases():
    settings = {"ewc": (500.0, 0.9, 10), "pi": (500.0, 0.9, 10), "rw": (100.0, 0.9, 3)}
    for kind, (importance, alpha, iterations) in settings.items():
        for step in (0, 1):
            for normalize in (True, False) if step == 1 else (True,):
                name = f"{kind}_step{step}{'' if normalize else '_unnormalized'}"
                g = gen(f"weight_regularizers_{kind}_{step}")
                # A walk of small steps, as SGD's: theta_{t+1} = theta_t + 0.05 * N(0, 1).
                theta0 = randn(*SHAPE, generator=g)
                moves = randn(T, *SHAPE, generator=g) * 0.05
                thetas = torch.cat([theta0[None], theta0[None] + torch.cumsum(moves, 0)])
                grads = randn(T, *SHAPE, generator=g)
                old_fisher = randn(*SHAPE, generator=g).abs() * 0.3
                old_score = randn(*SHAPE, generator=g).abs() * 2
                anchor = theta0 + randn(*SHAPE, generator=g) * 0.1
                out = run(kind, step, thetas, grads, old_fisher, old_score, anchor, alpha, iterations, importance,
                          normalize)
                tensors = {"thetas": thetas, "grads": grads, **out}
                if step == 1:
                    tensors.update(old_fisher=old_fisher, old_score=old_score, anchor=anchor)
                params = {"kind": kind, "step": step, "alpha": alpha, "iterations": iterations,
                          "importance": importance, "normalize": normalize, "T": T}
                yield name, tensors, params
