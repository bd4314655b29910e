"""A budgeted plan: the trials that decide the most conclusions, then the most claims, within
N GPU-hours (`nasrepro plan SUITE... --gpu-hours N`), and the plan file `run --plan` runs.

Input is `plan.build_plan`'s public output: unique trials and the units of work they need
(nasrepro/units.py: searches with their selections, the retrainings some claim reads), with
which (suite, experiment) need each and whether the registry or the store holds it. Costs are
the units' hours, each unit once (a search two experiments share is paid once, a retraining
no claim reads not at all): what `nasrepro run` spends, not the cost of whole trials. A
trial is a zero-cost item of its experiment (query baselines and published cells train
nothing). A claim is *decided* once every trial and unit of its experiment is done (its
verdict can then be computed, whatever it turns out to be); a conclusion (a suite's
`comparisons:` entry) once both of its claims are.
Claims marked `not_runnable`, or whose experiment is pending or not in the plan (filtered by
`--experiment` / `--datasets`), cannot be decided by running anything.

The choice is greedy, cheapest decision first: repeatedly take the undecided conclusion
whose still-missing units cost the fewest hours (units already chosen, or already
recorded, cost nothing: a unit several claims share is counted once), while it fits the
budget; then the same over claims. Equal costs go to the conclusion needing fewer new
items, then by suite and id, so a plan is a deterministic function of its inputs. With unit
values per decision and independent costs, cheapest-first maximises the number decided; with
shared units it is a heuristic (costs are recomputed after every pick, so sharing is used).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PLAN_FORMAT",
    "PlanFileError",
    "WorkItem",
    "budget_plan",
    "check_plan_file",
    "decidable_sets",
    "format_budget",
    "read_plan_file",
    "work_items",
    "write_plan_file",
]

PLAN_FORMAT = "nasrepro.plan/1"


@dataclass(frozen=True)
class WorkItem:
    """A trial or a unit of work as the budget sees it: its identity, cost and who needs it.
    `id` is unique over both kinds; `key` is the trial's config hash or the unit's key."""

    kind: str  # "trial", or the unit's kind (search, selection, retrain)
    key: str
    hours: float
    cached: bool
    needed_by: tuple[tuple[str, str], ...]  # (suite, experiment)
    suite: str  # the first suite that needs it (runs it)
    experiment: str
    seed: int | None

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.key}"


def work_items(plan: dict[str, Any]) -> list[WorkItem]:
    """`build_plan`'s trials (zero cost: a trial's work is its units) and units, each once;
    hours are GPU-hours on a GPU device, wall hours on a CPU (the plan's own unit)."""
    out = []
    for t in plan["trials"]:
        needs = tuple(dict.fromkeys((n["suite"], n["experiment"]) for n in t["needed_by"]))
        out.append(WorkItem("trial", t["key"], 0.0, bool(t["cached"]), needs, *needs[0],
                            int(t["seed"])))  # fmt: skip
    for u in plan["units"]:
        needs = tuple(dict.fromkeys((n["suite"], n["experiment"]) for n in u["needed_by"]))
        out.append(WorkItem(u["kind"], u["key"], float(u["hours"] or 0.0), bool(u["cached"]),
                            needs, *needs[0], u["seed"]))  # fmt: skip
    return out


@dataclass
class Decidable:
    """Claims and conclusions with the item ids each needs (those that can be decided)."""

    claims: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    conclusions: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    claim_total: int = 0
    conclusion_total: int = 0
    # conclusion -> its two claims (suite, claim id)
    reads: dict[tuple[str, str], tuple[tuple[str, str], ...]] = field(default_factory=dict)


def decidable_sets(suites: Iterable[Any], items: list[WorkItem]) -> Decidable:
    """Per claim and conclusion of `suites` (loaded `Suite`s), the trials and units deciding
    it; those no trial of `items` serves are left out (they cannot be decided by running)."""
    by_exp: dict[tuple[str, str], set[str]] = {}
    has_trial: set[tuple[str, str]] = set()
    for item in items:
        for need in item.needed_by:
            by_exp.setdefault(need, set()).add(item.id)
            if item.kind == "trial":
                has_trial.add(need)
    by_exp = {e: ids for e, ids in by_exp.items() if e in has_trial}
    out = Decidable()
    for suite in suites:
        ids = {}
        for claim in suite.claims:
            out.claim_total += 1
            keys = None
            if not claim.not_runnable and claim.experiment is not None:
                keys = by_exp.get((suite.suite, claim.experiment))
            if keys:
                out.claims[(suite.suite, claim.id)] = frozenset(keys)
            ids[claim.id] = keys
        for comp in suite.comparisons:
            out.conclusion_total += 1
            a, b = ids.get(comp.better), ids.get(comp.worse)
            out.reads[(suite.suite, comp.id)] = (
                (suite.suite, comp.better),
                (suite.suite, comp.worse),
            )
            if a and b:
                out.conclusions[(suite.suite, comp.id)] = frozenset(a | b)
    return out


def _greedy(
    targets: dict[tuple[str, str], frozenset[str]],
    chosen: dict[str, None],
    recorded: set[str],
    hours: dict[str, float],
    left: float,
    kind: str,
    decisions: list[dict[str, Any]],
) -> float:
    """Pick targets cheapest-first into `chosen` (ordered) within `left` hours; returns the
    hours left. Targets whose items are all chosen or `recorded` are decided already."""
    open_ = {n: ids for n, ids in targets.items() if not ids <= chosen.keys() | recorded}
    while open_:
        best = None
        for name, ids in open_.items():
            new = [k for k in ids if k not in chosen and k not in recorded]
            cost = sum(hours[k] for k in new)
            rank = (round(cost, 9), len(new), name)
            if best is None or rank < best[0]:
                best = (rank, name, new, cost)
        assert best is not None
        _, name, new, cost = best
        if cost > left + 1e-9:
            break
        for k in sorted(new):
            chosen[k] = None
        left -= cost
        units = sum(not k.startswith("trial:") for k in new)
        decisions.append(
            {"kind": kind, "suite": name[0], "id": name[1], "hours": round(cost, 4)}
            | {"new": units, "new_trials": len(new) - units}
        )
        del open_[name]
    return left


def budget_plan(
    plan: dict[str, Any],
    suites: Iterable[Any],
    limit: float,
    min_seeds: int | None = None,
) -> dict[str, Any]:
    """The trials that decide the most conclusions, then the most claims, within `limit`
    hours (GPU-hours on a GPU device), costed by their units of work; see the module
    docstring for the rule. `min_seeds`: also simulate what sequential seeds with this
    minimum would save of the chosen work (nasrepro/sequential.py; the choice itself
    assumes every seed runs)."""
    if limit < 0:
        raise ValueError(f"--gpu-hours: must be >= 0, got {limit}")
    suites = list(suites)
    items = work_items(plan)
    by_id = {i.id: i for i in items}
    # a trial or unit already recorded costs nothing: the registry or the store has it
    hours = {i.id: 0.0 if i.cached else i.hours for i in items}
    sets = decidable_sets(suites, items)
    chosen: dict[str, None] = {}
    recorded = {i.id for i in items if i.cached}
    decisions: list[dict[str, Any]] = []
    left = _greedy(sets.conclusions, chosen, recorded, hours, limit, "conclusion", decisions)
    left = _greedy(sets.claims, chosen, recorded, hours, left, "claim", decisions)
    covered = set(chosen) | recorded
    decided_conclusions = sorted(c for c, ids in sets.conclusions.items() if ids <= covered)
    decided_claims = sorted(c for c, ids in sets.claims.items() if ids <= covered)
    trials = [by_id[k] for k in chosen if by_id[k].kind == "trial"]
    used = set().union(*(sets.claims[c] for c in decided_claims))  # recorded ones it reads
    total = 0.0
    for d in decisions:
        total += d["hours"]
        d["cumulative_hours"] = round(total, 4)
    sequential = None
    if min_seeds is not None and plan["budget"] == "full":
        from nasrepro.sequential import simulate_savings

        # each chosen trial under the experiment that runs it, at that experiment's mean
        # hours per seed (its chosen units' hours over its chosen trials)
        n_of: dict[tuple[str, str], int] = {}
        for t in trials:
            n_of[(t.suite, t.experiment)] = n_of.get((t.suite, t.experiment), 0) + 1
        spent: dict[tuple[str, str], float] = dict.fromkeys(n_of, 0.0)
        for k in chosen:
            item = by_id[k]
            owner = next((e for e in item.needed_by if e in spent), None)
            if owner is not None:
                spent[owner] += hours[k]
        experiments = {e: (n, spent[e] / n) for e, n in n_of.items()}
        sequential = simulate_savings(suites, experiments, min_seeds)
    return {
        "limit_hours": limit,
        "unit": "GPU-h" if plan["device"]["gpu"] else "h",
        "device": plan["device"],
        "budget": plan["budget"],
        "fidelity_version": plan["fidelity_version"],
        "hours": round(sum(hours[k] for k in chosen), 4),
        "units": sum(by_id[k].kind != "trial" for k in chosen),
        "conclusions": {
            "decided": len(decided_conclusions),
            "decidable": len(sets.conclusions),
            "total": sets.conclusion_total,
            "ids": [f"{s}/{c}" for s, c in decided_conclusions],
        },
        "claims": {
            "decided": len(decided_claims),
            "decidable": len(sets.claims),
            "total": sets.claim_total,
        },
        "decisions": decisions,
        "sequential": sequential,
        "trials": [
            {"key": t.key, "suite": t.suite, "experiment": t.experiment, "seed": t.seed}
            for t in trials
        ],
        "already_recorded": sum(by_id[k].kind == "trial" for k in recorded & used),
    }


def format_budget(result: dict[str, Any]) -> str:
    """The budgeted plan in a few lines: what it decides, what it costs, in which order."""
    unit = result["unit"]
    c, k = result["conclusions"], result["claims"]
    lines = [
        f"Budget {result['limit_hours']:,g} {unit} on {result['device']['name']}: "
        f"{len(result['trials'])} trial(s), {result['hours']:,.1f} {unit}, decide "
        f"{c['decided']} of {c['total']} conclusions ({c['decidable']} decidable by these "
        f"suites' runnable trials) and {k['decided']} of {k['total']} claims "
        f"({k['decidable']} decidable); {result['already_recorded']} chosen trial(s) "
        "already recorded.",
    ]
    seq = result.get("sequential")
    if seq:
        lines.append(
            f"Sequential seeds (minimum {seq['min_seeds']}) would run about "
            f"{seq['seeds_sequential']:g} of these {seq['seeds_all']} seeds: "
            f"{seq['hours_saved']:,.1f} {unit} saved on simulated outcomes ({seq['model']}; "
            f"{seq['replicates']} replicates); the plan itself counts every seed."
        )
    lines.append("Decisions, cheapest first (each with those its trials decide too):")
    for d in result["decisions"]:
        if d["new"] == 0 and len(lines) > 2:
            free = lines[-1].rsplit(" [+", 1)
            count = int(free[1].split()[0]) + 1 if len(free) == 2 else 1
            lines[-1] = f"{free[0]} [+{count} decided with no further unit]"
            continue
        lines.append(
            f"  {d['kind']:<10} {d['suite']}/{d['id']}: +{d['hours']:,.2f} {unit} "
            f"({d['new']} new unit(s), {d['new_trials']} new trial(s); "
            f"{d['cumulative_hours']:,.1f} {unit} so far)"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- plan files


class PlanFileError(ValueError):
    """A plan file that cannot be run as written (one line: the file and what is wrong)."""


def write_plan_file(path: Path, result: dict[str, Any], suite_paths: list[Path]) -> Path:
    """Write the budgeted plan atomically; `run --plan` runs exactly its trials."""
    payload = {
        "format": PLAN_FORMAT,
        "suites": [str(p) for p in suite_paths],
        **{k: result[k] for k in ("budget", "fidelity_version", "limit_hours", "unit", "hours")},
        "device": result["device"]["id"],
        "datasets": result.get("datasets"),
        "conclusions": result["conclusions"],
        "claims": {k: v for k, v in result["claims"].items()},
        "trials": result["trials"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_plan_file(path: Path) -> dict[str, Any]:
    """The plan file's content, or PlanFileError naming the file and field."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanFileError(f"{path}: no such plan file (write one with `nasrepro plan "
                            "SUITE... --gpu-hours N`)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PlanFileError(f"{path}: not a JSON plan file ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise PlanFileError(f"{path}: format: not a {PLAN_FORMAT} file")
    for name, kind in (("suites", list), ("trials", list), ("budget", str)):
        if not isinstance(data.get(name), kind):
            raise PlanFileError(f"{path}: {name}: missing or not a {kind.__name__}")
    for i, t in enumerate(data["trials"]):
        if not isinstance(t, dict) or not all(isinstance(t.get(k), str) for k in ("key", "suite")):
            raise PlanFileError(f"{path}: trials[{i}]: needs string `key` and `suite`")
    return data


def check_plan_file(path: Path, data: dict[str, Any]) -> dict[str, list[str]]:
    """Suite path -> the planned trial keys it runs, in plan order; PlanFileError when the
    plan no longer matches the suites (a planned trial they no longer define, another
    fidelity version, a missing suite): the plan would not run what it says."""
    from nasrepro.jobs import FIDELITY_VERSION
    from nasrepro.plan import expand
    from nasrepro.suite import SuiteError, load_suite

    if data.get("fidelity_version") != FIDELITY_VERSION:
        raise PlanFileError(
            f"{path}: fidelity_version: the plan is for version {data.get('fidelity_version')}, "
            f"the harness is at {FIDELITY_VERSION}; make a new plan"
        )
    keys_of: dict[str, set[str]] = {}
    name_to_path: dict[str, str] = {}
    for p in data["suites"]:
        try:
            suite = load_suite(p)
        except SuiteError as exc:
            raise PlanFileError(f"{path}: suites: {exc}") from None
        name_to_path[suite.suite] = str(p)
        keys_of[str(p)] = {t.config_hash for t in expand(suite, p, data["budget"])}
    out: dict[str, list[str]] = {p: [] for p in keys_of}
    for i, t in enumerate(data["trials"]):
        where = name_to_path.get(t["suite"])
        if where is None:
            raise PlanFileError(f"{path}: trials[{i}].suite: {t['suite']!r} is not in `suites`")
        if t["key"] not in keys_of[where]:
            raise PlanFileError(
                f"{path}: trials[{i}]: {t['suite']}/{t.get('experiment')} seed {t.get('seed')} "
                f"({t['key'][:12]}…) is no longer a trial of {where} at budget "
                f"{data['budget']!r}: the suite changed since the plan was made; make a new plan"
            )
        out[where].append(t["key"])
    return out
