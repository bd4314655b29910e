"""Sequential seeds: run an experiment's seeds in order and stop once every verdict that
reads them is decided (`nasrepro run`, full budget; `--all-seeds` turns it off).

The rule (`decide`), a pure function of the number of seeds recorded and the verdicts the
report computes from them:

- never fewer than `min_seeds` (nor more than the paper's n: the experiment's `seeds`);
- stop early once every claim of the experiment has a decided verdict (*reproduced* or *not
  reproduced*) and every conclusion reading one of those claims is decided (*held* or *not
  held*). An *inconclusive* claim or conclusion needs more seeds; so does an *untested*
  conclusion whose other claim can still be run. Verdicts that more seeds of this experiment
  cannot change (a claim not runnable, a metric the evaluator does not produce, a cost
  measured off a GPU) do not hold the experiment back.

The verdicts are injected (`Verdicts`): the runner asks the report's analysis of the
registry (`registry_verdicts`); the plan's simulation asks the verdict functions on simulated
draws (`simulate_savings`). Stopping when a test first comes out decided is optional stopping:
it raises the error rates of a fixed-n test somewhat; the minimum bounds how early, and the
record names the verdicts that stopped it so a reader can judge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BLOCKING",
    "DEFAULT_MIN_SEEDS",
    "Decision",
    "Verdicts",
    "decide",
    "experiment_verdicts",
    "record_decision",
    "recorded_seeds",
    "registry_verdicts",
    "run_in_order",
    "simulate_savings",
]

# Three seeds: the fewest from which a sample std (2 degrees of freedom) says anything
# about seed variance; below it every SE-based verdict is a guess.
DEFAULT_MIN_SEEDS = 3
DECIDED = ("reproduced", "not reproduced", "held", "not held")
# Verdicts that more seeds could still decide.
BLOCKING = ("inconclusive", "untested")

# claim id -> verdict, conclusion id -> verdict, for one experiment's claims and the
# conclusions that read them; conclusions that no run can decide are left out by the caller.
Verdicts = Callable[[int], tuple[Mapping[str, str], Mapping[str, str]]]


@dataclass(frozen=True)
class Decision:
    """Whether to run another seed after `seeds` of `paper_n`, and why."""

    stop: bool
    early: bool  # stopped below the paper's n
    seeds: int
    paper_n: int
    why: str

    def as_record(self, min_seeds: int) -> dict[str, Any]:
        """The record's `sequential` block."""
        return {
            "stopped_early": self.early,
            "seeds": self.seeds,
            "paper_n": self.paper_n,
            "min_seeds": min_seeds,
            "why": self.why,
        }


def decide(
    seeds: int,
    paper_n: int,
    min_seeds: int,
    claims: Mapping[str, str],
    conclusions: Mapping[str, str],
) -> Decision:
    """The stopping rule (module docstring) after `seeds` seeds are recorded."""
    if min_seeds < 1:
        raise ValueError(f"min_seeds must be >= 1, got {min_seeds}")
    if seeds >= paper_n:
        return Decision(True, False, seeds, paper_n, f"all {paper_n} seeds of the paper run")
    floor = min(min_seeds, paper_n)
    if seeds < floor:
        return Decision(False, False, seeds, paper_n, f"below the minimum of {floor} seeds")
    open_claims = sorted(c for c, v in claims.items() if v in BLOCKING)
    open_conclusions = sorted(c for c, v in conclusions.items() if v in BLOCKING)
    if open_claims or open_conclusions:
        names = [*(f"claim {c} {claims[c]}" for c in open_claims)]
        names += [f"conclusion {c} {conclusions[c]}" for c in open_conclusions]
        more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
        return Decision(False, False, seeds, paper_n, "; ".join(names[:3]) + more)
    decided = [f"claim {c} {v}" for c, v in sorted(claims.items()) if v in DECIDED]
    decided += [f"conclusion {c} {v}" for c, v in sorted(conclusions.items()) if v in DECIDED]
    if not decided:
        return Decision(False, False, seeds, paper_n, "no verdict reads these seeds yet")
    more = f" (+{len(decided) - 4} more)" if len(decided) > 4 else ""
    why = (
        f"stopped after {seeds} of {paper_n} seeds: every verdict reading them is decided: "
        + "; ".join(decided[:4])
        + more
    )
    return Decision(True, True, seeds, paper_n, why)


def run_in_order(
    paper_n: int, min_seeds: int, run_seed: Callable[[int], None], verdicts: Verdicts
) -> Decision:
    """Run seeds 0, 1, ... (`run_seed(k)`) until `decide` stops; `verdicts(k)` gives the
    verdicts with k seeds recorded. Used where one experiment runs alone (and in tests)."""
    seeds = 0
    while True:
        claims, conclusions = verdicts(seeds) if seeds >= min(min_seeds, paper_n) else ({}, {})
        decision = decide(seeds, paper_n, min_seeds, claims, conclusions)
        if decision.stop:
            return decision
        run_seed(seeds)
        seeds += 1


# --------------------------------------------------------------------- from the registry


def experiment_verdicts(analysis: Any, experiment: str) -> tuple[dict[str, str], dict[str, str]]:
    """(claims, conclusions) of `experiment` from a report analysis (report/analysis.py): its
    runnable claims' verdicts, and the verdicts of the conclusions reading them, leaving out
    conclusions whose other claim no run can decide (not runnable or pending)."""
    suite = analysis.suite
    rows = {r.claim.id: r for r in analysis.rows}

    def runnable(claim_id: str) -> bool:
        return _runnable(suite, rows[claim_id].claim)

    mine = {
        r.claim.id: r.verdict
        for r in analysis.rows
        if r.claim.experiment == experiment and runnable(r.claim.id)
    }
    conclusions = {}
    for c in analysis.comparisons:
        ids = (c.comparison.better, c.comparison.worse)
        if any(i in mine for i in ids) and all(runnable(i) for i in ids):
            conclusions[c.comparison.id] = c.judgement.verdict
    return mine, conclusions


def registry_verdicts(
    suite_path: str | Path, registry: str | Path, extra: list[dict[str, Any]] | None = None
) -> Any:
    """The report's analysis of one suite over the registry (plus `extra` records not yet
    written: the worker judges its own record before writing it)."""
    from nasrepro.registry import RecordIndex
    from nasrepro.report.analysis import analyse

    # (the runner has warned about unreadable files; a first record has no registry yet)
    index, _ = RecordIndex.load(registry, missing_ok=True)
    if extra:
        index = RecordIndex([*index.records, *extra], index.rejected)
    return analyse(Path(suite_path), Path(registry), index)


def recorded_seeds(analysis: Any, experiment: str) -> int:
    """Full-budget records backing the experiment in an analysis."""
    return len(analysis.groups.get(experiment, {}).get("full", []))


def record_decision(
    trial: Any, record: dict[str, Any], registry: str | Path, min_seeds: int, paper_n: int
) -> dict[str, Any]:
    """The `sequential` block of a trial's record: the decision with this record counted
    (the runner re-judges the registry before each further seed)."""
    analysis = registry_verdicts(trial.suite_path, registry, [record])
    seeds = recorded_seeds(analysis, trial.experiment)
    floor = min(min_seeds, paper_n)
    verdicts = experiment_verdicts(analysis, trial.experiment) if seeds >= floor else ({}, {})
    return decide(seeds, paper_n, min_seeds, *verdicts).as_record(min_seeds)


# --------------------------------------------------------------------- simulated outcomes


_MARGINS: dict[tuple[str, str], Any] = {}


def report_judge(suite: Any, claim: Any, samples: list[Any]) -> Any:
    """The report's judgement of `claim` on these samples (its protocol, margin and
    convention: report.analysis.judge_values), the claim's margin computed once."""
    from nasrepro.report.analysis import judge_values
    from nasrepro.report.margins import claim_margin

    key = (suite.suite, claim.id)
    if key not in _MARGINS:
        _MARGINS[key] = claim_margin(suite, claim)
    return judge_values(suite, claim, samples, _MARGINS[key])


def _runnable(suite: Any, claim: Any) -> bool:
    exp = suite.experiments.get(claim.experiment or "")
    return not claim.not_runnable and exp is not None and not exp.pending


def simulate_savings(
    suites: list[Any],
    experiments: Mapping[tuple[str, str], tuple[int, float]],
    min_seeds: int = DEFAULT_MIN_SEEDS,
    replicates: int = 40,
    seed: int = 0,
    judge_claim: Callable[[Any, Any, list[Any]], Any] | None = None,
    judge_comparison: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Hours sequential seeds save on simulated outcomes, averaged over `replicates`.

    `experiments`: (suite, experiment) -> (the paper's n seeds, hours per seed). Outcome
    model: every seed's value of a claim is drawn independently from a normal distribution at
    the claimed value with the claimed std (claims without one: the median std the suite
    prints for that metric, else 1 point): the papers' numbers taken at face value. Each
    replicate runs the experiments in waves as the runner does (the minimum first, then one
    seed per undecided experiment) and judges with `judge_claim(suite, claim, samples)` and
    `judge_comparison` (default: the report's own, nasrepro/report/analysis.py and
    verdict.py)."""
    import random

    from nasrepro.report import verdict as v
    from nasrepro.suite import HIGHER_IS_BETTER

    judge_claim = judge_claim or report_judge
    judge_comparison = judge_comparison or v.judge_comparison
    rng = random.Random(seed)
    by_suite = {s.suite: s for s in suites}
    by_id = {s.suite: {c.id: c for c in s.claims} for s in suites}
    claims_of: dict[tuple[str, str], list[Any]] = {}
    for (sname, exp), _ in experiments.items():
        suite = by_suite[sname]
        claims_of[(sname, exp)] = [
            c
            for c in suite.claims
            if c.experiment == exp
            and not c.not_runnable
            and c.protocol in ("mean", "retrain_k", "single", "best_by_valid", "best_by_test")
            and c.metric not in ("search_cost_gpu_days",)
        ]
    fallback: dict[tuple[str, str], float] = {}
    for suite in suites:
        by_metric: dict[str, list[float]] = {}
        for c in suite.claims:
            if c.std is not None and c.std > 0:
                by_metric.setdefault(c.metric, []).append(c.std)
        for metric, stds in by_metric.items():
            fallback[(suite.suite, metric)] = sorted(stds)[len(stds) // 2]
    full_hours = sum(n * h for n, h in experiments.values())
    spent_total = 0.0
    seeds_total = 0
    early = 0
    for _ in range(replicates):
        draws = {
            key: {
                c.id: [
                    rng.gauss(
                        c.judged_value, c.std or fallback.get((key[0], c.metric), 1.0)
                    )
                    for _ in range(experiments[key][0])
                ]
                for c in claims
            }
            for key, claims in claims_of.items()
        }
        done = {k: min(min_seeds, n) for k, (n, _) in experiments.items()}
        stopped: dict[tuple[str, str], bool] = {}
        stats: dict[tuple[str, str], Any] = {}
        verdicts: dict[tuple[str, str], str] = {}
        judged: dict[tuple[str, str], int] = {}  # seeds each experiment was last judged at
        while True:
            # only experiments that ran a seed since are judged again (the 100-seed query
            # baselines would otherwise re-judge every claim in each of their waves)
            for key, claims in claims_of.items():
                if judged.get(key) == done[key]:
                    continue
                judged[key] = done[key]
                suite = by_suite[key[0]]
                for c in claims:
                    values = draws[key][c.id][: done[key]]
                    samples = [v.Sample(i, x, x, rank=x) for i, x in enumerate(values)]
                    j = judge_claim(suite, c, samples)
                    stats[(key[0], c.id)] = j.reproduced
                    verdicts[(key[0], c.id)] = j.verdict
            moved = False
            for key, (n, _) in experiments.items():
                if stopped.get(key):
                    continue
                suite = by_suite[key[0]]
                mine = {c.id: verdicts[(key[0], c.id)] for c in claims_of[key]}
                conclusions = {}
                for comp in suite.comparisons:
                    if comp.better not in mine and comp.worse not in mine:
                        continue
                    a, b = stats.get((key[0], comp.better)), stats.get((key[0], comp.worse))
                    claim = by_id[key[0]][comp.better]
                    if a is None or b is None:
                        # the other side is not in the plan: a run waits for it when it
                        # could be run (untested), else the conclusion is out of reach
                        other = by_id[key[0]][comp.worse if a is not None else comp.better]
                        if _runnable(suite, other):
                            conclusions[comp.id] = "untested"
                        continue
                    conclusions[comp.id] = judge_comparison(
                        a,
                        b,
                        higher_is_better=HIGHER_IS_BETTER.get(claim.metric, False),
                        margin=comp.margin,
                        z=suite.verdict.z,
                    ).verdict
                d = decide(done[key], n, min_seeds, mine, conclusions)
                if d.stop:
                    stopped[key] = True
                    early += int(d.early)
                else:
                    done[key] += 1
                    moved = True
            if not moved:
                break
        spent_total += sum(done[k] * h for k, (_, h) in experiments.items())
        seeds_total += sum(done.values())
    spent = spent_total / max(replicates, 1)
    return {
        "hours_all_seeds": round(full_hours, 2),
        "hours_sequential": round(spent, 2),
        "hours_saved": round(full_hours - spent, 2),
        "seeds_all": sum(n for n, _ in experiments.values()),
        "seeds_sequential": round(seeds_total / max(replicates, 1), 1),
        "experiments_stopped_early": round(early / max(replicates, 1), 1),
        "replicates": replicates,
        "min_seeds": min_seeds,
        "model": "claims at face value: seed values ~ Normal(claimed value, claimed std; "
        "median std of the metric where none is printed, else 1), independent",
    }

