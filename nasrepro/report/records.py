"""Registry records as the report reads them: which records back an experiment, and the
numbers a claim takes from each record."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasrepro.registry import RecordIndex
from nasrepro.report.verdict import Sample
from nasrepro.suite import Claim, Suite

Groups = dict[str, dict[str, list[dict[str, Any]]]]  # experiment -> budget -> records


@dataclass(frozen=True)
class Backing:
    """The records behind a suite's experiments (newest record per seed), the count of
    re-run records they superseded, and records set aside with the reason."""

    groups: Groups
    superseded: dict[tuple[str, str], int]
    stale: list[tuple[dict[str, Any], str]]


def backing_records(suite: Suite, suite_path: Path, index: RecordIndex) -> Backing:
    """THE rule for which records back an experiment: plan.experiment_records, i.e. the
    records of the experiment's resolved configuration at the current fidelity version,
    whichever suite wrote them, newest per seed. Every report number goes through here."""
    from nasrepro.plan import experiment_records

    groups: Groups = {}
    superseded: Counter[tuple[str, str]] = Counter()
    stale: list[tuple[dict[str, Any], str]] = []
    for exp_id, exp in suite.experiments.items():
        # a published cell under a deterministic evaluator is the same trial at every budget,
        # recorded as full: listing it under smoke/reduced too would count it three times
        budgets = ("full",) if exp.is_artifact else ("full", *sorted(suite.budgets))
        for budget in budgets:
            backing = experiment_records(suite, exp_id, budget, index, str(suite_path))
            if backing.used:
                groups.setdefault(exp_id, {})[budget] = backing.used
            for aside in backing.set_aside:
                if aside.reason.startswith(f"seed {aside.record['seed']} re-run"):
                    superseded[(exp_id, budget)] += 1
                else:
                    stale.append((aside.record, aside.reason))
    return Backing(groups, dict(superseded), stale)


def metric_value(rec: dict[str, Any], dataset: str, metric: str) -> tuple[float, bool] | None:
    """(value, derived) of `metric` on `dataset`, derived = computed as 100 − accuracy."""
    on = (rec.get("metrics") or {}).get(dataset) or {}
    if on.get(metric) is not None:
        return float(on[metric]), False
    if metric.endswith("_err"):
        acc = on.get(metric[: -len("_err")] + "_acc")
        if acc is not None:
            return 100.0 - float(acc), True
    return None


def search_valid_acc(rec: dict[str, Any]) -> float | None:
    """The search's selection score where its method records one (`search.valid_acc`:
    RobustDARTS' eval-mode accuracy on the whole validation split, at the epoch DARTS-ES
    rolls back to or of the run an R-DARTS grid selects), else the supernet's validation
    accuracy after its last epoch that has one."""
    own = ((rec.get("search") or {}).get("valid_acc") or {}).get("value")
    if own is not None and math.isfinite(float(own)):
        return float(own)
    for epoch in reversed((rec.get("search") or {}).get("history") or []):
        v = epoch.get("valid_acc")
        if v is not None and math.isfinite(float(v)):
            return float(v)
    return None


def select_value(rec: dict[str, Any], claim: Claim) -> float | None:
    """The record's value of the claim's `select_by` metric (best_by_valid)."""
    if claim.resolved_select_by == "search_valid_acc":
        return search_valid_acc(rec)
    got = metric_value(rec, claim.dataset, "valid_acc")
    return None if got is None else got[0]


def cost_value(rec: dict[str, Any]) -> tuple[float, str, bool] | None:
    """(search GPU-days, device, on a GPU) from the record's measured `cost`: search seconds
    × the GPUs the search used / 86400. None when the record holds no cost."""
    cost = rec.get("cost") or {}
    seconds = cost.get("search_seconds")
    if seconds is None:
        return None
    device = cost.get("device_name") or (rec.get("provenance") or {}).get("device") or "?"
    gpus = int(cost.get("search_gpus") or 0)
    return float(seconds) * max(gpus, 1) / 86400.0, str(device), gpus > 0


@dataclass(frozen=True)
class Taken:
    """What one budget's records give a claim."""

    samples: list[Sample]
    missing: int  # records without the metric
    derived: bool  # some values are 100 − accuracy
    devices: tuple[str, ...]  # cost claims: where the time was measured
    cpu_only: int  # cost claims: records measured off a GPU (not judged)


def take(claim: Claim, recs: list[dict[str, Any]]) -> Taken:
    """The claim metric (and selection metric) of each record."""
    samples, devices = [], []
    missing = cpu = 0
    derived = False
    for rec in recs:
        if claim.metric == "search_cost_gpu_days":
            got = cost_value(rec)
            if got is None:
                missing += 1
                continue
            if not got[2]:
                cpu += 1
                continue
            samples.append(Sample(int(rec["seed"]), got[0]))
            devices.append(got[1])
            continue
        value = metric_value(rec, claim.dataset, claim.metric)
        if value is None:
            missing += 1
            continue
        derived = derived or value[1]
        select = select_value(rec, claim) if claim.protocol == "best_by_valid" else None
        samples.append(Sample(int(rec["seed"]), value[0], select))
    return Taken(samples, missing, derived, tuple(sorted(set(devices))), cpu)


def evaluation(rec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    ev = rec.get("evaluation") or {}
    return ev, ev.get("source") or {}


def is_fixture(rec: dict[str, Any]) -> bool:
    ev, src = evaluation(rec)
    return bool(ev.get("fixture") or src.get("fixture"))


def evaluator_name(rec: dict[str, Any]) -> str:
    ev, src = evaluation(rec)
    return str(src.get("backend") or ev.get("evaluator") or "unknown evaluator")


def evaluator_text(rec: dict[str, Any]) -> str:
    """Where a record's numbers came from, e.g. `nb201-table (embedded NATS 200-epoch
    table, sha256 cb5d77…)`."""
    _, src = evaluation(rec)
    name = evaluator_name(rec)
    parts = []
    if name == "nb201-table":
        parts.append("embedded NATS 200-epoch table")
    elif src.get("release"):
        parts.append(str(src["release"]))
    elif src.get("path"):
        parts.append(Path(str(src["path"])).name)
    if src.get("hp") is not None and name != "nb201-table":
        parts.append(f"hp={src['hp']}")
    if src.get("sha256"):
        parts.append(f"sha256 {str(src['sha256'])[:6]}…")
    if is_fixture(rec):
        parts.append("FIXTURE: made-up numbers")
    return f"{name} ({', '.join(parts)})" if parts else name
