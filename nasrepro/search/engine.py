"""One bilevel search loop (DARTS); every method is hooks on it.

Per step: a weight step on a training batch (SGD, Nesterov optional, clipped) and an
architecture step on a validation batch (Adam on α), in the order the setting names.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nasrepro.methods.base import MethodHook
from nasrepro.progress import Bar
from nasrepro.search.schedule import epoch_lr
from nasrepro.search.unrolled import unrolled_arch_grad
from nasrepro.spaces.base import Supernet

if TYPE_CHECKING:  # keeps the engine importable without pydantic (e.g. on a bare GPU box)
    from nasrepro.suite import SearchSettings


class SearchDiverged(RuntimeError):
    """The search produced a non-finite loss; nothing of the trial is recorded."""


@dataclass
class EpochLog:
    epoch: int
    lr: float
    train_loss: float
    train_acc: float
    valid_loss: float
    valid_acc: float
    seconds: float
    alpha: dict[str, list[list[float]]]
    diagnostics: dict[str, float] = field(default_factory=dict)


@dataclass
class SearchContext:
    supernet: Supernet
    settings: SearchSettings
    hooks: list[MethodHook]
    device: torch.device
    criterion: nn.Module
    epoch: int = 0
    step: int = 0
    w_optimizer: torch.optim.SGD | None = None
    a_optimizer: torch.optim.Adam | None = None
    state: dict[str, Any] = field(default_factory=dict)
    # The trial's checkpoint file, beside which stages after the search (PT tuning) keep
    # their own progress; None when the trial is not checkpointed.
    checkpoint: Path | None = None
    # This process's place in a data-parallel search (nasrepro.distributed.Dist); None alone.
    dist: Any = None
    # Replay each first-order step as one CUDA graph (search/graphed.py; `nasrepro run
    # --fast`): same fp32 math, far fewer kernel launches. Plain DARTS on CUDA only.
    cuda_graph: bool = False
    # Supernet and batches in channels_last memory format (`nasrepro run --fast` where it
    # wins: oneDNN convolutions on a CPU at full size); same fp32 math.
    channels_last: bool = False
    # valid_batches(epoch): one pass over the whole α (validation) split as (x, y) batches,
    # for methods that score the supernet as the references' infer() does (search/infer.py);
    # None where the search has no such split (hand-built contexts in tests).
    valid_batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]] | None = None
    # The weight step's batch while its hooks run (SDARTS-ADV attacks α on it).
    weight_batch: tuple[torch.Tensor, torch.Tensor] | None = None


def seed_everything(seed: int, deterministic: bool) -> None:
    if deterministic:
        # cuBLAS needs a fixed workspace for deterministic matmuls (set before CUDA starts)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=False)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic


def build_optimizers(ctx: SearchContext) -> None:
    s = ctx.settings
    weights = [p for p in ctx.supernet.weight_parameters() if p.requires_grad]
    for hook in ctx.hooks:
        weights = hook.trainable_weights(ctx, weights)
    ctx.w_optimizer = torch.optim.SGD(
        weights, lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay
    )
    ctx.a_optimizer = torch.optim.Adam(
        ctx.supernet.arch_parameters(),
        lr=s.arch_lr,
        betas=tuple(s.arch_betas),
        weight_decay=s.arch_weight_decay,
    )


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (logits.argmax(dim=1) == y).float().mean().item() * 100.0


def _check_finite(loss: torch.Tensor, ctx: SearchContext, what: str) -> None:
    if not math.isfinite(loss.item()):
        raise SearchDiverged(
            f"{what} loss became {loss.item()} at epoch {ctx.epoch} step {ctx.step}"
        )


def _capture(
    ctx: SearchContext, x_w: torch.Tensor, y_w: torch.Tensor, x_a: torch.Tensor, y_a: torch.Tensor
) -> Any:
    from nasrepro.search.graphed import graph_first_order_step

    return graph_first_order_step(ctx, x_w, y_w, x_a, y_a)


def average_gradients(ctx: SearchContext, params: list[torch.nn.Parameter]) -> None:
    """Data-parallel search: every rank's gradients become the mean over ranks (= the
    gradient of the global batch's mean loss), in one flat all-reduce."""
    if ctx.dist is None or ctx.dist.world == 1:
        return
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= ctx.dist.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def weight_step(ctx: SearchContext, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    net, opt = ctx.supernet, ctx.w_optimizer
    assert opt is not None
    opt.zero_grad(set_to_none=True)
    ctx.weight_batch = (x, y)
    weights = net.cell_weights()
    if not ctx.hooks and not getattr(ctx.settings, "clip_includes_alpha", False):
        # α's gradient of the training loss is dropped below: without hooks that might read
        # it (or a clip norm over it), detaching skips its backward (same weight grads).
        weights = [w.detach() for w in weights]
    for hook in ctx.hooks:
        weights = hook.weight_step_cell_weights(ctx, weights)
    logits = net(x, cell_weights=weights)
    loss = ctx.criterion(logits, y)
    _check_finite(loss, ctx, "training")
    loss.backward()
    for hook in ctx.hooks:
        hook.after_weight_backward(ctx, x, y)
    params = [p for g in opt.param_groups for p in g["params"]]
    average_gradients(ctx, params)
    if ctx.settings.grad_clip is not None:
        # With α in the norm (AutoDL's loops), α.grad holds what the last α step left plus
        # the weight loss' α gradient, as in `clip_grad_norm_(network.parameters(), 5)`.
        clipped = params + (net.arch_parameters() if ctx.settings.clip_includes_alpha else [])
        nn.utils.clip_grad_norm_(clipped, ctx.settings.grad_clip)
    opt.step()
    # α gets gradients from the weight loss too; they must not leak into the α step (the
    # references zero α's gradient before it).
    for a in net.arch_parameters():
        a.grad = None
    return loss.item(), _accuracy(logits.detach(), y)


def _arch_step_owner(ctx: SearchContext) -> MethodHook | None:
    owners = [h for h in ctx.hooks if h.owns_arch_step]
    if len(owners) > 1:
        raise ValueError(f"methods {[h.name for h in owners]} each take over the α step")
    return owners[0] if owners else None


def _arch_cell_weights(ctx: SearchContext) -> list[torch.Tensor] | None:
    """The α step's per-cell mixing weights when a hook changes them, else None (the
    supernet's own softmax(α), the plain DARTS path unchanged)."""
    changing = [
        h
        for h in ctx.hooks
        if type(h).arch_step_cell_weights is not MethodHook.arch_step_cell_weights
    ]
    if not changing:
        return None
    weights = ctx.supernet.cell_weights()
    for hook in changing:
        weights = hook.arch_step_cell_weights(ctx, weights)
    return weights


def arch_step(
    ctx: SearchContext, x_w: torch.Tensor, y_w: torch.Tensor, x_a: torch.Tensor, y_a: torch.Tensor
) -> tuple[float, float]:
    net, opt = ctx.supernet, ctx.a_optimizer
    assert opt is not None and ctx.w_optimizer is not None
    opt.zero_grad(set_to_none=True)
    owner = _arch_step_owner(ctx)
    if owner is not None:  # the method computes the gradient and updates α itself (GAEA)
        loss, logits = owner.arch_step(ctx, x_w, y_w, x_a, y_a)
        _check_finite(loss, ctx, "validation")
        for hook in ctx.hooks:
            hook.after_arch_step(ctx, x_a, y_a)
        return loss.item(), _accuracy(logits.detach(), y_a)
    if ctx.settings.order == 2:
        loss, logits = unrolled_arch_grad(
            net, ctx.criterion, x_w, y_w, x_a, y_a, ctx.w_optimizer, ctx.settings.unrolled_r
        )
    else:
        logits = net(x_a, cell_weights=_arch_cell_weights(ctx))
        loss = ctx.criterion(logits, y_a)
        for hook in ctx.hooks:
            loss = hook.arch_loss(ctx, loss)
        grads = torch.autograd.grad(loss, net.arch_parameters())
        for a, g in zip(net.arch_parameters(), grads, strict=True):
            a.grad = g
    _check_finite(loss, ctx, "validation")
    average_gradients(ctx, net.arch_parameters())
    if ctx.settings.arch_grad_clip is not None:  # PC-DARTS' ImageNet search clips α (and β)
        nn.utils.clip_grad_norm_(net.arch_parameters(), ctx.settings.arch_grad_clip)
    opt.step()
    for hook in ctx.hooks:
        hook.after_arch_step(ctx, x_a, y_a)
    return loss.item(), _accuracy(logits.detach(), y_a)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(obj: Any) -> Any:
    """random.setstate needs tuples where a round trip may have produced lists."""
    return tuple(_tuples(x) for x in obj) if isinstance(obj, list | tuple) else obj


def engine_state(ctx: SearchContext, history: list[EpochLog], loader: Any) -> dict[str, Any]:
    """Everything the next epoch depends on, as plain tensors and containers."""
    assert ctx.w_optimizer is not None and ctx.a_optimizer is not None
    return {
        "epoch": len(history),
        "supernet": ctx.supernet.state_dict(),
        "w_optimizer": ctx.w_optimizer.state_dict(),
        "a_optimizer": ctx.a_optimizer.state_dict(),
        "rng": rng_state(),
        "loader_epoch": getattr(loader, "epoch", None),
        "history": [asdict(h) for h in history],
        "ctx_state": dict(ctx.state),
        "hooks": {h.name: h.state_dict() for h in ctx.hooks},
        # The last α step's gradient: the next clip norm counts it (clip_includes_alpha).
        "alpha_grad": [
            None if a.grad is None else a.grad.detach().clone()
            for a in ctx.supernet.arch_parameters()
        ],
    }


def restore_engine_state(ctx: SearchContext, state: dict[str, Any], loader: Any) -> list[EpochLog]:
    assert ctx.w_optimizer is not None and ctx.a_optimizer is not None
    ctx.supernet.load_state_dict(state["supernet"])
    ctx.w_optimizer.load_state_dict(state["w_optimizer"])
    ctx.a_optimizer.load_state_dict(state["a_optimizer"])
    set_rng_state(state["rng"])
    if state.get("loader_epoch") is not None and hasattr(loader, "set_epoch"):
        loader.set_epoch(state["loader_epoch"])
    ctx.state.update(state["ctx_state"])
    for a, g in zip(ctx.supernet.arch_parameters(), state.get("alpha_grad") or [], strict=False):
        a.grad = None if g is None else g.to(a.device).clone()
    for hook in ctx.hooks:
        hook.load_state_dict(state["hooks"].get(hook.name, {}))
    return [EpochLog(**h) for h in state["history"]]


def run_search(
    ctx: SearchContext,
    loader: Iterable[tuple[torch.Tensor, ...]],
    steps_per_epoch: int,
    on_epoch_end: Callable[[EpochLog], None] | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume: dict[str, Any] | None = None,
) -> list[EpochLog]:
    """Train weights and α for `settings.epochs`; returns the per-epoch history.

    `checkpoint(state)` receives the engine state after every epoch; passing such a state
    back as `resume` continues exactly where it stopped. The state after the last epoch (or
    a method's stop) is marked `finished`: resuming from it returns the history at once, so
    a trial killed during selection or evaluation does not search again.
    """
    s = ctx.settings
    for hook in ctx.hooks:
        hook.on_build(ctx)
    build_optimizers(ctx)
    assert ctx.w_optimizer is not None
    _arch_step_owner(ctx)  # at most one method takes over the α step
    if s.order == 2:
        first_order = [
            h.name
            for h in ctx.hooks
            if h.owns_arch_step
            or type(h).arch_loss is not MethodHook.arch_loss
            or type(h).arch_step_cell_weights is not MethodHook.arch_step_cell_weights
        ]
        if first_order:
            raise ValueError(
                f"methods {first_order} define their own α step or objective; they search "
                "with search.order: 1"
            )
    if ctx.dist is not None and ctx.dist.world > 1:
        unsafe = [h.name for h in ctx.hooks if not h.data_parallel]
        if s.order != 1 or unsafe:
            raise ValueError(
                "a data-parallel search needs first order and data-parallel methods; got "
                f"order {s.order}" + (f", methods {unsafe}" if unsafe else "")
            )
    ctx.supernet.to(ctx.device).train()
    if ctx.channels_last:
        ctx.supernet.to(memory_format=torch.channels_last)
    history: list[EpochLog] = []
    if resume is not None:
        history = restore_engine_state(ctx, resume, loader)
        if resume.get("finished"):
            return history
    # The state before the first epoch, kept for a hook that starts the search over.
    initial: dict[str, Any] | None = None
    if any(h.restarts_from_start for h in ctx.hooks):
        initial = (resume or {}).get("initial") or _snapshot(engine_state(ctx, [], loader))
    alpha_first = s.resolved_alpha_step() == "before_weights"
    graphed: Any = None
    if ctx.cuda_graph:
        from nasrepro.search.graphed import check_graphable

        check_graphable(ctx)
    steps = min(steps_per_epoch, s.steps_per_epoch or steps_per_epoch)
    bar = Bar("search", (s.epochs - len(history)) * steps)
    augments = [h for h in ctx.hooks if type(h).augment is not MethodHook.augment]
    epoch = len(history)
    while epoch < s.epochs:
        ctx.epoch = epoch
        lr = epoch_lr(s.lr_schedule, s.lr, s.lr_min, epoch, s.epochs, s.lr_warmup_epochs)
        for g in ctx.w_optimizer.param_groups:
            g["lr"] = lr
        for hook in ctx.hooks:
            hook.on_epoch_start(ctx)
        lr = ctx.w_optimizer.param_groups[0]["lr"]  # hooks (EX-DARTS) may have changed it
        sums = np.zeros(4)
        n = n_alpha = 0
        start = time.perf_counter()
        for step, batch in enumerate(bar.iterate(loader)):
            if s.steps_per_epoch is not None and step >= s.steps_per_epoch:
                break
            ctx.step = step
            x_w, y_w, x_a, y_a = (t.to(ctx.device, non_blocking=True) for t in batch)
            for hook in augments:
                x_w, x_a = hook.augment(ctx, x_w), hook.augment(ctx, x_a)
            if ctx.channels_last:
                x_w, x_a = (x.contiguous(memory_format=torch.channels_last) for x in (x_w, x_a))
            update_alpha = all(h.update_alpha(ctx) for h in ctx.hooks)
            if ctx.cuda_graph and (graphed is None or graphed.static[0].shape == x_w.shape):
                graphed = graphed or _capture(ctx, x_w, y_w, x_a, y_a)
                out = graphed(x_w, y_w, x_a, y_a)
                values = torch.stack(list(out)).tolist()  # the step's one host sync
                if not all(math.isfinite(v) for v in values):
                    raise SearchDiverged(
                        f"loss became {values[0]} (train) / {values[2]} (validation) at epoch "
                        f"{epoch} step {step}"
                    )
                sums += np.array(values)
                n += 1
                n_alpha += 1
                continue
            va = (0.0, 0.0)
            if update_alpha and alpha_first:
                va = arch_step(ctx, x_w, y_w, x_a, y_a)
            tr = weight_step(ctx, x_w, y_w)
            if update_alpha and not alpha_first:
                va = arch_step(ctx, x_w, y_w, x_a, y_a)
            sums += np.array([*tr, *va])
            n += 1
            n_alpha += int(update_alpha)
        if n == 0:
            raise SearchDiverged(f"epoch {epoch} had no batches (empty search data)")
        if ctx.dist is not None and ctx.dist.world > 1:  # epoch means over all ranks
            *total, n_all, n_alpha_all = ctx.dist.sum([*sums.tolist(), n, n_alpha])
            sums, n, n_alpha = np.array(total), int(n_all), int(n_alpha_all)
        diagnostics: dict[str, float] = {}
        for hook in ctx.hooks:
            diagnostics.update(hook.on_epoch_end(ctx))
        # α batches are the validation batches; an epoch without α steps has none.
        valid = sums[2:] / n_alpha if n_alpha else np.full(2, float("nan"))
        log = EpochLog(
            epoch=epoch,
            lr=lr,
            train_loss=float(sums[0] / n),
            train_acc=float(sums[1] / n),
            valid_loss=float(valid[0]),
            valid_acc=float(valid[1]),
            seconds=time.perf_counter() - start,
            alpha={k: v.cpu().tolist() for k, v in ctx.supernet.alpha_softmax().items()},
            diagnostics=diagnostics,
        )
        history.append(log)
        if on_epoch_end is not None:
            on_epoch_end(log)
        back = _restart(ctx, history, loader, initial)
        stops = []
        if back is None:
            stops = [h.name for h in ctx.hooks if h.should_stop(ctx, history)]
        if stops:
            ctx.state["stopped_by"] = stops
            ctx.state["stopped_at_epoch"] = epoch
        epoch = epoch + 1 if back is None else back + 1
        finished = bool(stops) or epoch == s.epochs
        if checkpoint is not None:
            extra = {} if initial is None else {"initial": initial}
            checkpoint({**engine_state(ctx, history, loader), **extra, "finished": finished})
        if finished:
            break
    bar.close()
    return history


def _snapshot(state: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of an engine state on the CPU, unaffected by later steps."""
    import copy

    def cpu(obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            return obj.detach().to("cpu", copy=True)
        if isinstance(obj, dict):
            return {k: cpu(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return type(obj)(cpu(v) for v in obj)
        return copy.deepcopy(obj)

    return cpu(state)


def _restart(
    ctx: SearchContext, history: list[EpochLog], loader: Any, initial: dict[str, Any] | None
) -> int | None:
    """Ask the hooks whether the search goes back (MethodHook.restart); apply it and return
    the epoch it continues after, or None."""
    for hook in ctx.hooks:
        back = hook.restart(ctx, history)
        if back is None:
            continue
        if back < -1 or back >= len(history):
            raise ValueError(f"method {hook.name!r} restarted at epoch {back} of {len(history)}")
        if back == -1:
            if initial is None:
                raise ValueError(f"method {hook.name!r} must set restarts_from_start")
            own = hook.state_dict()
            start = _snapshot(initial)
            ctx.state.clear()
            restore_engine_state(ctx, start, loader)
            hook.load_state_dict(own)
        del history[back + 1 :]
        return back
    return None
