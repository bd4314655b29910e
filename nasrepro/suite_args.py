"""A suite's component arguments against what each component declares (catalog.py).

`validate` and `run` (before anything is logged) check every `space_args`, `method_args`,
`selector_args`, `evaluator_args` of experiments and budgets, budget search overrides
(strictly typed: `epochs: true` is not 1), and that each evaluator serves the experiment's
`eval_datasets`. Problems are (location in the suite, message); suite.py turns the first
into `file:line: field: problem`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from nasrepro import catalog

Problem = tuple[tuple[Any, ...], str]
_KINDS = ("space", "method", "selector", "evaluator")


def _known(kind: str, name: Any) -> bool:
    return isinstance(name, str) and name in catalog.names(kind)


def _args(kind: str, name: str, args: Any, loc: tuple[Any, ...], note: str = "") -> list[Problem]:
    if not _known(kind, name):
        return []  # the unknown name itself is reported elsewhere
    if not isinstance(args, dict):
        return [(loc, f"arguments of {kind} {name!r} must be a mapping")]
    return [((*loc, *key), problem + note) for key, problem in catalog.check_args(kind, name, args)]


def check_arguments(suite: Any) -> list[Problem]:
    """Argument problems of every experiment and budget rule, in suite order."""
    problems: list[Problem] = []
    active = {eid: exp for eid, exp in suite.experiments.items() if not exp.pending}
    for eid, exp in active.items():
        base = ("experiments", eid)
        problems += _args("space", exp.space, exp.space_args, (*base, "space_args"))
        for m, a in exp.method_args.items():
            problems += _args("method", m, a, (*base, "method_args", m))
        problems += _args("selector", exp.selector, exp.selector_args, (*base, "selector_args"))
        problems += _args("evaluator", exp.evaluator, exp.evaluator_args, (*base, "evaluator_args"))
        problems += _eval_datasets(exp, base)
    spaces = sorted({exp.space for exp in active.values()})
    for bname, rule in suite.budgets.items():
        base = ("budgets", bname)
        for space in spaces:  # `space_args` of a budget apply to every experiment's space
            problems += _args(
                "space", space, rule.space_args, (*base, "space_args"), f" (space {space})"
            )
        for space, a in rule.space_args_by_space.items():
            if not _known("space", space):
                hint = catalog.did_you_mean(space, catalog.names("space"))
                problems.append(
                    ((*base, "space_args_by_space", space), f"unknown space {space!r}{hint}")
                )
            problems += _args("space", space, a, (*base, "space_args_by_space", space))
        for kind in ("method", "selector", "evaluator"):
            for name, a in getattr(rule, f"{kind}_args").items():
                problems += _args(kind, name, a, (*base, f"{kind}_args", name))
    return problems


def _eval_datasets(exp: Any, base: tuple[Any, ...]) -> list[Problem]:
    decl = (
        catalog.declaration("evaluator", exp.evaluator)
        if _known("evaluator", exp.evaluator)
        else None
    )
    if decl is None or decl.datasets is None:
        return []
    out = []
    for i, ds in enumerate(exp.eval_datasets):
        if ds not in decl.datasets:
            out.append(
                (
                    (*base, "eval_datasets", i),
                    f"evaluator {exp.evaluator!r} has no {ds!r} results"
                    f"{catalog.did_you_mean(ds, decl.datasets)}",
                )
            )
    return out


def check_search_overrides(suite: Any) -> list[Problem]:
    """Budget search overrides merged with each experiment's settings, strictly typed."""
    from nasrepro.suite import SearchSettings

    problems: list[Problem] = []
    for eid, exp in suite.experiments.items():
        search = getattr(exp, "search", None)
        if exp.pending or search is None:
            continue
        for bname, rule in suite.budgets.items():
            own = exp.budget_search.get(bname, {})
            merged = {**search.model_dump(mode="json"), **rule.search, **own}
            try:
                SearchSettings.model_validate_json(json.dumps(merged, default=str), strict=True)
            except ValidationError as exc:
                err = exc.errors()[0]
                key = str(err["loc"][0]) if err["loc"] else ""
                if key in own:
                    loc: tuple[Any, ...] = ("experiments", eid, "budget_search", bname, key)
                else:
                    loc = ("budgets", bname, "search", key)
                msg = err["msg"][0].lower() + err["msg"][1:]
                problems.append((loc, f"{msg}, got {err['input']!r} (experiment {eid})"))
    return problems


def check_resolved(suite: Any, suite_path: str) -> list[Problem]:
    """Required arguments and each evaluator's own check, on the arguments an experiment
    ends up with at every budget (the budget's overrides merged in)."""
    from nasrepro.plan import resolve_experiment

    problems: list[Problem] = []
    for eid, exp in suite.experiments.items():
        if exp.pending:
            continue
        for budget in ("full", *suite.budgets):
            try:
                config = resolve_experiment(suite, eid, budget, suite_path)[0]
            except Exception:  # noqa: BLE001  (resolution errors are _check_budgets' to report)
                continue
            where = "" if budget == "full" else f" (budget {budget})"
            base = ("experiments", eid)
            # a published cell (`genotype:`) has no space, method or selector arguments
            named = [("space", config["space"], config.get("space_args", {}))]
            named += [
                ("method", m, config["method_args"].get(m, {})) for m in config.get("methods", [])
            ]
            if "selector" in config:
                named.append(("selector", config["selector"], config["selector_args"]))
            named.append(("evaluator", config["evaluator"], config["evaluator_args"]))
            for kind, name, args in named:
                if not _known(kind, name):
                    continue
                for key in catalog.missing_args(kind, name, args):
                    problems.append(
                        ((*base, f"{kind}_args"), f"{kind} {name!r} needs argument {key!r}{where}")
                    )
            decl = catalog.declaration("evaluator", config["evaluator"])
            if decl is not None and decl.check is not None and not problems:
                try:
                    decl.check(dict(config["evaluator_args"]), list(config["eval_datasets"]))
                except (ValueError, TypeError, KeyError) as exc:
                    text = str(exc.args[0] if exc.args else exc)
                    problems.append(((*base, "evaluator_args"), f"{text}{where}"))
            if problems:
                return problems
    return problems
