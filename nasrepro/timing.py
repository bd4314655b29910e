"""Wall-clock timing of a step on CPU or GPU (benchmarks share one definition)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a timer measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_step_ms(
    step: Callable[[], object], device: torch.device, steps: int, warmup: int
) -> float:
    """Median milliseconds of `steps` calls of `step` after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    sync(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def interleaved_step_ms(
    steps: dict[str, Callable[[], object]], device: torch.device, rounds: int, warmup: int
) -> dict[str, dict[str, list[float]]]:
    """Milliseconds of every step in `steps`, measured side by side: each round runs every
    step once, in an order rotated per round, so a change of machine load (other jobs on a
    shared CPU) falls on all of them alike. Per step: `wall` (elapsed) and `cpu` (this
    process's CPU time, all threads: on a loaded CPU it counts the work done, not the time
    spent waiting for a core) per round; compare medians."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    sync(device)
    times: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu = time.perf_counter(), time.process_time()
            steps[name]()
            sync(device)
            times[name]["cpu"].append((time.process_time() - cpu) * 1e3)
            times[name]["wall"].append((time.perf_counter() - wall) * 1e3)
    return times
