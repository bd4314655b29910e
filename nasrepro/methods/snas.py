"""SNAS on NAS-Bench-201 as DrNAS' code runs it: Gumbel-softmax mixing weights with a
linearly annealed temperature (Xie et al., ICLR 2019, the relaxation; Chen et al., ICLR 2021,
the NB201 baseline).

Reference: xiangning-chen/DrNAS (commit f2caa4d) 201-space/train_search.py `--method snas`
(TinyNetwork species 'gumbel'; tau_max 10, tau_min 1, `tau_epoch += (tau_min - tau_max) /
epochs` after every epoch, so epoch e mixes at τ_e = tau_max + e·(tau_min − tau_max)/epochs),
utils.process_step_vector: `F.gumbel_softmax(α_row, tau=τ, hard=False)` row by row, one
draw per forward, the same draw for every cell. Everything else is DrNAS' bilevel loop (Adam
on α with the L2 weight decay, α step first), as for `drnas`: the Λ-DARTS paper's NB201 SNAS
row is the DrNAS paper's run of this code.

The original SNAS on the DARTS space (single-level training with the resource constraint,
SNAS-Series/SNAS-Series) is not this hook.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from nasrepro.catalog import Float, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.methods.drnas import mixed_alphas, zero_alpha_grads

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext


def tau_schedule(tau_max: float, tau_min: float, epoch: int, epochs: int) -> float:
    """τ of `epoch`: tau_max, then + (tau_min − tau_max)/epochs after every epoch."""
    tau = tau_max
    for _ in range(epoch):  # the reference accumulates the step; the sum rounds the same way
        tau += (tau_min - tau_max) / epochs
    return tau


def gumbel_sample(alpha: torch.Tensor, tau: float) -> torch.Tensor:
    """One relaxed Gumbel-softmax draw per row of α, row by row (`process_step_matrix`)."""
    return torch.stack([F.gumbel_softmax(row, tau=tau, hard=False, dim=-1) for row in alpha])


@register_method(
    "snas",
    "SNAS (DrNAS' NB201 port): Gumbel-softmax mixing weights, τ annealed 10 → 1",
    args={"tau_max": Float(0, lo_open=True), "tau_min": Float(0, lo_open=True)},
)
class Snas(MethodHook):
    """Args: tau_max (10), tau_min (1): τ falls linearly by (tau_min − tau_max)/epochs."""

    name = "snas"

    def __init__(self, tau_max: float = 10.0, tau_min: float = 1.0) -> None:
        super().__init__()
        for arg, value in (("tau_max", tau_max), ("tau_min", tau_min)):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value <= 0:
                raise ValueError(f"method 'snas': {arg} must be a number > 0, got {value!r}")
        self.tau_max = float(tau_max)
        self.tau_min = float(tau_min)
        self.tau = self.tau_max

    def on_epoch_start(self, ctx: SearchContext) -> None:
        self.tau = tau_schedule(self.tau_max, self.tau_min, ctx.epoch, ctx.settings.epochs)

    def _samples(self, ctx: SearchContext) -> list[torch.Tensor]:
        net = ctx.supernet
        alphas = net.arch_parameters()
        drawn = {t: gumbel_sample(alphas[t], self.tau) for t in mixed_alphas(net)}
        return [drawn[t] for t in net.cell_alpha_index()]

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        zero_alpha_grads(ctx)
        return self._samples(ctx)

    def arch_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        return self._samples(ctx)

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, Any]:
        return {"snas.tau": self.tau}
