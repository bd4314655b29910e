"""Method hooks: small objects whose optional callbacks change the search engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext


class MethodHook:
    """Every callback is optional; the defaults leave the engine as plain DARTS."""

    name = "base"
    # Whether the hook is right when each process of a data-parallel search sees only its
    # slice of the batch and gradients are averaged after the hooks ran (distributed.py).
    # A hook that reads per-step gradients (Λ's layer alignment) or derives statistics from
    # one batch must stay False: such a search then runs in one process.
    data_parallel = False
    # The engine's defaults themselves (plain DARTS): the trial drops such a hook, so the
    # step is the plain one that CUDA graphs and packed seeds run.
    engine_default = False

    def __init__(self, **args: Any) -> None:
        if args:
            raise ValueError(f"method {self.name!r} takes no arguments, got {sorted(args)}")

    def configure_space(self, space_args: dict[str, Any]) -> dict[str, Any]:
        """Space arguments before the supernet is built (e.g. PC-DARTS' partial channels)."""
        return space_args

    def on_build(self, ctx: SearchContext) -> None:
        """After the supernet exists, before optimizers are built."""

    def trainable_weights(
        self, ctx: SearchContext, params: list[torch.nn.Parameter]
    ) -> list[torch.nn.Parameter]:
        return params

    def on_epoch_start(self, ctx: SearchContext) -> None:
        """Before the first step of `ctx.epoch`."""

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Per-cell mixing weights for the weight step's forward (default softmax(α) per cell).

        Hooks compose in order: SDARTS-RS perturbs them, Λ-DARTS makes per-cell leaf copies
        whose gradients it reads in `after_weight_backward`.
        """
        return weights

    def after_weight_backward(self, ctx: SearchContext, x: torch.Tensor, y: torch.Tensor) -> None:
        """Weight gradients of the training loss exist; add to them before clipping."""

    def arch_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Per-cell mixing weights for the first-order α step's forward (default
        softmax(α) per cell; DrNAS samples them from a Dirichlet, SNAS from a Gumbel-softmax).
        Hooks compose in order, as in `weight_step_cell_weights`."""
        return weights

    def arch_loss(self, ctx: SearchContext, loss: torch.Tensor) -> torch.Tensor:
        """The first-order α step's objective from the validation loss: a regulariser on α
        is added here (β-DARTS' Beta-decay term, DrNAS' KL term)."""
        return loss

    # A hook that sets this takes over the whole α step (`arch_step`): the gradient and the
    # update (GAEA's exponentiated gradient, iDARTS' implicit hypergradient). At most one.
    owns_arch_step = False

    def arch_step(
        self,
        ctx: SearchContext,
        x_w: torch.Tensor,
        y_w: torch.Tensor,
        x_a: torch.Tensor,
        y_a: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The α step of a hook with `owns_arch_step`: update α, return (loss, logits)."""
        raise NotImplementedError(f"method {self.name!r} does not own the α step")

    def after_arch_step(self, ctx: SearchContext, x: torch.Tensor, y: torch.Tensor) -> None:
        """After the α step on validation batch (x, y) (DARTS-ES reads the α Hessian here)."""

    def augment(self, ctx: SearchContext, x: torch.Tensor) -> torch.Tensor:
        """A batch of images before the step sees it (weight and α batches, and the passes
        over the validation split): R-DARTS(DP)'s scheduled cutout."""
        return x

    def update_alpha(self, ctx: SearchContext) -> bool:
        """Whether α is updated this step."""
        return True

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        """Diagnostics to log for the epoch that just ended."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """State that must survive a resume (tensors, numbers, strings, lists, dicts)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def should_stop(self, ctx: SearchContext, history: list[Any]) -> bool:
        """Early-stop criteria (DARTS+, DARTS-ES): True ends the search after this epoch."""
        return False

    # Set by a hook whose `restart` may return -1: the engine then keeps the state from
    # before the first epoch (in memory and in every checkpoint) to restore it.
    restarts_from_start = False

    def restart(self, ctx: SearchContext, history: list[Any]) -> int | None:
        """After an epoch ended: None goes on. An epoch e >= 0: the hook has restored the
        state the search had at the end of e (DARTS-ADA's rollback); the engine drops the
        later epochs from the history and continues with e + 1. -1: the engine restores its
        state from before the first epoch (weights, α, optimizers, random streams, data
        order, every other hook) and starts over (R-DARTS' grid of searches)."""
        return None


def build_hooks(methods: list[str], method_args: dict[str, dict[str, Any]]) -> list[MethodHook]:
    from nasrepro import catalog

    return [catalog.get("method", m)(**method_args.get(m, {})) for m in methods]


def search_hooks(methods: list[str], method_args: dict[str, dict[str, Any]]) -> list[MethodHook]:
    """The hooks a search runs: `build_hooks` without those that are the engine's defaults
    (`methods: [darts]` is plain DARTS: no hook at all)."""
    return [h for h in build_hooks(methods, method_args) if not h.engine_default]
