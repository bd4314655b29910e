"""Per-step cost of the Λ-DARTS regularizer over plain DARTS-1st on the NB201 supernet.

The paper (Eq. 13 and Appendix A.8) prices the regularizer in forward/backward passes: DARTS-1st
makes two per step (weights, α), central differences add two (2× DARTS), the forward or
backward difference adds one (1.5×). `time_lambda_overhead` measures the whole bilevel step
(the engine's `weight_step` + `arch_step`, hooks included) so the ratios compare with those.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nasrepro.methods.base import MethodHook
from nasrepro.methods.lambda_darts import LambdaDarts
from nasrepro.search.engine import SearchContext, arch_step, build_optimizers, weight_step
from nasrepro.search.multiseed import nb201_darts_settings
from nasrepro.spaces.nb201 import Nb201Supernet
from nasrepro.timing import median_step_ms

# (row name, Λ-DARTS arguments or None for plain DARTS-1st)
VARIANTS: tuple[tuple[str, dict[str, Any] | None], ...] = (
    ("darts-1st", None),
    ("lambda-central", {"difference": "central"}),
    ("lambda-forward_backward", {"difference": "forward_backward"}),
    ("lambda-central-batched", {"difference": "central", "batched": True}),
)


def _step_fn(
    lambda_args: dict[str, Any] | None,
    space_args: dict[str, Any],
    batch: int,
    image_size: int,
    device: torch.device,
    num_classes: int,
) -> Any:
    torch.manual_seed(0)
    net = Nb201Supernet(num_classes, **space_args).to(device).train()
    hooks: list[MethodHook] = [] if lambda_args is None else [LambdaDarts(**lambda_args)]
    settings = nb201_darts_settings()
    ctx = SearchContext(
        supernet=net, settings=settings, hooks=hooks, device=device, criterion=nn.CrossEntropyLoss()
    )
    for hook in hooks:
        hook.on_build(ctx)
    build_optimizers(ctx)
    # Mid-search epoch: λ_t > 0, so the extra passes run with gradients (epoch 0: forward only).
    ctx.epoch = settings.epochs // 2
    for hook in hooks:
        hook.on_epoch_start(ctx)
    gen = torch.Generator().manual_seed(1)
    shape = (batch, 3, image_size, image_size)
    xw, xa = (torch.randn(shape, generator=gen).to(device) for _ in range(2))
    yw, ya = (torch.randint(0, num_classes, (batch,), generator=gen).to(device) for _ in range(2))

    def step() -> None:
        weight_step(ctx, xw, yw)  # AutoDL DARTS-V1 / Λ-DARTS order: weights, then α
        arch_step(ctx, xw, yw, xa, ya)

    return step


def time_lambda_overhead(
    device: str | torch.device,
    steps: int = 10,
    warmup: int = 2,
    batch: int = 64,
    image_size: int = 32,
    space_args: dict[str, Any] | None = None,
    num_classes: int = 10,
    variants: tuple[tuple[str, dict[str, Any] | None], ...] = VARIANTS,
) -> list[dict[str, Any]]:
    """Median bilevel step time per variant and its ratio to DARTS-1st (same net and data)."""
    dev = torch.device(device)
    args = {"c": 16, "n": 5, "track_running_stats": False, **(space_args or {})}
    rows: list[dict[str, Any]] = []
    darts_ms: float | None = None
    for name, lambda_args in variants:
        step = _step_fn(lambda_args, args, batch, image_size, dev, num_classes)
        ms = median_step_ms(step, dev, steps, warmup)
        if lambda_args is None:
            darts_ms = ms
        rows.append(
            {
                "method": name,
                "step_ms": round(ms, 3),
                "ratio_to_darts": None if darts_ms is None else round(ms / darts_ms, 3),
                "batch": batch,
                "image_size": image_size,
                "space_args": args,
                "device": str(dev),
                "steps": steps,
            }
        )
    return rows
