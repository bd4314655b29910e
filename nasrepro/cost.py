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

# `select` is the selection after the search (DARTS-PT's tuning): its own unit of work, and
# part of the papers' search cost (records fold it into `search_seconds`).
PHASES = ("search", "select", "eval")
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
                    {p: float(proc.get(f"{p}_seconds", 0.0)) for p in PHASES}
                    for proc in data["processes"]
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


def unit_cost(clock: TrialClock, phase: str, device_name: str, gpus: int) -> dict[str, Any]:
    """A unit record's `cost`: the seconds of one phase summed over the processes that ran
    it (resumptions), GPU-hours = seconds × GPUs (None on a CPU)."""
    procs = [round(p[f"{phase}_seconds"], 3) for p in clock.processes()]
    seconds = sum(procs)
    return {
        "seconds": round(seconds, 3),
        "gpus": gpus,
        "gpu_hours": round(seconds * gpus / 3600, 6) if gpus else None,
        "device_name": device_name,
        "processes": procs,
    }


def assembled_cost(search: list[dict[str, Any]], evals: list[dict[str, Any]]) -> dict[str, Any]:
    """A trial record's `cost` from its units' costs: `search` (the search and selection
    units) and `evals` (retrainings, lookups). Each unit's processes become entries of
    `processes` ({search_seconds, eval_seconds}); GPU-hours are the units' own sum."""
    search_s = sum(c["seconds"] for c in search)
    eval_s = sum(c["seconds"] for c in evals)
    procs = [{"search_seconds": s, "eval_seconds": 0.0} for c in search for s in c["processes"]]
    procs += [{"search_seconds": 0.0, "eval_seconds": s} for c in evals for s in c["processes"]]
    gpu = [c["gpu_hours"] for c in [*search, *evals] if c["gpu_hours"] is not None]
    search_gpus = max((c["gpus"] for c in search), default=0)
    return {
        "search_seconds": round(search_s, 3),
        "eval_seconds": round(eval_s, 3),
        "total_seconds": round(search_s + eval_s, 3),
        "gpu_hours": round(sum(gpu), 6) if gpu else None,
        "search_gpus": search_gpus,
        "eval_gpus": max((c["gpus"] for c in evals), default=0),
        "device_name": next((c["device_name"] for c in [*search, *evals]), "none"),
        "processes": procs,
    }


def trial_cost(
    clock: TrialClock, device_name: str, search_gpus: int, eval_gpus: int
) -> dict[str, Any]:
    """The record's `cost`: seconds summed over processes; GPU-hours = seconds × GPUs of
    each phase (None when the trial ran on a CPU: no GPU-hours were spent). Selection
    seconds count as search (the papers' search cost includes DARTS-PT's tuning)."""
    procs = [
        {
            "search_seconds": p["search_seconds"] + p["select_seconds"],
            "eval_seconds": p["eval_seconds"],
        }
        for p in clock.processes()
    ]
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
