"""DARTS- (Chu et al., ICLR 2021; paper 001): an auxiliary skip connection β·aux(x) on every
edge, with β decayed over the search so the supernet ends close to plain DARTS.

Edge output (paper Eq. 4): ō(x) = β·x + Σ_o softmax(α)_o·o(x). The auxiliary branch is the
identity, or FactorizedReduce(C, C, affine=False) on stride-2 edges, or (ablation "The choice
of auxiliary branch", §4.4) a learnable 1×1 convolution initialised to the identity.
Reference: Meituan-AutoML/DARTS- src/search/model_search.py (MixedOp.auxiliary_op) and
src/utils.py (DecayScheduler), stepped once at the start of every epoch (train_search.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from nasrepro.catalog import Choice, Float, Int, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.spaces.mixed import MixedOp

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

Decay = Literal["linear", "cosine", "step", "constant"]
Aux = Literal["skip", "conv1x1"]
DECAYS: tuple[str, ...] = ("linear", "cosine", "step", "constant")
AUXES: tuple[str, ...] = ("skip", "conv1x1")


def linear_beta(beta0: float, epoch: int, t_max: int, t_start: int = 0) -> float:
    """DecayScheduler 'linear': β0·(T_max − epoch)/(T_max − T_start) from T_start on, β0 before.

    Stepped at epochs 0..T_max−1 it runs β0 → β0/(T_max − T_start) (1.0 → 0.02 for 50
    epochs): the code never reaches the 0 the paper's text (§3.2) describes.
    """
    if epoch < t_start:
        return beta0
    return beta0 * (t_max - epoch) / (t_max - t_start)


def cosine_beta(beta0: float, epoch: int, t_max: int, t_start: int = 0) -> float:
    """Cosine decay "scheduled to zero" (§4.4): β0·(1 + cos(π·(epoch − T_start)/(T_max −
    T_start)))/2 from T_start on, β0 before.

    DecayScheduler 'cosine' writes cos(π·epoch/(T_max − T_start)); that equals this for
    T_start = 0 (the paper's runs) and is not a decay from T_start otherwise.
    """
    if epoch < t_start:
        return beta0
    return beta0 * (1.0 + math.cos(math.pi * (epoch - t_start) / (t_max - t_start))) / 2.0


def step_beta(beta0: float, epoch: int, step_epoch: int) -> float:
    """Step decay (§4.4, "step decay at epoch 45"): β0 before `step_epoch`, 0 from it on."""
    return beta0 if epoch < step_epoch else 0.0


def beta_at(
    epoch: int,
    epochs: int,
    *,
    beta0: float,
    decay: Decay,
    decay_epochs: int | None = None,
    step_epoch: int | None = None,
) -> float:
    """β for 0-based `epoch` of an `epochs`-long search.

    linear/cosine decay over the last `decay_epochs` epochs (None = all of them; Table 8's
    long searches keep β = 1 "until for last 50 epochs we decay β to 0": decay_epochs=50);
    step drops to 0 at `step_epoch` (None = 9/10 of the epochs); constant keeps β0 (Fig. 16,
    and the reference code's default `--decay None`).
    """
    if decay == "constant":
        return beta0
    if decay == "step":
        at = default_step_epoch(epochs) if step_epoch is None else step_epoch
        return step_beta(beta0, epoch, at)
    t_start = epochs - (epochs if decay_epochs is None else decay_epochs)
    if decay == "linear":
        return linear_beta(beta0, epoch, epochs, t_start)
    return cosine_beta(beta0, epoch, epochs, t_start)


def default_step_epoch(epochs: int) -> int:
    """§4.4 "The step decay at epoch 45" of the 50-epoch search: 9/10 of the epochs."""
    return epochs * 9 // 10


class AuxiliaryBranch(nn.Module):
    """β·aux(x), appended to a MixedOp's `extras`; the hook sets `beta` every epoch."""

    def __init__(self, op: nn.Module, beta: float) -> None:
        super().__init__()
        self.op = op
        self.beta = beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.beta * self.op(x)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


def identity_conv1x1(channels: int) -> nn.Conv2d:
    """C→C 1×1 conv without bias, weight = identity (§4.4: "initialized with an identity
    tensor"; DARTS- model_search.py `auxiliary_operation == 'conv1'`)."""
    conv = nn.Conv2d(channels, channels, 1, padding=0, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
    return conv


def edge_channels(mixed: MixedOp) -> int:
    """The edge's full channel count: `MixedOp.channels` when the space sets it, else the
    input channels of its first convolution (times K on a partial-channel edge, whose ops
    see C/K channels)."""
    channels = getattr(mixed, "channels", None)
    if channels is not None:
        return int(channels)
    for module in mixed.ops.modules():
        if isinstance(module, nn.Conv2d):
            return int(module.in_channels) * int(getattr(mixed, "k", 1))
    raise ValueError(
        "method 'darts_minus': cannot tell the channel count of an edge without convolutions "
        "(the space should set MixedOp.channels)"
    )


def auxiliary_op(mixed: MixedOp, aux: Aux) -> nn.Module:
    """The branch DARTS- adds to one edge (model_search.py MixedOp.__init__)."""
    if mixed.stride == 2:
        # Stride-2 edges need a reduction whatever `aux` says: FactorizedReduce(C, C,
        # affine=False), as the reference does for both 'skip' and 'conv1'.
        from nasrepro.spaces.darts_ops import FactorizedReduce

        c = edge_channels(mixed)
        return FactorizedReduce(c, c, affine=False)
    if mixed.stride != 1:
        raise ValueError(f"method 'darts_minus': unsupported edge stride {mixed.stride}")
    if aux == "skip":
        return nn.Identity()
    return identity_conv1x1(edge_channels(mixed))


@register_method(
    "darts_minus",
    "DARTS-: auxiliary skip β·x on every edge, β decayed from β0",
    args={
        "beta0": Float(0),
        "decay": Choice("linear", "cosine", "step", "constant"),
        "decay_epochs": Int(1, nullable=True),
        "step_epoch": Int(0, nullable=True),
        "aux": Choice("skip", "conv1x1"),
    },
)
class DartsMinus(MethodHook):
    """Args: beta0 (≥ 0), decay (linear | cosine | step | constant), decay_epochs (final
    epochs over which linear/cosine decay, None = all), step_epoch (step only; None = 9/10
    of the epochs), aux (skip | conv1x1)."""

    name = "darts_minus"

    def __init__(
        self,
        beta0: float = 1.0,
        decay: Decay = "linear",
        decay_epochs: int | None = None,
        step_epoch: int | None = None,
        aux: Aux = "skip",
        **unknown: Any,
    ) -> None:
        super().__init__()
        if unknown:
            raise ValueError(
                f"method 'darts_minus': unknown argument(s) {sorted(unknown)} "
                "(known: beta0, decay, decay_epochs, step_epoch, aux)"
            )
        if isinstance(beta0, bool) or not isinstance(beta0, int | float):
            raise ValueError(f"method 'darts_minus': beta0 must be a number, got {beta0!r}")
        if not math.isfinite(beta0) or beta0 < 0:
            raise ValueError(f"method 'darts_minus': beta0 must be finite and >= 0, got {beta0}")
        if decay not in DECAYS:
            raise ValueError(
                f"method 'darts_minus': decay must be one of {', '.join(DECAYS)}, got {decay!r}"
            )
        if aux not in AUXES:
            raise ValueError(
                f"method 'darts_minus': aux must be one of {', '.join(AUXES)}, got {aux!r}"
            )
        _check_positive_int("decay_epochs", decay_epochs)
        _check_positive_int("step_epoch", step_epoch)
        if decay_epochs is not None and decay not in ("linear", "cosine"):
            raise ValueError(
                f"method 'darts_minus': decay_epochs applies to linear/cosine decay, not {decay!r}"
            )
        if step_epoch is not None and decay != "step":
            raise ValueError(
                f"method 'darts_minus': step_epoch applies to step decay, not {decay!r}"
            )
        self.beta0 = float(beta0)
        self.decay: Decay = decay
        self.decay_epochs = decay_epochs
        self.step_epoch = step_epoch
        self.aux: Aux = aux
        self.branches: list[AuxiliaryBranch] = []
        self.beta = self.beta0

    def on_build(self, ctx: SearchContext) -> None:
        epochs = ctx.settings.epochs
        if self.decay_epochs is not None and self.decay_epochs > epochs:
            raise ValueError(
                f"method 'darts_minus': decay_epochs={self.decay_epochs} exceeds the "
                f"{epochs} search epochs"
            )
        if self.step_epoch is not None and self.step_epoch >= epochs:
            raise ValueError(
                f"method 'darts_minus': step_epoch={self.step_epoch} must be below the "
                f"{epochs} search epochs"
            )
        self.beta = self.beta_for(0, epochs)
        self.branches = []
        for mixed in ctx.supernet.mixed_ops():
            branch = AuxiliaryBranch(auxiliary_op(mixed, self.aux), self.beta)
            mixed.extras.append(branch)
            self.branches.append(branch)
        if not self.branches:
            raise ValueError("method 'darts_minus': the supernet has no mixed edges")

    def beta_for(self, epoch: int, epochs: int) -> float:
        return beta_at(
            epoch,
            epochs,
            beta0=self.beta0,
            decay=self.decay,
            decay_epochs=self.decay_epochs,
            step_epoch=self.step_epoch,
        )

    def on_epoch_start(self, ctx: SearchContext) -> None:
        # Reference: beta_decay_scheduler.step(epoch) before the epoch's first step.
        self.beta = self.beta_for(ctx.epoch, ctx.settings.epochs)
        for branch in self.branches:
            branch.beta = self.beta

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        return {"darts_minus.beta": self.beta}


def _check_positive_int(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"method 'darts_minus': {name} must be a positive integer or null, got {value!r}"
        )
