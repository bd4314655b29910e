"""`nasrepro bench`: time one bilevel search step per (space, method, switch).

A step is what the search loop does per batch: the architecture step (first or second
order) and the weight step, on random data of the papers' batch size. Each switch is
measured against the plain fp32 eager path on the same machine in the same process, so
`ratio_to_plain` (plain step time / switch step time) is a like-for-like speed-up.
fp32 switches keep the math (tests check outputs equal the plain path to fp32 tolerance);
`bf16` is opt-in and changes it. A switch joins features with `+`: `fused` (NB201 space arg
fused=True, nb201_fused.py), `cudagraph` (the first-order step as one CUDA graph,
search/graphed.py), `compile`, `channels_last`.

The `darts-eval`/`retrain` case times one training step of the DARTS_V2 CIFAR evaluation
network (quark0 train.py: 20 cells, 36 channels, batch 96, auxiliary weight 0.4, drop-path
0.2, clip 5, SGD), from which the 600-epoch retraining time follows (521 steps per epoch).
"""

from __future__ import annotations

import contextlib
import json
import platform
import statistics
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nasrepro.timing import interleaved_step_ms

FP32_SWITCHES = (
    "plain",
    "channels_last",
    "compile",
    "fused",
    "cudagraph",
    "fused+cudagraph",
    "compile+fused",
)
SWITCHES = (*FP32_SWITCHES, "bf16")
RETRAIN_SWITCHES = ("plain", "channels_last", "compile", "bf16")
RETRAIN_STEPS_PER_EPOCH = 521  # ceil(50000 / 96): the CIFAR-10 train set at batch 96
RETRAIN_EPOCHS = 600


@dataclass(frozen=True)
class BenchCase:
    space: str  # a search space, or "darts-eval" (the retraining network)
    method: str  # "darts-1st" | "darts-2nd" | "retrain"
    batch: int
    image_size: int
    space_args: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 10
    in_channels: int = 3
    # method hooks (nasrepro/methods), applied as the engine applies them
    methods: tuple[str, ...] = ()
    method_args: dict[str, dict[str, Any]] = field(default_factory=dict)


# The papers' search settings: NB201 batch 64 on 32x32 CIFAR (AutoDL DARTS.config);
# DARTS space batch 64, 8 cells, C=16 (quark0/darts train_search.py).
FULL_CASES = (
    BenchCase("nb201", "darts-1st", 64, 32, {"c": 16, "n": 5}),
    BenchCase("nb201", "darts-2nd", 64, 32, {"c": 16, "n": 5}),
    BenchCase("darts", "darts-1st", 64, 32, {"c": 16, "layers": 8}),
    BenchCase("darts", "darts-2nd", 64, 32, {"c": 16, "layers": 8}),
    # quark0/darts cnn/train.py --auxiliary --cutout: the evaluation network retrained 600 epochs
    BenchCase("darts-eval", "retrain", 96, 32, {"layers": 20, "init_channels": 36}),
)
# quark0/darts cnn/train_imagenet.py: the mobile-setting network (14 cells, 48 channels,
# 224x224, 1000 classes, batch 128). `nasrepro plan` scales this step from the CIFAR one
# until a GPU measures it: timed with --device cuda only (minutes per step on a CPU).
GPU_CASES = (
    BenchCase(
        "darts-eval-imagenet", "retrain", 128, 224, {"layers": 14, "init_channels": 48},
        num_classes=1000,
    ),
)  # fmt: skip
QUICK_CASES = (
    BenchCase("nb201", "darts-1st", 8, 16, {"c": 4, "n": 1}),
    BenchCase("nb201", "darts-2nd", 8, 16, {"c": 4, "n": 1}),
    # 3 cells (both reductions) at 32x32: the auxiliary head needs 8x8 maps
    BenchCase("darts-eval", "retrain", 4, 32, {"layers": 3, "init_channels": 4}),
)


# Step-time ratios for `nasrepro plan` (`nasrepro bench --ratios`; nasrepro/data/
# step_times.json "ratios"): each case is timed side by side with its reference in one
# process, at the papers' supernet sizes (NB201 C=16/N=5; DARTS-type C=16, 8 cells, 32x32)
# and a small batch: on a CPU a step's compute scales with the batch, so ratios carry over.
RATIO_BATCH = 16
_NB201 = {"c": 16, "n": 5}
_S0 = {"c": 16, "layers": 8}
_LAMBDA = {"lambda_": 0.25, "eps0": 1e-4, "cells": "normal", "variant": "Lambda"}


def ratio_cases(batch: int = RATIO_BATCH) -> list[tuple[str, str, BenchCase, BenchCase]]:
    """(group, name, case, reference): a space's first-order step against S0's, each
    space's second-order step against its first-order one, a method's step against plain
    DARTS on S0 (on NB201 for the NB201-only variants)."""
    darts1 = BenchCase("darts", "darts-1st", batch, 32, _S0)
    out: list[tuple[str, str, BenchCase, BenchCase]] = []
    for space in ("s1", "s2", "s3", "s4"):
        out.append(("space", space, BenchCase(space, "darts-1st", batch, 32, _S0), darts1))
    out.append(("space", "nb201", BenchCase("nb201", "darts-1st", batch, 32, _NB201), darts1))
    for space, args in (("nb201", _NB201), ("darts", _S0), ("s1", _S0), ("s2", _S0),
                        ("s3", _S0), ("s4", _S0)):  # fmt: skip
        first = BenchCase(space, "darts-1st", batch, 32, args)
        second = BenchCase(space, "darts-2nd", batch, 32, args)
        out.append(("second_order", space, second, first))
    methods: list[tuple[str, tuple[str, ...], dict[str, dict[str, Any]]]] = [
        ("darts_minus", ("darts_minus",), {}),
        ("lambda", ("lambda",), {"lambda": _LAMBDA}),
        ("lambda/forward_backward", ("lambda",),
         {"lambda": {**_LAMBDA, "difference": "forward_backward"}}),
        ("sdarts_rs", ("sdarts_rs",), {}),
        ("pc/k4", ("pc",), {"pc": {"k": 4}}),
        ("pc/k2", ("pc",), {"pc": {"k": 2}}),
        ("rf", ("rf",), {}),
        ("fix_alpha", ("fix_alpha",), {}),
    ]  # fmt: skip
    methods.append(("sdarts_adv", ("sdarts_adv",), {}))  # 7 PGD steps on α per weight step
    for name, ms, args in methods:
        case = BenchCase("darts", "darts-1st", batch, 32, _S0, methods=ms, method_args=args)
        out.append(("method", name, case, darts1))
    # the sampled-path methods run on NB201 only (nasrepro/methods/sampled_paths.py): their
    # step against NB201's plain first-order step, which the plan's NB201 step time is
    nb201 = BenchCase("nb201", "darts-1st", batch, 32, _NB201)
    for name in ("gdas", "setn", "rsps"):
        case = BenchCase("nb201", "darts-1st", batch, 32, _NB201, methods=(name,))
        out.append(("method", name, case, nb201))
    return out


@dataclass
class RatioRow:
    group: str  # space | second_order | method
    name: str
    ratio: float  # case step time / reference step time (CPU time on a CPU)
    case_ms: float
    reference_ms: float
    clock: str
    rounds: int
    case: dict[str, Any]
    reference: dict[str, Any]


def run_ratios(
    device: str = "cpu",
    batch: int = RATIO_BATCH,
    rounds: int = 3,
    only: list[str] | None = None,
    progress: Any = None,
    on_row: Any = None,
) -> list[RatioRow]:
    """Time every ratio case beside its reference (`ratio_cases`); `only` filters by
    `group/name` prefix."""
    dev = torch.device(device)
    clock = "wall" if dev.type == "cuda" else "cpu"
    rows: list[RatioRow] = []
    for group, name, case, ref in ratio_cases(batch):
        if only and not any(f"{group}/{name}".startswith(o) for o in only):
            continue
        steps = {
            "case": build_step(case, "plain", dev)[0],
            "reference": build_step(ref, "plain", dev)[0],
        }
        times = interleaved_step_ms(steps, dev, rounds, 1)
        med = {k: statistics.median(v[clock]) for k, v in times.items()}
        row = RatioRow(
            group, name, round(med["case"] / med["reference"], 3), round(med["case"], 1),
            round(med["reference"], 1), clock, rounds, asdict(case), asdict(ref),
        )  # fmt: skip
        rows.append(row)
        if on_row is not None:
            on_row(rows)
        if progress is not None:
            progress(f"{group} {name}: {row.ratio}x its reference ({row.case_ms:.0f} / "
                     f"{row.reference_ms:.0f} ms {clock})")  # fmt: skip
    return rows


def write_ratio_results(rows: list[RatioRow], path: Path, command: str, complete: bool) -> Path:
    from nasrepro.provenance import package_versions

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command,
        "created_at": datetime.now(UTC).strftime("%Y%m%dT%H%M%S"),
        "device": device_label(torch.device("cpu")) if not rows or rows[0].clock == "cpu"
        else "cuda",
        "torch": torch.__version__,
        "packages": package_versions(),
        "complete": complete,
        "ratios": [asdict(r) for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2))
    return path


@dataclass
class BenchRow:
    space: str
    method: str
    switch: str
    batch: int
    device: str
    step_ms: float
    images_per_s: float
    peak_mem_mb: float | None  # not measured when switches are timed side by side
    ratio_to_plain: float | None
    steps: int
    max_rel_diff_vs_plain: float | None = None  # after one step, over α and all weights
    note: str | None = None
    # Side-by-side timing (timing.interleaved_step_ms): this process's CPU time per step,
    # which on a shared, loaded CPU counts work rather than waiting; ratios use it on CPU
    # and wall time on CUDA (`ratio_clock`).
    cpu_ms: float | None = None
    ratio_to_reference: float | None = None  # reference step time / this step time
    ratio_clock: str | None = None
    wall_ms_rounds: list[float] | None = None
    cpu_ms_rounds: list[float] | None = None


def _settings(order: int) -> Any:
    from nasrepro.suite import SearchSettings

    return SearchSettings(
        epochs=50,
        batch_size=64,
        order=order,
        lr=0.025,
        lr_min=0.001,
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        arch_lr=3e-4,
        arch_weight_decay=1e-3,
    )


def _features(switch: str) -> set[str]:
    return set(switch.split("+"))


def skip_reason(case: BenchCase, switch: str, device: torch.device) -> str | None:
    """Why a switch does not apply to a case on a device (None: it does)."""
    feats = _features(switch)
    if case.method == "retrain":
        return None if switch in RETRAIN_SWITCHES else "not a retraining switch"
    if "fused" in feats and case.space != "nb201":
        return "fused is an nb201 space arg"
    if "fused" in feats and case.space_args.get("drop_ops"):
        return "fused mixes all five NB201 ops (the space drops some)"
    if "cudagraph" in feats and device.type != "cuda":
        return "CUDA graphs need a CUDA device"
    if "cudagraph" in feats and case.method != "darts-1st":
        return "CUDA graphs capture the first-order step only"
    if "compile" in feats and case.method == "darts-2nd":
        return "the unrolled step's functional_call re-traces every call"
    return None


def _compile_cells(net: nn.Module) -> None:
    # Compile each cell's forward: the engine keeps calling the supernet itself, so α,
    # optimizers and the unrolled functional_call see the same modules.
    for module in net.modules():
        if type(module).__name__ in ("SearchCell", "FusedSearchCell", "ResNetBasicBlock"):
            module.forward = torch.compile(module.forward, dynamic=False)


def build_step(
    case: BenchCase,
    switch: str,
    device: torch.device,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    perturb: float = 0.0,
) -> Any:
    """(step function, context) for one case and switch, from a seeded initial state.

    `dtype` float64 compares switches without fp32 rounding; `perturb` δ scales weights, α
    and inputs by (1 ± δ) (the condition probe of nasrepro/rounding.py)."""
    if case.method == "retrain":
        return build_retrain_step(case, switch, device, seed)
    from nasrepro.methods.base import build_hooks
    from nasrepro.search.engine import SearchContext, arch_step, build_optimizers, weight_step
    from nasrepro.spaces import build_space

    feats = _features(switch)
    space_args = {**case.space_args, **({"fused": True} if "fused" in feats else {})}
    hooks = build_hooks(list(case.methods), case.method_args)
    for hook in hooks:
        space_args = hook.configure_space(space_args)
    torch.manual_seed(seed)
    net = build_space(case.space).build_supernet(
        case.num_classes, **({"in_channels": case.in_channels} if case.in_channels != 3 else {}),
        **space_args,
    )  # fmt: skip
    net = net.to(device=device, dtype=dtype)
    gen = torch.Generator().manual_seed(seed + 1)
    shape = (case.batch, case.in_channels, case.image_size, case.image_size)
    xw, xa = (torch.randn(shape, generator=gen, dtype=dtype).to(device) for _ in range(2))
    if perturb:
        from nasrepro.rounding import perturb as perturb_data

        perturb_data([*net.parameters(), xw, xa], perturb, seed + 2)
    yw, ya = (
        torch.randint(0, case.num_classes, (case.batch,), generator=gen).to(device)
        for _ in range(2)
    )
    if "channels_last" in feats:
        net = net.to(memory_format=torch.channels_last)
        xw, xa = (x.contiguous(memory_format=torch.channels_last) for x in (xw, xa))
    order = 2 if case.method == "darts-2nd" else 1
    ctx = SearchContext(
        supernet=net,
        settings=_settings(order),
        hooks=hooks,
        device=device,
        criterion=nn.CrossEntropyLoss(),
    )
    for hook in hooks:
        hook.on_build(ctx)
    build_optimizers(ctx)
    if hooks:  # a mid-search epoch: schedules (λ_t, β) past 0, warm-ups over
        ctx.epoch = ctx.settings.epochs // 2
        for hook in hooks:
            hook.on_epoch_start(ctx)
    if "compile" in feats:
        _compile_cells(net)
    if "cudagraph" in feats:
        from nasrepro.search.graphed import graph_first_order_step

        graphed = graph_first_order_step(ctx, xw, yw, xa, ya)

        def replay() -> None:
            graphed(xw, yw, xa, ya)

        return replay, ctx
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if "bf16" in feats
        else contextlib.nullcontext()
    )

    alpha_first = ctx.settings.resolved_alpha_step() == "before_weights"

    def step() -> None:
        with autocast:  # in the engine's order (1st order: weights, then α)
            update_alpha = all(h.update_alpha(ctx) for h in hooks)
            if update_alpha and alpha_first:
                arch_step(ctx, xw, yw, xa, ya)
            weight_step(ctx, xw, yw)
            if update_alpha and not alpha_first:
                arch_step(ctx, xw, yw, xa, ya)

    return step, ctx


def reference_available() -> bool:
    """Whether xautodl (AutoDL-Projects' library, installed with --no-deps) imports."""
    try:
        from xautodl.models.cell_searchs.search_model_darts import (  # noqa: F401
            TinyNetworkDarts,
        )
    except ImportError:
        return False
    return True


def build_reference_step(case: BenchCase, device: torch.device, seed: int = 0) -> Any:
    """(step, network): the reference implementation's NB201 DARTS-V1 step, AutoDL-Projects
    exps/algos/DARTS-V1.py `search_func`, on xautodl's own `TinyNetworkDarts`: the weight
    step (SGD 0.025, Nesterov, momentum 0.9, wd 5e-4; clip 5 over all parameters), then the
    α step (Adam 3e-4, betas (0.5, 0.999), wd 1e-3) by a full `backward()`, each followed by
    the loss's `.item()` as the reference logs it. Same data as `build_step`."""
    from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts

    from nasrepro.spaces.nb201 import OPS

    if case.space != "nb201" or case.method != "darts-1st":
        raise ValueError(f"the reference step is NB201 DARTS-V1, not {case.space} {case.method}")
    args = case.space_args
    torch.manual_seed(seed)
    net = TinyNetworkDarts(
        args.get("c", 16), args.get("n", 5), 4, case.num_classes, list(OPS),
        args.get("affine", False), args.get("track_running_stats", False),
    ).to(device).train()  # fmt: skip
    gen = torch.Generator().manual_seed(seed + 1)
    shape = (case.batch, 3, case.image_size, case.image_size)
    xw, xa = (torch.randn(shape, generator=gen).to(device) for _ in range(2))
    yw, ya = (
        torch.randint(0, case.num_classes, (case.batch,), generator=gen).to(device)
        for _ in range(2)
    )
    w_opt = torch.optim.SGD(
        net.get_weights(), 0.025, momentum=0.9, weight_decay=5e-4, nesterov=True
    )
    a_opt = torch.optim.Adam(net.get_alphas(), 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    criterion = nn.CrossEntropyLoss()

    def step() -> None:
        w_opt.zero_grad()
        _, logits = net(xw)
        loss = criterion(logits, yw)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        w_opt.step()
        loss.item()
        a_opt.zero_grad()
        _, logits = net(xa)
        loss = criterion(logits, ya)
        loss.backward()
        a_opt.step()
        loss.item()

    return step, net


def build_retrain_step(case: BenchCase, switch: str, device: torch.device, seed: int = 0) -> Any:
    """(step, model) for one training step of the DARTS_V2 CIFAR evaluation network, as
    evaluate/retrain.py runs it: forward, loss + 0.4·aux loss, backward, clip 5, SGD."""
    from nasrepro._compat import ensure_torchvision

    ensure_torchvision()  # before timm, which imports torchvision (docs/stack.md)
    import timm

    import nasrepro.nets.darts_eval  # noqa: F401  (registers the timm models)

    feats = _features(switch)
    torch.manual_seed(seed)
    imagenet = case.space == "darts-eval-imagenet"
    model = timm.create_model(
        "nasrepro_darts_imagenet" if imagenet else "nasrepro_darts_cifar",
        genotype="DARTS_V2",
        num_classes=case.num_classes,
        auxiliary=True,
        # CIFAR: the full rate, the ramp's last epochs, the costliest; ImageNet: none
        drop_path_rate=0.0 if imagenet else 0.2,
        **case.space_args,
    ).to(device)
    model.train()
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn((case.batch, 3, case.image_size, case.image_size), generator=gen).to(device)
    y = torch.randint(0, case.num_classes, (case.batch,), generator=gen).to(device)
    if "channels_last" in feats:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    # quark0 train.py: SGD(0.025, momentum 0.9, wd 3e-4) over all parameters
    opt = torch.optim.SGD(model.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
    forward = torch.compile(model, dynamic=False) if "compile" in feats else model
    criterion = nn.CrossEntropyLoss()
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if "bf16" in feats
        else contextlib.nullcontext()
    )

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast:
            logits, aux = forward(x)
            loss = criterion(logits, y) + 0.4 * criterion(aux, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

    return step, model


def state_after_one_step(
    case: BenchCase,
    switch: str,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    perturb: float = 0.0,
) -> list[torch.Tensor]:
    """α and every weight after one step from the seeded initial state (for equality checks)."""
    if case.method == "retrain":
        # inductor draws its own random numbers; eager's keep drop-path masks comparable
        with _inductor_eager_random():
            step, model = build_step(case, switch, device)
            step()
        return [p.detach().float().cpu() for p in model.parameters()]
    step, ctx = build_step(case, switch, device, dtype=dtype, perturb=perturb)
    step()
    net = ctx.supernet
    return [p.detach().cpu() for p in [*net.arch_parameters(), *net.weight_parameters()]]


def short_search_genotype(
    case: BenchCase, switch: str, device: torch.device, steps: int
) -> tuple[str, str, torch.Tensor]:
    """(genotype at the seeded start, genotype after `steps` steps of `switch` on the case's
    fixed batches, α after them): a switch must select what the plain path selects."""
    from nasrepro.spaces import build_space

    space = build_space(case.space)
    step, ctx = build_step(case, switch, device)
    start = space.format_genotype(space.derive_argmax(ctx.supernet))
    for _ in range(steps):
        step()
    net = ctx.supernet
    alpha = torch.cat([a.detach().reshape(-1).cpu() for a in net.arch_parameters()])
    return start, space.format_genotype(space.derive_argmax(net)), alpha


@dataclass
class SwitchCheck:
    """A switch's state after one step against the plain path's, per tensor (rounding.py)."""

    rel_diffs: list[float]
    tolerances: list[float]
    plain_moved: float  # max relative change of a tensor in the plain step: not vacuous

    @property
    def worst(self) -> float:
        """max over tensors of difference / tolerance: <= 1 means equal up to rounding."""
        return max(d / t for d, t in zip(self.rel_diffs, self.tolerances, strict=True))


def check_switch(
    case: BenchCase, switch: str, device: torch.device, dtype: torch.dtype = torch.float64
) -> SwitchCheck:
    """Compare one step of `switch` with the plain path in `dtype`, against per-tensor
    bounds 2·κ_t·γ_{nD} whose condition κ_t is measured on the plain step (rounding.py)."""
    from nasrepro import rounding

    _, ctx = build_step(case, "plain", device, dtype=dtype)
    net = ctx.supernet
    initial = [p.detach().cpu() for p in [*net.arch_parameters(), *net.weight_parameters()]]
    n = rounding.longest_reduction(net, case.batch, case.image_size)
    _, tols = rounding.probe_tolerances(
        lambda delta: state_after_one_step(case, "plain", device, torch.float64, delta),
        n,
        rounding.chained_reductions(net),
        dtype,
    )
    plain = state_after_one_step(case, "plain", device, dtype)
    other = state_after_one_step(case, switch, device, dtype)
    return SwitchCheck(
        rounding.relative_diffs(plain, other),
        tols,
        max(rounding.relative_diffs(initial, plain)),
    )


@contextlib.contextmanager
def _inductor_eager_random() -> Iterator[None]:
    try:
        from torch._inductor import config
    except ImportError:  # pragma: no cover - inductor ships with torch
        yield
        return
    with config.patch(fallback_random=True):
        yield


def max_rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """max over tensors of ‖a − b‖ / ‖a‖ (tensors with ‖a‖ = 0 compared absolutely)."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        scale = x.norm().item() or 1.0
        worst = max(worst, (x - y).norm().item() / scale)
    return worst


def _retrain_estimate(step_ms: float) -> str:
    hours = RETRAIN_EPOCHS * RETRAIN_STEPS_PER_EPOCH * step_ms / 1e3 / 3600
    return (
        f"{RETRAIN_EPOCHS} epochs x {RETRAIN_STEPS_PER_EPOCH} steps ≈ {hours:.1f} h "
        "(training steps only)"
    )


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


REFERENCE = "reference"  # xautodl's TinyNetworkDarts DARTS-V1 step (build_reference_step)


def _case_steps(case: BenchCase, switches: list[str], dev: torch.device) -> dict[str, Any]:
    steps: dict[str, Any] = {}
    for switch in switches:
        if switch == REFERENCE:
            steps[switch] = build_reference_step(case, dev)[0]
        else:
            steps[switch] = build_step(case, switch, dev)[0]
    return steps


def time_side_by_side(
    case: BenchCase, switches: list[str], dev: torch.device, rounds: int, warmup: int
) -> list[BenchRow]:
    """One row per switch (and `reference`), all timed interleaved in this process."""
    times = interleaved_step_ms(_case_steps(case, switches, dev), dev, rounds, warmup)
    clock = "wall" if dev.type == "cuda" else "cpu"
    med = {k: {c: statistics.median(v[c]) for c in ("wall", "cpu")} for k, v in times.items()}
    rows = []
    for switch in switches:
        wall, cpu = med[switch]["wall"], med[switch]["cpu"]
        mine = med[switch][clock]
        rows.append(
            BenchRow(
                case.space,
                case.method,
                switch,
                case.batch,
                device_label(dev),
                round(wall, 3),
                round(case.batch / (wall / 1e3), 1),
                None,
                round(med["plain"][clock] / mine, 3) if "plain" in med else None,
                rounds,
                cpu_ms=round(cpu, 3),
                ratio_to_reference=(
                    round(med[REFERENCE][clock] / mine, 3) if REFERENCE in med else None
                ),
                ratio_clock=clock,
                wall_ms_rounds=[round(t, 1) for t in times[switch]["wall"]],
                cpu_ms_rounds=[round(t, 1) for t in times[switch]["cpu"]],
            )
        )
    return rows


FAST_MARGIN = 0.05  # a switch must beat plain by 5% (median vs median) to be chosen


def pick_fastest(times: dict[str, list[float]], margin: float = FAST_MARGIN) -> str:
    """The switch with the lowest median time, if it beats `plain` by `margin`; else plain
    (so `--fast` is never chosen slower than plain within the measurement's resolution)."""
    medians = {k: statistics.median(v) for k, v in times.items()}
    best = min(medians, key=medians.__getitem__)
    return best if medians[best] < (1 - margin) * medians["plain"] else "plain"


def fast_candidates(case: BenchCase, device: torch.device, graphable: bool) -> list[str]:
    """The fp32 switches `nasrepro run --fast` may use for a search: fused NB201 ops,
    channels_last on a CPU (oneDNN convolutions), CUDA graphs where the step is graphable."""
    out = ["plain"]
    if case.space == "nb201":
        out.append("fused")
    if device.type == "cpu":
        out += ["channels_last"] + (["fused+channels_last"] if case.space == "nb201" else [])
    elif graphable and case.method == "darts-1st":
        out += ["cudagraph"] + (["fused+cudagraph"] if case.space == "nb201" else [])
    return out


def choose_fast(
    case: BenchCase, device: torch.device, graphable: bool, rounds: int = 3
) -> tuple[str, dict[str, Any]]:
    """(switch, timings): the candidate that wins on this device at this size, measured side
    by side on random data of the search's shape (CPU time on a CPU, wall on CUDA)."""
    candidates = [
        s for s in fast_candidates(case, device, graphable) if not skip_reason(case, s, device)
    ]
    if len(candidates) == 1:
        return "plain", {}
    times = interleaved_step_ms(_case_steps(case, candidates, device), device, rounds, 1)
    clock = "wall" if device.type == "cuda" else "cpu"
    chosen = pick_fastest({k: v[clock] for k, v in times.items()})
    medians = {k: round(statistics.median(v[clock]), 2) for k, v in times.items()}
    return chosen, {"clock": clock, "median_ms": medians, "rounds": rounds}


def fast_switches(
    space: str,
    space_args: dict[str, Any],
    order: int,
    batch: int,
    image_size: int,
    num_classes: int,
    in_channels: int,
    device: torch.device,
    graphable: bool,
) -> dict[str, Any]:
    """`nasrepro run --fast`: the switches that win for this search's supernet, batch and
    device (`choose_fast`), as SearchContext / space flags plus the measured choice."""
    case = BenchCase(
        space, "darts-1st" if order == 1 else "darts-2nd", batch, image_size,
        {k: v for k, v in space_args.items() if k != "fused"}, num_classes, in_channels,
    )  # fmt: skip
    # the timing builds seeded supernets: the search's own random stream must not move
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        chosen, timings = choose_fast(case, device, graphable)
    feats = _features(chosen)
    return {
        "fused": "fused" in feats,
        "cuda_graph": "cudagraph" in feats,
        "channels_last": "channels_last" in feats,
        "chosen": chosen,
        "timings": timings,
    }


def run_bench(
    quick: bool,
    device: str,
    switches: tuple[str, ...] = SWITCHES,
    steps: int | None = None,
    warmup: int | None = None,
    progress: Any = None,
    check: bool = True,
    on_row: Any = None,
    reference: bool = True,
) -> list[BenchRow]:
    """Time every case × switch side by side (with xautodl's reference step where it
    applies and is installed); `on_row(rows_so_far)` lets callers save partial results."""
    dev = torch.device(device)
    cases = QUICK_CASES if quick else FULL_CASES + (GPU_CASES if dev.type == "cuda" else ())
    steps = steps or (3 if quick else 5)
    warmup = warmup or 1
    rows: list[BenchRow] = []
    for case in cases:
        chosen = []
        for switch in ("plain", *[s for s in switches if s != "plain"]):
            reason = skip_reason(case, switch, dev)
            if reason is None:
                chosen.append(switch)
            elif progress is not None and case.method != "retrain":
                progress(f"{case.space} {case.method} {switch}: skipped ({reason})")
        with_reference = (
            reference
            and case.space == "nb201"
            and case.method == "darts-1st"
            and reference_available()
        )
        if with_reference:
            chosen.append(REFERENCE)
        case_rows = time_side_by_side(case, chosen, dev, steps, warmup)
        for row in case_rows:
            if case in FULL_CASES and case.method == "retrain":
                row.note = _retrain_estimate(row.step_ms)
            if check and row.switch not in ("plain", REFERENCE):
                plain = state_after_one_step(case, "plain", dev)
                row.max_rel_diff_vs_plain = max_rel_diff(
                    plain, [t.float() for t in state_after_one_step(case, row.switch, dev)]
                )
            rows.append(row)
            if on_row is not None:
                on_row(rows)
            if progress is not None:
                ref = f", {row.ratio_to_reference}x reference" if row.ratio_to_reference else ""
                progress(
                    f"{row.space} {row.method} {row.switch}: {row.step_ms:.1f} ms/step wall, "
                    f"{row.cpu_ms:.1f} ms CPU, {row.ratio_to_plain}x plain{ref}"
                )
    return rows


def results_path(folder: Path, device: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    slug = "".join(ch if ch.isalnum() else "-" for ch in device.split(" (")[0]).strip("-")
    return folder / f"{stamp}-{slug.lower()}.json"


def write_results(rows: list[BenchRow], path: Path, command: str, complete: bool) -> Path:
    """(Re)write the results file; `complete` is False while the run is still going."""
    path.parent.mkdir(parents=True, exist_ok=True)
    from nasrepro.provenance import package_versions

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    device = rows[0].device if rows else "none"
    payload = {
        "command": command,
        "created_at": stamp,
        "device": device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "packages": package_versions(),
        "complete": complete,
        "rows": [asdict(r) for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2))
    return path
