"""What a trial cost, measured: search and evaluation seconds over every process that ran
it, the device, and GPU-hours.

A trial killed and resumed is run by several processes. Each process's clock is written
to `<trial checkpoint>.clock.json` whenever any checkpoint of the trial is saved (search
epochs, selection, PT tuning, retraining epochs), so a resumed process starts from what
the earlier ones spent up to their last checkpoint; the work a killed process did after
its last checkpoint is redone by the next one and counted there. The record's cost is the
sum over processes (`cost.processes` lists each one).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PHASES = ("search", "eval")
# Read through the module so a test can substitute a clock.
now: Callable[[], float] = time.perf_counter


def clock_path(trial_checkpoint: Path) -> Path:
    return trial_checkpoint.with_name(f"{trial_checkpoint.stem}.clock.json")


class TrialClock:
    """Seconds per phase of this process, on top of the earlier processes' totals.

    `search` covers data loading, the search and the selection (the papers' search cost
    includes DARTS-PT's projection); `eval` is the evaluator (table lookups or retraining).
    """

    def __init__(self, path: Path | None, earlier: list[dict[str, Any]] | None = None) -> None:
        self.path = path
        self.earlier = list(earlier or [])
        self.phase = "search"
        self.spent = dict.fromkeys(PHASES, 0.0)
        self._since = now()

    def attach(self, path: Path, continue_earlier: bool) -> None:
        """Persist to `path` from now on; with `continue_earlier`, add this process to the
        processes recorded there (an unreadable clock file counts as none)."""
        self.path = path
        self.earlier = []
        if continue_earlier and path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                self.earlier = [
                    {p: float(proc[f"{p}_seconds"]) for p in PHASES} for proc in data["processes"]
                ]
            except (OSError, ValueError, KeyError, TypeError):
                self.earlier = []

    def _tick(self) -> None:
        t = now()
        self.spent[self.phase] += t - self._since
        self._since = t

    def enter(self, phase: str) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r} (known: {', '.join(PHASES)})")
        self._tick()
        self.phase = phase

    def processes(self) -> list[dict[str, float]]:
        """Every process's seconds per phase, this one last (as of now)."""
        self._tick()
        mine = {f"{p}_seconds": self.spent[p] for p in PHASES}
        return [{f"{p}_seconds": e[p] for p in PHASES} for e in self.earlier] + [mine]

    def flush(self) -> None:
        """Persist the processes' times atomically beside the trial's checkpoint."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"processes": self.processes()}, fh)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def gpu_count(device: str) -> int:
    """GPUs a device string names: `cuda` and `cuda:0` one, `cuda:0,1` two; a CPU none."""
    if not device.startswith("cuda"):
        return 0
    ids = device.partition(":")[2]
    return len(ids.split(",")) if ids else 1


def trial_cost(
    clock: TrialClock, device_name: str, search_gpus: int, eval_gpus: int
) -> dict[str, Any]:
    """The record's `cost`: seconds summed over processes; GPU-hours = seconds × GPUs of
    each phase (None when the trial ran on a CPU: no GPU-hours were spent)."""
    procs = clock.processes()
    search = sum(p["search_seconds"] for p in procs)
    evaluation = sum(p["eval_seconds"] for p in procs)
    on_gpu = search_gpus > 0 or eval_gpus > 0
    gpu_seconds = search * search_gpus + evaluation * eval_gpus
    return {
        "search_seconds": round(search, 3),
        "eval_seconds": round(evaluation, 3),
        "total_seconds": round(search + evaluation, 3),
        "gpu_hours": round(gpu_seconds / 3600, 6) if on_gpu else None,
        "search_gpus": search_gpus,
        "eval_gpus": eval_gpus,
        "device_name": device_name,
        "processes": [{k: round(v, 3) for k, v in p.items()} for p in procs],
    }


def search_cost_gpu_days(cost: dict[str, Any]) -> float | None:
    """The papers' search-cost metric from a record's cost (None on a CPU)."""
    if not cost.get("search_gpus"):
        return None
    return round(cost["search_seconds"] * cost["search_gpus"] / 86400, 6)
