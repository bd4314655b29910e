"""Suite × budget → trials: frozen, fully resolved configs with a stable hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nasrepro.catalog import did_you_mean
from nasrepro.suite import Experiment, SearchSettings, Suite, SuiteError, suite_hash

BUDGETS = ("full", "reduced", "smoke")


def stable_hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Trial:
    """One search + selection + evaluation; `config_hash` is its identity everywhere."""

    suite: str
    suite_version: int
    suite_path: str
    suite_hash: str
    experiment: str
    budget: str
    budget_description: str
    seed: int
    claim_ids: tuple[str, ...]
    config: dict[str, Any] = field(hash=False)

    @property
    def group_hash(self) -> str:
        """Identity of the (experiment, budget) group: the config without the seed."""
        return stable_hash(self.config)

    @property
    def config_hash(self) -> str:
        return stable_hash({"config": self.config, "seed": self.seed})

    @property
    def search(self) -> SearchSettings:
        return SearchSettings.model_validate(self.config["search"])


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
