"""What the claims need, as units of work.

A trial is a search, a selection and its evaluations; each is a unit identified by what it
computes (nasrepro/jobs.py: `unit_key`), shared by every experiment and suite that needs
it. An experiment retrains only what some claim reads (docs/plan.md, "Units of work"):

- a claim reading an accuracy (test_acc, *_err) on a dataset with protocol `mean`,
  `retrain_k` or `best_by_test` needs that dataset retrained for every seed of the
  experiment;
- `best_by_valid` with `select_by: search_valid_acc` needs one retraining: the cell of the
  seed, among the first N (the claim's n_seeds, else the experiment's seeds), whose search
  has the best validation accuracy (ties: the lowest seed), known once those searches are
  recorded; with `select_by: valid_acc` every seed;
- `single` needs seed 0;
- params and FLOPs need no training: a dataset read only for them is not retrained, its
  network is counted (`RetrainEvaluator.complexity`);
- search cost needs only the search and selection units; comparisons read claims.

Nothing else is retrained; `policy="all"` (`nasrepro run --retrain all`) retrains every
evaluated dataset of every seed, as the harness did before units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nasrepro.jobs import Trial, stable_hash
from nasrepro.suite import Claim, Suite, metric_kind

ALL, SELECTED, FIRST = "all", "selected", "first"
POLICIES = ("claims", "all")
# What each evaluator can record (the report derives *_err from *_acc of the same name).
PRODUCES = {
    "retrain": {"test_acc", "test_err", "top1_err", "top5_err", "params_m", "flops_m"},
    # and, for searches, the oracle over the per-epoch cells (evaluate/trajectory.py)
    "nb201-table": {"test_acc", "test_err", "trajectory_best_test_acc"},
    "nb201-api": {"test_acc", "test_err", "valid_acc", "valid_err", "trajectory_best_test_acc"},
    "complexity": {"params_m", "flops_m"},
}
PHASES = ("search", "selection", "retrain_cifar", "retrain_imagenet")
PHASE_TITLES = {
    "search": "search",
    "selection": "selection (PT tuning)",
    "retrain_cifar": "CIFAR/SVHN retraining",
    "retrain_imagenet": "ImageNet retraining",
}


def selected_mode(n: int) -> str:
    """The mode of a best_by_valid claim among the first `n` seeds (0: the experiment's)."""
    return f"{SELECTED}:{n}"


def selected_ns(modes: frozenset[str]) -> set[int]:
    """The N of each best_by_valid selection in `modes`."""
    return {int(m.split(":")[1]) for m in modes if m.startswith(SELECTED + ":")}


def _modes(claim: Claim) -> frozenset[str]:
    if claim.protocol in ("mean", "retrain_k", "best_by_test"):
        return frozenset({ALL})  # best_by_test: the best *test* value of the first N seeds
    if claim.protocol == "best_by_valid":
        if claim.resolved_select_by == "search_valid_acc":
            return frozenset({selected_mode(claim.n_seeds or 0)})
        return frozenset({ALL})  # the evaluator's validation accuracy of every seed picks
    if claim.protocol == "single":
        return frozenset({FIRST})
    return frozenset()  # cell_property: a lookup of a published cell


def _merge(a: frozenset[str], b: frozenset[str]) -> frozenset[str]:
    both = a | b
    return frozenset({ALL}) if ALL in both else both


@dataclass(frozen=True)
class Needs:
    """Which seeds of one experiment each evaluated dataset is retrained for (`retrain`)
    and counted for (`complexity`): {dataset: modes}, modes ⊆ {all, selected, first}."""

    retrain: dict[str, frozenset[str]] = field(default_factory=dict)
    complexity: dict[str, frozenset[str]] = field(default_factory=dict)
    claims: dict[str, tuple[str, ...]] = field(default_factory=dict)  # dataset -> claim ids


def merge_needs(a: Needs, b: Needs) -> Needs:
    """What two experiments resolving to the same trial need together."""

    def union(x: dict[str, frozenset[str]], y: dict[str, frozenset[str]]) -> dict:
        return {ds: _merge(x.get(ds, frozenset()), y.get(ds, frozenset())) for ds in {*x, *y}}

    claims = {ds: (*a.claims.get(ds, ()), *b.claims.get(ds, ())) for ds in {*a.claims, *b.claims}}
    return Needs(union(a.retrain, b.retrain), union(a.complexity, b.complexity), claims)


def with_seeds(needs: Needs, n_seeds: int) -> Needs:
    """`needs` with a best_by_valid selection among "the experiment's seeds" made explicit
    (a claim without n_seeds selects among all `n_seeds` of its experiment)."""

    def fix(modes: frozenset[str]) -> frozenset[str]:
        return frozenset(selected_mode(n_seeds) if m == selected_mode(0) else m for m in modes)

    return Needs(
        {ds: fix(m) for ds, m in needs.retrain.items()},
        {ds: fix(m) for ds, m in needs.complexity.items()},
        needs.claims,
    )


def experiment_needs(suite: Suite, exp_id: str, policy: str = "claims") -> Needs:
    """What the suite's claims read from experiment `exp_id` (see the module docstring)."""
    if policy not in POLICIES:
        raise ValueError(f"--retrain: unknown policy {policy!r} (known: {', '.join(POLICIES)})")
    exp = suite.experiments[exp_id]
    if exp.evaluator != "retrain":
        return Needs()
    if policy == "all":
        every = frozenset({ALL})
        return Needs(dict.fromkeys(exp.eval_datasets, every), {}, {})
    retrain: dict[str, frozenset[str]] = {}
    complexity: dict[str, frozenset[str]] = {}
    claims: dict[str, list[str]] = {}
    for c in suite.claims:
        if c.experiment != exp_id or c.not_runnable or c.dataset not in exp.eval_datasets:
            continue
        kind = metric_kind(c.metric)
        if kind == "accuracy":
            retrain[c.dataset] = _merge(retrain.get(c.dataset, frozenset()), _modes(c))
            claims.setdefault(c.dataset, []).append(c.id)
        elif kind == "complexity":
            complexity[c.dataset] = _merge(complexity.get(c.dataset, frozenset()), _modes(c))
    return Needs(retrain, complexity, {k: tuple(v) for k, v in claims.items()})


def search_valid_acc(result: dict[str, Any]) -> float | None:
    """A search unit's selection score, as the report's `select_by: search_valid_acc` reads
    it from the assembled record (nasrepro/report/records.py): the method's own score where
    it sets one (RobustDARTS' infer()), else the supernet's validation accuracy after its
    last epoch that has one."""
    from nasrepro.report.records import search_valid_acc as of_record

    return of_record(
        {"search": {"history": result.get("history"), "valid_acc": result.get("valid_acc")}}
    )


def best_seed(values: dict[int, float | None]) -> int | None:
    """The seed best_by_valid picks: the highest value, ties to the lowest seed; None while
    a seed has no value."""
    if not values or any(v is None or not math.isfinite(v) for v in values.values()):
        return None
    return min(values, key=lambda s: (-float(values[s] or 0.0), s))


Selected = dict[int, "int | None"]  # N -> the seed best_by_valid picks among the first N


def wanted(modes: frozenset[str], seed: int, selected: Selected) -> bool | None:
    """Whether the seed's dataset is retrained under `modes`; None while it depends on a
    selection not known yet (some of the first N searches are not recorded)."""
    if ALL in modes or (FIRST in modes and seed == 0):
        return True
    picks = [selected.get(n) for n in selected_ns(modes) if seed < n]
    if any(p == seed for p in picks):
        return True
    if any(p is None for p in picks):
        return None
    return False


def reason_not_retrained(modes: frozenset[str], seed: int, selected: Selected) -> str:
    if not modes:
        return "no claim reads its accuracy"
    ns = sorted(selected_ns(modes))
    if ns:
        picks = ", ".join(f"seed {selected.get(n)} of the first {n}" for n in ns)
        return f"best_by_valid retrains the selected cell only ({picks})"
    return "single retrains seed 0 only"


# ------------------------------------------------------------------------- the plan


def retrain_phase(dataset: str) -> str:
    return "retrain_imagenet" if dataset == "imagenet" else "retrain_cifar"


@dataclass
class PlannedUnit:
    """One unit of the plan: its key (the retraining of a searched cell is keyed by its
    selection, its cell being unknown before), phase, estimated hours and who needs it."""

    kind: str  # search | selection | retrain
    key: str
    phase: str
    hours: float
    seed: int | None
    dataset: str | None = None
    needed_by: list[tuple[str, str]] = field(default_factory=list)  # (suite, experiment)
    why: str = ""
    cached: bool = False
    trial: Trial | None = None  # a trial it is computed for (not for a best-of-N retraining)


@dataclass
class TrialPlan:
    trial: Trial
    needs: Needs
    n_seeds: int  # the experiment's seeds at the budget (best_by_valid picks among them)


def _recipe_identity(trial: Trial, dataset: str) -> dict[str, Any]:
    from nasrepro.jobs import retrain_identity

    ident = retrain_identity(trial.config, dataset, "")
    ident.pop("genotype")
    return ident


def every_seed(needs: Needs) -> Needs:
    """`needs` with each dataset read by a claim retrained for every seed (the harness
    before best_by_valid and single claims retrained one cell)."""
    full = frozenset({ALL})
    return Needs({ds: full for ds, m in needs.retrain.items() if m}, needs.complexity, needs.claims)


def planned_units(
    plans: Iterable[TrialPlan],
    estimate: Any,
    share: bool = True,
) -> tuple[dict[str, PlannedUnit], dict[str, list[PlannedUnit]]]:
    """The units the trials need, each once: searches and selections by key, retrainings
    by (cell or selection, dataset, recipe, seed); a best_by_valid retraining is one unit
    per (selection group, dataset, recipe, number of seeds) unless that experiment's seeds
    are all retrained anyway. `estimate(kind, trial, dataset)` gives hours. `share=False`
    keys every unit by its trial's configuration too (what the trials cost without sharing
    units across experiments). Returns (units by key, the trial's units by config hash)."""
    units: dict[str, PlannedUnit] = {}
    by_trial: dict[str, list[PlannedUnit]] = {}

    def add(unit: PlannedUnit, who: tuple[str, str], trial: Trial) -> None:
        if not share:
            unit.key = stable_hash([unit.key, trial.group_hash])
        have = units.setdefault(unit.key, unit)
        if who not in have.needed_by:
            have.needed_by.append(who)
        mine = by_trial.setdefault(trial.config_hash, [])
        if have not in mine:
            mine.append(have)

    plans = list(plans)
    best_of: dict[tuple[str, str, str, int], list[TrialPlan]] = {}
    every: dict[tuple[str, str, str], set[int]] = {}
    retrained: dict[tuple[tuple[str, str, str], int], str] = {}  # (group, seed) -> unit key
    for p in plans:
        t, who = p.trial, (p.trial.suite, p.trial.experiment)
        by_trial.setdefault(t.config_hash, [])
        if t.searched:
            assert t.search_key is not None and t.selection_key is not None
            hours = estimate("search", t, None)
            add(PlannedUnit("search", t.search_key, "search", hours, t.seed, trial=t), who, t)
            hours = estimate("selection", t, None)
            key = t.selection_key
            add(PlannedUnit("selection", key, "selection", hours, t.seed, trial=t), who, t)
        cell = t.config["genotype"] if t.given_cell else stable_hash(
            {k: v for k, v in t.config.items() if k in ("space", "space_args", "dataset",
                                                         "methods", "method_args", "search",
                                                         "selector", "selector_args")}
        )  # fmt: skip
        for ds, modes in p.needs.retrain.items():
            recipe = stable_hash(_recipe_identity(t, ds))
            group = (cell if share else cell + t.group_hash, ds, recipe)
            if ALL in modes or (FIRST in modes and t.seed == 0):
                every.setdefault(group, set()).add(t.seed)
                key = stable_hash({"retrain": group, "seed": t.seed})
                hours = estimate("retrain", t, ds)
                why = "all seeds" if ALL in modes else "single: seed 0"
                unit = PlannedUnit("retrain", key, retrain_phase(ds), hours, t.seed, ds, [], why,
                                   trial=t)  # fmt: skip
                add(unit, who, t)
                retrained[(group, t.seed)] = unit.key
            if ALL not in modes:
                for n in selected_ns(modes):
                    if t.seed < n:
                        best_of.setdefault((*group, n), []).append(p)
    for (cell, ds, recipe, n), members in best_of.items():
        if set(range(n)) <= every.get((cell, ds, recipe), set()):
            # every seed retrained anyway: the selected one among them, so those units are
            # needed by these experiments too (what is left of a paper counts them)
            for s in range(n):
                have = units[retrained[((cell, ds, recipe), s)]]
                for q in members:
                    if (q.trial.suite, q.trial.experiment) not in have.needed_by:
                        have.needed_by.append((q.trial.suite, q.trial.experiment))
            continue
        key = stable_hash({"retrain": (cell, ds, recipe), "best_of": n})
        hours = estimate("retrain", members[0].trial, ds)
        for q in members:  # every trial whose experiment's selection this is
            unit = PlannedUnit(
                "retrain", key, retrain_phase(ds), hours, None, ds, [],
                f"best_by_valid: the selected seed of the first {n}",
            )  # fmt: skip
            add(unit, (q.trial.suite, q.trial.experiment), q.trial)
    return units, by_trial


def phase_hours(units: Iterable[PlannedUnit]) -> dict[str, dict[str, float]]:
    """{phase: {"units": count, "hours": sum}} over the phases (every phase present)."""
    out = {ph: {"units": 0, "hours": 0.0} for ph in PHASES}
    for u in units:
        out[u.phase]["units"] += 1
        out[u.phase]["hours"] += u.hours
    for v in out.values():
        v["hours"] = round(v["hours"], 2)
    return out


def uncovered_claims(suite: Suite, experiments: set[str], needs_of: Any) -> list[dict[str, str]]:
    """Runnable claims of the planned experiments whose number no planned unit produces,
    with the reason: `kind` "evaluator" (the experiment's evaluator records no such
    metric) or "plan" (the plan leaves out what the claim reads: a bug)."""
    out = []
    for c in suite.claims:
        if c.not_runnable or c.experiment not in experiments:
            continue
        exp = suite.experiments[c.experiment]
        where = {"suite": suite.suite, "claim": c.id, "experiment": c.experiment}
        kind = metric_kind(c.metric)
        if kind == "cost":
            if exp.genotype is not None:
                why = "a published cell has no search"
                out.append({**where, "kind": "evaluator", "reason": why})
            continue
        if c.dataset not in exp.eval_datasets:
            out.append({**where, "kind": "plan", "reason": f"{c.dataset} is not evaluated"})
            continue
        if c.metric not in PRODUCES.get(exp.evaluator, set()):
            out.append(
                {
                    **where,
                    "kind": "evaluator",
                    "reason": f"evaluator {exp.evaluator} records no {c.metric}",
                }
            )
            continue
        if exp.evaluator == "retrain" and kind == "accuracy":
            needs: Needs = needs_of(c.experiment)
            if not needs.retrain.get(c.dataset):
                out.append({**where, "kind": "plan", "reason": f"{c.dataset} not retrained"})
    return out
