"""The supernet's accuracy on the whole validation split, as the references' `infer()`.

quark0/darts, RobustDARTS and SmoothDARTS end every search epoch with
`infer(valid_queue, model, criterion)`: the supernet in eval mode, no gradients, one pass
over the validation split (RobustDARTS' `valid_queue` draws from the training set with the
training transform, so its images are augmented). RobustDARTS' selection between runs reads
that number (`results_perf`, 100 − valid_acc): its best-of-3 and its grids of searches are
scored with it, not with the train-mode accuracy on the α batches the epoch log keeps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext


def infer(ctx: SearchContext) -> tuple[float, float] | None:
    """(accuracy %, mean loss) of the supernet over ctx.valid_batches(ctx.epoch), in eval
    mode; None when the context has no validation split (a hand-built test context). The
    hooks' `augment` applies to these batches as to the search's (RobustDARTS' cutout)."""
    if ctx.valid_batches is None:
        return None
    from nasrepro.methods.base import MethodHook

    net = ctx.supernet
    augments = [h for h in ctx.hooks if type(h).augment is not MethodHook.augment]
    was_training = net.training
    net.eval()
    correct, loss_sum, n = 0, 0.0, 0
    try:
        with torch.no_grad():
            for x, y in ctx.valid_batches(ctx.epoch):
                x, y = x.to(ctx.device), y.to(ctx.device)
                for hook in augments:
                    x = hook.augment(ctx, x)
                logits = net(x)
                loss_sum += float(ctx.criterion(logits, y)) * len(y)
                correct += int((logits.argmax(dim=1) == y).sum())
                n += len(y)
    finally:
        net.train(was_training)
    if n == 0:
        raise ValueError("the validation split is empty: nothing to score the supernet on")
    return 100.0 * correct / n, loss_sum / n


def selection_score(ctx: SearchContext, value: float, epoch: int, how: str) -> None:
    """Record the number a best-of-N selection reads for this search (`search.valid_acc` of
    the record, preferred by the report's `select_by: search_valid_acc`)."""
    ctx.state["search_valid_acc"] = {"value": float(value), "epoch": int(epoch), "how": how}
