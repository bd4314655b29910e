"""Suite × budget → trials (fully resolved configurations), and which records back them.

`expand` turns a suite's experiments at a budget into trials (nasrepro/jobs.py says what
identifies one); `experiment_records` is the one place that decides which registry records
an experiment at a budget uses and why the others are set aside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nasrepro.catalog import did_you_mean
from nasrepro.jobs import FIDELITY_VERSION, Trial, config_diff, group_key, stable_hash, trial_key
from nasrepro.registry import RecordIndex, fidelity_of
from nasrepro.suite import Experiment, SearchSettings, Suite, SuiteError, suite_hash

__all__ = [
    "BUDGETS",
    "Backing",
    "SetAside",
    "Trial",
    "expand",
    "experiment_records",
    "resolve_experiment",
    "stable_hash",
]

BUDGETS = ("full", "reduced", "smoke")


def resolve_experiment(
    suite: Suite, exp_id: str, budget: str, suite_path: str = "<suite>"
) -> tuple[dict[str, Any], int, str]:
    """(config, number of seeds, budget description) of one experiment at a budget."""
    exp: Experiment = suite.experiments[exp_id]
    if exp.genotype is not None:
        return _resolve_given_cell(suite, exp, budget, suite_path)
    if exp.query is not None:
        return _resolve_query(suite, exp, budget, suite_path)
    assert exp.search is not None  # the Experiment validator: search, genotype or query
    search = exp.search.model_dump()
    space_args = dict(exp.space_args)
    method_args = {k: dict(v) for k, v in exp.method_args.items()}
    selector_args = dict(exp.selector_args)
    evaluator_args = dict(exp.evaluator_args)
    dataset, seeds = exp.dataset, exp.seeds
    description = "the paper's settings"
    if budget != "full":
        rule = suite.budgets.get(budget)  # type: ignore[call-overload]
        if rule is None:
            raise SuiteError(
                suite_path, None, f"budgets.{budget}", f"the suite declares no {budget!r} budget"
            )
        description = rule.description
        search.update(rule.search)
        search.update(exp.budget_search.get(budget, {}))  # type: ignore[call-overload]
        space_args.update(rule.space_args)
        space_args.update(rule.space_args_by_space.get(exp.space, {}))
        selector_args.update(rule.selector_args.get(exp.selector, {}))
        evaluator_args.update(rule.evaluator_args.get(exp.evaluator, {}))
        for m, args in rule.method_args.items():
            if m in method_args or m in exp.methods:
                method_args.setdefault(m, {}).update(args)
        dataset = rule.dataset or dataset
        seeds = rule.seeds or seeds
    try:
        search = SearchSettings.model_validate(search).config()
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SuiteError(
            suite_path,
            None,
            f"budgets.{budget}.search.{where}",
            f"{err['msg']} (experiment {exp_id})",
        ) from None
    config = {
        "space": exp.space,
        "space_args": space_args,
        "dataset": dataset,
        "methods": list(exp.methods),
        "method_args": method_args,
        "search": search,
        "selector": exp.selector,
        "selector_args": selector_args,
        "evaluator": exp.evaluator,
        "evaluator_args": evaluator_args,
        "eval_datasets": list(exp.eval_datasets),
    }
    return config, seeds, description


ARTIFACT_BUDGET = "budget-independent: a deterministic function of the published cell"


def _resolve_given_cell(
    suite: Suite, exp: Experiment, budget: str, suite_path: str
) -> tuple[dict[str, Any], int, str]:
    """A published cell (`genotype:`): no search or selection. A deterministic evaluator
    (parameter counts, benchmark lookups) ignores the budget; a retraining takes the budget's
    seeds and evaluator settings."""
    config: dict[str, Any] = {
        "space": exp.space,
        "genotype": exp.genotype,
        "dataset": exp.dataset,
        "evaluator": exp.evaluator,
        "evaluator_args": dict(exp.evaluator_args),
        "eval_datasets": list(exp.eval_datasets),
    }
    if exp.is_artifact:
        return config, exp.seeds, ARTIFACT_BUDGET
    if budget == "full":
        return config, exp.seeds, "the paper's settings"
    rule = suite.budgets.get(budget)  # type: ignore[call-overload]
    if rule is None:
        raise SuiteError(
            suite_path, None, f"budgets.{budget}", f"the suite declares no {budget!r} budget"
        )
    config["evaluator_args"].update(rule.evaluator_args.get(exp.evaluator, {}))
    return config, rule.seeds or exp.seeds, rule.description


def _resolve_query(
    suite: Suite, exp: Experiment, budget: str, suite_path: str
) -> tuple[dict[str, Any], int, str]:
    """A search by benchmark queries (`query:`): no supernet and no data, so a budget changes
    only the seeds and the evaluator's settings; the queries are those of the paper."""
    config: dict[str, Any] = {
        "space": exp.space,
        "query": dict(exp.query or {}),
        "dataset": exp.dataset,
        "evaluator": exp.evaluator,
        "evaluator_args": dict(exp.evaluator_args),
        "eval_datasets": list(exp.eval_datasets),
    }
    if budget == "full":
        return config, exp.seeds, "the paper's settings"
    rule = suite.budgets.get(budget)  # type: ignore[call-overload]
    if rule is None:
        raise SuiteError(
            suite_path, None, f"budgets.{budget}", f"the suite declares no {budget!r} budget"
        )
    config["evaluator_args"].update(rule.evaluator_args.get(exp.evaluator, {}))
    return config, rule.seeds or exp.seeds, rule.description


def expand(
    suite: Suite,
    suite_path: str | Path,
    budget: str = "full",
    experiments: list[str] | None = None,
    seeds: int | None = None,
) -> list[Trial]:
    """Every (experiment, seed) trial of the suite at `budget`, in suite order."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r} (known: {', '.join(BUDGETS)})")
    path = str(suite_path)
    wanted = list(suite.experiments) if not experiments else experiments
    for exp_id in wanted:
        if exp_id not in suite.experiments:
            raise SuiteError(
                path,
                None,
                "--experiment",
                f"no experiment {exp_id!r} in the suite{did_you_mean(exp_id, suite.experiments)}",
            )
    pending = [e for e in wanted if suite.experiments[e].pending]
    if experiments and pending:
        e = pending[0]
        raise SuiteError(
            path,
            None,
            "--experiment",
            f"experiment {e!r} is pending: {suite.experiments[e].pending}",
        )
    wanted = [e for e in wanted if e not in pending]
    digest = suite_hash(path)
    trials: list[Trial] = []
    for exp_id in wanted:
        config, n_seeds, description = resolve_experiment(suite, exp_id, budget, path)
        claim_ids = tuple(c.id for c in suite.claims if c.experiment == exp_id)
        # A published cell under a deterministic evaluator is the same at every budget: it is
        # recorded (and judged) as full, whatever budget the run was asked for.
        trial_budget = "full" if suite.experiments[exp_id].is_artifact else budget
        for seed in range(seeds or n_seeds):
            trials.append(
                Trial(
                    suite=suite.suite,
                    suite_version=suite.version,
                    suite_path=path,
                    suite_hash=digest,
                    experiment=exp_id,
                    budget=trial_budget,
                    budget_description=description,
                    seed=seed,
                    claim_ids=claim_ids,
                    config=config,
                )
            )
    return trials


@dataclass(frozen=True)
class SetAside:
    record: dict[str, Any]
    reason: str


@dataclass
class Backing:
    """The records behind one experiment at one budget.

    `used`: the newest record of every seed of the experiment's resolved configuration at
    the current fidelity version, whichever suite wrote it, sorted by seed (the seeds the
    experiment asks for at that budget: a suite asking for 3 uses seeds 0-2 of a
    configuration another suite ran with 4). `set_aside`:
    records this experiment wrote (same suite, experiment and budget labels) that do not
    count — older fidelity version, another configuration — and older records of a re-run
    seed, each with a one-line reason.
    """

    suite: str
    experiment: str
    budget: str
    group_hash: str | None
    config: dict[str, Any] | None
    used: list[dict[str, Any]] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)

    @property
    def shared(self) -> list[dict[str, Any]]:
        """Used records that another suite or experiment wrote (the same trial)."""
        return [
            r for r in self.used if (r["suite"], r["experiment"]) != (self.suite, self.experiment)
        ]


def _set_aside_reason(rec: dict[str, Any], config: dict[str, Any]) -> str:
    version = fidelity_of(rec)
    stored = rec.get("config")
    if not isinstance(stored, dict) or not stored:
        return "the record holds no configuration"
    diff = config_diff(stored, config)
    if diff:
        more = f" (and {len(diff) - 3} more)" if len(diff) > 3 else ""
        return "different configuration: " + "; ".join(diff[:3]) + more
    if version != FIDELITY_VERSION:
        when = " (before versioning)" if version == 0 else ""
        return f"fidelity version {version}{when}, current is {FIDELITY_VERSION}"
    return "config hash does not match its configuration"


def experiment_records(
    suite: Suite,
    exp_id: str,
    budget: str,
    index: RecordIndex,
    suite_path: str = "<suite>",
) -> Backing:
    """The records backing `exp_id` at `budget`, and those set aside with the reason.

    The one function the report (and anything else judging results) asks: records are
    matched by the experiment's resolved configuration, not by the suite file, so a record
    written for another suite with the same configuration is used, and a suite edited only
    in claims, notes or comments keeps all of its records.
    """
    exp = suite.experiments[exp_id]
    label = (suite.suite, exp_id, budget)
    own = index.by_label.get(label, [])
    if exp.pending or (budget != "full" and budget not in suite.budgets):
        why = f"experiment is pending: {exp.pending}" if exp.pending else "budget not declared"
        return Backing(suite.suite, exp_id, budget, None, None, [], [SetAside(r, why) for r in own])
    config, n_seeds, _ = resolve_experiment(suite, exp_id, budget, suite_path)
    group = group_key(config)
    newest: dict[int, dict[str, Any]] = {}
    superseded: list[SetAside] = []
    for rec in index.by_group.get(group, []):  # oldest first
        if rec["config_hash"] != trial_key(config, rec["seed"]):
            continue
        if rec["seed"] >= n_seeds:
            continue  # another experiment's extra seed of the same configuration
        if rec["seed"] in newest:
            superseded.append(
                SetAside(newest[rec["seed"]], f"seed {rec['seed']} re-run: a newer record is used")
            )
        newest[rec["seed"]] = rec
    used = [newest[s] for s in sorted(newest)]
    in_use = {id(r) for r in used} | {id(s.record) for s in superseded}
    aside = [SetAside(r, _set_aside_reason(r, config)) for r in own if id(r) not in in_use]
    return Backing(suite.suite, exp_id, budget, group, config, used, superseded + aside)


# ------------------------------------------------------------------------ nasrepro plan


def _needed_by(t: Trial) -> dict[str, Any]:
    return {"suite": t.suite, "experiment": t.experiment, "claims": list(t.claim_ids)}


def _sum(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present), 2) if present else None


def trial_plans(
    suite: Suite, trials: list[Trial], budget: str, policy: str = "claims"
) -> list[Any]:
    """Each trial with what the suite's claims need from its experiment (units.py) and the
    experiment's number of seeds at the budget."""
    from nasrepro.units import TrialPlan, experiment_needs, with_seeds

    seeds: dict[str, int] = {}
    for t in trials:
        seeds[t.experiment] = max(seeds.get(t.experiment, 0), t.seed + 1)
    needs = {e: with_seeds(experiment_needs(suite, e, policy), n) for e, n in seeds.items()}
    return [TrialPlan(t, needs[t.experiment], seeds[t.experiment]) for t in trials]


def merged_plans(plans: list[Any]) -> dict[str, Any]:
    """One plan per trial (config hash): the first experiment asking for it runs it, with
    what every experiment resolving to it needs (units.merge_needs)."""
    from nasrepro.units import TrialPlan, merge_needs

    out: dict[str, Any] = {}
    for p in plans:
        have = out.get(p.trial.config_hash)
        if have is None:
            out[p.trial.config_hash] = p
        else:
            needs = merge_needs(have.needs, p.needs)
            n = max(have.n_seeds, p.n_seeds)
            out[p.trial.config_hash] = TrialPlan(have.trial, needs, n)
    return out


def build_plan(
    suite_paths: list[Path],
    budget: str = "full",
    experiments: list[str] | None = None,
    device: str = "h200",
    registry: str | Path = "registry",
    retrain: str = "claims",
    datasets: list[str] | None = None,
) -> dict[str, Any]:
    """What `nasrepro run` of these suites at `budget` would run, without running: the
    units of work (searches, selections, retrainings) the claims need, each once, with
    hours by phase and by suite and what each sharing rule saved; unique trials (with who
    needs each and whether the registry holds it); estimated hours per trial on `device`;
    experiments several suites define identically; same-named experiments that differ;
    claims no planned unit covers. `retrain="all"` plans every evaluated dataset of every
    seed (nasrepro/units.py). `datasets`: only the trials these datasets allow (`run
    --datasets`; the others are listed under `skipped_by_datasets`)."""
    from nasrepro.dataset_selection import select_by_datasets
    from nasrepro.estimate import estimate, search_split, step_times
    from nasrepro.registry import current_trials, scan_registry
    from nasrepro.suite import load_suite

    info = step_times()["devices"].get(device)
    if info is None:
        known = ", ".join(sorted(step_times()["devices"]))
        raise ValueError(f"--device: unknown device {device!r} (known: {known})")
    scan = scan_registry(registry)
    done = current_trials(scan.records)
    referenced: list[Trial] = []
    per_suite: dict[str, dict[str, Any]] = {}
    skipped_by_datasets: list[str] = []
    for path in suite_paths:
        suite = load_suite(path)
        if suite.suite in per_suite:
            raise SuiteError(str(path), None, "suite", f"suite {suite.suite!r} given twice")
        wanted = None
        if experiments:
            wanted = [e for e in experiments if e in suite.experiments]
            if not wanted:
                continue
        trials, skipped = select_by_datasets(expand(suite, path, budget, wanted), datasets)
        skipped_by_datasets += [s.line() for s in skipped]
        referenced += trials
        per_suite[suite.suite] = {"path": str(path), "trials": trials, "suite": suite}
    if experiments:
        known = {t.experiment for t in referenced}
        missing = [e for e in experiments if e not in known]
        if missing:
            raise ValueError(f"--experiment: no runnable experiment {missing[0]!r} in the suites")
    estimates: dict[str, dict[str, Any]] = {}
    unique: dict[str, dict[str, Any]] = {}
    for t in referenced:
        if t.group_hash not in estimates:
            estimates[t.group_hash] = estimate(t, device)
        entry = unique.setdefault(
            t.config_hash,
            {
                "key": t.config_hash,
                "group": t.group_hash,
                "seed": t.seed,
                "cached": t.config_hash in done,
                "needed_by": [],
                "config": t.config,
                "search_data": None
                if t.config.get("search") is None  # a published cell or queries: no supernet
                else search_split(t.config["dataset"], t.config["search"], t.config["space"]),
                "estimate": estimates[t.group_hash],
            },
        )
        need = _needed_by(t)
        if need not in entry["needed_by"]:
            entry["needed_by"].append(need)

    def hours(trials: list[Trial], key: str) -> float | None:
        return _sum([estimates[t.group_hash][key] for t in trials])

    suites_out = {}
    for name, s in per_suite.items():
        trials = s["trials"]
        distinct = list({t.config_hash: t for t in trials}.values())
        suites_out[name] = {
            "path": s["path"],
            "experiments": len({t.experiment for t in trials}),
            "trials_referenced": len(trials),
            "unique_trials": len(distinct),
            "cached": sum(t.config_hash in done for t in distinct),
            "hours_before_dedup": hours(trials, "hours"),
            "hours_after_dedup": hours(distinct, "hours"),
            "gpu_hours_before_dedup": hours(trials, "gpu_hours"),
            "gpu_hours_after_dedup": hours(distinct, "gpu_hours"),
        }
    firsts = list({t.config_hash: t for t in referenced}.values())
    to_run = [t for t in firsts if t.config_hash not in done]
    totals = {
        "trials_referenced": len(referenced),
        "unique_trials": len(firsts),
        "cached": len(firsts) - len(to_run),
        "to_run": len(to_run),
        "hours_before_dedup": hours(referenced, "hours"),
        "hours_after_dedup": hours(firsts, "hours"),
        "gpu_hours_before_dedup": hours(referenced, "gpu_hours"),
        "gpu_hours_after_dedup": hours(firsts, "gpu_hours"),
        "gpu_hours_to_run": hours(to_run, "gpu_hours"),
        "hours_to_run": hours(to_run, "hours"),
    }
    work = _unit_plan(per_suite, budget, device, registry, retrain)
    for name, by_phase in work["by_suite"].items():
        suites_out[name]["units"] = by_phase
    return {
        "budget": budget,
        "device": {"id": device, "name": info["name"], "gpu": info["gpu"]},
        "fidelity_version": FIDELITY_VERSION,
        "retrain": retrain,
        "unit_totals": work["totals"],
        "savings": work["savings"],
        "uncovered": work["uncovered"],
        "units": work["units"],
        "suites": suites_out,
        "totals": totals,
        "shared": _shared(referenced),
        "differences": _differences(referenced),
        "registry_problems": scan.problems,
        "datasets": datasets,
        "skipped_by_datasets": skipped_by_datasets,
        "trials": list(unique.values()),
    }


def _unit_plan(
    per_suite: dict[str, dict[str, Any]],
    budget: str,
    device: str,
    registry: str | Path,
    policy: str,
) -> dict[str, Any]:
    """Units of work by phase (all suites, and per suite), the hours each rule saved, the
    claims left uncovered, and the unit list (units.py)."""
    from nasrepro.estimate import unit_hours
    from nasrepro.units import PHASES, every_seed, phase_hours, planned_units, uncovered_claims

    cache: dict[tuple[str, str, str | None], float] = {}

    def hours(kind: str, trial: Trial, ds: str | None) -> float:
        key = (kind, trial.group_hash, ds)
        if key not in cache:
            cache[key] = unit_hours(kind, trial.config, ds, device)
        return cache[key]

    plans, every, per_trial_all = [], [], []
    by_suite: dict[str, dict[str, Any]] = {}
    uncovered: list[dict[str, str]] = []
    for name, s in per_suite.items():
        mine = trial_plans(s["suite"], s["trials"], budget, policy)
        plans += mine
        every += [type(p)(p.trial, every_seed(p.needs), p.n_seeds) for p in mine]
        per_trial_all += trial_plans(s["suite"], s["trials"], budget, "all")
        units, _ = planned_units(mine, hours)
        by_suite[name] = _phase_totals(phase_hours(units.values()))
        needs = {p.trial.experiment: p.needs for p in mine}
        exps = {t.experiment for t in s["trials"]}
        uncovered += uncovered_claims(s["suite"], exps, needs.__getitem__)
    units, _ = planned_units(plans, hours)
    _mark_cached(units, registry)
    stages = [
        ("every trial retrains every evaluated dataset for every seed", per_trial_all, False),
        ("retrain only the datasets some claim reads an accuracy on", every, False),
        ("best_by_valid and single claims retrain the one cell they select", plans, False),
        ("units shared by every experiment and suite that needs them", plans, True),
    ]
    totals = []
    for rule, these, share in stages:
        found, _ = planned_units(these, hours, share)
        by = phase_hours(found.values())
        totals.append((rule, round(sum(u.hours for u in found.values()), 2), by))
    savings = [
        {
            "rule": rule,
            "hours": total,
            "saved": None if i == 0 else round(totals[i - 1][1] - total, 2),
            "by_phase": {ph: v["hours"] for ph, v in by.items()},
        }
        for i, (rule, total, by) in enumerate(totals)
    ]
    by_phase = phase_hours(units.values())
    return {
        "totals": {
            **_phase_totals(by_phase),
            "to_run_hours": round(sum(u.hours for u in units.values() if not u.cached), 2),
            "cached": sum(u.cached for u in units.values()),
            "phases": list(PHASES),
        },
        "by_suite": by_suite,
        "savings": savings,
        "uncovered": uncovered,
        "units": [
            {
                "kind": u.kind,
                "key": u.key,
                "phase": u.phase,
                "hours": round(u.hours, 4),
                "seed": u.seed,
                "dataset": u.dataset,
                "why": u.why,
                "cached": u.cached,
                "needed_by": [{"suite": a, "experiment": b} for a, b in u.needed_by],
                "trial": None if u.trial is None else u.trial.config_hash,
            }
            for u in units.values()
        ],
    }


def _phase_totals(by_phase: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        **by_phase,
        "units": sum(int(v["units"]) for v in by_phase.values()),
        "hours": round(sum(v["hours"] for v in by_phase.values()), 2),
    }


def _mark_cached(units: dict[str, Any], registry: str | Path) -> None:
    """Which planned units the store holds: searches and selections by key, retrainings by
    their cell once it is known (a published cell, or a recorded selection)."""
    from nasrepro.store import StoreError, read_unit
    from nasrepro.trial import retrain_key

    if not (Path(registry) / "_units").exists():
        return
    for u in units.values():
        try:
            if u.kind in ("search", "selection"):
                u.cached = read_unit(registry, u.kind, u.key) is not None
            elif u.trial is not None and u.dataset is not None:
                t = u.trial
                if t.given_cell:
                    from nasrepro.trial import _given_arch

                    cell = _given_arch(t.config)
                else:
                    assert t.selection_key is not None
                    sel = read_unit(registry, "selection", t.selection_key)
                    if sel is None:
                        continue
                    cell = sel["result"]["genotype"]
                key = retrain_key(t, u.dataset, cell)
                u.cached = read_unit(registry, "retrain", key) is not None
        except StoreError:
            continue  # a damaged unit record: not cached (the run names it)


def _shared(trials: list[Trial]) -> list[dict[str, Any]]:
    """Configurations asked for by several (suite, experiment): run once, used by all."""
    members: dict[str, dict[tuple[str, str], int]] = {}
    for t in trials:
        seeds = members.setdefault(t.group_hash, {})
        seeds[(t.suite, t.experiment)] = seeds.get((t.suite, t.experiment), 0) + 1
    out = []
    for group, who in members.items():
        if len(who) > 1:
            out.append(
                {
                    "group": group,
                    "experiments": [
                        {"suite": s, "experiment": e, "seeds": n}
                        for (s, e), n in sorted(who.items())
                    ],
                }
            )
    return sorted(
        out, key=lambda g: (g["experiments"][0]["suite"], g["experiments"][0]["experiment"])
    )


def _differences(trials: list[Trial]) -> list[dict[str, Any]]:
    """Experiments of the same id in several suites that resolve differently (in
    configuration or in number of seeds): deliberate or not, the plan shows how."""
    by_id: dict[str, dict[str, tuple[dict[str, Any], int]]] = {}
    for t in trials:
        seen = by_id.setdefault(t.experiment, {})
        config, n = seen.get(t.suite, (t.config, 0))
        seen[t.suite] = (config, n + 1)
    out = []
    for exp_id, suites in sorted(by_id.items()):
        if len(suites) < 2:
            continue
        names = sorted(suites)
        first = names[0]
        for other in names[1:]:
            diff = config_diff(suites[first][0], suites[other][0])
            if suites[first][1] != suites[other][1]:
                diff.append(f"seeds: {suites[first][1]} → {suites[other][1]}")
            if diff:
                out.append({"experiment": exp_id, "suites": [first, other], "differences": diff})
    return out


def _format_units(plan: dict[str, Any], unit: str) -> list[str]:
    """Units of work by phase and by suite, what each rule saved, uncovered claims."""
    from tabulate import tabulate

    from nasrepro.units import PHASE_TITLES, PHASES

    u = plan["unit_totals"]
    retrain = "retraining what some claim reads" if plan["retrain"] == "claims" else "all"
    lines = [f"Units of work the claims need ({retrain}), each once whoever needs it:"]
    rows = [[PHASE_TITLES[ph], u[ph]["units"], _hours(u[ph]["hours"])] for ph in PHASES]
    rows.append(["all", u["units"], _hours(u["hours"])])
    lines += [tabulate(rows, headers=["phase", "units", unit], disable_numparse=True), ""]
    rows = [
        [name, *(_hours(s["units"][ph]["hours"]) for ph in PHASES), _hours(s["units"]["hours"])]
        for name, s in sorted(plan["suites"].items())
    ]
    headers = ["suite (its own units)", *(PHASE_TITLES[ph] for ph in PHASES), "all"]
    lines += [tabulate(rows, headers=headers, disable_numparse=True), ""]
    lines.append(f"What each rule saved ({unit}):")
    for s in plan["savings"]:
        saved = "" if s["saved"] is None else f" (-{_hours(s['saved'])})"
        lines.append(f"  {_hours(s['hours']):>10}{saved}: {s['rule']}")
    lines.append(
        f"To run: {_hours(u['to_run_hours'])} {unit} ({u['cached']} of {u['units']} units "
        "already in the store)."
    )
    plan_gaps = [c for c in plan["uncovered"] if c["kind"] == "plan"]
    lines += [
        "",
        f"Runnable claims no planned unit covers: {len(plan_gaps)}; whose evaluator records "
        f"no such metric: {len(plan['uncovered']) - len(plan_gaps)}",
    ]
    reasons: dict[str, int] = {}
    for c in plan["uncovered"]:
        reasons[f"{c['kind']}: {c['reason']}"] = reasons.get(f"{c['kind']}: {c['reason']}", 0) + 1
    lines += [f"  {n} x {why}" for why, n in sorted(reasons.items())]
    return lines


def _hours(v: float | None) -> str:
    return "—" if v is None else f"{v:,.1f}"


def _seed_ranges(seeds: list[int]) -> str:
    seeds = sorted(seeds)
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1:
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seed " + ",".join(map(str, seeds))


def format_plan(plan: dict[str, Any]) -> str:
    """The plan as text: per-suite table, totals, shared and differing experiments, and
    the trials grouped by configuration."""
    from tabulate import tabulate

    dev = plan["device"]
    unit = "GPU-h" if dev["gpu"] else "h"
    key = "gpu_hours" if dev["gpu"] else "hours"
    lines = [
        f"nasrepro plan: budget {plan['budget']}, device {dev['name']} ({dev['id']}), "
        f"fidelity version {plan['fidelity_version']}; estimates from measured step times "
        "(docs/plan.md)",
        "",
    ]
    rows = []
    for name, s in sorted(plan["suites"].items()):
        rows.append(
            [
                name,
                s["experiments"],
                s["trials_referenced"],
                s["unique_trials"],
                s["cached"],
                _hours(s[f"{key}_before_dedup"]),
                _hours(s[f"{key}_after_dedup"]),
            ]
        )
    t = plan["totals"]
    rows.append(
        [
            "all (de-duplicated across suites)",
            "",
            t["trials_referenced"],
            t["unique_trials"],
            t["cached"],
            _hours(t[f"{key}_before_dedup"]),
            _hours(t[f"{key}_after_dedup"]),
        ]
    )
    headers = ["suite", "experiments", "trials", "unique", "cached"]
    headers += [f"whole-trial {unit} before de-dup", f"{unit} after"]
    lines += [tabulate(rows, headers=headers, disable_numparse=True), ""]
    lines.append(
        f"Trials: {t['to_run']} to record ({t['cached']} of {t['unique_trials']} already in "
        "the registry). Whole-trial hours count every trial as if it ran alone, retraining "
        "every evaluated dataset; the units below are what runs."
    )
    if plan.get("datasets") is not None:
        skipped = plan["skipped_by_datasets"]
        lines += [
            "",
            f"Datasets {', '.join(plan['datasets'])}: {len(skipped)} experiment(s) skipped "
            "for the data or benchmark files they lack:",
            *(f"  {line}" for line in skipped),
        ]
    lines += ["", *_format_units(plan, unit)]
    lines += ["", f"Configurations shared by several experiments (run once): {len(plan['shared'])}"]
    for g in plan["shared"]:
        who = " = ".join(
            f"{m['suite']}/{m['experiment']} ({m['seeds']} seed(s))" for m in g["experiments"]
        )
        lines.append(f"  {who}")
    lines += ["", f"Same experiment id, resolved differently: {len(plan['differences'])}"]
    for d in plan["differences"]:
        more = f" (+{len(d['differences']) - 2} more)" if len(d["differences"]) > 2 else ""
        lines.append(
            f"  {d['experiment']}: {' vs '.join(d['suites'])}: "
            + "; ".join(x if len(x) <= 100 else x[:99] + "…" for x in d["differences"][:2])
            + more
        )
    groups: dict[str, list[dict[str, Any]]] = {}
    for trial in plan["trials"]:
        groups.setdefault(trial["group"], []).append(trial)
    lines += ["", f"Trials by configuration ({len(groups)} configurations):"]
    for group, trials in groups.items():
        est = trials[0]["estimate"]
        cached = sum(x["cached"] for x in trials)
        users = {
            f"{n['suite']}/{n['experiment']}"
            + (f" [{', '.join(n['claims'])}]" if n["claims"] else ""): None
            for x in trials
            for n in x["needed_by"]
        }
        lines.append(
            f"  {group[:10]} {_seed_ranges([x['seed'] for x in trials])}, cached "
            f"{cached}/{len(trials)}, {_hours(est[key])} {unit} each: " + "; ".join(users)
        )
    return "\n".join(lines)
