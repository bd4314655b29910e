"""DrNAS (Chen et al., ICLR 2021): the mixing weights of every edge are a Dirichlet sample.

Reference: xiangning-chen/DrNAS (commit f2caa4d), `utils.process_step_vector` /
`process_step_matrix`, 201-space/search_model.py `TinyNetwork`, DARTS-space/model_search.py
`Network`, architect.py `Architect`, 201-space/train_search.py.

What the code does, and this hook with it:
- Each α row (one edge) is a Dirichlet concentration through β = elu(α) + 1 (always > 0).
  Every forward of the search draws one reparameterised sample per row,
  `Dirichlet(elu(α_row) + 1).rsample()`, row by row in α's order (normal rows, then reduce
  rows on the DARTS space), and every cell that mixes with that α tensor uses the same
  sample. The weight step and the α step draw their own samples; the α step's gradient
  flows through the sample (pathwise derivative).
- The regulariser (`--reg_type`): `l2` (the default of every script) is Adam's weight
  decay on α at `--reg_scale` 1e-3 (architect.py), i.e. the suite's `arch_weight_decay`;
  `kl` adds reg_scale·Σ_rows KL(Dir(elu(α) + 1) ‖ Dir(1)) to the α objective, with Adam's
  weight decay 0 (paper Eq. 6's anchor, a uniform Dirichlet).
- The α step comes before the weight step (`architect.step` then the weight update), so
  experiments set `search.alpha_step: before_weights`; the weight clip runs over
  `model.parameters()` (`search.clip_includes_alpha: true`) after the α optimizer's
  gradients were zeroed (`zero_alpha_grads`).
- The genotype is the argmax of softmax(α) (`process_step_matrix(α, 'softmax')`): the
  argmax of the Dirichlet mean too, elu + 1 being increasing. The supernet's softmax(α) is
  what the history logs, as the reference logs it.

The progressive scheme (201-space/train_search_progressive.py, DARTS-space/train_search.py:
prune to the top ops of α and widen the partial channels between stages) is not part of
this hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence

from nasrepro.catalog import Choice, Float, register_method
from nasrepro.methods.base import MethodHook

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext
    from nasrepro.spaces.base import Supernet


def mixed_alphas(net: Supernet) -> list[int]:
    """Indices of the α tensors the cells mix with (not PC-DARTS' edge β), in order."""
    return sorted(set(net.cell_alpha_index()))


def zero_alpha_grads(ctx: SearchContext) -> None:
    """Drop α's gradient of the α step before the weight step's backward.

    The DrNAS and β-DARTS loops call `architect.optimizer.zero_grad()` between the α step
    and the weight step, and clip over `model.parameters()` (α included): the clip norm
    counts only the weight loss's gradient of α. The engine otherwise keeps the α step's
    gradient there, as AutoDL's DARTS-V2 loop does (`search.clip_includes_alpha`).
    """
    for a in ctx.supernet.arch_parameters():
        a.grad = None


def concentration(alpha: torch.Tensor) -> torch.Tensor:
    """β = elu(α) + 1 (DrNAS utils.process_step_vector / search_model.py)."""
    return F.elu(alpha) + 1


def dirichlet_sample(alpha: torch.Tensor) -> torch.Tensor:
    """One reparameterised Dirichlet sample per row of α, row by row in order (the
    reference's `process_step_matrix`: the RNG is drawn in the same order)."""
    return torch.stack([Dirichlet(concentration(row)).rsample() for row in alpha])


def kl_to_uniform(alpha: torch.Tensor) -> torch.Tensor:
    """Σ over rows of KL(Dir(elu(α) + 1) ‖ Dir(1, …, 1)) (`_get_kl_reg`)."""
    anchor = Dirichlet(torch.ones_like(alpha))
    return kl_divergence(Dirichlet(concentration(alpha)), anchor).sum()


@register_method(
    "drnas",
    "DrNAS: Dirichlet-sampled mixing weights (elu(α)+1), L2 or KL regulariser",
    args={"reg_type": Choice("l2", "kl"), "reg_scale": Float(0)},
)
class DrNas(MethodHook):
    """Args: reg_type (`l2`: Adam weight decay on α, the code's default; `kl`: the KL term
    to a uniform Dirichlet), reg_scale (1e-3, the scripts' default)."""

    name = "drnas"

    def __init__(self, reg_type: str = "l2", reg_scale: float = 1e-3) -> None:
        super().__init__()
        if reg_type not in ("l2", "kl"):
            raise ValueError(f"method 'drnas': reg_type must be 'l2' or 'kl', got {reg_type!r}")
        if isinstance(reg_scale, bool) or not isinstance(reg_scale, int | float) or reg_scale < 0:
            raise ValueError(f"method 'drnas': reg_scale must be a number >= 0, got {reg_scale!r}")
        self.reg_type = reg_type
        self.reg_scale = float(reg_scale)

    def on_build(self, ctx: SearchContext) -> None:
        # architect.py: Adam(weight_decay=reg_scale) for l2, 0 for kl. The suite states the
        # decay itself (`search.arch_weight_decay`); a mismatch is refused, not corrected.
        wanted = self.reg_scale if self.reg_type == "l2" else 0.0
        if ctx.settings.arch_weight_decay != wanted:
            raise ValueError(
                f"method 'drnas' with reg_type {self.reg_type} needs search.arch_weight_decay "
                f"{wanted:g} (the Adam weight decay of DrNAS' architect.py), got "
                f"{ctx.settings.arch_weight_decay:g}"
            )
        if getattr(ctx.supernet, "edge_normalization", False):
            raise ValueError("method 'drnas' does not combine with edge normalization (β)")

    def _samples(self, ctx: SearchContext, weights: list[torch.Tensor]) -> list[torch.Tensor]:
        net = ctx.supernet
        alphas = net.arch_parameters()
        mixed = mixed_alphas(net)
        drawn = {t: dirichlet_sample(alphas[t]) for t in mixed}
        return [drawn[t] for t in net.cell_alpha_index()]

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        zero_alpha_grads(ctx)
        return self._samples(ctx, weights)

    def arch_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        return self._samples(ctx, weights)

    def arch_loss(self, ctx: SearchContext, loss: torch.Tensor) -> torch.Tensor:
        if self.reg_type != "kl":
            return loss
        alphas = ctx.supernet.arch_parameters()
        # DARTS-space _get_kl_reg sums reduce then normal; a sum of two scalars commutes.
        reg = sum(kl_to_uniform(alphas[t]) for t in mixed_alphas(ctx.supernet))
        return loss + self.reg_scale * reg

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, Any]:
        alphas = ctx.supernet.arch_parameters()
        with torch.no_grad():
            mean_conc = {
                f"drnas.concentration_sum.{ctx.supernet.alpha_names()[t]}": float(
                    concentration(alphas[t]).sum(dim=-1).mean()
                )
                for t in mixed_alphas(ctx.supernet)
            }
        return mean_conc
