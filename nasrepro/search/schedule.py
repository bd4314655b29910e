"""Learning-rate schedules of the search phase."""

from __future__ import annotations

import math
from typing import Any

# `cosine_shifted`: epoch e trains at cosine(e + 1). SmoothDARTS' train_search.py calls
# `scheduler.step()` at the start of each epoch, before the epoch's first optimizer step, and
# its `torch.utils.tensorboard` import needs torch >= 1.1. From torch 1.1 on a scheduler steps
# once when it is built, so that call moves epoch e to cosine(e + 1) and the last epoch to
# eta_min. Under torch <= 1.0 the same call gave cosine(e) (quark0/darts' and PC-DARTS' codes
# ran there): `cosine`.
SCHEDULES = ("cosine", "cosine_shifted", "linear")


def cosine_lr(base_lr: float, eta_min: float, epoch: int, epochs: int) -> float:
    """Cosine annealing evaluated once per epoch, T_max = epochs.

    Both references compute the same value: AutoDL's CosineAnnealingLR.get_lr() uses only
    the integer epoch after warm-up (xautodl/procedures/optimizers.py, called every
    iteration but constant within an epoch), and quark0/darts steps torch's
    CosineAnnealingLR(T_max=epochs) at each epoch start. The last epoch therefore runs
    slightly above eta_min.
    """
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def linear_lr(base_lr: float, eta_min: float, epoch: int, epochs: int) -> float:
    """Linear decay from base_lr at epoch 0 towards eta_min at `epochs`, once per epoch
    (Λ-DARTS' ImageNet search, paper 003 A.7: "linearly decayed to 0.0")."""
    return eta_min + (base_lr - eta_min) * (1 - epoch / epochs)


def epoch_lr(
    schedule: str, base_lr: float, eta_min: float, epoch: int, epochs: int, warmup: int = 0
) -> float:
    """The weight lr of `epoch`: the first `warmup` epochs ramp as base_lr·(epoch + 1)/warmup
    (PC-DARTS train_search_imagenet.py, which overrides its cosine schedule so for
    epoch < 5), then `schedule` at that epoch: `cosine`, `cosine_shifted` (cosine one epoch
    ahead, SmoothDARTS' code as it ran; see SCHEDULES) or `linear`."""
    if epoch < warmup:
        return base_lr * (epoch + 1) / warmup
    if schedule == "linear":
        return linear_lr(base_lr, eta_min, epoch, epochs)
    if schedule == "cosine_shifted":
        return cosine_lr(base_lr, eta_min, epoch + 1, epochs)
    if schedule != "cosine":
        raise ValueError(f"unknown lr schedule {schedule!r} (known: {', '.join(SCHEDULES)})")
    return cosine_lr(base_lr, eta_min, epoch, epochs)


def set_cosine_t_max(ctx: Any, t_max: int, where: str) -> None:
    """Set this epoch's weight lr to the plain cosine at T_max = `t_max` instead of the
    search's epochs (AutoDL's ENAS and GAEA's configs anneal over a T_max of their own).
    `where` names the method argument in the error for any other schedule."""
    s = ctx.settings
    if s.lr_schedule != "cosine" or s.lr_warmup_epochs:
        raise ValueError(f"{where} needs the plain cosine schedule")
    assert ctx.w_optimizer is not None
    lr = cosine_lr(s.lr, s.lr_min, ctx.epoch, t_max)
    for group in ctx.w_optimizer.param_groups:
        group["lr"] = lr
