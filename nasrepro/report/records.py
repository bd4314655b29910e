"""Registry records as the report reads them: which records back an experiment, and the
numbers a claim takes from each record."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasrepro.registry import RecordIndex
from nasrepro.report.verdict import Sample
from nasrepro.suite import BEST_OF_N, Claim, Suite

Groups = dict[str, dict[str, list[dict[str, Any]]]]  # experiment -> budget -> records


@dataclass(frozen=True)
class Backing:
    """The records behind a suite's experiments (one per seed), records set aside with the
    reason, and the trials whose records disagree.

    Several records of one trial (a `--rerun`, a copied file) are never resolved by time:
    records with identical results count once (`duplicates` counts the extra ones), and
    records that disagree are a conflict, shown on the page and not judged."""

    groups: Groups
    duplicates: dict[tuple[str, str], int]
    stale: list[tuple[dict[str, Any], str]]
    conflicts: dict[tuple[str, str], list[tuple[int, list[dict[str, Any]]]]] = field(
        default_factory=dict
    )

    def conflicting_seeds(self, experiment: str, budget: str) -> list[int]:
        return [seed for seed, _ in self.conflicts.get((experiment, budget), [])]


# What a record measured: two records of one trial agree when these are equal.
MEASURED = ("metrics", "genotype", "arch_index")


def measured_content(rec: dict[str, Any]) -> str:
    """The record's measured results as canonical JSON (for agreement and CI checks)."""
    return json.dumps({k: rec.get(k) for k in MEASURED}, sort_keys=True, allow_nan=False)


def _one_per_seed(
    recs: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], int, list[tuple[int, list[dict[str, Any]]]]]:
    """(one record per agreeing seed, extra identical records, conflicting seeds)."""
    by_seed: dict[int, list[dict[str, Any]]] = {}
    for rec in recs:
        by_seed.setdefault(int(rec["seed"]), []).append(rec)
    used, extra, conflicts = [], 0, []
    for seed in sorted(by_seed):
        same = sorted(by_seed[seed], key=lambda r: str(r.get("_path", "")))
        if len({measured_content(r) for r in same}) == 1:
            used.append(same[0])
            extra += len(same) - 1
        else:
            conflicts.append((seed, same))
    return used, extra, conflicts


def backing_records(suite: Suite, suite_path: Path, index: RecordIndex) -> Backing:
    """THE rule for which records back an experiment: plan.experiment_records, i.e. the
    records of the experiment's resolved configuration at the current fidelity version,
    whichever suite wrote them; then one per seed by content (Backing). Records of this
    suite's experiments that failed the registry's integrity checks are set aside with the
    reason. Every report number goes through here."""
    from nasrepro.plan import experiment_records

    groups: Groups = {}
    duplicates: Counter[tuple[str, str]] = Counter()
    conflicts: dict[tuple[str, str], list[tuple[int, list[dict[str, Any]]]]] = {}
    stale: list[tuple[dict[str, Any], str]] = []
    for exp_id, exp in suite.experiments.items():
        # a published cell under a deterministic evaluator is the same trial at every budget,
        # recorded as full: listing it under smoke/reduced too would count it three times
        budgets = ("full",) if exp.is_artifact else ("full", *sorted(suite.budgets))
        for budget in budgets:
            backing = experiment_records(suite, exp_id, budget, index, str(suite_path))
            same_trial = list(backing.used)
            for aside in backing.set_aside:
                if aside.reason.startswith(f"seed {aside.record['seed']} re-run"):
                    same_trial.append(aside.record)  # plan's newest-wins: decided here instead
                else:
                    stale.append((aside.record, aside.reason))
            used, extra, clash = _one_per_seed(same_trial)
            if used:
                groups.setdefault(exp_id, {})[budget] = used
            if extra:
                duplicates[(exp_id, budget)] += extra
            if clash:
                conflicts[(exp_id, budget)] = clash
    for rec, reason in index.rejected:
        if rec["suite"] == suite.suite and rec["experiment"] in suite.experiments:
            stale.append((rec, reason))
    return Backing(groups, dict(duplicates), stale, conflicts)


def metric_value(rec: dict[str, Any], dataset: str, metric: str) -> tuple[float, bool] | None:
    """(value, derived) of `metric` on `dataset`, derived = computed as 100 − accuracy.
    The registry has checked that metrics are finite numbers."""
    on = (rec.get("metrics") or {}).get(dataset) or {}
    if not isinstance(on, dict):
        return None
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
        select = select_value(rec, claim) if claim.protocol in BEST_OF_N else None
        rank = None
        if claim.protocol == "best_by_test" and claim.metric not in ("test_acc", "test_err"):
            test = metric_value(rec, claim.dataset, "test_err")
            rank = None if test is None else 100.0 - test[0]
        samples.append(
            Sample(int(rec["seed"]), value[0], select, flops_counts(rec, claim), rank)
        )
    return Taken(samples, missing, derived, tuple(sorted(set(devices))), cpu)


def flops_counts(rec: dict[str, Any], claim: Claim) -> tuple[tuple[str, float], ...]:
    """A flops_m claim: the record's count under each convention it holds (`flops_m` is
    the default convention, `flops_m.<name>` the others); empty for other metrics."""
    from nasrepro.suite import FLOPS_CONVENTIONS

    if claim.metric != "flops_m":
        return ()
    on = (rec.get("metrics") or {}).get(claim.dataset) or {}
    out = []
    for name in FLOPS_CONVENTIONS:
        key = "flops_m" if name == FLOPS_CONVENTIONS[0] else f"flops_m.{name}"
        if isinstance(on, dict) and on.get(key) is not None:
            out.append((name, float(on[key])))
    return tuple(out)


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
