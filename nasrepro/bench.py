"""`nasrepro bench`: time one bilevel search step per (space, method, switch).

A step is what the search loop does per batch: the architecture step (first or second
order) and the weight step, on random data of the papers' batch size. Each switch is
measured against the plain fp32 eager path on the same machine in the same process, so
`ratio_to_plain` (plain step time / switch step time) is a like-for-like speed-up.
fp32 switches keep the math (tests check outputs equal the plain path to fp32 tolerance);
`bf16` is opt-in and changes it.
"""

from __future__ import annotations

import contextlib
import json
import platform
import resource
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

FP32_SWITCHES = ("plain", "channels_last", "compile")
SWITCHES = (*FP32_SWITCHES, "bf16")


@dataclass(frozen=True)
class BenchCase:
    space: str
    method: str  # "darts-1st" | "darts-2nd"
    batch: int
    image_size: int
    space_args: dict[str, Any] = field(default_factory=dict)
    num_classes: int = 10


# The papers' search settings: NB201 batch 64 on 32x32 CIFAR (AutoDL DARTS.config);
# DARTS space batch 64, 8 cells, C=16 (quark0/darts train_search.py).
FULL_CASES = (
    BenchCase("nb201", "darts-1st", 64, 32, {"c": 16, "n": 5}),
    BenchCase("nb201", "darts-2nd", 64, 32, {"c": 16, "n": 5}),
    BenchCase("darts", "darts-1st", 64, 32, {"c": 16, "layers": 8}),
    BenchCase("darts", "darts-2nd", 64, 32, {"c": 16, "layers": 8}),
)
QUICK_CASES = (
    BenchCase("nb201", "darts-1st", 8, 16, {"c": 4, "n": 1}),
    BenchCase("nb201", "darts-2nd", 8, 16, {"c": 4, "n": 1}),
)


@dataclass
class BenchRow:
    space: str
    method: str
    switch: str
    batch: int
    device: str
    step_ms: float
    images_per_s: float
    peak_mem_mb: float | None
    ratio_to_plain: float | None
    steps: int
    max_rel_diff_vs_plain: float | None = None  # after one step, over α and all weights


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


def build_step(case: BenchCase, switch: str, device: torch.device, seed: int = 0) -> Any:
    """(step function, context) for one case and switch, from a seeded initial state."""
    from nasrepro.search.engine import SearchContext, arch_step, build_optimizers, weight_step
    from nasrepro.spaces import build_space

    torch.manual_seed(seed)
    net = build_space(case.space).build_supernet(case.num_classes, **case.space_args).to(device)
    gen = torch.Generator().manual_seed(seed + 1)
    shape = (case.batch, 3, case.image_size, case.image_size)
    xw, xa = (torch.randn(shape, generator=gen).to(device) for _ in range(2))
    yw, ya = (
        torch.randint(0, case.num_classes, (case.batch,), generator=gen).to(device)
        for _ in range(2)
    )
    if switch == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        xw, xa = (x.contiguous(memory_format=torch.channels_last) for x in (xw, xa))
    order = 2 if case.method == "darts-2nd" else 1
    ctx = SearchContext(
        supernet=net,
        settings=_settings(order),
        hooks=[],
        device=device,
        criterion=nn.CrossEntropyLoss(),
    )
    build_optimizers(ctx)
    if switch == "compile":
        # Compile each cell's forward: the engine keeps calling the supernet itself, so
        # α, optimizers and the unrolled functional_call see the same modules.
        for module in net.modules():
            if type(module).__name__ in ("SearchCell", "ResNetBasicBlock"):
                module.forward = torch.compile(module.forward, dynamic=False)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if switch == "bf16"
        else contextlib.nullcontext()
    )

    def step() -> None:
        with autocast:
            arch_step(ctx, xw, yw, xa, ya)
            weight_step(ctx, xw, yw)

    return step, ctx


def state_after_one_step(case: BenchCase, switch: str, device: torch.device) -> list[torch.Tensor]:
    """α and every weight after one step from the seeded initial state (for equality checks)."""
    step, ctx = build_step(case, switch, device)
    step()
    net = ctx.supernet
    return [p.detach().float().cpu() for p in [*net.arch_parameters(), *net.weight_parameters()]]


def max_rel_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """max over tensors of ‖a − b‖ / ‖a‖ (tensors with ‖a‖ = 0 compared absolutely)."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        scale = x.norm().item() or 1.0
        worst = max(worst, (x - y).norm().item() / scale)
    return worst


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _peak_memory(device: torch.device) -> Iterator[dict[str, float | None]]:
    out: dict[str, float | None] = {"mb": None}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    yield out
    if device.type == "cuda":
        out["mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:  # process-wide high-water mark: an upper bound, not per case
        out["mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_case(
    case: BenchCase, switch: str, device: torch.device, steps: int, warmup: int
) -> BenchRow:
    step, _ = build_step(case, switch, device)
    with _peak_memory(device) as mem:
        for _ in range(warmup):
            step()
        _sync(device)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step()
            _sync(device)
            times.append(time.perf_counter() - start)
    ms = statistics.median(times) * 1e3
    return BenchRow(
        case.space,
        case.method,
        switch,
        case.batch,
        device_label(device),
        round(ms, 3),
        round(case.batch / (ms / 1e3), 1),
        None if mem["mb"] is None else round(mem["mb"], 1),
        None,
        steps,
    )


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def run_bench(
    quick: bool,
    device: str,
    switches: tuple[str, ...] = SWITCHES,
    steps: int | None = None,
    warmup: int | None = None,
    progress: Any = None,
    check: bool = True,
    on_row: Any = None,
) -> list[BenchRow]:
    """Time every case × switch; `on_row(rows_so_far)` lets callers save partial results."""
    dev = torch.device(device)
    cases = QUICK_CASES if quick else FULL_CASES
    steps = steps or (3 if quick else 20)
    warmup = warmup or (1 if quick else 5)
    rows: list[BenchRow] = []
    for case in cases:
        plain: float | None = None
        for switch in ("plain", *[s for s in switches if s != "plain"]):
            if switch == "compile" and case.method == "darts-2nd":
                continue  # the unrolled step's functional_call re-traces every call
            row = time_case(case, switch, dev, steps, warmup)
            if switch == "plain":
                plain = row.step_ms
            row.ratio_to_plain = round(plain / row.step_ms, 3) if plain else None
            if check and switch != "plain":
                reference = state_after_one_step(case, "plain", dev)
                row.max_rel_diff_vs_plain = max_rel_diff(
                    reference, state_after_one_step(case, switch, dev)
                )
            rows.append(row)
            if on_row is not None:
                on_row(rows)
            if progress is not None:
                progress(f"{row.space} {row.method} {row.switch}: {row.step_ms:.1f} ms/step")
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
