"""Learning-rate schedules of the search phase."""

from __future__ import annotations

import math


def cosine_lr(base_lr: float, eta_min: float, epoch: int, epochs: int) -> float:
    """Cosine annealing evaluated once per epoch, T_max = epochs.

    Both references compute the same value: AutoDL's CosineAnnealingLR.get_lr() uses only
    the integer epoch after warm-up (xautodl/procedures/optimizers.py, called every
    iteration but constant within an epoch), and quark0/darts steps torch's
    CosineAnnealingLR(T_max=epochs) at each epoch start. The last epoch therefore runs
    slightly above eta_min.
    """
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2
