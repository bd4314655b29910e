"""iDARTS (Zhang et al., ICML 2021): the α gradient by the implicit function theorem, the
inverse Hessian by a truncated Neumann series.

With w*(α) a minimiser of L_train, the hypergradient of L_val(w*(α), α) is

    ∇_α L_val − ∇²_{α,w} L_train · [∇²_w L_train]⁻¹ · ∇_w L_val,

and [∇²_w L_train]⁻¹ ≈ γ·Σ_{j=0..K} (I − γ·∇²_w L_train)^j (paper Eq. 9-10; valid while
‖I − γH‖ < 1). Every product here is an exact Hessian-vector product by double backward
at the current weights (no finite differences), on the step's weight batch for L_train and
its α batch for L_val; the result replaces α's gradient before the α optimizer (Adam) steps.

The authors' NB201 notebook (MiaoZhang0525/iDARTS NAS_Bench201_codes/exps/algos/
iDARTS_V2.ipynb) uses K = 2 and γ = the weight learning rate (`eta = LR`), which are the
defaults here. Its inner weight loop steps a deep copy of the weight optimizer (whose
parameters are copies, so the network's weights do not move there) and restores the
weights after its finite difference with a different vector than it perturbed by; neither
is reproduced: the weights train by the engine's weight step, as in DARTS-V2.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from nasrepro.catalog import Float, Int, register_method
from nasrepro.methods.base import MethodHook

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

Tensors = Sequence[torch.Tensor]


def _dot(a: Tensors, b: Tensors) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def neumann_hypergradient(
    train_loss: Callable[[], torch.Tensor],
    val_grad_w: Tensors,
    val_grad_alpha: Tensors,
    weights: Tensors,
    alphas: Tensors,
    gamma: float,
    k: int,
) -> list[torch.Tensor]:
    """∇_α L_val − γ·∇²_{α,w} L_train · Σ_{j=0..k} (I − γ∇²_w L_train)^j ∇_w L_val.

    `train_loss()` recomputes L_train at the current weights and α (a fresh graph);
    `val_grad_w`, `val_grad_alpha` are ∇_w L_val and ∇_α L_val there.
    """
    loss = train_loss()
    grad_w = [
        torch.zeros_like(w) if g is None else g
        for w, g in zip(
            weights,
            torch.autograd.grad(loss, list(weights), create_graph=True, allow_unused=True),
            strict=True,
        )
    ]
    term = [v.detach() for v in val_grad_w]
    total = [t.clone() for t in term]
    for _ in range(k):
        hvp = torch.autograd.grad(
            _dot(grad_w, term), list(weights), retain_graph=True, allow_unused=True
        )
        term = [t if h is None else t - gamma * h for t, h in zip(term, hvp, strict=True)]
        total = [s + t for s, t in zip(total, term, strict=True)]
    mixed = torch.autograd.grad(_dot(grad_w, total), list(alphas), allow_unused=True)
    return [
        g.detach() - gamma * (m if m is not None else torch.zeros_like(g))
        for g, m in zip(val_grad_alpha, mixed, strict=True)
    ]


@register_method(
    "idarts",
    "iDARTS: implicit-function α gradient, inverse Hessian by a K-term Neumann series",
    args={"k": Int(0), "gamma": Float(0, lo_open=True, nullable=True)},
)
class IDarts(MethodHook):
    """Args: k (Neumann terms after the first; 2 in the authors' notebook), gamma (the
    series' step; null: the weight step's current learning rate, as the notebook)."""

    name = "idarts"
    owns_arch_step = True

    def __init__(self, k: int = 2, gamma: float | None = None) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"method 'idarts': k must be an integer >= 0, got {k!r}")
        if gamma is not None and not (
            isinstance(gamma, int | float) and not isinstance(gamma, bool) and gamma > 0
        ):
            raise ValueError(f"method 'idarts': gamma must be a number > 0 or null, got {gamma!r}")
        self.k = k
        self.gamma = None if gamma is None else float(gamma)
        self.last_norm = float("nan")

    def arch_step(
        self,
        ctx: SearchContext,
        x_w: torch.Tensor,
        y_w: torch.Tensor,
        x_a: torch.Tensor,
        y_a: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        net = ctx.supernet
        assert ctx.w_optimizer is not None and ctx.a_optimizer is not None
        weights = [p for g in ctx.w_optimizer.param_groups for p in g["params"]]
        alphas = net.arch_parameters()
        gamma = self.gamma if self.gamma is not None else ctx.w_optimizer.param_groups[0]["lr"]
        logits = net(x_a)
        loss = ctx.criterion(logits, y_a)
        grads = torch.autograd.grad(loss, weights + alphas, allow_unused=True)
        n = len(weights)
        zeros = torch.zeros_like
        val_w = [zeros(p) if g is None else g for p, g in zip(weights, grads[:n], strict=True)]
        val_a = [zeros(a) if g is None else g for a, g in zip(alphas, grads[n:], strict=True)]
        hyper = neumann_hypergradient(
            lambda: ctx.criterion(net(x_w), y_w), val_w, val_a, weights, alphas, gamma, self.k
        )
        for a, g in zip(alphas, hyper, strict=True):
            a.grad = g
        if ctx.settings.arch_grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(alphas, ctx.settings.arch_grad_clip)
        self.last_norm = float(torch.sqrt(sum((g * g).sum() for g in hyper)))
        ctx.a_optimizer.step()
        return loss, logits

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, Any]:
        return {"idarts.hypergrad_norm": self.last_norm}
