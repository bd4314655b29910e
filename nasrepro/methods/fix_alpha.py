"""DARTS-PT's "fix α" baseline (paper 002, §6.3): train the supernet with α never updated,
then select by perturbation (selector `pt`).

The paper fixes "α = 0 (uniform weights for all the operations)"; its code
(ruocwang/darts-pt nasbench201/architect_ig.py, method 'blank') skips the α step but leaves
α at its 1e-3·randn initialisation — the `value: init` variant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch

from nasrepro.catalog import Choice, register_method
from nasrepro.methods.base import MethodHook

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

Value = Literal["zero", "init"]
VALUES: tuple[str, ...] = ("zero", "init")


@register_method(
    "fix_alpha",
    "DARTS-PT fix-α: α held at 0 (uniform), never updated",
    args={"value": Choice("zero", "init")},
)
class FixAlpha(MethodHook):
    """Args: value (zero = the paper's α = 0; init = the code's untouched random init)."""

    name = "fix_alpha"

    def __init__(self, value: Value = "zero", **unknown: Any) -> None:
        super().__init__()
        if unknown:
            raise ValueError(
                f"method 'fix_alpha': unknown argument(s) {sorted(unknown)} (known: value)"
            )
        if value not in VALUES:
            raise ValueError(
                f"method 'fix_alpha': value must be one of {', '.join(VALUES)}, got {value!r}"
            )
        self.value: Value = value

    def on_build(self, ctx: SearchContext) -> None:
        if self.value == "zero":
            with torch.no_grad():
                for alpha in ctx.supernet.arch_parameters():
                    alpha.zero_()

    def update_alpha(self, ctx: SearchContext) -> bool:
        return False

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        alphas = ctx.supernet.arch_parameters()
        return {"fix_alpha.alpha_abs_max": max(a.detach().abs().max().item() for a in alphas)}
