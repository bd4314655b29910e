"""Λ-DARTS (Movahedi et al., ICLR 2023): the layer-alignment regularizer on the weight step.

The inner problem becomes min_ω L_train(ω, α) − λ_t·Λ_train(ω, α) (Eq. 8). Per step:

1. `weight_step_cell_weights`: every search cell gets its own leaf copy p_l of its mixing
   weights, so the training loss' backward leaves the per-cell gradients g_l in p_l.grad
   (reference: `weights = alphas.clone(); weights.retain_grad()` per cell).
2. `after_weight_backward`: Λ / Λ± of the regularized cells (Eq. 5 / 7) is logged, Δ is
   built from g_l (Eq. 10, 12, `layer_alignment.alignment_direction`), ε = ε0/‖Δ‖_F (Eq. 13)
   and ∇_ω Λ ≈ [∇_ω L(ω, P+εΔ) − ∇_ω L(ω, P−εΔ)]/(2ε) (Eq. 13; Δ carries the 1/C(L,2)).
   The weight update *descends* L − λ_t·Λ, so what is added to each weight's .grad is
   −λ_t·∇_ω Λ = λ_t·[∇_ω L(P−εΔ) − ∇_ω L(P+εΔ)]/(2ε), exactly the reference's
   `reg_grad = (forward_grads − backward_grads)/(2ε)` with forward_grads taken at
   `weights − pert` = P − εΔ; a step along it raises Λ (tests/test_lambda_darts.py).
   `forward_backward` (Eq. 24–25, Appendix A.8): one extra pass per step, the forward
   difference [∇L(P+εΔ) − ∇L(P)]/ε on even steps and the backward one
   [∇L(P) − ∇L(P−εΔ)]/ε on odd steps, ∇L(P) being the main pass' gradient (.grad as the
   hook finds it: list `lambda` before any method that adds to .grad itself).
   The engine clips afterwards (the reference clips at 5 after adding).
3. Clip norm: the reference's NB201 loop (Lambda-DARTS exps/algos/DARTS-V1.py, AutoDL's)
   clips `network.parameters()`, α included, and its cells mix with `alphas.clone()`, so the
   weight loss' α gradient reaches α before the clip. The leaf copies here stop it there;
   under `clip_includes_alpha` the leaves' gradients are sent back through the cells' mixing
   weights to α, so the norm counts them as the reference's does. The engine drops α's
   gradient after the weight step, so the α update is unchanged. On the DARTS space the
   reference's α are not model parameters and the clip is over the weights alone.

Cells (Appendix A.9.2): on spaces with a reduction α only the normal cells are
regularized (cells whose `cell_alpha_index()` is 0; 6 of 8 on DARTS, w = 1/15); on
NB201 all 15 (w = 1/105). `cells="all"` also aligns the reduction cells among themselves
(the reference's commented-out `pert_reduce`), one Δ block per α tensor, one ε for all.

`objective="outer"` (the Appendix A.4 ablation, Table 5): the regularizer moves to the α
objective, min_α L_val − λ_t·Λ, and ω gets no extra gradient. ∇_α Λ is the same finite
difference taken w.r.t. α through the softmax, [∇_α L(P+εΔ) − ∇_α L(P−εΔ)]/(2ε)
(∇_α L(P) = J_σᵀ Σ_l g_l, so its ε-derivative is J_σᵀ Σ_l Σ_m H_lm Δ_m = ∇_α Λ). The
paper does not say on which batch Λ is measured for this ablation; hooks see no
validation batch, so Λ is that of the weight step's training batch, and −λ_t·∇_α Λ is
added to α.grad by a pre-step hook of the α optimizer at the next α step (same step when
weights go first, one step later when α goes first).

BN running statistics: the extra passes run in train mode and move them, as the
reference's do (main pass, then P − εΔ, then P + εΔ: three updates per weight step). The
search itself never reads them (train-mode BN uses batch statistics, and nasrepro runs no
eval-mode pass of the supernet); they are the supernet's state all the same, and the
trajectory oracles compare them (tests/oracle/test_trajectories.py).

Deviations from the reference, on purpose:
- Randomness (`noise="replay"`, the default): the extra passes replay the RNG state of the
  main pass (and leave the global RNG where the main pass left it), so a random op
  (RobustDARTS S4 `noise`, drop-path) is the same function of (ω, P) in all passes: the
  exact Eq. 13. The reference draws fresh noise in each of its three passes, which puts an
  O(1/ε) noise term into the S4 difference (it then dominates the regularizer); the
  paper's S4 numbers come from that behaviour, `noise="fresh"` reproduces it.
- λ schedule: λ_t = λ·epoch/(epochs − 1) as both reference scripts do
  (`args.lambda_ * epoch / (args.epochs - 1)`); the paper writes λ·t/T (Section 4.1), which
  never reaches λ. One-epoch searches use λ (the reference divides by zero).
- Epoch 0 has λ_t = 0: the extra passes run forward only (the reference runs them in full
  and adds 0; only their BN statistics and random draws remain).
- A step whose per-cell gradients include a zero row (Λ undefined) or whose Δ is zero adds
  nothing and is left out of the logged means.

`batched=True` (opt-in; central differences, inner objective): the two extra passes at
P ∓ εΔ run as one vmapped forward (`torch.func.vmap` over the sign, x shared) and one
backward of ½L(P−εΔ) − ½L(P+εΔ), which is the same ∇ difference by linearity. Plain batch
concatenation would not keep the math: BN in train mode would normalise both passes with
the statistics of the 2B images together (and the mixing weights are per pass, not per
image). Under vmap BN keeps per-pass batch statistics, as two separate passes. The BN
running statistics of the passes go to per-pass copies from which the two sequential updates
are recomposed (`_sequential_bn_update`), as the unbatched passes leave them; random ops draw
the same values in both passes (`randomness="same"`, replayed from the main pass' RNG
state), as the unbatched replay.
Only the floating-point rounding differs (the difference is formed inside one backward
instead of by subtracting two gradients); tests/test_lambda_batched.py checks it.
Measured, it does not pay: on CPU it is slower than two passes (NB201 C=8 N=1, batch 16,
16×16, one thread: 3.0× the DARTS step vs 2.07× unbatched), and on an H200 at the paper's
size (C=16, N=5, batch 64) it costs the same, 2.01× vs 2.02× (benchmarks/README.md): vmap
keeps the kernel count of two passes, and the step is launch-bound. Kept opt-in.

Composition: every cell (regularized or not) gets a leaf copy, so the extra passes replay
exactly the mixing weights of the main pass. A hook after `lambda` in the methods list may
change those weights only in place (`sdarts_rs` does); one before it is simply copied.
Hence `methods: [lambda, sdarts_rs]` and `[sdarts_rs, lambda]` are the same Λ-SDARTS-RS.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from nasrepro.catalog import Bool, Choice, Float, register_method
from nasrepro.methods.base import MethodHook
from nasrepro.methods.layer_alignment import (
    VARIANTS,
    alignment_direction,
    layer_alignment,
    layer_alignment_pm,
)

if TYPE_CHECKING:
    from nasrepro.search.engine import SearchContext

DIFFERENCES = ("central", "forward_backward")
NOISE = ("replay", "fresh")
OBJECTIVES = ("inner", "outer")
CELLS = ("normal", "all")


def lambda_schedule(lambda_: float, epoch: int, epochs: int) -> float:
    """λ_t = λ·epoch/(epochs − 1) (reference train_search.py / DARTS-V1.py; paper: λ·t/T)."""
    if epochs <= 1:
        return lambda_
    return lambda_ * epoch / (epochs - 1)


def _weights_of(ctx: SearchContext) -> list[nn.Parameter]:
    """The weights the engine updates (the optimizer's), else every trainable weight."""
    if ctx.w_optimizer is not None:
        return [p for g in ctx.w_optimizer.param_groups for p in g["params"] if p.requires_grad]
    return [p for p in ctx.supernet.weight_parameters() if p.requires_grad]


def _bn_modules(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [
        m
        for m in net.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None
    ]


@torch.no_grad()
def _sequential_bn_update(
    net: nn.Module, copies: dict[str, torch.Tensor], prefix: dict[nn.Module, str]
) -> None:
    """Set each BN's running statistics to what two train-mode passes in a row leave (pass 0,
    then pass 1), from `copies`: per-pass (2, ...) buffers that both started at the module's
    current statistics. With factor f (momentum, or 1/n for a cumulative average) a pass
    leaves c_k = (1 − f)·s + f·b_k; in a row: (1 − f₂)·c_0 + f₂·b_1."""
    for m in _bn_modules(net):
        name = prefix[m]
        count = m.num_batches_tracked
        f1 = m.momentum if m.momentum is not None else 1.0 / float(count + 1)
        f2 = m.momentum if m.momentum is not None else 1.0 / float(count + 2)
        for key in ("running_mean", "running_var"):
            start, c = getattr(m, key), copies[f"{name}{key}"]
            if m.momentum is not None:  # (1 − f)·c_0 + c_1 − (1 − f)·s
                new = c[1] + (1.0 - f2) * (c[0] - start)
            else:
                batch = (c[1] - (1.0 - f1) * start) / f1
                new = (1.0 - f2) * c[0] + f2 * batch
            start.copy_(new)
        count.add_(2)


def _alpha_grad_for_clip(sources: list[torch.Tensor], leaves: list[torch.Tensor]) -> None:
    """Accumulate the weight loss' α gradient into α.grad: the leaves' gradients sent back
    through the mixing weights they copy (softmax(α), or what an earlier hook made of it)."""
    roots = [
        (s, p.grad)
        for s, p in zip(sources, leaves, strict=True)
        if s.requires_grad and p.grad is not None
    ]
    if roots:
        torch.autograd.backward([s for s, _ in roots], [g for _, g in roots])


class _RngState:
    """The CPU (and, on CUDA, the device's) generator state at one moment."""

    def __init__(self, device: torch.device) -> None:
        self.cuda_index: int | None = None
        self.cuda_state: torch.Tensor | None = None
        if device.type == "cuda":
            self.cuda_index = (
                device.index if device.index is not None else torch.cuda.current_device()
            )
            self.cuda_state = torch.cuda.get_rng_state(self.cuda_index)
        self.cpu_state = torch.get_rng_state()

    @contextmanager
    def replay(self) -> Iterator[None]:
        """Run the body from this state; the global generators are untouched afterwards."""
        devices = [] if self.cuda_index is None else [self.cuda_index]
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu_state)
            if self.cuda_state is not None:
                torch.cuda.set_rng_state(self.cuda_state, self.cuda_index)
            yield


@register_method(
    "lambda",
    "Λ-DARTS: inner-objective layer-alignment regularizer λ·Λ or λ·Λ±",
    args={
        "lambda_": Float(0),
        "eps0": Float(0, lo_open=True),
        "variant": Choice(*VARIANTS),
        "difference": Choice(*DIFFERENCES),
        "objective": Choice(*OBJECTIVES),
        "cells": Choice(*CELLS, nullable=True),
        "batched": Bool(),
        "noise": Choice(*NOISE),
    },
)
class LambdaDarts(MethodHook):
    name = "lambda"

    def __init__(
        self,
        lambda_: float = 0.125,  # Appendix A.9.1 (NB201) and the reference's default
        eps0: float = 1e-4,  # Appendix A.9.1-2; 1e-3 for C100/SVHN on S1-S4 (A.9.3)
        variant: str = "Lambda",
        difference: str = "central",
        objective: str = "inner",
        cells: str | None = None,
        batched: bool = False,
        noise: str = "replay",
    ) -> None:
        if not (isinstance(lambda_, int | float) and math.isfinite(lambda_) and lambda_ >= 0):
            raise ValueError(f"lambda: lambda_ must be a finite number >= 0, got {lambda_!r}")
        if not (isinstance(eps0, int | float) and math.isfinite(eps0) and eps0 > 0):
            raise ValueError(f"lambda: eps0 must be a finite number > 0, got {eps0!r}")
        if variant not in VARIANTS:
            raise ValueError(f"lambda: variant must be one of {VARIANTS}, got {variant!r}")
        if difference not in DIFFERENCES:
            raise ValueError(f"lambda: difference must be one of {DIFFERENCES}, got {difference!r}")
        if objective not in OBJECTIVES:
            raise ValueError(f"lambda: objective must be one of {OBJECTIVES}, got {objective!r}")
        if cells is not None and cells not in CELLS:
            raise ValueError(f"lambda: cells must be one of {CELLS} or None, got {cells!r}")
        if noise not in NOISE:
            raise ValueError(f"lambda: noise must be one of {NOISE}, got {noise!r}")
        if batched and noise == "fresh":
            raise ValueError(
                "lambda: batched replays the main pass' randomness; noise 'fresh' "
                "needs the unbatched passes"
            )
        if not isinstance(batched, bool):
            raise ValueError(f"lambda: batched must be true or false, got {batched!r}")
        if batched and (difference != "central" or objective != "inner"):
            # forward_backward has one extra pass (nothing to batch); the outer objective's
            # passes differentiate through softmax(α) and are not batched (yet).
            raise ValueError("lambda: batched needs difference 'central' and objective 'inner'")
        self.lambda_ = float(lambda_)
        self.eps0 = float(eps0)
        self.variant = variant
        self.difference = difference
        self.objective = objective
        self.cells = cells
        self.batched = batched
        self.noise = noise
        self.lambda_t = 0.0
        self.eps = float("nan")  # ε of the last regularized step
        self.groups: list[list[int]] = []  # per regularized α tensor: its cells' positions
        self._group_names: list[str] = []
        self._leaves: list[torch.Tensor] | None = None
        self._sources: list[torch.Tensor] = []  # the mixing weights the leaves copy
        self._rng: _RngState | None = None
        self._steps = 0  # weight steps seen (parity of the forward/backward scheme)
        self._alpha_reg: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._hooked_optimizer: torch.optim.Optimizer | None = None
        self._reset_epoch()

    # -- set-up -------------------------------------------------------------------------

    def on_build(self, ctx: SearchContext) -> None:
        net = ctx.supernet
        index = net.cell_alpha_index()
        cells = self.cells or ("normal" if len(net.arch_parameters()) > 1 else "all")
        chosen = [0] if cells == "normal" else sorted(set(index))
        names = net.alpha_names()
        self.groups = [[pos for pos, a in enumerate(index) if a == k] for k in chosen]
        self._group_names = [names[k] for k in chosen]
        for name, group in zip(self._group_names, self.groups, strict=True):
            if len(group) < 2:
                raise ValueError(
                    f"lambda: layer alignment needs >= 2 cells per α, {name!r} has {len(group)}"
                )
        self._reset_epoch()

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self._steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._steps = int(state.get("steps", 0))

    def on_epoch_start(self, ctx: SearchContext) -> None:
        self.lambda_t = lambda_schedule(self.lambda_, ctx.epoch, ctx.settings.epochs)
        self._reset_epoch()
        opt = ctx.a_optimizer
        if self.objective == "outer" and opt is not None and opt is not self._hooked_optimizer:
            opt.register_step_pre_hook(self._add_alpha_reg)
            self._hooked_optimizer = opt

    def _reset_epoch(self) -> None:
        self._sum_Lambda: torch.Tensor | float = 0.0
        self._sum_Lambda_pm: torch.Tensor | float = 0.0
        self._sum_groups: list[torch.Tensor | float] = [0.0] * len(self.groups)
        self._sum_eps = 0.0
        self._n = 0

    # -- the weight step ----------------------------------------------------------------

    def weight_step_cell_weights(
        self, ctx: SearchContext, weights: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        self._sources = list(weights)
        self._leaves = [w.detach().clone().requires_grad_(True) for w in weights]
        self._rng = _RngState(weights[0].device)
        return list(self._leaves)

    def after_weight_backward(self, ctx: SearchContext, x: torch.Tensor, y: torch.Tensor) -> None:
        leaves, self._leaves = self._leaves, None
        sources, self._sources = self._sources, []
        self._alpha_reg = None  # an outer-objective term no α step used is stale now
        if leaves is None:
            return
        if ctx.settings.clip_includes_alpha:
            _alpha_grad_for_clip(sources, leaves)
        step = self._steps
        self._steps += 1
        if any(p.grad is None for p in leaves):
            raise RuntimeError(
                "lambda: a cell's weights got no gradient; a method after 'lambda' replaced "
                "the per-cell weights instead of changing them in place"
            )
        grads = [
            torch.stack([leaves[pos].grad.detach().reshape(-1) for pos in group])
            for group in self.groups
        ]
        norms_ok = torch.stack([(g.norm(dim=1) > 0).all() & g.isfinite().all() for g in grads])
        if not bool(norms_ok.all()):
            return
        delta = [torch.zeros_like(p) for p in leaves]
        with torch.no_grad():
            values = [layer_alignment(g) for g in grads]  # Eq. 5, for the logs
            values_pm = [layer_alignment_pm(g) for g in grads]  # Eq. 7
            for group, g in zip(self.groups, grads, strict=True):
                for pos, d in zip(group, alignment_direction(g, self.variant), strict=True):
                    delta[pos] = d.reshape(leaves[pos].shape)
            norm = torch.sqrt(sum(d.pow(2).sum() for d in delta))
        norm_value = float(norm)
        if not (math.isfinite(norm_value) and norm_value > 0):
            return
        eps = self.eps0 / norm_value  # Eq. 13: ε = ε0/‖Δ‖_F
        self.eps = eps
        self._record(values, values_pm, eps)
        if self.lambda_t == 0.0:
            # The references run their extra passes at λ_t = 0 too and add 0: what remains of
            # them is their effect on the BN running statistics (and, with fresh noise, the
            # random draws). Forward passes without gradients leave exactly that.
            self._forward_only(ctx, x, leaves, delta, eps, step)
            return
        if self.objective == "inner":
            self._inner(ctx, x, y, leaves, delta, eps, step)
        else:
            self._outer(ctx, x, y, leaves, delta, eps, step)

    def _record(
        self, values: list[torch.Tensor], values_pm: list[torch.Tensor], eps: float
    ) -> None:
        self._sum_Lambda = self._sum_Lambda + torch.stack(values).mean()
        self._sum_Lambda_pm = self._sum_Lambda_pm + torch.stack(values_pm).mean()
        self._sum_groups = [s + v for s, v in zip(self._sum_groups, values, strict=True)]
        self._sum_eps += eps
        self._n += 1

    def _signs(self, step: int) -> tuple[float, ...]:
        """Perturbation signs s of the extra passes at P + s·εΔ."""
        if self.difference == "central":
            return (-1.0, 1.0)
        return (1.0,) if step % 2 == 0 else (-1.0,)  # Eq. 24 on even steps, Eq. 25 on odd

    def _combine(
        self, at: dict[float, Sequence[torch.Tensor | None]], base: Sequence[torch.Tensor | None]
    ) -> list[torch.Tensor | None]:
        """−∇Λ from the gradients at P ± εΔ (central, Eq. 13) or one of them and P (Eq. 24/25),
        still to be divided by ε."""
        if self.difference == "central":
            pairs = zip(at[-1.0], at[1.0], strict=True)
            return [None if m is None or p is None else (m - p) / 2.0 for m, p in pairs]
        if 1.0 in at:  # forward: −[∇L(P+εΔ) − ∇L(P)]
            pairs = zip(base, at[1.0], strict=True)
        else:  # backward: −[∇L(P) − ∇L(P−εΔ)]
            pairs = zip(at[-1.0], base, strict=True)
        return [None if a is None or b is None else a - b for a, b in pairs]

    def _forward_only(
        self,
        ctx: SearchContext,
        x: torch.Tensor,
        leaves: list[torch.Tensor],
        delta: list[torch.Tensor],
        eps: float,
        step: int,
    ) -> None:
        assert self._rng is not None
        for sign in self._signs(step):
            weights = [p.detach() + (sign * eps) * d for p, d in zip(leaves, delta, strict=True)]
            replay = self._rng.replay() if self.noise == "replay" else nullcontext()
            with replay, torch.no_grad():
                ctx.supernet(x, cell_weights=weights)

    def _inner(
        self,
        ctx: SearchContext,
        x: torch.Tensor,
        y: torch.Tensor,
        leaves: list[torch.Tensor],
        delta: list[torch.Tensor],
        eps: float,
        step: int,
    ) -> None:
        params = _weights_of(ctx)
        if self.batched:
            reg = self._central_batched(ctx, x, y, leaves, delta, eps, params)
        else:
            base = [None if p.grad is None else p.grad.detach().clone() for p in params]
            at: dict[float, Sequence[torch.Tensor | None]] = {}
            for sign in self._signs(step):
                weights = [
                    p.detach() + (sign * eps) * d for p, d in zip(leaves, delta, strict=True)
                ]
                at[sign] = self._grads(ctx, x, y, weights, params)
            reg = self._combine(at, base)
        scale = self.lambda_t / eps
        with torch.no_grad():
            for p, r in zip(params, reg, strict=True):
                if r is None:
                    continue
                if p.grad is None:
                    p.grad = scale * r
                else:
                    p.grad.add_(r, alpha=scale)

    def _outer(
        self,
        ctx: SearchContext,
        x: torch.Tensor,
        y: torch.Tensor,
        leaves: list[torch.Tensor],
        delta: list[torch.Tensor],
        eps: float,
        step: int,
    ) -> None:
        net = ctx.supernet
        index = net.cell_alpha_index()
        # The α tensors the cells mix with (PC-DARTS' edge β get no outer term).
        alphas = [net.arch_parameters()[k] for k in sorted(set(index))]
        slot = {k: i for i, k in enumerate(sorted(set(index)))}
        base: list[torch.Tensor | None] = [None] * len(alphas)
        if self.difference == "forward_backward":
            # ∇_α L(P) = J_σᵀ Σ_l g_l: the main pass' cell gradients through the softmax.
            probs = [torch.softmax(a, dim=-1) for a in alphas]
            got = torch.autograd.grad(
                [probs[slot[k]] for k in index],
                alphas,
                grad_outputs=[p.grad for p in leaves],
                allow_unused=True,
            )
            base = [None if g is None else g.detach() for g in got]
        at: dict[float, Sequence[torch.Tensor | None]] = {}
        for sign in self._signs(step):
            probs = [torch.softmax(a, dim=-1) for a in alphas]
            # Value of the main pass' weights (plus ±εΔ), gradient path through softmax(α).
            weights = [
                probs[slot[k]] + (p.detach() - probs[slot[k]].detach()) + (sign * eps) * d
                for p, d, k in zip(leaves, delta, index, strict=True)
            ]
            at[sign] = self._grads(ctx, x, y, weights, alphas)
        scale = self.lambda_t / eps
        self._alpha_reg = [
            (a, torch.zeros_like(a) if r is None else scale * r)
            for a, r in zip(alphas, self._combine(at, base), strict=True)
        ]

    def _grads(
        self,
        ctx: SearchContext,
        x: torch.Tensor,
        y: torch.Tensor,
        weights: list[torch.Tensor],
        wrt: Sequence[torch.Tensor],
    ) -> Sequence[torch.Tensor | None]:
        assert self._rng is not None
        # `fresh` (the reference): random ops draw new values in every pass, advancing the
        # global RNG; `replay`: the main pass' draws again, the global RNG left alone.
        replay = self._rng.replay() if self.noise == "replay" else nullcontext()
        with replay, torch.enable_grad():
            loss = ctx.criterion(ctx.supernet(x, cell_weights=weights), y)
            return torch.autograd.grad(loss, list(wrt), allow_unused=True)

    def _central_batched(
        self,
        ctx: SearchContext,
        x: torch.Tensor,
        y: torch.Tensor,
        leaves: list[torch.Tensor],
        delta: list[torch.Tensor],
        eps: float,
        params: Sequence[torch.Tensor],
    ) -> Sequence[torch.Tensor | None]:
        """[∇L(P−εΔ) − ∇L(P+εΔ)]/2 from one vmapped forward/backward of both passes."""
        assert self._rng is not None
        net = ctx.supernet
        signs = torch.tensor([-1.0, 1.0], dtype=leaves[0].dtype, device=leaves[0].device)
        # (2, ...) mixing weights per cell: slice 0 at P − εΔ, slice 1 at P + εΔ.
        stacked = [
            p.detach() + (signs * eps).view(-1, *([1] * p.dim())) * d
            for p, d in zip(leaves, delta, strict=True)
        ]
        # Per-pass copies of the BN buffers: train-mode BN writes its running statistics
        # in place, and under vmap that needs a tensor with the pass axis. The two updates
        # are then applied in a row, as two passes leave them.
        buffers = {
            n: b.detach().unsqueeze(0).repeat(2, *([1] * b.dim())) for n, b in net.named_buffers()
        }
        prefix = {m: f"{n}." if n else "" for n, m in net.named_modules()}

        def loss(weights: list[torch.Tensor], bufs: dict[str, torch.Tensor]) -> torch.Tensor:
            logits = functional_call(net, bufs, (x,), {"cell_weights": weights}, strict=False)
            return ctx.criterion(logits, y)

        with self._rng.replay(), torch.enable_grad():
            losses = vmap(loss, randomness="same")(stacked, buffers)
            half = torch.tensor([0.5, -0.5], dtype=losses.dtype, device=losses.device)
            grads = torch.autograd.grad(losses, list(params), grad_outputs=half, allow_unused=True)
        _sequential_bn_update(net, buffers, prefix)
        return grads

    def _add_alpha_reg(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """α-optimizer pre-step hook (outer objective): α.grad += −λ_t·∇_α Λ."""
        reg, self._alpha_reg = self._alpha_reg, None
        for a, r in reg or []:
            if a.grad is None:
                a.grad = r.clone()
            else:
                a.grad.add_(r)

    # -- logs ---------------------------------------------------------------------------

    def on_epoch_end(self, ctx: SearchContext) -> dict[str, float]:
        n = self._n

        def mean(total: torch.Tensor | float) -> float:
            return float(total) / n if n else float("nan")

        out = {
            "lambda.Lambda": mean(self._sum_Lambda),
            "lambda.Lambda_pm": mean(self._sum_Lambda_pm),
            "lambda.lambda_t": self.lambda_t,
            "lambda.eps": mean(self._sum_eps),
        }
        if len(self.groups) > 1:
            for name, total in zip(self._group_names, self._sum_groups, strict=True):
                out[f"lambda.Lambda.{name}"] = mean(total)
        return out
