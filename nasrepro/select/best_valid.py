"""Selection from the epoch whose supernet had the best validation accuracy.

DARTS- (paper 001) says it derives the architecture "from the best validation supernet";
its code (Meituan-AutoML/DARTS- train_search.py) keeps the last epoch's genotype. `argmax`
is the code's behaviour, this selector the paper's. The validation accuracy of an epoch is
the search's own: the supernet's accuracy on the α batches of that epoch (train mode, the
α split), `EpochLog.valid_acc`; ties go to the earliest epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from nasrepro.catalog import register_selector
from nasrepro.select.selective_stop import derive_from_weights
from nasrepro.spaces.base import SearchSpace, Supernet


def best_valid_epoch(history: Sequence[Any]) -> int:
    """Index into `history` of the first epoch with the highest finite valid_acc."""
    scored = [(h.valid_acc, -i) for i, h in enumerate(history) if math.isfinite(h.valid_acc)]
    if not scored:
        raise ValueError("best_valid: no epoch of the search has a validation accuracy")
    return -max(scored)[1]


@register_selector(
    "best_valid", "the argmax genotype of the best-validation epoch (DARTS- paper)", args={}
)
def best_valid(
    space: SearchSpace, supernet: Supernet, *, ctx: Any, history: Sequence[Any], **_: Any
) -> Any:
    if not history:
        raise ValueError("best_valid needs the per-epoch history of the search")
    index = best_valid_epoch(history)
    log = history[index]
    weights = [torch.tensor(log.alpha[n]) for n in supernet.alpha_names()]
    genotype = derive_from_weights(space, supernet, weights)
    if ctx is not None:
        ctx.state["selection"] = {
            "selector": "best_valid",
            "epoch": int(log.epoch),
            "valid_acc": float(log.valid_acc),
            "last_epoch": int(history[-1].epoch),
            "last_genotype": space.format_genotype(space.derive_argmax(supernet)),
            "genotype": space.format_genotype(genotype),
        }
    return genotype
