"""What is left of a paper: the claims not yet run, per paper table, with the datasets and
estimated GPU-hours they need (from `nasrepro plan`) and the command that runs them.

A pure function of the suite, the registry and the measured step times, like the rest of
the report. The hours are those of `nasrepro.plan.build_plan`'s units of work on the device
below (a search with its selection, each retraining some claim reads), each unit counted
once and units already in the store not at all: what `nasrepro run` would spend, not the
cost of whole trials.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasrepro.report.analysis import Analysis

DEVICE = "h200"  # the device whose step times are measured (nasrepro/data/step_times.json)
TO_RUN = ("not run", "other budget")


@dataclass(frozen=True)
class Left:
    """The not-yet-run claims of one paper table (or of the whole paper: table None)."""

    table: str | None
    claims: int  # claims whose experiment still has trials to run
    experiments: tuple[str, ...]
    trials: int  # unique trials not in the registry
    datasets: tuple[str, ...]
    gpu_hours: float  # of the units these trials still need, each once
    recorded_not_judged: int  # not-run claims whose experiment is fully recorded
    not_runnable: int


@dataclass(frozen=True)
class Remaining:
    device: str  # device name the hours are estimated on
    tables: list[Left]
    total: Left


def hours_left_in_all(
    analyses: list[Analysis], remainders: dict[str, Remaining], registry: Path
) -> float:
    """GPU-hours of the units several papers leave, from one plan of all their suites: a
    unit two papers need is counted once, and a best_by_valid retraining one paper needs is
    free where another retrains every seed of that cell anyway."""
    from nasrepro.plan import build_plan

    left = {(name, e) for name, r in remainders.items() for e in r.total.experiments}
    if not left:
        return 0.0
    plan = build_plan([a.path for a in analyses], "full", None, DEVICE, registry)
    hours = sum(
        u["hours"]
        for u in plan["units"]
        if not u["cached"] and any((n["suite"], n["experiment"]) in left for n in u["needed_by"])
    )
    return round(hours, 1)


def datasets_needed(config: dict[str, Any]) -> list[str]:
    """What a trial reads besides the embedded NB201 table: its search dataset, the datasets
    a retraining trains on, or the NAS-Bench-201 file of the `nb201-api` evaluator."""
    out = []
    if config.get("search") is not None:
        out.append(str(config["dataset"]))
    if config.get("evaluator") == "retrain":
        train_on = (config.get("evaluator_args") or {}).get("dataset")
        out += [str(train_on)] if train_on else [str(d) for d in config["eval_datasets"]]
    elif config.get("evaluator") == "nb201-api":
        out.append("NAS-Bench-201 file")
    return out


def suite_command(a: Analysis, table: str | None = None) -> str:
    """The command that runs the claims of `table` (every runnable experiment without it)."""
    path = a.path if not a.path.is_absolute() else Path(a.path.name)
    command = f"nasrepro run {path.as_posix()}"
    return command if table is None else f'{command} --table "{table}"'


def remaining(a: Analysis, registry: Path) -> Remaining:
    """Per paper table and in total: the claims left to run and what running them costs."""
    from nasrepro.plan import build_plan

    plan = build_plan([a.path], "full", None, DEVICE, registry)
    uncached: dict[str, dict[str, dict[str, Any]]] = {}  # experiment -> config hash -> trial
    for trial in plan["trials"]:
        if trial["cached"]:
            continue
        for need in trial["needed_by"]:
            if need["suite"] == a.suite.suite:
                uncached.setdefault(need["experiment"], {})[trial["key"]] = trial
    units_of: dict[str, dict[str, float]] = {}  # experiment -> unit key -> hours, not cached
    for unit in plan["units"]:
        if unit["cached"]:
            continue
        for need in unit["needed_by"]:
            if need["suite"] == a.suite.suite:
                units_of.setdefault(need["experiment"], {})[unit["key"]] = unit["hours"]
    rows_by_table: dict[str | None, list[Any]] = {}
    for row in a.rows:
        rows_by_table.setdefault(row.claim.table, []).append(row)
    rows_by_table[None] = list(a.rows)

    def _units(experiments: list[str] | tuple[str, ...]) -> dict[str, float]:
        return {k: h for e in experiments for k, h in units_of.get(e, {}).items()}

    def left(table: str | None) -> Left:
        rows = [r for r in rows_by_table[table] if r.verdict in TO_RUN]
        runnable = [r for r in rows if r.klass != "not runnable"]
        to_run = [r for r in runnable if r.claim.experiment in uncached]
        experiments = sorted({str(r.claim.experiment) for r in to_run})
        trials = {k: t for e in experiments for k, t in uncached[e].items()}
        datasets = sorted({d for t in trials.values() for d in datasets_needed(t["config"])})
        hours = sum(_units(experiments).values())
        return Left(
            table,
            len(to_run),
            tuple(experiments),
            len(trials),
            tuple(datasets),
            round(hours, 1),
            len(runnable) - len(to_run),
            len(rows) - len(runnable),
        )

    tables = [left(t) for t in rows_by_table if t is not None]
    total = left(None)
    return Remaining(plan["device"]["name"], [t for t in tables if t.claims], total)
