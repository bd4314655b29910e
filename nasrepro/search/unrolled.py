"""Second-order (unrolled) architecture gradient of DARTS.

With one virtual SGD step w' = w − η(μ·m + ∇_w L_train(w, α) + λ_wd·w) the architecture
gradient is ∇_α L_val(w', α) − η·∇²_{α,w} L_train(w, α)·∇_{w'} L_val(w', α)
(Liu et al., 2019, Eq. 7), the Hessian-vector product taken by central finite
differences at w ± R·v, R = r/‖v‖ (r = 0.01). Reference: AutoDL-Projects
exps/NAS-Benchmark-201-algos/DARTS-V2.py (backward_step_unrolled,
_hessian_vector_product); momentum buffer included, Nesterov ignored, as there.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import functional_call

from nasrepro.spaces.base import Supernet

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _momentum_buffer(opt: torch.optim.Optimizer, p: torch.nn.Parameter) -> torch.Tensor | None:
    state = opt.state.get(p, {})
    return state.get("momentum_buffer")


def unrolled_arch_grad(
    net: Supernet,
    criterion: Loss,
    x_w: torch.Tensor,
    y_w: torch.Tensor,
    x_a: torch.Tensor,
    y_a: torch.Tensor,
    w_opt: torch.optim.SGD,
    r: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set α.grad to the unrolled gradient; return (validation loss at w', its logits)."""
    named = [(n, p) for n, p in net.named_weight_parameters() if p.requires_grad]
    weights = [p for _, p in named]
    alphas = net.arch_parameters()
    group = w_opt.param_groups[0]
    eta, wd, mom = group["lr"], group["weight_decay"], group["momentum"]

    train_loss = criterion(net(x_w), y_w)
    grads = torch.autograd.grad(train_loss, weights)
    with torch.no_grad():
        unrolled = {}
        for (name, w), g in zip(named, grads, strict=True):
            buf = _momentum_buffer(w_opt, w)
            step = g + wd * w
            if buf is not None:
                step = step + mom * buf
            unrolled[name] = (w - eta * step).requires_grad_(True)
    logits = functional_call(net, unrolled, (x_a,))
    val_loss = criterion(logits, y_a)
    leaves = list(unrolled.values())
    d_alpha_and_w = torch.autograd.grad(val_loss, [*alphas, *leaves])
    d_alpha = d_alpha_and_w[: len(alphas)]
    vector = d_alpha_and_w[len(alphas) :]

    implicit = hessian_vector_product(net, criterion, x_w, y_w, weights, vector, r)
    for a, da, hv in zip(alphas, d_alpha, implicit, strict=True):
        a.grad = (da - eta * hv).detach()
    return val_loss.detach(), logits.detach()


def hessian_vector_product(
    net: Supernet,
    criterion: Loss,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: list[torch.nn.Parameter],
    vector: tuple[torch.Tensor, ...],
    r: float,
) -> list[torch.Tensor]:
    """∇²_{α,w} L(w, α)·v ≈ [∇_α L(w + Rv) − ∇_α L(w − Rv)] / 2R, R = r/‖v‖."""
    norm = torch.cat([v.reshape(-1) for v in vector]).norm()
    radius = r / norm
    saved = [w.detach().clone() for w in weights]
    alphas = net.arch_parameters()
    try:
        with torch.no_grad():
            for w, v in zip(weights, vector, strict=True):
                w.add_(v, alpha=radius.item())
        g_plus = torch.autograd.grad(criterion(net(x), y), alphas)
        with torch.no_grad():
            for w, w0, v in zip(weights, saved, vector, strict=True):
                w.copy_(w0).sub_(v, alpha=radius.item())
        g_minus = torch.autograd.grad(criterion(net(x), y), alphas)
    finally:
        with torch.no_grad():  # restore exactly, not by adding Rv back
            for w, w0 in zip(weights, saved, strict=True):
                w.copy_(w0)
    return [(gp - gm) / (2 * radius) for gp, gm in zip(g_plus, g_minus, strict=True)]
