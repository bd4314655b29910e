"""FairDARTS (Chu et al., ECCV 2020): every op of an edge weighted by its own sigmoid(α)
instead of the edge's softmax, and a zero-one loss on those weights in the α objective.

Reference: xiaomi-automl/FairDARTS (the /work checkout), folder fairdarts/, its README's
search command `python train_search.py --aux_loss_weight 10 --learning_rate 0.005
--batch_size 128 --parse_method threshold_sparse`:

- model_search.py `Network.forward`: each cell mixes with `F.sigmoid(alphas_*)`; α starts at
  zero (`_initialize_alphas`: `torch.zeros(k, num_ops)`) over the 7 ops without `none`
  (genotypes.py PRIMITIVES).
- separate_loss.py `ConvSeparateLoss` (`--sep_loss l2`, the default):
  L = CE + w01 · (−mse(σ, 0.5)) = CE − w01·mean((σ(α) − 0.5)²), the mean over every entry of
  `torch.cat([σ(alphas_normal), σ(alphas_reduce)])` (architect.py `step`), w01 = 10.
- architect.py `step`: first order only (no unrolled step): one Adam step on that loss of a
  validation batch, before the weight step (train_search.py `train`). The weight step's loss
  carries the same term, which moves only α; α's gradient is zeroed before the next α step
  (`self.optimizer.zero_grad()`), and the weight clip runs over `model.parameters()`, which
  do not hold α (plain tensors), so the term has no effect on the weights.

The genotype rule (threshold on σ(α), at most two inputs per node) is select/fair_darts.py.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from nasrepro.catalog import Float, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.methods.drnas import mixed_alphas

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext


def zero_one_loss(alphas: list[torch.Tensor]) -> torch.Tensor:
    """−mean((σ(α) − 0.5)²) over every entry of the α tensors together (`ConvSeparateLoss`'s
    `-F.mse_loss(input2, 0.5)` on the concatenated sigmoids)."""
    sig = torch.cat([torch.sigmoid(a).reshape(-1) for a in alphas])
    return -((sig - 0.5) ** 2).mean()


def sigmoid_cell_weights(net: Any) -> list[torch.Tensor]:
    """Per cell sigmoid(α) of its type (model_search.py `Network.forward`)."""
    alphas = net.arch_parameters()
    return [torch.sigmoid(alphas[i]) for i in net.cell_alpha_index()]


@register_method(
    "fair_darts",
    "FairDARTS: sigmoid(α) mixing weights, zero-one loss w01·(−mean((σ(α)−0.5)²)) on α",
    args={"zero_one_weight": Float(0)},
)
class FairDarts(MethodHook):
    """Args: zero_one_weight (w01; the README command's --aux_loss_weight 10)."""

    name = "fair_darts"
    data_parallel = True  # the mixing weights and the term are functions of α only

    def __init__(self, zero_one_weight: float = 10.0) -> None:
        super().__init__()
        number = isinstance(zero_one_weight, int | float) and not isinstance(zero_one_weight, bool)
        if not number or not math.isfinite(zero_one_weight) or zero_one_weight < 0:
            raise ValueError(
                "method 'fair_darts': zero_one_weight must be a finite number >= 0, "
                f"got {zero_one_weight!r}"
            )
        self.zero_one_weight = float(zero_one_weight)
        self.last_zero_one = float("nan")

    def on_build(self, ctx: SearchContext) -> None:
        net = ctx.supernet
        if getattr(net, "edge_normalization", False):
            raise ValueError("method 'fair_darts' mixes with sigmoid(α) alone (no edge β)")
        if not hasattr(net, "cell_alpha_index"):
            raise ValueError("method 'fair_darts' runs on a DARTS-cell supernet")
        if ctx.settings.order != 1:  # architect.py `step` has no unrolled step
            raise ValueError("method 'fair_darts' is first order (search.order: 1)")
        with torch.no_grad():  # `_initialize_alphas`: torch.zeros(k, num_ops)
            for a in net.arch_parameters():
                a.zero_()

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        return sigmoid_cell_weights(ctx.supernet)

    def arch_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        return sigmoid_cell_weights(ctx.supernet)

    def arch_loss(self, ctx: SearchContext, loss: torch.Tensor) -> torch.Tensor:
        alphas = ctx.supernet.arch_parameters()
        term = zero_one_loss([alphas[t] for t in mixed_alphas(ctx.supernet)])
        self.last_zero_one = float(term.detach())
        return loss + self.zero_one_weight * term

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, Any]:
        sig = torch.cat([torch.sigmoid(a.detach()).reshape(-1)
                         for a in ctx.supernet.arch_parameters()])  # fmt: skip
        return {
            "fair_darts.zero_one": self.last_zero_one,
            "fair_darts.sigmoid_above_0.85": float((sig >= 0.85).float().mean()),
        }
