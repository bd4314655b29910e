"""β-DARTS (Ye et al., CVPR 2022): the Beta-decay regulariser on α in the α step.

Reference: Sunshine-Ye/Beta-DARTS (commit f307704), optimizers/darts/architect.py
`mlc_loss` and `_backward_step`, used by nasbench201/train_search.py:

    L_α = L_val(w, α) + λ(epoch)·mean_rows logsumexp(α_row),   λ(epoch) = 0 + 50·epoch/100

The smooth maximum logsumexp of each edge's α is pushed down, which keeps softmax(α) from
concentrating early (the paper's "Beta-decay": the decay of the normalised α it induces).
λ grows linearly with the epoch and is constant within an epoch; the code's 50 and 100
are constants, not the run's epoch count (`lambda_max`, `lambda_epochs`).

On NB201 α is one tensor (edges × ops) and the mean runs over its rows. On the DARTS space
the released code has no working β term (sota/cnn/train_search.py calls `architect.step`
without the epoch that `_backward_step` needs); here the mean runs over the rows of every
α tensor the cells mix with (normal and reduce together), the same formula on the
concatenated α. Weight step and α optimizer are DARTS' (Adam, first order).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from nasrepro.catalog import Float, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.methods.drnas import mixed_alphas, zero_alpha_grads

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext


def beta_decay_loss(alphas: list[torch.Tensor]) -> torch.Tensor:
    """mean over all rows of logsumexp(α_row) (`mlc_loss`: torch.mean(logsumexp(α, -1)))."""
    return torch.logsumexp(torch.cat(alphas), dim=-1).mean()


def beta_lambda(lambda_max: float, lambda_epochs: float, epoch: int) -> float:
    """λ(epoch) = lambda_max·epoch/lambda_epochs (`weights = 0 + 50*epoch/100`)."""
    return 0 + lambda_max * epoch / lambda_epochs


@register_method(
    "beta_darts",
    "β-DARTS: λ(epoch)·mean logsumexp(α) added to the α objective",
    args={"lambda_max": Float(0), "lambda_epochs": Float(0, lo_open=True)},
)
class BetaDarts(MethodHook):
    """Args: lambda_max (50) and lambda_epochs (100): λ = lambda_max·epoch/lambda_epochs."""

    name = "beta_darts"
    data_parallel = True  # a function of α and the epoch only

    def __init__(self, lambda_max: float = 50.0, lambda_epochs: float = 100.0) -> None:
        super().__init__()
        for arg, value in (("lambda_max", lambda_max), ("lambda_epochs", lambda_epochs)):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"method 'beta_darts': {arg} must be a finite number >= 0, got {value!r}"
                )
        if lambda_epochs == 0:
            raise ValueError("method 'beta_darts': lambda_epochs must be > 0")
        self.lambda_max = float(lambda_max)
        self.lambda_epochs = float(lambda_epochs)
        self.lam = 0.0
        self.last_reg = float("nan")

    def on_epoch_start(self, ctx: SearchContext) -> None:
        self.lam = beta_lambda(self.lambda_max, self.lambda_epochs, ctx.epoch)

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        zero_alpha_grads(ctx)  # `architect.optimizer.zero_grad()` before the weight step
        return weights

    def arch_loss(self, ctx: SearchContext, loss: torch.Tensor) -> torch.Tensor:
        alphas = ctx.supernet.arch_parameters()
        reg = beta_decay_loss([alphas[t] for t in mixed_alphas(ctx.supernet)])
        self.last_reg = float(reg.detach())
        return loss + self.lam * reg

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, Any]:
        return {"beta_darts.lambda": self.lam, "beta_darts.reg": self.last_reg}
