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
        search = SearchSettings.model_validate(search).model_dump(mode="json")
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
                f"no experiment {exp_id!r} in the suite (known: {', '.join(suite.experiments)})",
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
        for seed in range(seeds or n_seeds):
            trials.append(
                Trial(
                    suite=suite.suite,
                    suite_version=suite.version,
                    suite_path=path,
                    suite_hash=digest,
                    experiment=exp_id,
                    budget=budget,
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
    the current fidelity version, whichever suite wrote it, sorted by seed. `set_aside`:
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
    config, _, _ = resolve_experiment(suite, exp_id, budget, suite_path)
    group = group_key(config)
    newest: dict[int, dict[str, Any]] = {}
    superseded: list[SetAside] = []
    for rec in index.by_group.get(group, []):  # oldest first
        if rec["config_hash"] != trial_key(config, rec["seed"]):
            continue
        if rec["seed"] in newest:
            superseded.append(
                SetAside(newest[rec["seed"]], f"seed {rec['seed']} re-run: a newer record is used")
            )
        newest[rec["seed"]] = rec
    used = [newest[s] for s in sorted(newest)]
    in_use = {id(r) for r in used} | {id(s.record) for s in superseded}
    aside = [SetAside(r, _set_aside_reason(r, config)) for r in own if id(r) not in in_use]
    return Backing(suite.suite, exp_id, budget, group, config, used, superseded + aside)
