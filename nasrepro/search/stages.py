"""A progressive search: stages of fresh supernets, each mixing fewer ops per edge.

P-DARTS (Chen et al., 2019; chenxin061/pdarts train_search.py `main`, model_search.py):
- Each stage builds a new supernet (`Network(...)`: new weights, new α at 1e-3·randn, new
  SGD and Adam optimizers, a new cosine schedule over the stage's `--epochs`), with the
  stage's cells (`args.layers + add_layers[sp]`) and the op set every edge kept.
- Between stages the ops of smallest softmax(α) are dropped per edge (`get_min_k`: 8 -> 5
  -> 3, `none` competing like any op); nothing else is carried across (weights and α are
  new). The last stage's α is what the genotype is derived from (select/pdarts.py).
- Epochs before `eps_no_arch` (10) train the weights only; α steps start after.
- Dropout on the stride-1 skips at the stage's rate p0, decayed per epoch (`skip_dropout_rate`).

The stage runs the one engine (`run_search`) with a `StageHook`; what the runner saves
after every epoch is the engine state plus the stage index, its op sets and the earlier
stages' history, so a resumed trial continues inside the stage it stopped in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch

from nasrepro.methods.base import MethodHook
from nasrepro.search.engine import EpochLog, SearchContext, run_search

if TYPE_CHECKING:
    from nasrepro.spaces.base import Supernet
    from nasrepro.suite import SearchStage

# P-DARTS train_search.py: `scale_factor = 0.2`, the decay of the skip dropout once α trains.
SKIP_DROPOUT_DECAY = 0.2


def skip_dropout_rate(p0: float, epoch: int, epochs: int, frozen_epochs: int) -> float:
    """The skip dropout of `epoch` (0-based) in a stage of `epochs` epochs (train_search.py
    `main`): p0·(epochs − epoch − 1)/epochs while α is frozen, p0·exp(−0.2·(epoch −
    frozen_epochs)) after."""
    if epoch < frozen_epochs:
        return p0 * (epochs - epoch - 1) / epochs
    return p0 * math.exp(-(epoch - frozen_epochs) * SKIP_DROPOUT_DECAY)


def smallest_first(values: Sequence[float], k: int) -> list[int]:
    """Indices of the k smallest values, in the order `get_min_k` picks them (repeated
    np.argmin: the first index among equal values first)."""
    order = sorted(range(len(values)), key=lambda j: values[j])  # stable: ties by index
    return order[:k]


def prune_edges(
    probs: torch.Tensor, edge_ops: Sequence[tuple[str, ...]], keep: int
) -> tuple[tuple[str, ...], ...]:
    """Each edge's ops without the (|ops| − keep) of smallest softmax(α), in their order
    (train_search.py `get_min_k` on every row, `none` included, then the switches off)."""
    out = []
    for row, ops in zip(probs.tolist(), edge_ops, strict=True):
        if keep > len(ops):
            raise ValueError(f"cannot keep {keep} of the {len(ops)} ops {ops}")
        drop = set(smallest_first(row, len(ops) - keep))
        out.append(tuple(op for j, op in enumerate(ops) if j not in drop))
    return tuple(out)


class StageHook(MethodHook):
    """The stage's α-frozen warm-up and skip dropout, as hooks of the one engine."""

    name = "stage"
    data_parallel = True

    def __init__(self, index: int, stage: SearchStage, epochs: int) -> None:
        super().__init__()
        self.index, self.stage, self.epochs = index, stage, epochs
        self.rate = 0.0

    def on_epoch_start(self, ctx: SearchContext) -> None:
        self.rate = 0.0
        if self.stage.skip_dropout > 0:
            self.rate = skip_dropout_rate(
                self.stage.skip_dropout, ctx.epoch, self.epochs, self.stage.frozen_epochs
            )
            ctx.supernet.set_skip_dropout(self.rate)  # type: ignore[operator]

    def update_alpha(self, ctx: SearchContext) -> bool:
        return ctx.epoch >= self.stage.frozen_epochs

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        return {"stage": float(self.index), "skip_dropout": self.rate}


def _ops_json(net: Any) -> dict[str, list[list[str]]]:
    return {"normal": [list(o) for o in net.cell_ops.normal],
            "reduce": [list(o) for o in net.cell_ops.reduce]}  # fmt: skip


def _cell_ops(data: dict[str, list[list[str]]]) -> Any:
    from nasrepro.spaces.darts import CellOps

    return CellOps(
        tuple(tuple(o) for o in data["normal"]), tuple(tuple(o) for o in data["reduce"])
    )


def _widen(log: EpochLog, full: Any, ops: Any) -> None:
    """softmax(α) of a pruned stage as rows over the space's full op list (0 for the ops
    pruned away), so that every epoch of the history has the same columns."""
    for name in ("normal", "reduce"):
        rows = log.alpha.get(name)
        if rows is None:
            continue
        reduce = name == "reduce"
        log.alpha[name] = [
            [dict(zip(kept, row, strict=True)).get(op, 0.0) for op in names]
            for row, kept, names in zip(rows, ops.of(reduce), full.of(reduce), strict=True)
        ]


def run_stages(
    ctx: SearchContext,
    build: Callable[[dict[str, Any]], Supernet],
    loader: Iterable[tuple[torch.Tensor, ...]],
    steps_per_epoch: int,
    on_epoch_end: Callable[[EpochLog], None] | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
) -> list[EpochLog]:
    """`run_search`, or each of `settings.stages` in turn when the search has stages.

    `build(args)` returns a supernet of the experiment's space with `args` over its space
    arguments (`layers`, `c`, `partial_channels`, `cell_ops`, `skip_dropout`). The history
    numbers epochs across stages (stage k's epoch e is k·epochs + e) and carries `stage` and
    `skip_dropout` as diagnostics. Afterwards `ctx.supernet` is the last stage's supernet.
    """
    s = ctx.settings
    if not s.stages:
        return run_search(ctx, loader, steps_per_epoch, on_epoch_end, checkpoint, resume)
    full = getattr(ctx.supernet, "cell_ops", None)
    if full is None:
        raise ValueError("a progressive search (search.stages) needs a DARTS-cell space")
    ctx.cuda_graph = False  # the graphed step has no α-frozen epochs
    method_hooks = list(ctx.hooks)
    last = len(s.stages) - 1
    first, ops, earlier, stage_resume = 0, None, [], None
    if resume is not None:
        first = int(resume["stage"])
        ops = _cell_ops(resume["stage_ops"])
        earlier = [EpochLog(**h) for h in resume["stage_history"]]
        stage_resume = {**resume, "finished": resume["stage_finished"]}
    for index in range(first, last + 1):
        stage = s.stages[index]
        args: dict[str, Any] = {
            k: getattr(stage, k)
            for k in ("layers", "c", "partial_channels")
            if getattr(stage, k) is not None
        }
        if ops is not None:
            args["cell_ops"] = ops
        if stage.skip_dropout > 0:  # pdarts MixedOp builds the dropout only when p > 0
            args["skip_dropout"] = True
        net = build(args)
        ctx.supernet, ctx.hooks = net, [*method_hooks, StageHook(index, stage, s.epochs)]
        stage_ops = net.cell_ops  # type: ignore[attr-defined]
        offset = index * s.epochs

        def logged(log: EpochLog, offset: int = offset, stage_ops: Any = stage_ops) -> None:
            log.epoch += offset
            _widen(log, full, stage_ops)
            if on_epoch_end is not None:
                on_epoch_end(log)

        def save(
            state: dict[str, Any], index: int = index, net: Any = net, done: list = earlier
        ) -> None:
            assert checkpoint is not None
            checkpoint({
                **state,
                "stage": index,
                "stage_ops": _ops_json(net),
                "stage_history": [asdict(h) for h in done],
                "stage_finished": state["finished"],
                "finished": bool(state["finished"]) and index == last,
            })  # fmt: skip

        history = run_search(
            ctx, loader, steps_per_epoch, logged, save if checkpoint else None, stage_resume
        )
        stage_resume = None
        earlier = [*earlier, *history]
        if index < last:
            keep = s.stages[index + 1].ops_per_edge
            if keep is not None:
                soft = net.alpha_softmax()
                ops = _cell_ops({
                    "normal": prune_edges(soft["normal"], stage_ops.normal, keep),
                    "reduce": prune_edges(soft["reduce"], stage_ops.reduce, keep),
                })  # fmt: skip
            else:
                ops = stage_ops
    ctx.hooks = method_hooks
    return earlier
