"""EX-DARTS (paper 004, §2.2, Exp.5): exchange the learning rates of weights and α.

"Exp.5: Exchange the default learning rate schemes shown in S.1 by employing exceptional
small weight learning rate (0.025→0.0003) and normal parameter learning rate
(0.0003→0.025)." Only the two rates trade places: weights keep SGD (momentum, Nesterov,
weight decay, clipping) and α keeps Adam (betas, weight decay), as in S.1.

So the weights train at the suite's `arch_lr` and α at its `lr`, both held constant: the
paper gives each as one fixed value ("alternately optimizes the weights and parameters
with a fixed learning rate", §2.3 on Exp.7), and the default weight cosine schedule
(0.025 → `lr_min` = 0.001) would run *upwards* from 0.0003. Exp.7 (weights 0.0003, α 0.001)
is this method with `lr: 0.001, arch_lr: 0.0003`. No public code exists (docs/fidelity.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasrepro.catalog import register_method
from nasrepro.methods.base import MethodHook

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext


def exchanged_rates(lr: float, arch_lr: float) -> tuple[float, float]:
    """(weight lr, α lr) after the exchange: S.1's (lr, arch_lr) swapped."""
    return arch_lr, lr


@register_method("ex", "EX-DARTS: weight and α learning rates exchanged (constant)", args={})
class ExchangedLr(MethodHook):
    """No arguments: the rates come from the suite's `search.lr` and `search.arch_lr`."""

    name = "ex"

    def __init__(self, **args: Any) -> None:
        super().__init__(**args)  # MethodHook rejects any argument
        self.weight_lr = float("nan")
        self.arch_lr = float("nan")

    def on_epoch_start(self, ctx: SearchContext) -> None:
        # The engine has just set the weight lr of its cosine schedule; override it (and the
        # α lr) every epoch so the exchanged rates hold throughout.
        assert ctx.w_optimizer is not None and ctx.a_optimizer is not None
        self.weight_lr, self.arch_lr = exchanged_rates(ctx.settings.lr, ctx.settings.arch_lr)
        for group in ctx.w_optimizer.param_groups:
            group["lr"] = self.weight_lr
        for group in ctx.a_optimizer.param_groups:
            group["lr"] = self.arch_lr

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        return {"ex.weight_lr": self.weight_lr, "ex.arch_lr": self.arch_lr}
