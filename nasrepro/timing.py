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
