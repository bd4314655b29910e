"""Several seeds of one small supernet, trained together in one vmapped step.

S independent supernets (same shape, different seeds) are stacked with
`torch.func.stack_module_state`: every weight, α and BN buffer gets a leading seed axis.
One forward is `vmap(functional_call)` over that axis, each seed on its own batch, so a
conv becomes one grouped conv over S·B images and BN normalises with each seed's own
batch statistics (vmap's batch-norm rule keeps the seed axis apart).

Why this is exactly S separate first-order DARTS runs:
- The per-seed losses are independent, so ∂(Σ_s L_s)/∂θ_s = ∂L_s/∂θ_s: one backward of
  the summed loss gives every seed its own gradient.
- SGD (momentum, Nesterov, weight decay) and Adam (L2 weight decay) are elementwise, so one
  optimizer over the stacked tensors is S optimizers (their step counts are all equal).
- Gradient clipping is not elementwise: the norm is taken per seed over all its weights,
  as `clip_grad_norm_` in each separate run would (`_clip_per_seed`).
- BN running statistics (stem, ResNet blocks, head; the search cells' too when
  `track_running_stats`) are stacked buffers; the in-place update in train mode writes
  each seed's slice under vmap (checked against separate runs in tests/test_multiseed.py).

Measured on CPU only (one shared thread, `time_multiseed`): 1.2× / 1.8× / 2.1× the
throughput of sequential steps for S = 2 / 4 / 8 at C=4, N=1, batch 16, 16×16; no gain
(0.6×–1.1×, noisy) at C=8, batch 32, 32×32, where the CPU is compute-bound anyway. The
target is a GPU, where one small supernet cannot fill the device; not timed there yet.

Only the first-order step (DARTS-1st, no method hooks): the unrolled step and hooks that
read per-seed state (Λ-DARTS' per-cell leaves) would need their own vmapped versions.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from nasrepro.spaces.base import Supernet
from nasrepro.timing import median_step_ms

if TYPE_CHECKING:
    from nasrepro.suite import SearchSettings


def nb201_darts_settings() -> SearchSettings:
    """The NB201 DARTS-1st search settings (suites/lambda_darts.yaml nb201-darts-1st)."""
    from nasrepro.suite import SearchSettings

    return SearchSettings(
        epochs=50,
        batch_size=64,
        order=1,
        lr=0.025,
        lr_min=0.001,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        arch_lr=3e-4,
        arch_betas=(0.5, 0.999),
        arch_weight_decay=1e-3,
        grad_clip=5.0,
        clip_includes_alpha=True,
    )


class MultiSeedSearch:
    """S supernets stepped together: first-order bilevel DARTS, one optimizer pair for all."""

    def __init__(
        self,
        nets: list[Supernet],
        settings: SearchSettings,
        criterion: nn.Module | None = None,
        optimizer_impl: str = "default",
    ) -> None:
        """`optimizer_impl`: "default" (torch's choice), "foreach" (one kernel per op over all
        tensors) or "fused" (one kernel per step; CUDA graphs need it or "foreach"). All
        three are the same elementwise update."""
        if optimizer_impl not in ("default", "foreach", "fused"):
            raise ValueError(f"optimizer_impl: {optimizer_impl!r} (default, foreach, fused)")
        if settings.order != 1:
            raise ValueError("multi-seed search implements the first-order step only")
        if settings.arch_grad_clip is not None:
            raise ValueError("multi-seed search does not clip α's own step (arch_grad_clip)")
        self.settings = settings
        self.criterion = criterion or nn.CrossEntropyLoss()
        self.seeds = len(nets)
        for net in nets:
            net.train()
        arch = {id(p) for p in nets[0].arch_parameters()}
        names = [n for n, p in nets[0].named_parameters() if id(p) in arch]
        # Stacked leaves (requires_grad as the originals); the template runs on "meta" so it
        # holds no memory and any tensor not passed to functional_call would fail loudly.
        self.params, self.buffers = stack_module_state(nets)
        self.template = copy.deepcopy(nets[0]).to("meta")
        self.alpha_names = names
        self.weight_names = [n for n in self.params if n not in set(names)]
        # clip_includes_alpha (AutoDL's loops): the clip norm counts the gradient the last α
        # step left. Kept in static buffers (zero before the first α step, as no gradient),
        # so a captured step reads and writes them in place.
        self.alpha_left = (
            {n: torch.zeros_like(self.params[n]) for n in names}
            if settings.clip_includes_alpha
            else {}
        )
        s = settings
        impl = {} if optimizer_impl == "default" else {optimizer_impl: True}
        self.w_optimizer = torch.optim.SGD(
            [self.params[n] for n in self.weight_names if self.params[n].requires_grad],
            lr=s.lr,
            momentum=s.momentum,
            nesterov=s.nesterov,
            weight_decay=s.weight_decay,
            **impl,
        )
        self.a_optimizer = torch.optim.Adam(
            [self.params[n] for n in names],
            lr=s.arch_lr,
            betas=tuple(s.arch_betas),
            weight_decay=s.arch_weight_decay,
            **impl,
        )

    def _losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-seed loss (S,) and logits (S, B, classes) for batches x (S, B, ...), y (S, B)."""

        def one(
            params: dict[str, torch.Tensor],
            buffers: dict[str, torch.Tensor],
            xs: torch.Tensor,
            ys: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            logits = functional_call(self.template, (params, buffers), (xs,))
            return self.criterion(logits, ys), logits

        return vmap(one)(self.params, self.buffers, x, y)

    def _arch(
        self, x: torch.Tensor, y: torch.Tensor, check: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.a_optimizer.zero_grad(set_to_none=True)
        losses, logits = self._losses(x, y)
        if check:
            _check_finite(losses, "validation")
        alphas = [self.params[n] for n in self.alpha_names]
        for n, a, g in zip(
            self.alpha_names, alphas, torch.autograd.grad(losses.sum(), alphas), strict=True
        ):
            a.grad = g.contiguous()  # fused optimizers misread strided grads (CPU, torch 2.13)
            if n in self.alpha_left:
                self.alpha_left[n].copy_(a.grad)
        self.a_optimizer.step()
        return losses.detach(), _accuracy(logits, y)

    def _weights(
        self, x: torch.Tensor, y: torch.Tensor, check: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.w_optimizer.zero_grad(set_to_none=True)
        losses, logits = self._losses(x, y)
        if check:
            _check_finite(losses, "training")
        weights = [p for g in self.w_optimizer.param_groups for p in g["params"]]
        # α's gradient of the training loss only counts in the clip norm (clip_includes_alpha;
        # the engine computes and then drops it): not computed otherwise.
        alphas = [self.params[n] for n in self.alpha_left]
        grads = torch.autograd.grad(losses.sum(), weights + alphas)
        for p, g in zip(weights, grads[: len(weights)], strict=True):
            p.grad = g.contiguous()  # (a linear layer's vmapped weight grad is strided)
        # What the last α step left plus the weight loss' α gradient, per seed in the norm.
        lefts = self.alpha_left.values()
        alpha_grads = [left + g for left, g in zip(lefts, grads[len(weights) :], strict=True)]
        if self.settings.grad_clip is not None:
            _clip_grads_per_seed([p.grad for p in weights] + alpha_grads, self.settings.grad_clip)
        self.w_optimizer.step()
        return losses.detach(), _accuracy(logits, y)

    def arch_step(self, x: torch.Tensor, y: torch.Tensor, check: bool = True) -> torch.Tensor:
        """Adam step on α from the validation batches; returns the per-seed losses.
        `check=False` skips the finiteness check, the step's one host sync (CUDA graphs)."""
        return self._arch(x, y, check)[0]

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, check: bool = True) -> torch.Tensor:
        """Clipped SGD step on the weights from the training batches; per-seed losses."""
        return self._weights(x, y, check)[0]

    def step(
        self,
        x_w: torch.Tensor,
        y_w: torch.Tensor,
        x_a: torch.Tensor,
        y_a: torch.Tensor,
        check: bool = True,
        accuracy: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """One bilevel step in the settings' order (DARTS-1st on NB201: weights, then α);
        returns the per-seed (training, validation) losses, or with `accuracy` the per-seed
        (training loss, training accuracy, validation loss, validation accuracy) as the
        engine logs them (accuracy in % of the batch, from the step's own forward)."""
        if self.settings.resolved_alpha_step() == "before_weights":
            valid = self._arch(x_a, y_a, check)
            train = self._weights(x_w, y_w, check)
        else:
            train = self._weights(x_w, y_w, check)
            valid = self._arch(x_a, y_a, check)
        if accuracy:
            return (*train, *valid)
        return train[0], valid[0]

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-seed validation loss of a forward pass in eval mode (the reference's per-epoch
        `valid_func`); no gradients, no BN statistics update."""
        self.template.eval()
        try:
            losses, _ = self._losses(x, y)
        finally:
            self.template.train()
        return losses

    def state_tensors(self) -> dict[tuple[str, str], torch.Tensor]:
        """Every tensor a step mutates (stacked weights, α, buffers, optimizer state), keyed
        stably (optimizer state by optimizer, parameter position and state key)."""
        out = {("param", n): p.data for n, p in self.params.items()}
        out.update({("buffer", n): b for n, b in self.buffers.items()})
        out.update({("alpha_left", n): t for n, t in self.alpha_left.items()})
        for name, opt in (("w", self.w_optimizer), ("a", self.a_optimizer)):
            params = [p for g in opt.param_groups for p in g["params"]]
            for i, p in enumerate(params):
                for key, value in opt.state.get(p, {}).items():
                    if isinstance(value, torch.Tensor):
                        out[(name, f"{i}.{key}")] = value
        return out

    def seed_state(self, s: int) -> dict[str, torch.Tensor]:
        """Seed s's parameters and buffers, keyed as the supernet's state_dict."""
        return {n: t[s].detach() for n, t in {**self.params, **self.buffers}.items()}


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-seed top-1 accuracy in % of logits (S, B, classes) against y (S, B)."""
    return (logits.detach().argmax(dim=-1) == y).float().mean(dim=1) * 100.0


def _check_finite(losses: torch.Tensor, what: str) -> None:
    bad = (~torch.isfinite(losses)).nonzero().flatten().tolist()
    if bad:
        raise FloatingPointError(f"{what} loss became non-finite for seed slot(s) {bad}")


@torch.no_grad()
def _clip_per_seed(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """`clip_grad_norm_` per seed: the total 2-norm over seed s's gradients scales only s."""
    return _clip_grads_per_seed([p.grad for p in params if p.grad is not None], max_norm)


@torch.no_grad()
def _clip_grads_per_seed(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """The per-seed clip of `_clip_per_seed` on gradient tensors (S, ...) themselves."""
    per_tensor = torch.stack([g.flatten(1).norm(dim=1) for g in grads])  # (tensors, S)
    total = per_tensor.norm(dim=0)  # (S,)
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)  # as torch.nn.utils.clip_grad_norm_
    for g in grads:
        g.mul_(coef.view(-1, *([1] * (g.dim() - 1))))
    return total


# -- benchmark ------------------------------------------------------------------------------


def build_nets(
    space: str, space_args: dict[str, Any], seeds: list[int], num_classes: int
) -> list[Supernet]:
    """One supernet per seed, each built as a single-seed run builds it (seed, then init)."""
    from nasrepro.spaces import build_space

    nets = []
    for seed in seeds:
        torch.manual_seed(seed)
        nets.append(build_space(space).build_supernet(num_classes, **space_args))
    return nets


def time_multiseed(
    space_args: dict[str, Any],
    seeds: int | list[int],
    batch: int,
    image_size: int,
    device: str | torch.device,
    steps: int = 10,
    warmup: int = 2,
    num_classes: int = 10,
) -> dict[str, Any]:
    """Median step time of S NB201 DARTS-1st searches stepped together vs one after another.

    A "step" is one bilevel step of every seed (weight + α step); images_per_s counts the
    `batch` training images each seed sees per step (as `nasrepro bench`), summed over seeds.
    """
    from nasrepro.search.engine import SearchContext, arch_step, build_optimizers, weight_step

    dev = torch.device(device)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    n = len(seed_list)
    settings = nb201_darts_settings()
    gen = torch.Generator().manual_seed(1234)
    shape = (n, batch, 3, image_size, image_size)
    xw, xa = (torch.randn(shape, generator=gen).to(dev) for _ in range(2))
    yw, ya = (torch.randint(0, num_classes, (n, batch), generator=gen).to(dev) for _ in range(2))

    multi = MultiSeedSearch(
        [net.to(dev) for net in build_nets("nb201", space_args, seed_list, num_classes)], settings
    )
    multi_ms = median_step_ms(lambda: multi.step(xw, yw, xa, ya), dev, steps, warmup)

    contexts = []
    for net in build_nets("nb201", space_args, seed_list, num_classes):
        ctx = SearchContext(
            supernet=net.to(dev).train(),
            settings=settings,
            hooks=[],
            device=dev,
            criterion=nn.CrossEntropyLoss(),
        )
        build_optimizers(ctx)
        contexts.append(ctx)

    def sequential() -> None:
        for s, ctx in enumerate(contexts):
            weight_step(ctx, xw[s], yw[s])
            arch_step(ctx, xw[s], yw[s], xa[s], ya[s])

    seq_ms = median_step_ms(sequential, dev, steps, warmup)
    images = n * batch
    return {
        "seeds": n,
        "batch": batch,
        "image_size": image_size,
        "space_args": dict(space_args),
        "device": str(dev),
        "step_ms": round(multi_ms, 3),
        "images_per_s": round(images / (multi_ms / 1e3), 1),
        "sequential_step_ms": round(seq_ms, 3),
        "sequential_images_per_s": round(images / (seq_ms / 1e3), 1),
        "speedup": round(seq_ms / multi_ms, 3),
        "steps": steps,
    }


def time_packed(
    space_args: dict[str, Any],
    seeds: int,
    batch: int,
    image_size: int,
    device: str | torch.device,
    steps: int = 10,
    warmup: int = 2,
    graph: bool = True,
    optimizer_impl: str = "fused",
    num_classes: int = 10,
) -> dict[str, Any]:
    """S NB201 DARTS-1st seeds packed into one step (vmapped, `optimizer_impl` optimizers,
    on CUDA with `graph` one CUDA graph): median ms of the step, of one packed eval-mode
    forward (the per-epoch validation pass), and the seconds one (re-)capture takes (once
    per epoch, when the lr changes)."""
    import time

    from nasrepro.timing import sync

    dev = torch.device(device)
    gen = torch.Generator().manual_seed(1234)
    shape = (seeds, batch, 3, image_size, image_size)
    xw, xa = (torch.randn(shape, generator=gen).to(dev) for _ in range(2))
    yw, ya = (torch.randint(0, num_classes, (seeds, batch), generator=gen).to(dev) for _ in "ab")
    nets = [n.to(dev) for n in build_nets("nb201", space_args, list(range(seeds)), num_classes)]
    multi = MultiSeedSearch(nets, nb201_darts_settings(), optimizer_impl=optimizer_impl)
    capture_s = None
    if graph and dev.type == "cuda":
        from nasrepro.search.graphed import GraphedMultiSeedStep

        step_fn: Any = GraphedMultiSeedStep(multi, xw, yw, xa, ya)
        sync(dev)
        start = time.perf_counter()
        step_fn._capture()  # what a new epoch's lr costs
        sync(dev)
        capture_s = time.perf_counter() - start
    else:
        step_fn = lambda *b: multi.step(*b, check=False)  # noqa: E731
    step_ms = median_step_ms(lambda: step_fn(xw, yw, xa, ya), dev, steps, warmup)
    eval_ms = median_step_ms(lambda: multi.evaluate(xa, ya), dev, steps, warmup)
    return {
        "seeds": seeds,
        "batch": batch,
        "image_size": image_size,
        "space_args": dict(space_args),
        "device": str(dev),
        "graph": capture_s is not None,
        "optimizer_impl": optimizer_impl,
        "step_ms": round(step_ms, 3),
        "eval_forward_ms": round(eval_ms, 3),
        "capture_s": None if capture_s is None else round(capture_s, 3),
        "images_per_s": round(seeds * batch / (step_ms / 1e3), 1),
        "steps": steps,
    }
