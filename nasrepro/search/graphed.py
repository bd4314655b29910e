"""The first-order bilevel step (DARTS 1st order) as one CUDA graph (issue #6).

The NB201 supernet at batch 64 is launch-bound: thousands of small kernels per step, each
costing more CPU launch time than GPU time. A CUDA graph records the whole step once
(architecture step: forward, α gradient, Adam; weight step: forward, backward, gradient
clipping, SGD) and replays it with a single launch. The math is the engine's
`arch_step` + `weight_step` without their host syncs (`.item()` for the finiteness check
and accuracy): the step returns loss/accuracy tensors, and the caller checks finiteness.

Constraints a graph imposes, and how they are met here:
- static shapes and addresses: inputs are copied into static buffers; parameters,
  gradients (allocated by the captured backward) and optimizer state keep their addresses;
- optimizer state must exist before capture: a few warm-up steps run on a side stream, and
  every parameter, buffer and optimizer state tensor is then restored in place to its
  pre-warm-up value (state that did not exist before is zeroed, which equals fresh state
  for Adam and for SGD without dampening), so the first replay is the first real step;
- Adam keeps its step count on the device (`capturable=True`, set here on the α optimizer);
- the weight lr changes per epoch (cosine schedule) but SGD bakes a float lr into the
  captured kernels (a tensor lr would need a host sync in foreach SGD), so the step
  re-captures whenever an optimizer hyper-parameter (lr, weight decay, momentum) differs
  from the captured one: once per epoch, no warm-up needed, state untouched.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from nasrepro.search.engine import SearchContext


class GraphedStepError(RuntimeError):
    """The context cannot be captured (not CUDA, method hooks, second order, ...)."""


class StepOutput(NamedTuple):
    """Static output tensors of the graph, overwritten by the next replay."""

    train_loss: torch.Tensor
    train_acc: torch.Tensor
    valid_loss: torch.Tensor
    valid_acc: torch.Tensor


def check_graphable(ctx: SearchContext) -> None:
    """Raise GraphedStepError unless the context is plain first-order DARTS on CUDA."""
    if ctx.device.type != "cuda" or not torch.cuda.is_available():
        raise GraphedStepError(f"CUDA graphs need a CUDA search context, got device {ctx.device}")
    if ctx.hooks:
        names = ", ".join(getattr(h, "name", type(h).__name__) for h in ctx.hooks)
        raise GraphedStepError(f"CUDA graphs support plain DARTS only, got method hooks: {names}")
    if ctx.dist is not None and ctx.dist.world > 1:
        raise GraphedStepError("CUDA graphs do not capture a data-parallel step's all-reduce")
    if ctx.settings.order != 1:
        raise GraphedStepError("CUDA graphs support the first-order step only (order: 1)")
    if ctx.settings.clip_includes_alpha or ctx.settings.arch_grad_clip is not None:
        raise GraphedStepError("CUDA graphs clip the weight gradients alone (no α clipping)")
    w_opt, a_opt = ctx.w_optimizer, ctx.a_optimizer
    if type(w_opt) is not torch.optim.SGD or type(a_opt) is not torch.optim.Adam:
        raise GraphedStepError("call engine.build_optimizers first (SGD weights, Adam α)")
    if any(g["dampening"] for g in w_opt.param_groups):
        raise GraphedStepError("SGD dampening != 0 is not supported (warm-up state reset)")


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.detach().argmax(dim=1) == y).float().mean() * 100.0


class GraphedStep:
    """`step(xw, yw, xa, ya) -> StepOutput`: one captured arch + weight step, replayed.

    The returned tensors are overwritten by the next call: read (or clone) them first.
    """

    def __init__(
        self,
        ctx: SearchContext,
        xw: torch.Tensor,
        yw: torch.Tensor,
        xa: torch.Tensor,
        ya: torch.Tensor,
        warmup: int = 3,
    ) -> None:
        check_graphable(ctx)
        self.ctx = ctx
        self.static = [t.detach().to(ctx.device).clone() for t in (xw, yw, xa, ya)]
        assert ctx.w_optimizer is not None and ctx.a_optimizer is not None
        self.w_opt, self.a_opt = ctx.w_optimizer, ctx.a_optimizer
        for group in self.a_opt.param_groups:
            group["capturable"] = True
        for state in self.a_opt.state.values():  # an Adam used eagerly keeps `step` on CPU
            if "step" in state:
                state["step"] = state["step"].to(ctx.device, torch.float32)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: StepOutput | None = None
        self._hparams: list[tuple[float, ...]] = []
        self._warm_up(warmup)
        self._capture()

    def __call__(
        self, xw: torch.Tensor, yw: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor
    ) -> StepOutput:
        if self._current_hparams() != self._hparams:
            self._capture()  # new epoch lr (or another hyper-parameter): re-record
        for dst, src in zip(self.static, (xw, yw, xa, ya), strict=True):
            if dst.shape != src.shape:
                raise GraphedStepError(f"batch shape {tuple(src.shape)} != {tuple(dst.shape)}")
            dst.copy_(src, non_blocking=True)
        assert self.graph is not None and self.out is not None
        self.graph.replay()
        return self.out

    # --- the step itself (engine.arch_step + engine.weight_step, no host syncs) ---
    def _arch_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        net, (_, _, xa, ya) = self.ctx.supernet, self.static
        self.a_opt.zero_grad(set_to_none=True)
        logits = net(xa)
        loss = self.ctx.criterion(logits, ya)
        grads = torch.autograd.grad(loss, net.arch_parameters())
        for a, g in zip(net.arch_parameters(), grads, strict=True):
            a.grad = g
        self.a_opt.step()
        return loss.detach(), _accuracy(logits, ya)

    def _weight_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        net, (xw, yw, _, _) = self.ctx.supernet, self.static
        self.w_opt.zero_grad(set_to_none=True)  # the captured backward writes fresh grads
        # α's training-loss gradient is dropped (as in engine.weight_step): not computed
        weights = net.cell_weights()
        if not getattr(self.ctx.settings, "clip_includes_alpha", False):
            weights = [w.detach() for w in weights]
        logits = net(xw, cell_weights=weights)
        loss = self.ctx.criterion(logits, yw)
        loss.backward()
        if self.ctx.settings.grad_clip is not None:
            params = [p for g in self.w_opt.param_groups for p in g["params"]]
            nn.utils.clip_grad_norm_(params, self.ctx.settings.grad_clip)
        self.w_opt.step()
        for a in net.arch_parameters():  # as the engine: weight-loss α grads must not leak
            a.grad = None
        return loss.detach(), _accuracy(logits, yw)

    def _step(self) -> StepOutput:
        if self.ctx.settings.resolved_alpha_step() == "before_weights":
            va = self._arch_step()
            tr = self._weight_step()
        else:
            tr = self._weight_step()
            va = self._arch_step()
        return StepOutput(*tr, *va)

    # --- warm-up and capture ---
    def _state_tensors(self) -> dict[tuple[str, int, str], torch.Tensor]:
        """Every tensor a step mutates, keyed stably: parameters, buffers, optimizer state."""
        net = self.ctx.supernet
        out: dict[tuple[str, int, str], torch.Tensor] = {}
        for i, p in enumerate(net.parameters()):
            out[("param", i, "")] = p.data
        for i, b in enumerate(net.buffers()):
            out[("buffer", i, "")] = b
        for name, opt in (("w", self.w_opt), ("a", self.a_opt)):
            params = [p for g in opt.param_groups for p in g["params"]]
            for i, p in enumerate(params):
                for key, value in opt.state.get(p, {}).items():
                    if isinstance(value, torch.Tensor):
                        out[(name, i, key)] = value
        return out

    def _warm_up(self, steps: int) -> None:
        saved = {k: v.detach().clone() for k, v in self._state_tensors().items()}
        side = torch.cuda.Stream(self.ctx.device)
        side.wait_stream(torch.cuda.current_stream(self.ctx.device))
        with torch.cuda.stream(side):
            for _ in range(max(steps, 1)):
                self._step()
        torch.cuda.current_stream(self.ctx.device).wait_stream(side)
        with torch.no_grad():
            for key, tensor in self._state_tensors().items():
                if key in saved:
                    tensor.copy_(saved[key])
                else:  # state created by the warm-up: zero = fresh (Adam, SGD w/o dampening)
                    tensor.zero_()
        torch.cuda.synchronize(self.ctx.device)

    def _current_hparams(self) -> list[tuple[float, ...]]:
        keys = ("lr", "weight_decay", "momentum")
        groups = [*self.w_opt.param_groups, *self.a_opt.param_groups]
        return [tuple(float(g.get(k, 0.0)) for k in keys) for g in groups]

    def _capture(self) -> None:
        self.graph = None  # frees the previous graph's private memory pool
        self.w_opt.zero_grad(set_to_none=True)
        self.a_opt.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.out = self._step()
        self.graph = graph
        self._hparams = self._current_hparams()


def graph_first_order_step(
    ctx: SearchContext,
    xw: torch.Tensor,
    yw: torch.Tensor,
    xa: torch.Tensor,
    ya: torch.Tensor,
    warmup: int = 3,
) -> GraphedStep:
    """Capture the plain first-order step of `ctx` over example batches (their shapes are
    the graph's); the returned `step(xw, yw, xa, ya)` replays it. Model and optimizer state
    after capture equal the state before (warm-up is undone)."""
    return GraphedStep(ctx, xw, yw, xa, ya, warmup)


class GraphedMultiSeedStep:
    """`step(xw, yw, xa, ya) -> (train losses, valid losses)`: S seeds' first-order step
    (search/multiseed.py, seeds stacked under vmap) captured as one CUDA graph.

    The same constraints as `GraphedStep`: warm-up on a side stream, then every tensor the
    step mutates is restored (state created by the warm-up zeroed = fresh for Adam and SGD
    without dampening); Adam's step count on the device (`capturable`); re-capture when an
    optimizer hyper-parameter (the epoch's lr) changes. Use fused or foreach optimizers
    (`MultiSeedSearch(optimizer_impl=...)`): one kernel per update instead of one per tensor.
    The losses are per seed and overwritten by the next replay; check them for finiteness.
    """

    def __init__(
        self,
        multi: Any,
        xw: torch.Tensor,
        yw: torch.Tensor,
        xa: torch.Tensor,
        ya: torch.Tensor,
        warmup: int = 3,
        accuracy: bool = False,
    ) -> None:
        """`accuracy`: the step returns the per-seed (training loss, training accuracy,
        validation loss, validation accuracy) instead of the two losses."""
        if xw.device.type != "cuda" or not torch.cuda.is_available():
            raise GraphedStepError(f"CUDA graphs need CUDA tensors, got {xw.device}")
        if any(g["dampening"] for g in multi.w_optimizer.param_groups):
            raise GraphedStepError("SGD dampening != 0 is not supported (warm-up state reset)")
        self.multi = multi
        self.accuracy = accuracy
        self.device = xw.device
        self.static = [t.detach().clone() for t in (xw, yw, xa, ya)]
        for group in multi.a_optimizer.param_groups:
            group["capturable"] = True
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: tuple[torch.Tensor, ...] | None = None
        self._hparams: list[tuple[float, ...]] = []
        self._warm_up(warmup)
        self._capture()

    def _step(self) -> tuple[torch.Tensor, ...]:
        xw, yw, xa, ya = self.static
        return self.multi.step(xw, yw, xa, ya, check=False, accuracy=self.accuracy)

    def _warm_up(self, steps: int) -> None:
        saved = {k: v.detach().clone() for k, v in self.multi.state_tensors().items()}
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(max(steps, 1)):
                self._step()
        torch.cuda.current_stream(self.device).wait_stream(side)
        with torch.no_grad():
            for key, tensor in self.multi.state_tensors().items():
                if key in saved:
                    tensor.copy_(saved[key])
                else:
                    tensor.zero_()
        torch.cuda.synchronize(self.device)

    def _current_hparams(self) -> list[tuple[float, ...]]:
        keys = ("lr", "weight_decay", "momentum")
        groups = [*self.multi.w_optimizer.param_groups, *self.multi.a_optimizer.param_groups]
        return [tuple(float(g.get(k, 0.0)) for k in keys) for g in groups]

    def _capture(self) -> None:
        self.graph = None
        self.multi.w_optimizer.zero_grad(set_to_none=True)
        self.multi.a_optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.out = self._step()
        self.graph = graph
        self._hparams = self._current_hparams()

    def __call__(
        self, xw: torch.Tensor, yw: torch.Tensor, xa: torch.Tensor, ya: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        if self._current_hparams() != self._hparams:
            self._capture()
        for dst, src in zip(self.static, (xw, yw, xa, ya), strict=True):
            if dst.shape != src.shape:
                raise GraphedStepError(f"batch shape {tuple(src.shape)} != {tuple(dst.shape)}")
            dst.copy_(src, non_blocking=True)
        assert self.graph is not None and self.out is not None
        self.graph.replay()
        return self.out
