"""K seeds of one search stepped together (`nasrepro run --pack-seeds K`), each seed's
checkpoints exactly those its own search would write.

`run_packed_search` is `engine.run_search` for K contexts at once: the seeds' supernets are
stacked into one vmapped step (search/multiseed.py; on CUDA optionally one CUDA graph,
search/graphed.py), each seed reads its own loader (its own split order, α draws and
augmentation, keyed by its seed as alone), and at the end of every epoch the stacked state
is written back into each seed's own supernet and optimizers, so each seed's epoch log and
engine state (`engine.engine_state`) are what `run_search` of that seed alone would give.
A packed checkpoint is therefore a plain single-seed checkpoint: a seed resumes packed or
alone from it, and after the search the trial goes on (selection, evaluation, record) as a
single trial would.

What can be packed: plain first-order DARTS (no method hooks; α-step order either way),
the weights clipped alone or with α in the norm (`clip_includes_alpha`, AutoDL's loops; no
`arch_grad_clip`), one process, every seed with the same configuration, BN running
statistics tracked or not.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch

from nasrepro.progress import Bar
from nasrepro.search.engine import (
    EpochLog,
    SearchContext,
    SearchDiverged,
    build_optimizers,
    engine_state,
    restore_engine_state,
)
from nasrepro.search.schedule import epoch_lr

__all__ = ["not_packable", "run_packed_search"]


def not_packable(config: dict[str, Any], processes: int = 1) -> str | None:
    """Why a trial configuration's search cannot be packed, or None when it can."""
    search = config.get("search")
    if search is None:
        return "a published cell or benchmark queries: no supernet is searched"
    from nasrepro.methods.base import search_hooks

    hooks = search_hooks(config.get("methods", []), config.get("method_args", {}))
    if hooks:
        names = "+".join(h.name for h in hooks)
        return f"method hooks {names} (packing runs plain DARTS only)"
    if search.get("stages"):
        return "a progressive search (a new supernet per stage)"
    if search.get("order", 1) != 1:
        return "second order (packing runs the first-order step only)"
    if search.get("arch_grad_clip") is not None:
        return "α's own gradient clipping (arch_grad_clip: not in the packed step)"
    if processes > 1:
        return "a data-parallel search"
    return None


def _param_names(net: torch.nn.Module) -> dict[int, str]:
    return {id(p): n for n, p in net.named_parameters()}


def _optimizer_pairs(
    ctxs: Sequence[SearchContext], multi: Any
) -> list[tuple[torch.optim.Optimizer, list[torch.optim.Optimizer], list[str]]]:
    """(stacked optimizer, the seeds' optimizers, parameter names in the stacked optimizer's
    order) for the weights and for α; the seeds' optimizers hold the same parameters."""
    out = []
    for stacked, attr in ((multi.w_optimizer, "w_optimizer"), (multi.a_optimizer, "a_optimizer")):
        names_of = {id(p): n for n, p in multi.params.items()}
        names = [names_of[id(p)] for g in stacked.param_groups for p in g["params"]]
        seeds = [getattr(ctx, attr) for ctx in ctxs]
        for ctx, opt in zip(ctxs, seeds, strict=True):
            mine = _param_names(ctx.supernet)
            have = [mine[id(p)] for g in opt.param_groups for p in g["params"]]
            if sorted(have) != sorted(names):
                raise ValueError(f"{attr}: a seed's optimizer holds other parameters than the pack")
        out.append((stacked, seeds, names))
    return out


def _state_to_pack(ctxs: Sequence[SearchContext], multi: Any) -> None:
    """Load the seeds' optimizer states (after a resume) into the stacked optimizers, and
    the gradient each seed's last α step left (the next clip norm counts it)."""
    with torch.no_grad():
        for name, left in multi.alpha_left.items():
            for s, ctx in enumerate(ctxs):
                grad = dict(ctx.supernet.named_parameters())[name].grad
                left[s].copy_(grad if grad is not None else torch.zeros_like(left[s]))
    for stacked, seeds, names in _optimizer_pairs(ctxs, multi):
        stacked_params = {id(p): n for n, p in multi.params.items()}
        per_seed = []
        for ctx, opt in zip(ctxs, seeds, strict=True):
            by_name = {n: p for n, p in ctx.supernet.named_parameters()}
            per_seed.append({n: opt.state.get(by_name[n], {}) for n in names})
        for g in stacked.param_groups:
            for p in g["params"]:
                name = stacked_params[id(p)]
                states = [s[name] for s in per_seed]
                if not any(states):
                    continue
                if not all(states) or len({tuple(sorted(s)) for s in states}) != 1:
                    raise ValueError(f"seeds' optimizer states of {name} differ in kind")
                packed: dict[str, Any] = {}
                for key in states[0]:
                    values = [s[key] for s in states]
                    if key == "step":  # the same count in every seed
                        counts = {float(v) for v in values}
                        if len(counts) != 1:
                            raise ValueError(f"seeds stand at different optimizer steps {counts}")
                        packed[key] = torch.tensor(counts.pop(), dtype=torch.float32)
                        if g.get("capturable") or g.get("fused"):
                            packed[key] = packed[key].to(p.device)
                    else:
                        packed[key] = torch.stack([v.to(p.device) for v in values])
                stacked.state[p] = packed


def _state_from_pack(ctxs: Sequence[SearchContext], multi: Any, lr: float) -> None:
    """Each seed's slice of the stacked parameters, buffers and optimizer states into the
    seed's own supernet and optimizers (what its own run would hold now). α's gradient is
    the engine's after an epoch: the last α step's when α steps last, else none (the
    weight step clears it)."""
    alpha_last = ctxs[0].settings.resolved_alpha_step() == "after_weights"
    with torch.no_grad():
        for s, ctx in enumerate(ctxs):
            packed = multi.seed_state(s)  # also holds non-persistent (constant) buffers
            ctx.supernet.load_state_dict({k: packed[k] for k in ctx.supernet.state_dict()})
            named = dict(ctx.supernet.named_parameters())
            for name in multi.alpha_names:
                last = multi.params[name].grad  # the last α step's, (seeds, ...)
                keep = alpha_last and last is not None
                named[name].grad = last[s].detach().clone() if keep else None
    for stacked, seeds, names in _optimizer_pairs(ctxs, multi):
        order = {n: i for i, n in enumerate(names)}
        flat = [p for g in stacked.param_groups for p in g["params"]]
        for s, (ctx, opt) in enumerate(zip(ctxs, seeds, strict=True)):
            by_name = {n: p for n, p in ctx.supernet.named_parameters()}
            for name, i in order.items():
                state = stacked.state.get(flat[i])
                if not state:
                    continue
                mine: dict[str, Any] = {}
                for key, value in state.items():
                    if key == "step":  # eager single-seed Adam keeps its count on the CPU
                        mine[key] = torch.tensor(float(value), dtype=torch.float32)
                    else:
                        mine[key] = value[s].detach().clone()
                opt.state[by_name[name]] = mine
    for ctx in ctxs:
        assert ctx.w_optimizer is not None
        for g in ctx.w_optimizer.param_groups:
            g["lr"] = lr


def run_packed_search(
    ctxs: Sequence[SearchContext],
    loaders: Sequence[Iterable[Sequence[torch.Tensor]]],
    steps_per_epoch: int,
    on_epoch_end: Callable[[int, EpochLog], None] | None = None,
    checkpoint: Callable[[int, dict[str, Any]], None] | None = None,
    resumes: Sequence[dict[str, Any] | None] | None = None,
    rng_states: Sequence[dict[str, Any]] | None = None,
    optimizer_impl: str = "default",
    graph: bool = False,
) -> list[list[EpochLog]]:
    """`run_search` for every context at once (module docstring); per seed s:
    `on_epoch_end(s, log)`, `checkpoint(s, state)` after every epoch, `resumes[s]` a state
    to continue from (all at the same epoch). `rng_states[s]`: the RNG state seed s's own
    search would hold (it draws nothing while searching): its checkpoints carry it.
    `graph`: replay each full-size step as one CUDA graph (CUDA only)."""
    from nasrepro.search.multiseed import MultiSeedSearch

    k = len(ctxs)
    if k < 1 or len(loaders) != k:
        raise ValueError(f"{k} contexts but {len(loaders)} loaders")
    s = ctxs[0].settings
    for ctx in ctxs:
        if ctx.settings != s:
            raise ValueError("packed seeds must share their search settings")
        if ctx.hooks or ctx.cuda_graph or ctx.channels_last or ctx.dist is not None:
            raise ValueError("packed seeds run plain contexts (no hooks, graphs, channels_last)")
        build_optimizers(ctx)
        ctx.supernet.to(ctx.device).train()
    resumes = list(resumes) if resumes is not None else [None] * k
    histories = [
        restore_engine_state(ctx, r, loader) if r is not None else []
        for ctx, r, loader in zip(ctxs, resumes, loaders, strict=True)
    ]
    if len({len(h) for h in histories}) != 1:
        raise ValueError("packed seeds must resume from the same epoch")
    if any(r is not None and r.get("finished") for r in resumes):
        return histories
    rngs = list(rng_states) if rng_states is not None else [None] * k
    multi = MultiSeedSearch([ctx.supernet for ctx in ctxs], s, optimizer_impl=optimizer_impl)
    _state_to_pack(ctxs, multi)
    device = ctxs[0].device
    graphed: Any = None
    steps = min(steps_per_epoch, s.steps_per_epoch or steps_per_epoch)
    start_epoch = len(histories[0])
    bar = Bar(f"search ({k} seeds packed)", (s.epochs - start_epoch) * steps)
    for epoch in range(start_epoch, s.epochs):
        for ctx in ctxs:
            ctx.epoch = epoch
        lr = epoch_lr(s.lr_schedule, s.lr, s.lr_min, epoch, s.epochs, s.lr_warmup_epochs)
        for g in multi.w_optimizer.param_groups:
            g["lr"] = lr
        sums = np.zeros((k, 4))
        n = 0
        start = time.perf_counter()
        iterators = [iter(loader) for loader in loaders]
        for step in bar.iterate(range(steps)):
            try:
                batches = [next(it) for it in iterators]
            except StopIteration:
                break
            x_w, y_w, x_a, y_a = (
                torch.stack([b[i] for b in batches]).to(device, non_blocking=True)
                for i in range(4)
            )
            if graph and (graphed is None or graphed.static[0].shape == x_w.shape):
                if graphed is None:
                    from nasrepro.search.graphed import GraphedMultiSeedStep

                    graphed = GraphedMultiSeedStep(multi, x_w, y_w, x_a, y_a, accuracy=True)
                out = graphed(x_w, y_w, x_a, y_a)
            else:  # eager (a CPU, or the short last batch of a graphed epoch)
                out = multi.step(x_w, y_w, x_a, y_a, check=False, accuracy=True)
            values = torch.stack(list(out)).double().cpu().numpy()  # the step's one sync
            if not np.isfinite(values).all():
                bad = [i for i in range(k) if not np.isfinite(values[:, i]).all()]
                raise SearchDiverged(
                    f"loss became non-finite at epoch {epoch} step {step} for packed seed "
                    f"slot(s) {bad}"
                )
            sums += values.T
            n += 1
        if n == 0:
            raise SearchDiverged(f"epoch {epoch} had no batches (empty search data)")
        seconds = time.perf_counter() - start
        _state_from_pack(ctxs, multi, lr)
        for i, (ctx, history, loader) in enumerate(zip(ctxs, histories, loaders, strict=True)):
            log = EpochLog(
                epoch=epoch,
                lr=lr,
                train_loss=float(sums[i, 0] / n),
                train_acc=float(sums[i, 1] / n),
                valid_loss=float(sums[i, 2] / n),
                valid_acc=float(sums[i, 3] / n),
                seconds=seconds,
                alpha={a: v.cpu().tolist() for a, v in ctx.supernet.alpha_softmax().items()},
            )
            history.append(log)
            if on_epoch_end is not None:
                on_epoch_end(i, log)
            if checkpoint is not None:
                state = engine_state(ctx, history, loader)
                if rngs[i] is not None:
                    state["rng"] = rngs[i]
                checkpoint(i, {**state, "finished": epoch + 1 == s.epochs})
        if any(not math.isfinite(h[-1].train_loss) for h in histories):
            raise SearchDiverged(f"non-finite epoch mean at epoch {epoch}")
    bar.close()
    return histories
