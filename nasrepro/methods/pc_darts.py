"""PC-DARTS (Xu et al., ICLR 2020): partial channel connections (1/K of the channels go
through the mixed op) and edge normalization, with α frozen for a warm-up.

The partial channels and edge normalization are the DARTS space's own arguments
(`partial_channels`, `edge_normalization`); this hook sets them and holds α still for the
first `alpha_warmup_epochs` epochs (yuhuixu1993/PC-DARTS train_search.py:
`if epoch >= 15: architect.step(...)`; K=4 on CIFAR, K=2 on ImageNet per docs/fidelity.md).

PC-DARTS' ImageNet search (train_search_imagenet.py) also warms the weight lr up over 5
epochs (lr·(epoch + 1)/5) and clips α's gradient at norm 5 before its Adam step: the search
settings `lr_warmup_epochs: 5` and `arch_grad_clip: 5` (search/schedule.py, engine.py).
`alpha_warmup` is the α warm-up alone, for searches that follow PC-DARTS' ImageNet setting
without its partial channels (Λ-DARTS, paper 003 A.7: 35 epochs).

RF-PCDARTS (paper 000, A.2, ImageNet) is `methods: [pc, rf]` with alpha_warmup_epochs=35:
"For the first 35 epochs, we only train BN affine weights. Then, we jointly optimize BN
affine weights and architecture parameters" — the two hooks compose; nothing more is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasrepro.catalog import Bool, Int, register_method
from nasrepro.methods.base import MethodHook

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext


@register_method(
    "pc",
    "PC-DARTS: partial channels 1/K, edge normalization, α warm-up",
    args={
        "k": Int(1),
        "edge_normalization": Bool(),
        "alpha_warmup_epochs": Int(0),
        "shuffle": Bool(),
    },
)
class PcDarts(MethodHook):
    """Args: k (channel proportion 1/K, ≥ 1), edge_normalization (bool),
    alpha_warmup_epochs (epochs before the first α update, ≥ 0)."""

    name = "pc"
    data_parallel = True  # partial channels and α warm-up are per sample / per epoch

    def __init__(
        self,
        k: int = 4,
        edge_normalization: bool = True,
        alpha_warmup_epochs: int = 15,
        shuffle: bool = True,
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise ValueError(
                f"method 'pc': unknown argument(s) {sorted(unknown)} (known: k, "
                "edge_normalization, alpha_warmup_epochs, shuffle)"
            )
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"method 'pc': k must be a positive integer, got {k!r}")
        if not isinstance(edge_normalization, bool):
            raise ValueError(
                f"method 'pc': edge_normalization must be true or false, got {edge_normalization!r}"
            )
        if (
            isinstance(alpha_warmup_epochs, bool)
            or not isinstance(alpha_warmup_epochs, int)
            or alpha_warmup_epochs < 0
        ):
            raise ValueError(
                "method 'pc': alpha_warmup_epochs must be an integer >= 0, "
                f"got {alpha_warmup_epochs!r}"
            )
        if not isinstance(shuffle, bool):
            raise ValueError(f"method 'pc': shuffle must be true or false, got {shuffle!r}")
        self.k = k
        self.edge_normalization = edge_normalization
        self.alpha_warmup_epochs = alpha_warmup_epochs
        self.shuffle = shuffle

    def configure_space(self, space_args: dict[str, Any]) -> dict[str, Any]:
        wanted = {
            "partial_channels": self.k,
            "edge_normalization": self.edge_normalization,
            "channel_shuffle": self.shuffle,
        }
        for key, value in wanted.items():
            if key in space_args and space_args[key] != value:
                raise ValueError(
                    f"method 'pc': space argument {key}={space_args[key]!r} contradicts the "
                    f"method's {value!r}"
                )
        return {**space_args, **wanted}

    def on_build(self, ctx: SearchContext) -> None:
        if self.alpha_warmup_epochs >= ctx.settings.epochs:
            raise ValueError(
                f"method 'pc': alpha_warmup_epochs={self.alpha_warmup_epochs} leaves no α "
                f"update in {ctx.settings.epochs} epochs"
            )

    def update_alpha(self, ctx: SearchContext) -> bool:
        return ctx.epoch >= self.alpha_warmup_epochs

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        return {"pc.alpha_frozen": float(ctx.epoch < self.alpha_warmup_epochs)}


@register_method(
    "alpha_warmup",
    "α frozen for the first N epochs (PC-DARTS' warm-up alone)",
    args={"epochs": Int(0)},
)
class AlphaWarmup(MethodHook):
    """Args: epochs (α updates start at this epoch, ≥ 0). PC-DARTS' `--begin` (35 on
    ImageNet) without partial channels or edge normalization."""

    name = "alpha_warmup"
    data_parallel = True

    def __init__(self, epochs: int = 35) -> None:
        super().__init__()
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(
                f"method 'alpha_warmup': epochs must be an integer >= 0, got {epochs!r}"
            )
        self.epochs = epochs

    def on_build(self, ctx: SearchContext) -> None:
        if self.epochs >= ctx.settings.epochs:
            raise ValueError(
                f"method 'alpha_warmup': epochs={self.epochs} leaves no α update in "
                f"{ctx.settings.epochs} epochs"
            )

    def update_alpha(self, ctx: SearchContext) -> bool:
        return ctx.epoch >= self.epochs

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        return {"alpha_warmup.alpha_frozen": float(ctx.epoch < self.epochs)}
